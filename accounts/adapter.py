"""allauth's mails (verification, password reset) under the program's current name."""

from allauth.account.adapter import DefaultAccountAdapter
from django.utils.encoding import force_str


class AccountAdapter(DefaultAccountAdapter):
    def format_email_subject(self, subject) -> str:
        from rewards.program import current_program

        return f"[{current_program().brand.name}] {force_str(subject)}"
