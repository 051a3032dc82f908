from django import forms
from django.conf import settings
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from accounts.models import Channel, Member, Purpose
from accounts.services import check_birthday, normalize_phone
from core.errors import DomainError


def language_choices() -> list[tuple[str, str]]:
    """Each language in its own words ("Deutsch"), as a reader of it looks for it."""
    return [(code, get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES]


class ProfileForm(forms.ModelForm):
    # A date input sends and shows ISO dates whatever the page's language.
    birthday = forms.DateField(label=_("Birthday"), required=False,
                               widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    phone = forms.CharField(
        label=_("Phone"), required=False, max_length=24,
        help_text=_("With the country code, for example +441234567890."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    language = forms.ChoiceField(label=_("Language"), choices=language_choices, required=False,
                                 help_text=_("For these pages and every message we send you."))

    class Meta:
        model = Member
        fields = ["first_name", "last_name", "birthday", "phone", "language", "offers_channel", "reminders_channel",
                  "surveys_channel", "statements_channel"]
        labels = {
            "first_name": _("First name"),
            "last_name": _("Last name"),
            "offers_channel": Purpose.OFFERS.label,
            "reminders_channel": Purpose.REMINDERS.label,
            "surveys_channel": Purpose.SURVEYS.label,
            "statements_channel": Purpose.STATEMENTS.label,
        }
        widgets = {
            "first_name": forms.TextInput(attrs={"autocomplete": "given-name"}),
            "last_name": forms.TextInput(attrs={"autocomplete": "family-name"}),
            "offers_channel": forms.RadioSelect,
            "reminders_channel": forms.RadioSelect,
            "surveys_channel": forms.RadioSelect,
            "statements_channel": forms.RadioSelect,
        }

    def __init__(self, *args, language: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        # A member who never chose reads the page's language: that is what saving keeps.
        self.initial["language"] = self.instance.language or language

    def clean_birthday(self):
        try:
            return check_birthday(self.cleaned_data["birthday"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_phone(self):
        try:
            return normalize_phone(self.cleaned_data["phone"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("phone") and "phone" not in self.errors:
            for purpose in Purpose.values:
                if cleaned.get(f"{purpose}_channel") == Channel.SMS:
                    self.add_error(f"{purpose}_channel", _("Add a phone number above to get SMS."))
        return cleaned

    def consents(self) -> dict[str, str]:
        return {purpose: self.cleaned_data[f"{purpose}_channel"] for purpose in Purpose.values}


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Type your password to confirm."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("That is not your password."))
        return password
