"""Surveys: who is asked, saving answers (partial or final), points, closing the loop, invitations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Channel, Member
from core import events, l10n
from core.errors import Conflict, Invalid, NotFound
from feedback.models import (
    CHOICE,
    SCORED,
    FollowUp,
    QuestionKind,
    ResponseStatus,
    Survey,
    SurveyAnswer,
    SurveyInvite,
    SurveyQuestion,
    SurveyResponse,
)
from feedback.selectors import DETRACTOR, PROMOTER, audience, is_for
from messaging.models import Purpose
from messaging.services import Outgoing, messages_queue
from rewards.models import ActivityType
from rewards.services import ActivityInput, activities_record

# After an NPS of 0 to 6 a member gets no review request for this long.
DETRACTOR_QUIET_DAYS = 30


# --- Answering ------------------------------------------------------------------------------------

def _field(question: SurveyQuestion) -> str:
    return f"q{question.pk}"


def _parse(question: SurveyQuestion, raw) -> list[tuple[int, int | None, str]]:
    """(option, score, text) rows for one answer; [] when left empty. Raises Invalid on bad input."""
    field = _field(question)
    if raw in (None, "", []):
        return []
    if question.kind in SCORED:
        low, high = question.score_range()
        try:
            score = int(raw)
        except (TypeError, ValueError):
            score = None
        if score is None or not low <= score <= high or str(raw).strip() not in (str(score), f"{score}.0"):
            raise Invalid(_("%(question)s: choose %(low)s to %(high)s.") % {"question": question.text, "low": low,
                                                                              "high": high},
                          fields={field: _("Choose %(low)s to %(high)s.") % {"low": low, "high": high}})
        return [(-1, score, "")]
    if question.kind in CHOICE:
        values = raw if isinstance(raw, list) else [raw]
        if question.kind == QuestionKind.SINGLE and len(values) > 1:
            raise Invalid(_("%(question)s: choose one.") % {"question": question.text},
                          fields={field: _("Choose one option.")})
        options = []
        for value in values:
            try:
                index = int(value)
            except (TypeError, ValueError):
                index = -1
            if not 0 <= index < len(question.options):
                raise Invalid(_("%(question)s: unknown option %(option)s.") % {"question": question.text,
                                                                                 "option": repr(value)},
                              fields={field: _("Unknown option.")})
            options.append(index)
        return [(index, None, "") for index in sorted(set(options))]
    text = str(raw).strip()
    if len(text) > 2000:
        raise Invalid(_("%(question)s: at most %(count)s characters.") % {"question": question.text,
                                                                           "count": l10n.number(2000)},
                      fields={field: _("At most %(count)s characters.") % {"count": l10n.number(2000)}})
    return [(-1, None, text)] if text else []


@dataclass
class Saved:
    response: SurveyResponse
    completed: bool
    promoter: bool = False
    detractor: bool = False


def response_save(*, member: Member, survey_id: int, round: int, answers: dict, finish: bool,
                  now: datetime | None = None) -> Saved:
    """Save a member's answers to the current round of a survey; with ``finish``, complete it.

    Everything is checked before anything is written: the survey is open and for this member, the
    round is the current one, every answer is in range and names a known question; when
    finishing, every required question that is shown is answered. A follow-up whose condition is
    not met is not stored. Finishing records ``survey_completed`` (points through the rules, once
    per round), and a detractor goes to the staff follow-up list.
    """
    now = now or timezone.now()
    survey = Survey.objects.filter(pk=survey_id).first()
    if survey is None:
        raise NotFound(_("No such survey."), fields={"survey": _("No such survey.")})
    if not survey.is_open(now):
        raise Conflict(_("This survey is closed."), code="survey_closed",
                       fields={"survey": _("This survey is closed.")})
    if round != survey.round_at(now):
        raise Conflict(_("This round of the survey is over; please start the current one."), code="wrong_round",
                       fields={"round": _("Not the current round.")})
    if not is_for(survey=survey, member=member, now=now):
        raise Conflict(_("This survey is not for you."), code="not_in_audience", fields={"survey": _("Not for you.")})
    questions = {q.pk: q for q in survey.questions.all()}
    known = {_field(q): q for q in questions.values()}
    unknown = [key for key in answers if key not in known]
    if unknown:
        raise Invalid(_("Unknown questions."), fields={key: _("No such question in this survey.") for key in unknown})

    with transaction.atomic():
        response, _created = SurveyResponse.objects.select_for_update().get_or_create(
            survey=survey, member=member, round=round, defaults={"started_at": now})
        if response.status == ResponseStatus.COMPLETED:
            raise Conflict(_("You already answered this survey."), code="already_answered",
                           fields={"survey": _("Already answered.")})
        stored = {}
        for answer in response.answers.all():
            stored.setdefault(answer.question_id, []).append((answer.option, answer.score, answer.text))
        problems: dict[str, str] = {}
        parsed = dict(stored)
        for key, raw in answers.items():
            try:
                parsed[known[key].pk] = _parse(known[key], raw)
            except Invalid as exc:
                problems.update({k: v[0] for k, v in exc.fields.items()})
        if problems:
            raise Invalid(_("Please check your answers."), fields=problems)
        rows, shown = {}, set()
        for question in questions.values():  # in order: a follow-up comes after its question
            parent = question.show_if_question_id
            parent_score = parsed.get(parent, [(-1, None, "")])[0][1] if parent and parsed.get(parent) else None
            if question.shown_for(parent_score):
                shown.add(question.pk)
                if parsed.get(question.pk):
                    rows[question.pk] = parsed[question.pk]
        if finish:
            missing = {_field(questions[pk]): "Please answer this question." for pk in shown
                       if questions[pk].required and pk not in rows}
            if missing:
                raise Invalid(_("Some questions still need an answer."), fields=missing)
        response.answers.all().delete()
        SurveyAnswer.objects.bulk_create([
            SurveyAnswer(response=response, question_id=pk, option=option, score=score, text=text)
            for pk, items in rows.items() for option, score, text in items])
        nps_question = next((q for q in questions.values() if q.kind == QuestionKind.NPS and q.pk in rows), None)
        response.nps = rows[nps_question.pk][0][1] if nps_question else None
        if not finish:
            response.save(update_fields=["nps"])
            return Saved(response, completed=False)
        response.status, response.completed_at = ResponseStatus.COMPLETED, now
        response.save(update_fields=["status", "completed_at", "nps"])
        events.emit("survey.completed", member_id=member.pk, data={"survey_id": survey.pk, "nps": response.nps})
        activities_record(items=[ActivityInput(
            member_id=member.pk, type=ActivityType.SURVEY_COMPLETED, occurred_at=now,
            source_key=f"survey:{survey.pk}:{round}:{member.pk}", description=f"Answered: {survey.name}",
            properties={"survey_id": survey.pk, "round": round})])
        detractor = response.nps is not None and response.nps <= DETRACTOR
        if detractor:
            comment = "\n".join(text for pk, items in rows.items() for _, _, text in items if text)
            FollowUp.objects.create(response=response, member=member, score=response.nps, comment=comment,
                                    created_at=now)
    return Saved(response, completed=True, promoter=response.nps is not None and response.nps >= PROMOTER,
                 detractor=detractor)


def follow_up_handle(*, follow_up_id: int, staff_user, note: str = "") -> FollowUp:
    with transaction.atomic():
        follow_up = FollowUp.objects.select_for_update().get(pk=follow_up_id)
        if follow_up.handled_at is None:
            follow_up.handled_at, follow_up.handled_by, follow_up.note = timezone.now(), staff_user, note
            follow_up.save(update_fields=["handled_at", "handled_by", "note"])
    return follow_up


def quiet_detractors(orders: QuerySet, now: datetime) -> QuerySet:
    """No review request for a member whose NPS was 0 to 6 in the last 30 days."""
    unhappy = SurveyResponse.objects.filter(member_id=OuterRef("member_id"), nps__lte=DETRACTOR,
                                            status=ResponseStatus.COMPLETED,
                                            completed_at__gte=now - timedelta(days=DETRACTOR_QUIET_DAYS))
    return orders.exclude(Exists(unhappy))


# --- Invitations ----------------------------------------------------------------------------------

def survey_invitations_send(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Email the open surveys' audiences, once per member per round, when their preference for
    surveys is email. Others still find the survey in the portal. Safe to run twice: the unique
    invite row decides, and the email leaves only if it commits."""
    now = now or timezone.now()
    sent = 0
    for survey in Survey.objects.filter(is_active=True, opens_at__lte=now).filter(
            Q(closes_at__isnull=True) | Q(closes_at__gt=now)).filter(
            Exists(SurveyQuestion.objects.filter(survey=OuterRef("pk")))):
        round_ = survey.round_at(now)
        invited = SurveyInvite.objects.filter(survey=survey, round=round_, member_id=OuterRef("pk"))
        answered = SurveyResponse.objects.filter(survey=survey, round=round_, member_id=OuterRef("pk"),
                                                 status=ResponseStatus.COMPLETED)
        ids = list(audience(survey=survey, now=now).exclude(surveys_channel=Channel.NONE)
                   .exclude(Exists(invited)).exclude(Exists(answered)).order_by("pk").values_list("pk", flat=True))
        context = {"survey": survey.name, "intro": survey.intro,
                   "url": reverse("feedback:survey", args=[survey.pk])}
        for start in range(0, len(ids), batch_size):
            part = ids[start:start + batch_size]
            with transaction.atomic():
                SurveyInvite.objects.bulk_create([SurveyInvite(survey=survey, member_id=pk, round=round_, sent_at=now)
                                                  for pk in part], ignore_conflicts=True)
                mine = list(SurveyInvite.objects.filter(survey=survey, round=round_, member_id__in=part, sent_at=now)
                            .values_list("pk", "member_id"))
                sent += messages_queue(now=now, items=[
                    Outgoing(template="survey_invitation", purpose=Purpose.SURVEYS, member_id=member_id,
                             key=f"survey_invitation:{pk}", context=context) for pk, member_id in mine])
    return sent
