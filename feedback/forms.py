from django import forms
from django.utils.translation import gettext_lazy as _

from core.http import client_address
from feedback.services import device_of


class ReferralSignupForm(forms.Form):
    """Extra field on allauth's sign-up form (``ACCOUNT_SIGNUP_FORM_CLASS``)."""

    referral_code = forms.CharField(
        required=False, max_length=20, label=_("Referral code (optional)"),
        help_text=_("From a friend. Came through their link? We remember it for you."))

    def clean_referral_code(self):
        from accounts.models import Member

        code = self.cleaned_data["referral_code"].strip().upper()
        if code and not Member.objects.filter(referral_code__iexact=code, erased_at__isnull=True).exists():
            raise forms.ValidationError(_("We do not know this code; check it, or leave it empty."))
        return code

    def signup(self, request, user):
        from feedback.models import PendingReferral

        code = self.cleaned_data.get("referral_code") or request.COOKIES.get("ref", "")
        if code:
            PendingReferral.objects.update_or_create(user=user, defaults={
                "code": code.upper(), "source": "code" if self.cleaned_data.get("referral_code") else "link",
                "device": device_of(ip=client_address(request),
                                    user_agent=request.META.get("HTTP_USER_AGENT", ""))})


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Your friend's email"))
