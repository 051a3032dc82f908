from contextlib import suppress

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Members and partners")

    def ready(self):
        from allauth.account.signals import email_changed, email_confirmed
        from django.contrib.auth.signals import user_logged_in
        from django.utils import translation

        from accounts import (
            schema,  # noqa: F401  (registers the API key scheme)
            services,
        )
        from accounts.models import Member
        from core.errors import Conflict
        from core.middleware import SESSION_LANGUAGE

        def on_email_confirmed(request, email_address, **kwargs):
            # The member reads the language they signed up in, until they choose another.
            services.member_attach_user(user=email_address.user, email=email_address.email,
                                        language=translation.get_language() or "")

        def on_logged_in(request, user, **kwargs):
            # The portal in the member's own language on any device (the switcher's cookie still wins).
            language = Member.objects.filter(user=user).values_list("language", flat=True).first()
            if language and request is not None and hasattr(request, "session"):
                request.session[SESSION_LANGUAGE] = language

        def on_email_changed(request, user, from_email_address, to_email_address, **kwargs):
            member = getattr(user, "member", None)
            if member is not None:
                # If another member holds that address, the contact email stays as it was.
                with suppress(Conflict):
                    services.member_change_email(member=member, email=to_email_address.email)


        email_confirmed.connect(on_email_confirmed, dispatch_uid="accounts.email_confirmed")
        email_changed.connect(on_email_changed, dispatch_uid="accounts.email_changed")
        user_logged_in.connect(on_logged_in, dispatch_uid="accounts.language_on_login")
