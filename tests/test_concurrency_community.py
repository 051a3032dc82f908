"""Real concurrent connections on PostgreSQL: a review rewarded once, a vote counted once, a review
request sent once, a referral converted once and within its monthly cap, whatever runs at once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Channel
from community import services
from community.models import HelpfulVote, Review, ReviewRequest
from community.services import ReviewInput
from rewards.models import ActivityType
from rewards.selectors import ledger_discrepancies
from tests.concurrency import run_concurrently
from tests.factories import RuleFactory, SurveyFactory, SurveyQuestionFactory, customer, place_order, set_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def review(tea_shop, staff):
    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="Review", kind="fixed", activity_type="review_approved", points=50, points_per_unit=None)
    kettle, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle")
    author = customer(tea_shop, "author", email="author@example.com")
    return services.review_submit(member=author, product=kettle,
                                  data=ReviewInput(5, "Lovely", "Boils fast and looks great."))


def test_ten_moderators_approving_at_once_reward_the_review_once(review, staff):
    results = run_concurrently(lambda i: services.review_approve(review_id=review.pk, moderator=staff), 10)
    assert not [r for r in results if isinstance(r, Exception)]
    review.member.refresh_from_db()
    assert review.member.points_available == 50
    assert review.member.activities.filter(type=ActivityType.REVIEW_APPROVED).count() == 1
    assert list(ledger_discrepancies()) == []


def test_approve_and_reject_racing_leave_points_matching_the_outcome(review, staff):
    def decide(i):
        if i % 2:
            return services.review_approve(review_id=review.pk, moderator=staff)
        return services.review_reject(review_id=review.pk, moderator=staff, reason="Off topic")

    results = run_concurrently(decide, 8)
    assert not [r for r in results if isinstance(r, Exception)]
    review.refresh_from_db()
    review.member.refresh_from_db()
    assert review.member.points_available == (50 if review.status == "approved" else 0)
    assert list(ledger_discrepancies()) == []


def test_one_member_voting_from_ten_tabs_counts_once(review, staff, tea_shop):
    services.review_approve(review_id=review.pk, moderator=staff)
    voter = customer(tea_shop, "voter")
    results = run_concurrently(lambda i: services.review_vote_helpful(review_id=review.pk, member=voter), 10)
    assert sum(1 for r in results if isinstance(r, Review)) == 1
    assert HelpfulVote.objects.count() == 1
    assert Review.objects.get(pk=review.pk).helpful_count == 1


def test_review_requests_run_four_times_at_once_send_each_email_once(tea_shop, mailoutbox):
    set_program(pending_days=14, expiry_policy="never")
    long_ago = timezone.now() - timedelta(days=15)
    for n in range(30):
        member = customer(tea_shop, f"c{n}", email=f"c{n}@example.com")
        member.surveys_channel = Channel.EMAIL
        member.save(update_fields=["surveys_channel"])
        place_order(tea_shop, f"o-{n}", f"c{n}", placed_at=long_ago, lines=(("KETTLE-1", 1, "30.00", "tea"),))
    results = run_concurrently(lambda i: services.review_requests_send(batch_size=7), 4)
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(results) == 30
    assert ReviewRequest.objects.count() == 30
    assert sorted(m.to[0] for m in mailoutbox) == sorted(f"c{n}@example.com" for n in range(30))


def test_referral_checks_racing_convert_once_and_respect_the_monthly_cap(tea_shop):
    from feedback import services as feedback
    from feedback.models import Referral, ReferralStatus

    set_program(pending_days=14, expiry_policy="never")
    config = feedback.referral_settings()
    config.max_conversions_per_month = 3
    config.save()
    referrer = customer(tea_shop, "ref", email="ref@example.com")
    friends = []
    for n, name in enumerate(["amy", "ben", "cat", "dan", "eve", "fay"]):
        member = customer(tea_shop, name, email=f"{name}@mail{n}.org")
        feedback.referral_link(friend=member, code=referrer.referral_code, source="code", device=f"d{n}")
        place_order(tea_shop, f"o-{name}", name, lines=(("TEA", 1, "30.00", "tea"),))
        friends.append(member.pk)
    # Every friend's check twice, all at once.
    results = run_concurrently(lambda i: feedback.referrals_check(friend_ids=[friends[i % 6]]), 12)
    assert not [r for r in results if isinstance(r, Exception)]
    statuses = sorted(Referral.objects.values_list("status", flat=True))
    assert statuses == [ReferralStatus.CONVERTED] * 3 + [ReferralStatus.VOID] * 3
    referrer.refresh_from_db()
    assert referrer.points_pending == 3 * 500
    assert list(ledger_discrepancies()) == []


def test_one_member_sending_a_survey_from_eight_tabs_gets_one_response_and_points_once(tea_shop):
    from feedback import services as feedback
    from feedback.models import SurveyResponse

    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="Survey", kind="fixed", activity_type="survey_completed", points=30, points_per_unit=None)
    survey = SurveyFactory(name="NPS", opens_at=timezone.now() - timedelta(days=1))
    question = SurveyQuestionFactory(survey=survey, kind="nps", text="Recommend us?")
    member = customer(tea_shop, "ada")
    results = run_concurrently(lambda i: feedback.response_save(
        member=member, survey_id=survey.pk, round=1, answers={f"q{question.pk}": str(i)}, finish=True), 8)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert all(getattr(r, "code", "") == "already_answered" for r in results if isinstance(r, Exception))
    assert SurveyResponse.objects.filter(status="completed").count() == 1
    member.refresh_from_db()
    assert member.points_available == 30


def test_a_first_review_sent_from_two_tabs_at_once_is_one_review(tea_shop):
    kettle, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-2", name="Kettle")
    author = customer(tea_shop, "twotabs", email="twotabs@example.com")
    results = run_concurrently(lambda i: services.review_submit(
        member=author, product=kettle, data=ReviewInput(5 - i, f"Tab {i} says", "Written in two tabs at once.")), 2)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Review.objects.filter(member=author).count() == 1


def test_one_friend_linked_from_two_requests_at_once_is_referred_once(tea_shop):
    from feedback import services as feedback
    from feedback.models import Referral

    referrer = customer(tea_shop, "ref2", email="ref2@example.com")
    other = customer(tea_shop, "ref3", email="ref3@example.com")
    friend = customer(tea_shop, "newbie", email="newbie@example.com")
    codes = [referrer.referral_code, other.referral_code]
    results = run_concurrently(lambda i: feedback.referral_link(friend=friend, code=codes[i], source="code"), 2)
    assert sum(1 for r in results if isinstance(r, Referral)) == 1
    assert all(getattr(r, "code", "") == "already_referred" for r in results if isinstance(r, Exception))
    assert Referral.objects.filter(friend=friend).count() == 1


def test_reviews_of_one_product_approved_and_edited_at_once_all_count_in_its_rating(tea_shop, staff):
    """Eight approvals at once of a product's first reviews (its summary row made by one of them),
    then four members editing their published reviews (off the page until a moderator looks again)
    racing four approvals: no count lost. Moderators' decisions on one product wait for each other
    (they lock the product's row); members' edits do not."""
    from decimal import Decimal

    from community.selectors import rating_summary

    set_program(pending_days=0, expiry_policy="never")
    kettle, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle")

    def write(n, rating):
        return services.review_submit(member=customer(tea_shop, f"m{n}"), product=kettle,
                                      data=ReviewInput(rating, f"Review {n}", f"Kettle review number {n}."))

    reviews = [write(n, rating) for n, rating in enumerate((1, 2, 3, 4, 5, 1, 2, 3, 5, 5, 5, 5))]
    results = run_concurrently(lambda i: services.review_approve(review_id=reviews[i].pk, moderator=staff), 8)
    assert not [r for r in results if isinstance(r, Exception)]
    summary = rating_summary(product=kettle)
    assert (summary.count, summary.average) == (8, Decimal("2.6"))

    def edit_or_approve(i):
        if i < 4:
            return write(i, 5)
        return services.review_approve(review_id=reviews[i + 4].pk, moderator=staff)

    results = run_concurrently(edit_or_approve, 8)
    assert not [r for r in results if isinstance(r, Exception)]
    summary = rating_summary(product=kettle)
    assert (summary.count, summary.average) == (8, Decimal("3.9"))  # 1 + 2 + 3 + 5 x 5 = 31 stars
    assert [count for _, count, _ in summary.distribution] == [5, 0, 1, 1, 1]  # 5 stars first
