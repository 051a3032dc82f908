"""Surveys: question types and follow-ups, audiences, partial answers, rounds, points, results and
their arithmetic, CSV export, closing the loop, invitations."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Channel
from community import services as community
from core.errors import Conflict, Invalid
from feedback import selectors, services
from feedback.models import FollowUp, SurveyAnswer, SurveyResponse
from rewards.models import ActivityType
from tests.factories import (
    RuleFactory,
    SurveyFactory,
    SurveyQuestionFactory,
    customer,
    make_tiers,
    place_order,
    set_program,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def nps_survey(db):
    set_program(pending_days=0, expiry_policy="never")
    survey = SurveyFactory(name="How are we doing?", opens_at=timezone.now() - timedelta(days=1))
    nps = SurveyQuestionFactory(survey=survey, position=1, kind="nps",
                                        text="How likely are you to recommend us to a friend?")
    SurveyQuestionFactory(survey=survey, position=2, kind="text", text="What could we do better?",
                                  required=True, show_if_question=nps, show_if_min=0, show_if_max=6)
    SurveyQuestionFactory(survey=survey, position=3, kind="csat", text="How satisfied are you with delivery?",
                                  required=False)
    SurveyQuestionFactory(survey=survey, position=4, kind="multiple", text="What do you buy?",
                                  options=["Tea", "Coffee", "Teaware"], required=False)
    SurveyQuestionFactory(survey=survey, position=5, kind="single", text="How did you find us?",
                                  options=["Search", "A friend", "Social media"], required=False)
    SurveyQuestionFactory(survey=survey, position=6, kind="rating", text="Rate our website", scale_max=7,
                                  required=False)
    return survey


def q(survey, position):
    return f"q{survey.questions.get(position=position).pk}"


def answer(member, survey, finish=True, **by_position):
    return services.response_save(member=member, survey_id=survey.pk, round=survey.round_at(timezone.now()),
                                  answers={q(survey, pos): value for pos, value in
                                           ((int(k[1:]), v) for k, v in by_position.items())}, finish=finish)


def test_each_question_type_is_stored_and_points_are_earned_once(nps_survey, tea_shop):
    RuleFactory(name="Survey", kind="fixed", activity_type="survey_completed", points=30, points_per_unit=None)
    member = customer(tea_shop, "ada")
    saved = answer(member, nps_survey, p1="9", p3="4", p4=["0", "2"], p5="1", p6="6")
    assert saved.completed and saved.promoter and not saved.detractor
    rows = sorted((a.question.position, a.option, a.score, a.text) for a in SurveyAnswer.objects.all())
    assert rows == [(1, -1, 9, ""), (3, -1, 4, ""), (4, 0, None, ""), (4, 2, None, ""), (5, 1, None, ""),
                    (6, -1, 6, "")]
    member.refresh_from_db()
    assert member.points_available == 30
    with pytest.raises(Conflict) as again:
        answer(member, nps_survey, p1="10")
    assert again.value.code == "already_answered"
    assert member.activities.filter(type=ActivityType.SURVEY_COMPLETED).count() == 1


def test_a_follow_up_is_required_only_when_its_condition_holds(nps_survey, tea_shop):
    happy, unhappy = customer(tea_shop, "happy"), customer(tea_shop, "unhappy")
    assert answer(happy, nps_survey, p1="8", p2="ignored: not shown for an 8").completed
    assert not SurveyAnswer.objects.filter(question__position=2).exists()  # not shown, not stored
    with pytest.raises(Invalid) as missing:
        answer(unhappy, nps_survey, p1="3")
    assert missing.value.fields == {q(nps_survey, 2): ["Please answer this question."]}
    assert answer(unhappy, nps_survey, p1="3", p2="Deliveries are slow.").detractor


@pytest.mark.parametrize("position, value, message", [
    (1, "11", "Choose 0 to 10."),
    (1, "-1", "Choose 0 to 10."),
    (1, "7.5", "Choose 0 to 10."),
    (3, "0", "Choose 1 to 5."),
    (6, "8", "Choose 1 to 7."),
    (4, ["0", "9"], "Unknown option."),
    (5, ["0", "1"], "Choose one option."),
    (5, "tea", "Unknown option."),
])
def test_bad_answers_are_refused_with_the_question_named_and_nothing_saved(nps_survey, tea_shop, position, value,
                                                                          message):
    member = customer(tea_shop, "ada")
    given = {"p1": "9", f"p{position}": value}
    with pytest.raises(Invalid) as bad:
        answer(member, nps_survey, **given)
    assert bad.value.fields[q(nps_survey, position)] == [message]
    assert not SurveyAnswer.objects.exists()
    assert not SurveyResponse.objects.exists()


def test_unknown_questions_closed_surveys_and_other_rounds_are_refused(nps_survey, tea_shop):
    member = customer(tea_shop, "ada")
    with pytest.raises(Invalid) as unknown:
        services.response_save(member=member, survey_id=nps_survey.pk, round=1, answers={"q999999": "1"},
                               finish=False)
    assert "q999999" in unknown.value.fields
    with pytest.raises(Conflict) as wrong_round:
        services.response_save(member=member, survey_id=nps_survey.pk, round=2, answers={}, finish=False)
    assert wrong_round.value.code == "wrong_round"
    nps_survey.closes_at = timezone.now() - timedelta(minutes=1)
    nps_survey.save()
    with pytest.raises(Conflict) as closed:
        answer(member, nps_survey, p1="9")
    assert closed.value.code == "survey_closed"
    assert not SurveyResponse.objects.exists()


def test_partial_answers_are_kept_until_the_member_comes_back(nps_survey, tea_shop, client):
    member = customer(tea_shop, "ada")
    saved = answer(member, nps_survey, finish=False, p1="5")
    assert not saved.completed
    assert answer(member, nps_survey, finish=False, p3="2").response.answers.count() == 2
    done = answer(member, nps_survey, p2="The tea arrived stale.")
    assert done.completed and done.response.nps == 5
    assert sorted(done.response.answers.values_list("question__position", flat=True)) == [1, 2, 3]


def test_a_repeating_survey_opens_a_new_round_after_its_interval(nps_survey, tea_shop):
    nps_survey.repeat_every_days = 90
    nps_survey.opens_at = timezone.now() - timedelta(days=100)
    nps_survey.save()
    member = customer(tea_shop, "ada")
    assert nps_survey.round_at(timezone.now()) == 2
    answer(member, nps_survey, p1="9")
    assert selectors.surveys_for(member=member) == []
    later = timezone.now() + timedelta(days=85)
    assert [found.round for found in selectors.surveys_for(member=member, now=later)] == [3]


def test_audiences_by_tier_and_by_order_age(nps_survey, tea_shop):
    RuleFactory(name="1 per EUR")
    bronze, gold = make_tiers(("Bronze", 0), ("Gold", 100))
    rich, poor = customer(tea_shop, "rich"), customer(tea_shop, "poor")
    place_order(tea_shop, "o-rich", "rich", lines=(("TEA", 1, "150.00", "tea"),),
                placed_at=timezone.now() - timedelta(days=10))
    place_order(tea_shop, "o-poor", "poor", lines=(("TEA", 1, "10.00", "tea"),),
                placed_at=timezone.now() - timedelta(days=2))
    from rewards.services.tiers import tiers_evaluate

    tiers_evaluate()
    nps_survey.audience, nps_survey.tier = "tier", gold
    nps_survey.save()
    assert [f.survey for f in selectors.surveys_for(member=rich)] == [nps_survey]
    assert selectors.surveys_for(member=poor) == []
    with pytest.raises(Conflict) as outside:
        answer(poor, nps_survey, p1="9")
    assert outside.value.code == "not_in_audience"
    nps_survey.audience, nps_survey.days_after_order = "post_purchase", 7
    nps_survey.save()
    assert [f.survey for f in selectors.surveys_for(member=rich)] == [nps_survey]  # 10 days old
    assert selectors.surveys_for(member=poor) == []  # 2 days old: not yet


# --- Results --------------------------------------------------------------------------------------

@pytest.fixture
def answered(nps_survey, tea_shop):
    """Ten completed responses with known scores, one left half done."""
    scores = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]  # 5 promoters, 2 passives, 3 detractors: NPS 20
    csat = [5, 5, 4, 4, 4, 3, 3, 2, 1, 1]  # mean 3.2
    for n, (score, sat) in enumerate(zip(scores, csat, strict=True)):
        member = customer(tea_shop, f"m{n}")
        answer(member, nps_survey, p1=str(score), p2="Slow delivery" if score <= 6 else "", p3=str(sat),
               p4=["0"] if n % 2 else ["0", "1"], p5=str(n % 3))
    answer(customer(tea_shop, "partial"), nps_survey, finish=False, p1="0")
    return nps_survey


def test_nps_csat_and_choice_counts_on_known_answers(answered):
    results = selectors.survey_results(survey=answered)
    assert (results.started, results.completed) == (11, 10)
    by_position = {r.question.position: r for r in results.questions}
    nps = by_position[1]
    assert (nps.promoters, nps.passives, nps.detractors, nps.nps) == (5, 2, 3, 20)
    assert [count for _, count, _ in nps.counts] == [1, 0, 0, 1, 0, 0, 1, 1, 1, 3, 2]
    assert by_position[3].average == Decimal("3.20")
    assert [(label, count) for label, count, _ in by_position[4].counts] == [("Tea", 10), ("Coffee", 5),
                                                                             ("Teaware", 0)]
    assert [(label, count) for label, count, _ in by_position[5].counts] == [("Search", 4), ("A friend", 3),
                                                                             ("Social media", 3)]
    assert [(n, value) for _, n, value in results.trend] == [(10, 20)]
    assert results.audience == 11 and results.response_rate == 91


def test_nps_rounding_and_edges():
    assert selectors.nps_of(1, 0, 3) == 33  # 33.3
    assert selectors.nps_of(0, 1, 3) == -33
    assert selectors.nps_of(1, 0, 8) == 13  # 12.5 rounds half away from zero
    assert selectors.nps_of(0, 1, 8) == -13
    assert selectors.nps_of(0, 0, 0) is None


def test_text_answers_filter_by_score(answered):
    texts = selectors.survey_results(survey=answered, text_max=6).texts
    assert sorted(nps for nps, _, _, _ in texts) == [0, 3, 6]
    assert selectors.survey_results(survey=answered, text_min=9).texts == []


def test_the_results_page_shows_charts_and_numbers_and_the_csv_has_every_answer(answered, staff, client):
    client.force_login(staff)
    page = client.get(f"/admin/feedback/survey/{answered.pk}/results/")
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    assert 'data-testid="nps">20<' in html and 'data-testid="completed">10<' in html
    # A text question's heading says how many wrote and where to read them (it stood alone), and the
    # score filter's boxes have labels.
    text_question = answered.questions.get(kind="text")
    written = SurveyAnswer.objects.filter(question=text_question, response__status="completed").exclude(text="").count()
    assert written
    assert f'data-testid="written-{text_question.pk}">{written} written answers: <a href="#text-answers">' in html
    assert '<label for="nps-min">' in html and '<label for="nps-max">' in html
    download = client.get(f"/admin/feedback/survey/{answered.pk}/results.csv")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0][:3] == ["response_id", "member_id", "round"] and len(rows) == 12
    completed = [row for row in rows[1:] if row[3] == "completed"]
    assert sorted(row[6] for row in completed) == sorted(["10", "10", "9", "9", "9", "8", "7", "6", "3", "0"])
    assert {row[9] for row in completed} == {"Tea", "Tea; Coffee"}


def test_the_results_page_runs_a_constant_number_of_queries(answered, staff, client, django_assert_max_num_queries,
                                                            tea_shop):
    client.force_login(staff)
    with django_assert_max_num_queries(20) as few:
        client.get(f"/admin/feedback/survey/{answered.pk}/results/")
    for n in range(30):
        answer(customer(tea_shop, f"more{n}"), answered, p1=str(n % 11), p2="Why" if n % 11 <= 6 else "")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(f"/admin/feedback/survey/{answered.pk}/results/")


# --- Closing the loop -----------------------------------------------------------------------------

def test_a_detractor_goes_to_the_follow_up_list_until_handled(answered, staff, client):
    open_ones = FollowUp.objects.filter(handled_at__isnull=True)
    assert sorted(open_ones.values_list("score", flat=True)) == [0, 3, 6]
    assert set(open_ones.values_list("comment", flat=True)) == {"Slow delivery"}
    client.force_login(staff)
    first = open_ones.first()
    page = client.get(f"/admin/feedback/followup/{first.pk}/change/")
    assert page.status_code == 200
    client.post("/admin/feedback/followup/", {"action": "mark_handled", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.handled_by == staff and FollowUp.objects.filter(handled_at__isnull=True).count() == 2


def test_a_detractor_gets_no_review_request_for_30_days(nps_survey, tea_shop, mailoutbox):
    set_program(pending_days=14, expiry_policy="never")
    long_ago = timezone.now() - timedelta(days=15)
    for name, score in (("glad", "10"), ("sad", "2")):
        member = customer(tea_shop, name, email=f"{name}@example.com")
        member.surveys_channel = Channel.EMAIL
        member.save(update_fields=["surveys_channel"])
        place_order(tea_shop, f"o-{name}", name, placed_at=long_ago, lines=(("TEA", 1, "10.00", "tea"),))
        answer(member, nps_survey, p1=score, p2="It was cold." if score == "2" else "")
    assert community.review_requests_send() == 1
    assert [m.to for m in mailoutbox] == [["glad@example.com"]]


def test_a_promoter_is_invited_to_review_and_refer_right_after_answering(nps_survey, alice, alice_client, tea_shop):
    customer(tea_shop, "alice", email="alice@example.com")
    place_order(tea_shop, "o-1", "alice", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    page = alice_client.get(f"/surveys/{nps_survey.pk}/")
    assert page.status_code == 200 and b"How likely are you" in page.content
    done = alice_client.post(f"/surveys/{nps_survey.pk}/", {"round": "1", f"q{nps_survey.questions.get(position=1).pk}":
                                                            "10", "finish": "1"}, follow=True)
    html = done.content.decode()
    assert "/products/KETTLE-1/review/" in html and "/refer/" in html


def test_the_survey_page_shows_errors_next_to_the_question_and_saves_partial_answers(nps_survey, alice_client):
    nps_key = f"q{nps_survey.questions.get(position=1).pk}"
    follow_key = f"q{nps_survey.questions.get(position=2).pk}"
    page = alice_client.post(f"/surveys/{nps_survey.pk}/", {"round": "1", nps_key: "4", "finish": "1"})
    assert page.status_code == 200
    assert f'id="{follow_key}_error"' in page.content.decode()
    alice_client.post(f"/surveys/{nps_survey.pk}/", {"round": "1", nps_key: "4", "save": "1"})
    again = alice_client.get(f"/surveys/{nps_survey.pk}/").content.decode()
    assert f'name="{nps_key}" value="4" checked' in again


def test_invitations_respect_the_email_preference_and_go_once_per_round(nps_survey, tea_shop, mailoutbox):
    wants = customer(tea_shop, "wants", email="wants@example.com")
    wants.surveys_channel = Channel.EMAIL
    wants.save(update_fields=["surveys_channel"])
    customer(tea_shop, "quiet", email="quiet@example.com")
    assert services.survey_invitations_send() == 1
    assert services.survey_invitations_send() == 0
    assert [m.to for m in mailoutbox] == [["wants@example.com"]]
    assert f"/surveys/{nps_survey.pk}/" in mailoutbox[0].body


def test_erasing_a_member_removes_their_words_and_keeps_their_score(nps_survey, tea_shop):
    from accounts.services import member_erase

    member = customer(tea_shop, "ada", email="ada@example.com")
    answer(member, nps_survey, p1="2", p2="My neighbour Bob Smith at 12 Elm St. says hi.")
    member_erase(member=member, actor_user=None)
    assert sorted(SurveyAnswer.objects.values_list("text", flat=True)) == ["", ""]
    assert SurveyAnswer.objects.filter(score=2).count() == 1
    assert FollowUp.objects.get().comment == ""
    assert selectors.survey_results(survey=nps_survey).questions[0].nps == -100


def test_the_dashboard_invites_to_open_surveys_and_to_review_what_was_bought(nps_survey, alice, alice_client,
                                                                             tea_shop):
    customer(tea_shop, "alice", email="alice@example.com")
    place_order(tea_shop, "o-1", "alice", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    html = alice_client.get("/dashboard/").content.decode()
    assert f'href="/surveys/{nps_survey.pk}/">Answer: How are we doing?' in html
    assert 'href="/products/KETTLE-1/review/">Review Kettle-1' in html
    answer(alice, nps_survey, p1="9")
    assert "How are we doing?" not in alice_client.get("/dashboard/").content.decode()


def test_a_survey_without_questions_is_not_offered_or_sent(tea_shop, mailoutbox):
    SurveyFactory(name="Draft", opens_at=timezone.now() - timedelta(days=1))
    member = customer(tea_shop, "ada", email="ada@example.com")
    member.surveys_channel = Channel.EMAIL
    member.save(update_fields=["surveys_channel"])
    assert selectors.surveys_for(member=member) == []
    assert services.survey_invitations_send() == 0
