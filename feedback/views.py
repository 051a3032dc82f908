from django.contrib import messages
from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import member_required
from accounts.models import Member
from community.selectors import bought_not_reviewed
from core.errors import DomainError, Invalid
from feedback import services
from feedback.forms import InvitationForm
from feedback.models import QuestionKind, Referral, ResponseStatus, RewardKind, Survey, SurveyResponse
from feedback.selectors import is_for, surveys_for
from rewards.models import EntryKind, LedgerEntry
from rewards.program import current_program


@member_required
def surveys(request):
    return render(request, "feedback/surveys.html", {"found": surveys_for(member=request.member)})


def _answers_from(post, questions) -> dict:
    answers = {}
    for question in questions:
        key = f"q{question.pk}"
        if question.kind == QuestionKind.MULTIPLE:
            answers[key] = post.getlist(key)
        else:
            answers[key] = post.get(key, "")
    return answers


def _posted_round(post, *, default: int) -> int:
    """The round the form was shown for; a value that is not a number is refused like an old round."""
    raw = post.get("round", "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Invalid(_("This survey form is out of date; please answer again."),
                      fields={"round": _("Not a round of this survey.")}) from None


@member_required
@require_http_methods(["GET", "POST"])
def survey(request, survey_id: int):
    survey = get_object_or_404(Survey, pk=survey_id, is_active=True)
    now = timezone.now()
    round_ = survey.round_at(now)
    questions = list(survey.questions.all())
    response = SurveyResponse.objects.filter(survey=survey, member=request.member, round=round_).first()
    if response is not None and response.status == ResponseStatus.COMPLETED:
        return render(request, "feedback/done.html", {"survey": survey, "already": True})
    if not is_for(survey=survey, member=request.member, now=now):
        return render(request, "feedback/not_for_you.html", {"survey": survey}, status=403)
    errors, values = {}, {}
    if response is not None:
        for answer in response.answers.all():
            key = f"q{answer.question_id}"
            if answer.option >= 0:
                values.setdefault(key, []).append(str(answer.option))
            else:
                values[key] = str(answer.score) if answer.score is not None else answer.text
    if request.method == "POST":
        answers = _answers_from(request.POST, questions)
        finish = "finish" in request.POST
        try:
            saved = services.response_save(member=request.member, survey_id=survey.pk,
                                           round=_posted_round(request.POST, default=round_), answers=answers,
                                           finish=finish, now=now)
        except DomainError as exc:
            errors = {key: problems[0] for key, problems in exc.fields.items()}
            if not errors or set(errors) & {"survey", "round"}:
                messages.error(request, exc.message)
            values = {key: (value if isinstance(value, list) else str(value)) for key, value in answers.items()}
        else:
            if not finish:
                messages.success(request, _("Your answers are saved; come back any time to finish."))
                return redirect("feedback:surveys")
            request.session["survey_outcome"] = {"promoter": saved.promoter, "detractor": saved.detractor}
            return redirect("feedback:survey-done", survey_id=survey.pk)
    elif not survey.is_open(now):
        raise Http404("This survey is closed.")
    def by_question(found: dict) -> dict:
        return {int(key[1:]): value for key, value in found.items() if key[:1] == "q" and key[1:].isdigit()}

    return render(request, "feedback/survey.html", {
        "survey": survey, "questions": questions, "round": round_, "errors": by_question(errors),
        "values": by_question(values),
        "scales": {q.pk: list(range(q.score_range()[0], q.score_range()[1] + 1)) for q in questions
                   if q.score_range()},
    })


@member_required
def survey_done(request, survey_id: int):
    survey = get_object_or_404(Survey, pk=survey_id)
    outcome = request.session.pop("survey_outcome", {})
    context = {"survey": survey, "promoter": outcome.get("promoter"), "detractor": outcome.get("detractor")}
    if outcome.get("promoter"):
        context["to_review"] = bought_not_reviewed(member=request.member, limit=5)
    return render(request, "feedback/done.html", context)


# --- Referrals ------------------------------------------------------------------------------------

def referral_landing(request, code: str):
    referrer = Member.objects.filter(referral_code__iexact=code, erased_at__isnull=True).first()
    if referrer is None:
        raise Http404("Unknown referral link.")
    config = services.referral_settings()
    response = render(request, "feedback/landing.html", {"referrer": referrer, "config": config,
                                                         "currency": current_program().settings.currency})
    response.set_cookie("ref", referrer.referral_code, max_age=config.attribution_days * 86400, samesite="Lax",
                        httponly=True, secure=request.is_secure())
    return response


@member_required
@require_http_methods(["GET", "POST"])
def refer(request):
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_send(member=request.member, email=form.cleaned_data["email"])
        except DomainError as exc:
            for field, problems in exc.fields.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]})
            return redirect("feedback:refer")
    referrals = list(Referral.objects.filter(referrer=request.member).select_related("friend")
                     .order_by("-created_at")[:100])
    earned = dict(LedgerEntry.objects.filter(
        kind=EntryKind.EARN, activity__source_key__in=[f"referral:{r.pk}:referrer" for r in referrals])
        .values_list("activity__source_key").annotate(points=F("available_delta") + F("pending_delta")
                                                      - F("owed_delta")).values_list("activity__source_key",
                                                                                     "points"))
    link = request.build_absolute_uri(reverse("feedback:referral-landing", args=[request.member.referral_code]))
    config = services.referral_settings()
    return render(request, "feedback/refer.html", {
        "form": form, "link": link, "config": config, "points_kind": RewardKind.POINTS,
        "currency": current_program().settings.currency,
        # A void referral's points were reversed: it earned nothing.
        "rows": [(r, r.friend.first_name or "A friend", 0 if r.status == "void" else
                  earned.get(f"referral:{r.pk}:referrer", 0)) for r in referrals],
    })
