from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    """Every partner's endpoints and their health; partners change them through the API."""

    list_display = ["url", "partner", "active", "disabled_reason", "success_rate", "last_failure", "created_at"]
    list_filter = ["active", "partner"]
    search_fields = ["url", "partner__name"]
    fields = ["partner", "url", "events", "description", "active", "disabled_reason", "failing_since", "created_at"]
    readonly_fields = fields
    actions = ["enable", "replay_day"]

    def get_queryset(self, request):
        since = timezone.now() - timedelta(days=7)
        return super().get_queryset(request).select_related("partner").annotate(
            _tries=Count("attempts", filter=Q(attempts__at__gte=since)),
            _ok=Count("attempts", filter=Q(attempts__at__gte=since, attempts__status_code__gte=200,
                                           attempts__status_code__lt=300)),
            _last_failure=Max("attempts__at", filter=~Q(attempts__status_code__gte=200, attempts__status_code__lt=300)),
        )

    @admin.display(description=_("Delivered (7 days)"))
    def success_rate(self, obj):
        return f"{obj._ok / obj._tries:.0%} of {obj._tries}" if obj._tries else "-"

    @admin.display(description=_("Last failure"))
    def last_failure(self, obj):
        return obj._last_failure or "-"

    @admin.action(description=_("Enable again"))
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_update(endpoint=endpoint, changes={"active": True})
        self.message_user(request, _("Enabled; deliveries still due are sent again."), messages.SUCCESS)

    @admin.action(description=_("Send the last 24 hours of events again"))
    def replay_day(self, request, queryset):
        queued = sum(services.replay(endpoint=e, since=timezone.now() - timedelta(days=1)) for e in queryset)
        self.message_user(request, ngettext("%(count)s delivery queued.", "%(count)s deliveries queued.", queued) % {
            "count": queued}, messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "type", "event_id", "endpoint", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint__partner"]
    actions = ["retry_now"]

    @admin.action(description=_("Send again now (same event id)"))
    def retry_now(self, request, queryset):
        queued = services.deliveries_retry(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("%(count)s delivery queued.", "%(count)s deliveries queued.", queued) % {
            "count": queued}, messages.SUCCESS)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "delivery", "endpoint", "status_code", "duration_ms", "error", "next_retry_at"]
    list_filter = ["status_code"]
    list_select_related = ["delivery", "endpoint"]
