from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.errors import Invalid
from messaging import catalogue, rendering, services
from messaging.models import Delivery, Message, MessageKindSettings, MessagingSettings, Suppression


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The message log: every message the program sent or holds, to whom, why, and what became of it."""

    list_display = ["created_at", "to", "template", "purpose", "channel", "status", "sent_at", "attempts"]
    list_filter = ["status", "purpose", "channel", "template"]
    search_fields = ["to", "key", "member__email"]
    date_hierarchy = "created_at"
    raw_id_fields = ["member"]
    list_select_related = ["member"]
    readonly_fields = ["member", "to", "purpose", "channel", "template", "context", "key", "priority", "status",
                       "send_after", "claimed_until", "attempts", "provider_id", "error", "created_at", "sent_at"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Addresses nothing is sent to. Staff may add one (a complaint by phone); removing one sends
    again to an address that bounced or complained, so do it only when its owner asks."""

    list_display = ["address", "reason", "detail", "created_at"]
    list_filter = ["reason"]
    search_fields = ["address"]
    fields = ["address", "reason", "detail"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return obj is None

    def save_model(self, request, obj, form, change):
        created = services.suppression_add(address=obj.address, reason=obj.reason or "staff", detail=obj.detail,
                                           actor_user=request.user)
        obj.pk = created.pk

    def delete_model(self, request, obj):
        services.suppression_remove(address=obj.address, actor_user=request.user)

    def delete_queryset(self, request, queryset):
        for row in queryset:
            services.suppression_remove(address=row.address, actor_user=request.user)


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(SingletonAdmin):
    fields = ["weekly_cap", "quiet_from", "quiet_until", "expiry_reminder_days", "expiry_reminder_min_points",
              "post_purchase_days"]

    def settings_row(self):
        return services.messaging_settings()

    def save_model(self, request, obj, form, change):
        services.messaging_settings_update(actor_user=request.user,
                                           changes={name: form.cleaned_data[name] for name in form.changed_data})
        messages.success(request, _("Saved."))


class MessageKindForm(forms.ModelForm):
    """A kind's words in every language (``title``/``body``: the program's, English;
    ``title_de``/``body_de``: German...), each empty for that language's default, and who sends it."""

    class Meta:
        model = MessageKindSettings
        fields = ["delivery", "title", "body"]
        widgets = {"title": forms.TextInput(attrs={"size": 80}), "body": forms.Textarea(attrs={"rows": 4, "cols": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = catalogue.KINDS[self.instance.kind]
        names = ", ".join("{" + name + "}" for name in sorted({**catalogue.COMMON, **kind.placeholders}))
        for code, _name in settings.LANGUAGES:
            if code == settings.LANGUAGE_CODE:
                continue
            words = (self.instance.translations or {}).get(code, {})
            language = get_language_info(code)["name_local"]
            self.fields[f"title_{code}"] = forms.CharField(
                required=False, max_length=200, initial=words.get("title", ""), label=_("Title in %(language)s") % {
                    "language": language}, widget=forms.TextInput(attrs={"size": 80, "lang": code}))
            self.fields[f"body_{code}"] = forms.CharField(
                required=False, max_length=2000, initial=words.get("body", ""), label=_("Body in %(language)s") % {
                    "language": language}, widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "lang": code}))
        for name in services.message_kind_words_fields():
            field, code = (name, settings.LANGUAGE_CODE) if "_" not in name else name.split("_", 1)
            with translation.override(code):
                default = str(getattr(kind, field))
            self.fields[name].widget.attrs["placeholder"] = default
            self.fields[name].help_text = format_html("{} <q>{}</q>. {} {}.", _("Empty: the default,"), default,
                                                      _("Placeholders:"), names)
        if not kind.lifecycle:
            self.fields["delivery"].choices = [(Delivery.SEND, Delivery.SEND.label)]
            self.fields["delivery"].help_text = _("Messages about a member's own doings are always sent.")

    def clean(self):
        data = super().clean()
        for name in services.message_kind_words_fields():
            text = (data.get(name) or "").strip()
            try:
                catalogue.check(catalogue.KINDS[self.instance.kind], text)
            except catalogue.PlaceholderError as exc:
                self.add_error(name, str(exc))
            else:
                data[name] = text
        return data


@admin.register(MessageKindSettings)
class MessageKindAdmin(admin.ModelAdmin):
    """Every kind of message: its words in each language (staff's or the defaults), who sends it,
    a preview with sample values and a test send to oneself."""

    form = MessageKindForm
    list_display = ["label", "delivery", "words", "updated_at"]
    list_filter = ["delivery"]
    readonly_fields = ["label", "event", "preview"]
    change_form_template = "admin/messaging/messagekindsettings/change_form.html"

    def get_fields(self, request, obj=None):
        return ["label", "event", "delivery", *services.message_kind_words_fields(), "preview"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The other languages' words are the form's own fields (its __init__), not the model's.
        kwargs["fields"] = ["delivery", "title", "body"]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=_("Message"))
    def label(self, obj):
        return str(obj)

    @admin.display(description=_("Words"))
    def words(self, obj):
        return _("Staff's") if obj.title or obj.body or obj.translations else _("Default")

    @admin.display(description=_("Also sent to webhooks as"))
    def event(self, obj):
        kind = catalogue.KINDS[obj.kind]
        if kind.event:
            return kind.event
        return _("campaign.message, when handed to the store") if kind.lifecycle else "-"

    @admin.display(description=_("Preview (saved words, sample values)"))
    def preview(self, obj):
        parts = []
        for code, _name in settings.LANGUAGES:
            shown = rendering.preview(obj.kind, code)
            parts.append(format_html("<p lang='{}'><em>{}</em><br><strong>{}</strong></p><pre lang='{}' "
                                     "style='white-space:pre-wrap'>{}</pre><p lang='{}'>SMS: {}</p>",
                                     code, get_language_info(code)["name_local"], shown.subject, code, shown.text,
                                     code, shown.sms))
        return format_html_join("", "{}", ((part,) for part in parts))

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind__in=list(catalogue.KINDS))

    def changelist_view(self, request, extra_context=None):
        services.message_kinds_ensure()
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.message_kind_update(actor_user=request.user, kind=obj.kind,
                                     changes={name: form.cleaned_data[name] for name in form.changed_data})
        obj.refresh_from_db()

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="messaging_messagekindsettings_preview"),
            path("<int:pk>/test/", view(self.test_view), name="messaging_messagekindsettings_test"),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        """The e-mail as a member would see it, with sample values."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        row = get_object_or_404(MessageKindSettings, pk=pk, kind__in=list(catalogue.KINDS))
        language = request.GET.get("language") or translation.get_language()
        return HttpResponse(rendering.preview(row.kind, language).html)

    def test_view(self, request, pk):
        """Send the message with sample values to the member of staff who asks."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        row = get_object_or_404(MessageKindSettings, pk=pk, kind__in=list(catalogue.KINDS))
        try:
            services.message_test_send(kind=row.kind, user=request.user)
            messages.success(request, _("A test of “%(kind)s” is on its way to %(email)s.") % {
                "kind": row, "email": request.user.email})
        except Invalid as exc:
            messages.error(request, format_html_join(" ", "{}", ((m,) for m in exc.fields.values())))
        return redirect(reverse("admin:messaging_messagekindsettings_change", args=[row.pk]))
