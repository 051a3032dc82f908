from django import forms

from accounts.models import Channel, Member, Purpose
from accounts.services import check_birthday, normalize_phone
from core.errors import DomainError


class ProfileForm(forms.ModelForm):
    birthday = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    phone = forms.CharField(
        required=False, max_length=24, help_text="With the country code, for example +441234567890.",
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    class Meta:
        model = Member
        fields = ["first_name", "last_name", "birthday", "phone", "offers_channel", "reminders_channel",
                  "surveys_channel", "statements_channel"]
        labels = {
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
                    self.add_error(f"{purpose}_channel", "Add a phone number above to get SMS.")
        return cleaned

    def consents(self) -> dict[str, str]:
        return {purpose: self.cleaned_data[f"{purpose}_channel"] for purpose in Purpose.values}


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Type your password to confirm.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
