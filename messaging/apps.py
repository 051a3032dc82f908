from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messages")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # What e-mail providers report back (bounces, complaints), through django-anymail's
        # tracking webhooks (/messages/providers/<provider>/tracking/).
        from anymail.signals import tracking

        from messaging.receivers import provider_reported

        tracking.connect(provider_reported, dispatch_uid="messaging.provider_reported")
