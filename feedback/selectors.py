"""Reads of feedback: survey results, aggregated in the database (a fixed number of queries however
many responses there are), and the CSV export."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils import timezone

from accounts.models import Member
from core import bulk
from core.process_cache import ProcessCopy
from feedback.models import (
    Audience,
    QuestionKind,
    Referral,
    ReferralStatus,
    ResponseStatus,
    Survey,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
)
from rewards.models import MemberTier, Order, OrderStatus

# A post-purchase survey asks about orders from this window: N to N + 30 days old.
POST_PURCHASE_SPAN_DAYS = 30
PROMOTER, DETRACTOR = 9, 6


def audience(*, survey: Survey, now: datetime) -> QuerySet[Member]:
    """The members a survey is for, now (whether or not they answered)."""
    members = Member.objects.filter(erased_at__isnull=True)
    if survey.audience == Audience.TIER:
        return members.filter(tier_status__tier_id=survey.tier_id)
    if survey.audience == Audience.POST_PURCHASE:
        newest = now - timedelta(days=survey.days_after_order)
        orders = Order.objects.filter(member_id=OuterRef("pk"), placed_at__lte=newest,
                                      placed_at__gt=newest - timedelta(days=POST_PURCHASE_SPAN_DAYS)).exclude(
            status=OrderStatus.REFUNDED)
        return members.filter(Exists(orders))
    return members


def is_for(*, survey: Survey, member: Member, now: datetime) -> bool:
    return audience(survey=survey, now=now).filter(pk=member.pk).exists()


@dataclass
class SurveyForYou:
    survey: Survey
    round: int
    response: SurveyResponse | None


def surveys_for(*, member: Member, now: datetime | None = None) -> list[SurveyForYou]:
    """Open surveys the member is in the audience of and has not finished this round."""
    now = now or timezone.now()
    found = []
    open_surveys = Survey.objects.filter(is_active=True, opens_at__lte=now).filter(
        Q(closes_at__isnull=True) | Q(closes_at__gt=now)).filter(
        Exists(SurveyQuestion.objects.filter(survey=OuterRef("pk"))))  # one still being written: not yet
    tier_id = MemberTier.objects.filter(member=member).values_list("tier_id", flat=True).first()
    responses = {(r.survey_id, r.round): r for r in SurveyResponse.objects.filter(member=member,
                                                                                 survey__in=open_surveys)}
    for survey in open_surveys:
        if survey.audience == Audience.TIER and survey.tier_id != tier_id:
            continue
        if survey.audience == Audience.POST_PURCHASE and not is_for(survey=survey, member=member, now=now):
            continue
        round_ = survey.round_at(now)
        response = responses.get((survey.pk, round_))
        if response is None or response.status != ResponseStatus.COMPLETED:
            found.append(SurveyForYou(survey, round_, response))
    return found


def nps_of(promoters: int, detractors: int, total: int) -> int | None:
    """NPS = % promoters (9-10) - % detractors (0-6), rounded to a whole number (halves away from 0)."""
    if not total:
        return None
    value = Decimal(100 * (promoters - detractors)) / total
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class QuestionResult:
    question: object
    counts: list[tuple[str, int, int]] = field(default_factory=list)  # (label, count, percent)
    answered: int = 0
    average: Decimal | None = None
    nps: int | None = None
    promoters: int = 0
    passives: int = 0
    detractors: int = 0


@dataclass
class Results:
    survey: Survey
    started: int
    completed: int
    audience: int
    response_rate: int | None
    questions: list[QuestionResult]
    trend: list[tuple[datetime, int, int]]  # (week, responses, NPS)
    texts: list[tuple[int | None, str, str, datetime]]  # (NPS of the response, question, text, when)


def survey_results(*, survey: Survey, now: datetime | None = None, text_min: int | None = None,
                   text_max: int | None = None, texts_limit: int = 50) -> Results:
    now = now or timezone.now()
    responses = SurveyResponse.objects.filter(survey=survey)
    counts = responses.aggregate(started=Count("id"), completed=Count("id", filter=Q(
        status=ResponseStatus.COMPLETED)))
    size = audience(survey=survey, now=now).count()
    completed_answers = SurveyAnswer.objects.filter(response__survey=survey,
                                                    response__status=ResponseStatus.COMPLETED)
    scores = defaultdict(dict)
    for question_id, score, n in (completed_answers.filter(score__isnull=False)
                                  .values_list("question_id", "score").annotate(n=Count("id")).order_by()):
        scores[question_id][score] = n
    options = defaultdict(dict)
    for question_id, option, n in (completed_answers.filter(option__gte=0)
                                   .values_list("question_id", "option").annotate(n=Count("id")).order_by()):
        options[question_id][option] = n
    written = dict(completed_answers.exclude(text="").values_list("question_id").annotate(n=Count("id")).order_by())
    questions = list(survey.questions.all())
    results = []
    for question in questions:
        result = QuestionResult(question)
        if question.kind in (QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.RATING):
            low, high = question.score_range()
            given = scores.get(question.pk, {})
            total = sum(given.values())
            result.answered = total
            result.counts = [(str(s), given.get(s, 0), round(100 * given.get(s, 0) / total) if total else 0)
                             for s in range(low, high + 1)]
            if total:
                result.average = (Decimal(sum(s * n for s, n in given.items())) / total).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP)
            if question.kind == QuestionKind.NPS:
                result.promoters = sum(n for s, n in given.items() if s >= PROMOTER)
                result.detractors = sum(n for s, n in given.items() if s <= DETRACTOR)
                result.passives = total - result.promoters - result.detractors
                result.nps = nps_of(result.promoters, result.detractors, total)
        elif question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            chosen = options.get(question.pk, {})
            result.answered = sum(chosen.values())
            base = counts["completed"] or 1
            result.counts = [(label, chosen.get(index, 0), round(100 * chosen.get(index, 0) / base))
                             for index, label in enumerate(question.options)]
        elif question.kind == QuestionKind.TEXT:
            result.answered = written.get(question.pk, 0)
        results.append(result)
    trend = [(row["week"], row["n"], nps_of(row["promoters"], row["detractors"], row["n"]))
             for row in responses.filter(status=ResponseStatus.COMPLETED, nps__isnull=False)
             .annotate(week=TruncWeek("completed_at")).values("week")
             .annotate(n=Count("id"), promoters=Count("id", filter=Q(nps__gte=PROMOTER)),
                       detractors=Count("id", filter=Q(nps__lte=DETRACTOR))).order_by("week")]
    texts = completed_answers.exclude(text="")
    if text_min is not None:
        texts = texts.filter(response__nps__gte=text_min)
    if text_max is not None:
        texts = texts.filter(response__nps__lte=text_max)
    text_rows = [(row["response__nps"], row["question__text"], row["text"], row["response__completed_at"])
                 for row in texts.order_by("-response__completed_at", "-id").values(
                     "response__nps", "question__text", "text", "response__completed_at")[:texts_limit]]
    rate = round(100 * counts["completed"] / size) if size else None
    return Results(survey, counts["started"], counts["completed"], size, rate, results, trend, text_rows)


class _Echo:
    def write(self, value):
        return value


def survey_csv_rows(*, survey: Survey):
    """Every response as a CSV line (a generator, for a streaming download): one column per
    question; several choices joined with "; "."""
    questions = list(survey.questions.all())
    writer = csv.writer(_Echo())
    yield writer.writerow(["response_id", "member_id", "round", "status", "started_at", "completed_at",
                           *[f"Q{n}: {q.text}" for n, q in enumerate(questions, start=1)]])
    responses = (SurveyResponse.objects.filter(survey=survey).order_by("pk")
                 .prefetch_related("answers").iterator(chunk_size=2000))
    for response in responses:
        given = defaultdict(list)
        for answer in response.answers.all():
            given[answer.question_id].append(answer)
        cells = []
        for question in questions:
            items = given.get(question.pk, [])
            if question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
                cells.append("; ".join(question.options[a.option] for a in items if a.option < len(question.options)))
            elif items and items[0].score is not None:
                cells.append(items[0].score)
            else:
                cells.append(items[0].text if items else "")
        yield writer.writerow([response.pk, response.member_id, response.round, response.status,
                               response.started_at.isoformat(),
                               response.completed_at.isoformat() if response.completed_at else "", *cells])


def member_export_section(member) -> dict:
    """What the feedback app holds about a member, for their data download."""
    from feedback.models import Referral, SurveyResponse

    return {
        "survey_responses": [{
            "survey": response.survey.name, "round": response.round, "status": response.status,
            "completed_at": response.completed_at.isoformat() if response.completed_at else None,
            "answers": [{"question": a.question.text, "score": a.score,
                         "option": a.question.options[a.option] if 0 <= a.option < len(a.question.options) else None,
                         "text": a.text} for a in response.answers.all()],
        } for response in SurveyResponse.objects.filter(member=member).select_related("survey")
            .prefetch_related("answers__question")],
        "referred_by": Referral.objects.filter(friend=member).values_list("referrer__referral_code", flat=True)
        .first(),
        "friends_referred": Referral.objects.filter(referrer=member).count(),
    }


# Referrals still open: not void, not rewarded.
_CLOSED = (ReferralStatus.VOID, ReferralStatus.REWARDED)
# Up to this many open referrals, each process keeps their friends in memory.
OPEN_FRIENDS_KEPT = 10_000


def _open_friends() -> frozenset[int] | None:
    ids = list(Referral.objects.exclude(status__in=_CLOSED).values_list("friend_id", flat=True)[:OPEN_FRIENDS_KEPT + 1])
    return None if len(ids) > OPEN_FRIENDS_KEPT else frozenset(ids)


# The friends in open referrals (None: too many to keep, ask the database). A new referral makes every
# process read them again (``open_referrals_changed``); one closed since is only a needless check.
_open_friend_ids = ProcessCopy("open-referral-friends", _open_friends)


def open_referrals_changed() -> None:
    """After a referral is linked or closed (``feedback.services``): every process reads again."""
    _open_friend_ids.changed()


def open_referral_friend_ids(member_ids) -> list[int]:
    """Which of these members are a friend in a referral still open (not void, not rewarded).

    Asked after every order, and nearly always answered "none": from the process's copy of the
    open referrals' friends, without a query (0.15-0.24 ms of a single order's 2.4 ms of Python,
    measured); a store with more than ``OPEN_FRIENDS_KEPT`` open asks the database. An order that
    raced a referral's link, in a process that had not yet seen the link, is caught by the nightly
    ``referrals_settle``."""
    ids = sorted(set(member_ids))
    if not ids:
        return []
    kept = _open_friend_ids.get()
    if kept is not None:
        return [member_id for member_id in ids if member_id in kept]
    matches, params = bulk.any_of("friend_id", ids)  # one array on PostgreSQL: a batch's 1,000 ids, one parameter
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT friend_id FROM "{Referral._meta.db_table}" WHERE {matches} AND status NOT IN (%s, %s)',
                       [*params, *_CLOSED])
        return [row[0] for row in cursor.fetchall()]
