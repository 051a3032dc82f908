"""Badges (once per level, at the moment the criterion is met) and challenges (inside their dates)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import Member, Notification
from core import bulk
from core.models import OutboxEvent
from rewards.models import ChallengeEntry, LedgerEntry, MemberBadge, PointsLot
from rewards.selectors import ledger_discrepancies
from rewards.services import activity_record
from rewards.services.progress import badge_backfill, badges_evaluate, challenge_join, challenges_evaluate
from rewards.services.tiers import tier_set_manually
from tests.factories import (
    ChallengeFactory,
    RuleFactory,
    customer,
    in_debt,
    make_badge,
    make_tiers,
    place_order,
    refund,
    set_program,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=0, expiry_policy="never", currency="EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com")


def held(member) -> list[str]:
    return sorted(f"{h.level.badge.slug}:{h.level.name}"
                  for h in MemberBadge.objects.filter(member=member).select_related("level__badge"))


def review(member, number, at=None):
    return activity_record(member=member, type="review_approved", source_key=f"review:{number}",
                           description="Review approved", occurred_at=at)


def order_at(tea_shop, order_id, when, amount="10.00", category="tea"):
    return place_order(tea_shop, order_id, "cust-42", lines=(("SKU-" + category, 1, amount, category),),
                       placed_at=when)


class TestBadgeCriteria:
    def test_activity_count_with_levels_and_a_points_bonus_paid_once(self, ada):
        make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), ("Silver", 3, 100), activity_type="review_approved")
        review(ada, 1)
        assert badges_evaluate(member_ids=[ada.pk]) == 1
        assert held(ada) == ["reviewer:Bronze"]
        review(ada, 2)
        review(ada, 3)
        assert badges_evaluate(member_ids=[ada.pk]) == 1
        assert badges_evaluate(member_ids=[ada.pk]) == 0
        assert held(ada) == ["reviewer:Bronze", "reviewer:Silver"]
        ada.refresh_from_db()
        assert ada.points_available == 100
        assert Notification.objects.filter(member=ada, kind="badge").count() == 2

    def test_first_order(self, tea_shop, ada):
        make_badge("First order", "first", ("Done", 1, 25), activity_type="order")
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == []
        order_at(tea_shop, "1", timezone.now() - timedelta(hours=1))
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == ["first-order:Done"]

    def test_total_spend_counts_refunds_against_it(self, tea_shop, ada):
        make_badge("Big spender", "spend", ("Bronze", 100, 0))
        order_at(tea_shop, "1", timezone.now() - timedelta(hours=2), amount="80.00")
        order_at(tea_shop, "2", timezone.now() - timedelta(hours=1), amount="30.00")
        refund(tea_shop, "2", refund_id="r")
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == []
        order_at(tea_shop, "3", timezone.now() - timedelta(minutes=5), amount="20.00")
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == ["big-spender:Bronze"]

    def test_years_of_membership(self, ada):
        make_badge("Loyal", "membership_years", ("One year", 1, 0), ("Two years", 2, 0))
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == []
        badges_evaluate(member_ids=[ada.pk], now=ada.created_at + timedelta(days=366))
        assert held(ada) == ["loyal:One year"]

    def test_a_streak_of_consecutive_months(self, tea_shop, ada):
        make_badge("Regular", "order_streak", ("Three months", 3, 0))
        base = timezone.now().replace(day=15, hour=12)
        months = [base - timedelta(days=31 * n) for n in (5, 4, 2, 1)]  # a gap breaks the run at three months ago
        for number, when in enumerate(months):
            order_at(tea_shop, str(number), when)
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == []
        order_at(tea_shop, "late", base - timedelta(days=31 * 3))  # fills the gap: five months in a row
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == ["regular:Three months"]

    def test_converted_referrals_and_helpful_votes(self, ada):
        make_badge("Ambassador", "referrals", ("Bronze", 2, 0))
        make_badge("Helpful", "helpful_votes", ("Bronze", 1, 0))
        activity_record(member=ada, type="referral", source_key="ref:1", description="Friend ordered")
        activity_record(member=ada, type="helpful_vote_received", source_key="vote:1", description="Vote")
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == ["helpful:Bronze"]
        activity_record(member=ada, type="referral", source_key="ref:2", description="Friend ordered")
        badges_evaluate(member_ids=[ada.pk])
        assert held(ada) == ["ambassador:Bronze", "helpful:Bronze"]

    def test_only_activities_that_can_move_a_badge_recheck_it(self, ada):
        make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
        review(ada, 1)
        assert badges_evaluate(member_ids=[ada.pk], activity_types=["order"]) == 0
        assert badges_evaluate(member_ids=[ada.pk], activity_types=["review_approved"]) == 1


def test_a_new_badge_is_backfilled_for_members_who_already_qualify(tea_shop, ada, coffee_bar):
    grace = customer(tea_shop, "cust-43", email="grace@example.com")
    for number in range(3):
        review(ada, number)
    review(grace, 9)
    badge = make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), ("Silver", 3, 0),
                       activity_type="review_approved")
    assert badge_backfill(badge_id=badge.pk) == 3
    assert held(ada) == ["reviewer:Bronze", "reviewer:Silver"]
    assert held(grace) == ["reviewer:Bronze"]
    assert badge_backfill(badge_id=badge.pk) == 0


def _bonus_rows(members: dict) -> dict:
    by_id = {m.pk: x for x, m in members.items()}
    mine = {"member__in": members.values()}
    badges = LedgerEntry.objects.filter(activity__type="badge_earned", **mine)
    return {
        "entries": sorted((by_id[e.member_id], e.description, e.kind, e.available_delta, e.pending_delta,
                           e.owed_delta, e.expires_at, e.effective_at) for e in badges),
        "lots": sorted((by_id[lot.member_id], lot.entry.description, lot.points, lot.remaining, lot.expires_at)
                       for lot in PointsLot.objects.filter(entry__in=badges)),
        "events": sorted((by_id[e.member_id], e.type, sorted((k, v) for k, v in e.data.items() if k != "activity_id"))
                         for e in OutboxEvent.objects.filter(type__in=("points.earned", "badge.awarded"), **mine)
                         if e.type == "badge.awarded" or e.data["description"].startswith("Badge")),
        "balances": [Member.objects.filter(pk=members[x].pk).values_list(
            "points_available", "points_pending", "points_owed", "last_activity_at").get() for x in sorted(members)],
        "notes": sorted((by_id[n.member_id], n.title) for n in Notification.objects.filter(kind="badge", **mine)),
    }


@pytest.mark.postgres
def test_bonuses_in_one_statement_and_through_posting_write_the_same_rows(tea_shop, coffee_bar, monkeypatch):
    """On PostgreSQL a badge's bonuses are posted by one SQL statement (``credits_sql``),
    elsewhere through ``Posting``: the same awards leave the same rows, a debt repaid first."""
    set_program(pending_days=14, expiry_policy="rolling", expiry_months=12, time_zone="UTC", currency="EUR")
    RuleFactory(name="1 per EUR")
    groups = {}
    for partner in (tea_shop, coffee_bar):
        groups[partner] = {"debtor": in_debt(partner, "debtor"),
                           "fresh": customer(partner, "fresh", email=f"fresh@{partner.pk}.example.com")}
        for number in range(3):
            review(groups[partner]["debtor"], f"{partner.pk}-d{number}")
        review(groups[partner]["fresh"], f"{partner.pk}-f")
    badge = make_badge("Reviewer", "activity_count", ("Bronze", 1, 50), ("Silver", 2, 40), ("Gold", 3, 0),
                       activity_type="review_approved")
    now = (timezone.now() + timedelta(minutes=1)).replace(microsecond=250000)

    def award(partner):
        ids = [m.pk for m in groups[partner].values()]
        return badges_evaluate(member_ids=ids, badge_ids=[badge.pk], now=now)

    with CaptureQueriesContext(connection) as one:
        assert award(tea_shop) == 4
    monkeypatch.setattr(bulk, "writes_in_one_statement", lambda: False)
    with CaptureQueriesContext(connection) as general:
        assert award(coffee_bar) == 4

    first = _bonus_rows(groups[tea_shop])
    assert first == _bonus_rows(groups[coffee_bar])
    # The debtor's 50 and 40 first repay the 80 owed: 10 spendable, in one lot of 10.
    assert [row[:6] for row in first["entries"]] == [
        ("debtor", "Badge: Reviewer (Bronze)", "earn", 0, 0, -50),
        ("debtor", "Badge: Reviewer (Silver)", "earn", 10, 0, -30),
        ("fresh", "Badge: Reviewer (Bronze)", "earn", 50, 0, 0),
    ]
    assert [row[2:4] for row in first["lots"]] == [(10, 10), (50, 50)]
    assert [b[:3] for b in first["balances"]] == [(10, 0, 0), (50, 0, 0)]
    assert [b[3] for b in first["balances"]] == [now, now]
    earned = [data for persona, kind, data in first["events"] if persona == "debtor" and kind == "points.earned"]
    assert [kind for _, kind, _ in first["events"]] == ["badge.awarded"] * 3 + ["points.earned"] * 2 + [
        "badge.awarded", "points.earned"]
    assert earned[0] == sorted({
        "points": 50, "available_delta": 0, "pending_delta": 0, "owed_delta": -50, "pending": False,
        "available_at": None, "expires_at": (now + timedelta(days=365)).isoformat(),
        "description": "Badge: Reviewer (Bronze)", "reason": "", "actor_partner_id": None}.items())
    # The two writers really are two: the bonuses of a run in one statement, against several.
    writes = [sum(q["sql"].lstrip().upper().startswith(("INSERT", "WITH", "UPDATE", "COPY"))
                  for q in c.captured_queries) for c in (one, general)]
    assert writes[0] < writes[1], writes
    # Run again: nothing more is awarded or paid, and the books balance.
    monkeypatch.undo()
    assert badge_backfill(badge_id=badge.pk) == 0
    assert list(ledger_discrepancies()) == []


def test_badges_get_a_drawn_default_image(ada):
    badge = make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
    level = badge.levels.get()
    with Image.open(level.image.path) as image:
        assert (image.format, image.size) == ("PNG", (256, 256))


def test_activities_queue_the_badge_check_after_commit(ada, django_capture_on_commit_callbacks, eager_tasks):
    make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
    with django_capture_on_commit_callbacks(execute=True) as queued:
        review(ada, 1)
    # After commit: the badge check, and the relay of the outbox (review.approved, points.earned);
    # then, the badge awarded, the message telling the member.
    assert [getattr(f, "__qualname__", "") for f in queued] == ["check_progress.<locals>.<lambda>", "_relay_soon",
                                                                "_send_after_commit.<locals>.<lambda>"]
    assert held(ada) == ["reviewer:Bronze"]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_awards_the_badge_after_the_activity(ada, celery_worker):
    make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
    review(ada, 1)
    celery_worker.wait_for(lambda: held(ada) == ["reviewer:Bronze"], what="the badge from the worker")


class TestChallenges:
    @pytest.fixture
    def may(self):
        start = timezone.now() - timedelta(days=10)
        return ChallengeFactory(name="Review 3 products in May", criterion="activity_count",
                                        activity_type="review_approved", threshold=Decimal(3), starts_at=start,
                                        ends_at=start + timedelta(days=20), reward_points=300)

    def test_only_what_happens_inside_the_dates_counts(self, ada, may):
        review(ada, 1, at=may.starts_at - timedelta(seconds=1))  # just before: no
        review(ada, 2, at=may.starts_at)  # the first instant: yes
        review(ada, 3, at=may.starts_at + timedelta(days=1))
        assert challenges_evaluate(member_ids=[ada.pk]) == 0
        review(ada, 4, at=may.ends_at)  # the end is exclusive: no
        assert challenges_evaluate(member_ids=[ada.pk]) == 0
        review(ada, 5, at=may.ends_at - timedelta(seconds=1))
        assert challenges_evaluate(member_ids=[ada.pk]) == 1
        assert ChallengeEntry.objects.get(member=ada, challenge=may).completed_at is not None
        ada.refresh_from_db()
        assert ada.points_available == 300

    def test_work_inside_the_dates_reported_up_to_two_days_after_the_end_still_counts(
            self, ada, django_capture_on_commit_callbacks, eager_tasks):
        start = timezone.now() - timedelta(days=10)
        yesterday, three_days_ago = (
            ChallengeFactory(name=name, criterion="activity_count", activity_type="review_approved",
                             threshold=Decimal(1), starts_at=start, ends_at=timezone.now() - timedelta(days=days),
                             reward_points=points)
            for name, days, points in (("Ended yesterday", 1, 100), ("Ended three days ago", 3, 1000)))
        # Nothing else is tracked (no tiers, no badges): the check after the review is for the
        # challenge that ended yesterday alone; the older one is closed.
        with django_capture_on_commit_callbacks(execute=True):
            review(ada, 1, at=start + timedelta(days=5))
        assert ChallengeEntry.objects.get(member=ada, challenge=yesterday).completed_at is not None
        assert not ChallengeEntry.objects.filter(member=ada, challenge=three_days_ago).exists()
        ada.refresh_from_db()
        assert ada.points_available == 100

    def test_a_challenge_completes_once(self, ada, may):
        for number in range(4):
            review(ada, number, at=timezone.now())
        assert challenges_evaluate(member_ids=[ada.pk]) == 1
        assert challenges_evaluate() == 0
        ada.refresh_from_db()
        assert ada.points_available == 300

    def test_opt_in_challenges_count_only_for_members_who_joined_and_can_give_a_badge(self, tea_shop, ada):
        badge = make_badge("Explorer", "first", ("Explorer", 1, 0), activity_type="exploration")
        challenge = ChallengeFactory(
            name="Two categories this month", criterion="distinct_categories", threshold=Decimal(2),
            starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=5),
            enrollment="opt_in", reward_badge=badge.levels.get(),
        )
        order_at(tea_shop, "1", timezone.now() - timedelta(minutes=10), category="tea")
        order_at(tea_shop, "2", timezone.now() - timedelta(minutes=5), category="cups")
        assert challenges_evaluate(member_ids=[ada.pk]) == 0
        challenge_join(member=ada, challenge=challenge)
        assert challenges_evaluate(member_ids=[ada.pk]) == 1
        assert held(ada) == ["explorer:Explorer"]

    def test_the_challenges_page_shows_progress_and_time_left(self, client, alice, may):
        client.force_login(alice.user)
        review(alice, 1, at=timezone.now())
        html = client.get("/rewards/challenges/").content.decode()
        assert "Review 3 products in May" in html
        assert 'aria-valuenow="33"' in html
        assert "10 days left" in html


def test_the_badges_page_says_what_each_next_level_takes_in_constant_queries(
    client, alice, django_assert_max_num_queries
):
    client.force_login(alice.user)
    make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), ("Silver", 5, 50), activity_type="review_approved")
    review(alice, 1)
    badges_evaluate(member_ids=[alice.pk])
    client.get("/rewards/badges/")  # the program's settings are cached for a few seconds; count without them
    with django_assert_max_num_queries(10) as few:
        html = client.get("/rewards/badges/").content.decode()
    baseline = len(few.captured_queries)
    assert "Silver: 4 more approved reviews" in html
    for number in range(12):
        make_badge(f"Badge {number}", "activity_count", ("Bronze", 1, 0), activity_type=f"kind_{number}")
    make_badge("Spender", "spend", ("Bronze", 50, 0))
    make_badge("Streak", "order_streak", ("Bronze", 3, 0))
    client.get("/rewards/badges/")
    with django_assert_max_num_queries(baseline + 2):  # spend and streak: one query per criterion kind
        client.get("/rewards/badges/")


def test_the_data_download_lists_tier_history_badges_and_challenges(client, alice, staff):
    client.force_login(alice.user)
    gold = make_tiers(("Bronze", 0), ("Gold", 500))[1]
    tier_set_manually(member=alice, tier=gold, until=timezone.now() + timedelta(days=30), reason="Press",
                      actor_user=staff)
    make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
    start = timezone.now() - timedelta(days=1)
    ChallengeFactory(name="One review this week", criterion="activity_count", activity_type="review_approved",
                             threshold=Decimal(1), starts_at=start, ends_at=start + timedelta(days=7))
    review(alice, 1, at=timezone.now())
    badges_evaluate(member_ids=[alice.pk])
    challenges_evaluate(member_ids=[alice.pk])
    progress = client.get(reverse("accounts:export")).json()["progress"]
    assert [(t["from"], t["to"], t["cause"]) for t in progress["tier_history"]] == [("Bronze", "Gold", "manual")]
    assert [(b["badge"], b["level"]) for b in progress["badges"]] == [("Reviewer", "Bronze")]
    assert [c["challenge"] for c in progress["challenges"]] == ["One review this week"]
    assert progress["challenges"][0]["completed_at"] is not None


def test_what_is_left_reads_as_english_for_one_and_for_many():
    from rewards import criteria

    assert criteria.to_go("order_streak", activity_type="", needed=Decimal(1), currency="EUR") == \
        "orders in 1 more month in a row"
    assert criteria.to_go("order_streak", activity_type="", needed=Decimal(3), currency="EUR") == \
        "orders in 3 more months in a row"
    assert criteria.to_go("distinct_categories", activity_type="", needed=Decimal(1), currency="EUR") == \
        "orders from 1 more category"


def test_a_check_that_changes_nothing_reads_only_what_can_have_moved(ada, django_capture_on_commit_callbacks,
                                                                      eager_tasks):
    """The check after each activity runs in the worker for every member who did something: it
    reads no badge definitions (kept in the process), no challenge when none runs, and erased
    members once, only when someone qualifies."""
    from rewards.services.progress import progress_evaluate

    make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), activity_type="review_approved")
    with django_capture_on_commit_callbacks(execute=True):
        review(ada, 1)
    assert held(ada) == ["reviewer:Bronze"]
    with CaptureQueriesContext(connection) as checked:
        assert progress_evaluate(member_ids=[ada.pk], activity_types=["review_approved"])["badges"] == 0
    statements = [query["sql"] for query in checked.captured_queries]
    assert not any("rewards_challenge" in sql for sql in statements)
    assert sum('"erased_at" IS NOT NULL' in sql for sql in statements) == 1
    # The measure, erased members, and the award that finds it held (one statement on PostgreSQL,
    # a read and the next id elsewhere); savepoints aside. The badges are kept with the program.
    work = [sql for sql in statements if not sql.startswith(("SAVEPOINT", "RELEASE", "SET LOCAL"))]
    assert not any("rewards_badge" in sql for sql in work)
    assert len(work) <= 4, work
