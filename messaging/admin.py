from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin, SingletonAdmin
from messaging import services
from messaging.models import Message, MessagingSettings, Suppression


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
              "reward_unlocked_messages", "birthday_messages"]

    def settings_row(self):
        return services.messaging_settings()

    def save_model(self, request, obj, form, change):
        services.messaging_settings_update(actor_user=request.user,
                                           changes={name: form.cleaned_data[name] for name in form.changed_data})
        messages.success(request, "Saved.")
