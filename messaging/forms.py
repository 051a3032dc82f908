from django import forms

from accounts.models import Channel, Purpose


class PreferencesForm(forms.Form):
    """The member's channel for each kind of message, as on their profile."""

    def __init__(self, *args, member, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(value, label) for value, label in Channel.choices if value != Channel.SMS or member.phone]
        for purpose, label in Purpose.choices:
            self.fields[purpose] = forms.ChoiceField(label=label, choices=choices, widget=forms.RadioSelect,
                                                     initial=member.channel_for(purpose))
