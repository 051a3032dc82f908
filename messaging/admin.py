from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

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
        messages.success(request, "Saved.")


class MessageKindForm(forms.ModelForm):
    class Meta:
        model = MessageKindSettings
        fields = ["delivery", "title", "body"]
        widgets = {"title": forms.TextInput(attrs={"size": 80}), "body": forms.Textarea(attrs={"rows": 4, "cols": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kind = catalogue.KINDS[self.instance.kind]
        names = ", ".join("{" + name + "}" for name in sorted({**catalogue.COMMON, **kind.placeholders}))
        for name in ("title", "body"):
            default = getattr(kind, name)
            self.fields[name].widget.attrs["placeholder"] = default
            self.fields[name].help_text = format_html("Empty: the default, <q>{}</q>. Placeholders: {}.",
                                                      default, names)
        if not kind.lifecycle:
            self.fields["delivery"].choices = [(Delivery.SEND, Delivery.SEND.label)]
            self.fields["delivery"].help_text = "Messages about a member's own doings are always sent."

    def _clean_words(self, name):
        text = (self.cleaned_data.get(name) or "").strip()
        try:
            catalogue.check(catalogue.KINDS[self.instance.kind], text)
        except catalogue.PlaceholderError as exc:
            raise ValidationError(str(exc)) from None
        return text

    def clean_title(self):
        return self._clean_words("title")

    def clean_body(self):
        return self._clean_words("body")


@admin.register(MessageKindSettings)
class MessageKindAdmin(admin.ModelAdmin):
    """Every kind of message: its words (staff's or the defaults), who sends it, a preview with
    sample values and a test send to oneself."""

    form = MessageKindForm
    list_display = ["label", "delivery", "words", "updated_at"]
    list_filter = ["delivery"]
    readonly_fields = ["label", "event", "preview"]
    fields = ["label", "event", "delivery", "title", "body", "preview"]
    change_form_template = "admin/messaging/messagekindsettings/change_form.html"

    @admin.display(description="Message")
    def label(self, obj):
        return str(obj)

    @admin.display(description="Words")
    def words(self, obj):
        return "Staff's" if obj.title or obj.body else "Default"

    @admin.display(description="Also sent to webhooks as")
    def event(self, obj):
        kind = catalogue.KINDS[obj.kind]
        if kind.event:
            return kind.event
        return "campaign.message, when handed to the store" if kind.lifecycle else "-"

    @admin.display(description="Preview (saved words, sample values)")
    def preview(self, obj):
        shown = rendering.preview(obj.kind)
        return format_html("<strong>{}</strong><pre style='white-space:pre-wrap'>{}</pre>"
                           "<p>SMS: {}</p>", shown.subject, shown.text, shown.sms)

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
        return HttpResponse(rendering.preview(row.kind).html)

    def test_view(self, request, pk):
        """Send the message with sample values to the member of staff who asks."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        row = get_object_or_404(MessageKindSettings, pk=pk, kind__in=list(catalogue.KINDS))
        try:
            services.message_test_send(kind=row.kind, user=request.user)
            messages.success(request, f"A test of \u201c{row}\u201d is on its way to {request.user.email}.")
        except Invalid as exc:
            messages.error(request, format_html_join(" ", "{}", ((m,) for m in exc.fields.values())))
        return redirect(reverse("admin:messaging_messagekindsettings_change", args=[row.pk]))
