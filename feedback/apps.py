from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Surveys and referrals"

    def ready(self):
        from allauth.account.signals import email_confirmed

        from accounts import services as account_services
        from community.services import requests as review_requests
        from feedback import services
        from rewards.services import progress_hook

        progress_hook.ACTIVITY_HOOKS.append(services.after_activities)
        review_requests.REQUEST_FILTERS.append(services.quiet_detractors)
        account_services.REFERRAL_HOOKS.update(check=_check_code, link=_link)
        account_services.EXPORT_SECTIONS["feedback"] = _export
        account_services.ERASURE_HOOKS.append(_erase)
        # After accounts' own receiver (accounts comes first in INSTALLED_APPS): the member exists.
        email_confirmed.connect(_on_email_confirmed, dispatch_uid="feedback.email_confirmed")


def _check_code(*, code: str, field: str) -> None:
    from accounts.models import Member
    from core.errors import Invalid

    if not Member.objects.filter(referral_code__iexact=code.strip(), erased_at__isnull=True).exists():
        raise Invalid("Unknown referral code.", code="unknown_code", fields={field: "Unknown referral code."})


def _link(*, friend, code: str, source: str, device: str = "") -> dict:
    from core.errors import DomainError
    from feedback.services import referral_link

    try:
        referral = referral_link(friend=friend, code=code, source=source, device=device)
    except DomainError as exc:
        return {"status": "refused", "reason": exc.message}
    return {"status": referral.status, "reason": ""}


def _on_email_confirmed(request, email_address, **kwargs):
    from feedback.models import PendingReferral

    pending = PendingReferral.objects.filter(user=email_address.user).first()
    if pending is None:
        return
    member = getattr(email_address.user, "member", None)
    if member is not None:
        _link(friend=member, code=pending.code, source=pending.source, device=pending.device)
    pending.delete()


def _erase(member) -> None:
    """Erasure: the friends' addresses the member invited, and whatever the member wrote in surveys
    (scores stay, unlinked from any words, for the results)."""
    from feedback.models import FollowUp, Invitation, SurveyAnswer

    Invitation.objects.filter(member=member).delete()
    SurveyAnswer.objects.filter(response__member=member).exclude(text="").update(text="")
    FollowUp.objects.filter(member=member).update(comment="")


def _export(member) -> dict:
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
