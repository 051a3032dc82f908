from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = _("Surveys and referrals")

    def ready(self):
        from allauth.account.signals import email_confirmed

        # After accounts' own receiver (accounts comes first in INSTALLED_APPS): the member exists.
        email_confirmed.connect(_on_email_confirmed, dispatch_uid="feedback.email_confirmed")


def _on_email_confirmed(request, email_address, **kwargs):
    from feedback.services import pending_referral_link

    pending_referral_link(user=email_address.user)
