from contextlib import suppress

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Members and partners"

    def ready(self):
        from allauth.account.signals import email_changed, email_confirmed

        from accounts import (
            schema,  # noqa: F401  (registers the API key scheme)
            services,
        )
        from core.errors import Conflict

        def on_email_confirmed(request, email_address, **kwargs):
            services.member_attach_user(user=email_address.user, email=email_address.email)

        def on_email_changed(request, user, from_email_address, to_email_address, **kwargs):
            member = getattr(user, "member", None)
            if member is not None:
                # If another member holds that address, the contact email stays as it was.
                with suppress(Conflict):
                    services.member_change_email(member=member, email=to_email_address.email)


        email_confirmed.connect(on_email_confirmed, dispatch_uid="accounts.email_confirmed")
        email_changed.connect(on_email_changed, dispatch_uid="accounts.email_changed")
