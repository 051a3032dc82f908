from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy


class PublicProfileForm(forms.Form):
    is_public = forms.BooleanField(
        required=False, label=_("Show my profile in the community"),
        help_text=_("Your display name, picture, tier, badges and the date you joined. Nothing else."),
    )
    display_name = forms.CharField(required=False, max_length=40, help_text=_("How others see you, e.g. Ada L."))
    avatar = forms.ImageField(required=False, label=_("Picture"), help_text=_("JPEG, PNG or WebP, at most 5 MB."))
    remove_avatar = forms.BooleanField(required=False, label=_("Remove my picture"))


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by the service (``core.images``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if not data:
            return []
        return list(data) if isinstance(data, list | tuple) else [data]


_STARS = ngettext_lazy("%(count)s star", "%(count)s stars", "count")


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(choices=[(n, _STARS % {"count": n}) for n in range(5, 0, -1)],
                                    coerce=int, widget=forms.RadioSelect, label=_("Your rating"))
    title = forms.CharField(max_length=120, min_length=3, help_text=_("Sum it up in a few words."))
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), min_length=10, max_length=5000,
                           label=_("Your review"),
                           help_text=_("What did you like, what not? Who would you recommend it to?"))
    photos = MultipleFileField(required=False, help_text=_("Up to 5 photos: JPEG, PNG or WebP, at most 10 MB each. "
                               "We remove the location and camera details before anyone sees them."))
    remove_photos = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                              label=_("Remove these photos"))

    def __init__(self, *args, photos=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["remove_photos"].choices = [(str(p.pk), f"Photo {n}") for n, p in enumerate(photos, start=1)]
        if not photos:
            del self.fields["remove_photos"]


class QuestionForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), min_length=10, max_length=1000,
                           label=_("Your question"),
                           help_text=_("Other shoppers who bought it, and our staff, answer."))


class AnswerForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), min_length=2, max_length=2000,
                           label=_("Your answer"))


class ReportForm(forms.Form):
    reason = forms.CharField(max_length=500, min_length=3, label=_("What is wrong with this review?"))
