from django import forms


class PublicProfileForm(forms.Form):
    is_public = forms.BooleanField(
        required=False, label="Show my profile in the community",
        help_text="Your display name, picture, tier, badges and the date you joined. Nothing else.",
    )
    display_name = forms.CharField(required=False, max_length=40, help_text="How others see you, e.g. Ada L.")
    avatar = forms.ImageField(required=False, label="Picture", help_text="JPEG, PNG or WebP, at most 5 MB.")
    remove_avatar = forms.BooleanField(required=False, label="Remove my picture")
