"""Partners' webhook endpoints, and each delivery of an outbox event to one of them."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Partner


class WebhookEndpoint(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=500)
    events = models.JSONField(default=list, help_text=_('Event types, or ["*"] for all.'))
    description = models.CharField(max_length=200, blank=True)
    # Encrypted with SECRETS_ENCRYPTION_KEY (core.secrets): a database dump alone cannot sign.
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.partner}: {self.url}"

    def wants(self, event_type: str) -> bool:
        return event_type == "ping" or "*" in self.events or event_type in self.events


class WebhookSubscription(models.Model):
    """One event type an endpoint wants (``*``: every type), kept by the services beside
    ``WebhookEndpoint.events`` so that the relay pairs events with endpoints in one SQL join."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="subscriptions")
    type = models.CharField(max_length=40)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "type"], name="webhook_subscription_once")]

    def __str__(self):
        return f"{self.endpoint_id}: {self.type}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Gave up")


class WebhookDelivery(models.Model):
    """One event for one endpoint: sent until a 2xx, with the same ``webhook-id`` every time."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40)
    type = models.CharField(max_length=40)
    # The event it carries; the body is made from it at the first try (the relay only pairs events
    # with endpoints, so a burst of events costs the ingest next to nothing). Pings have no event.
    outbox_event = models.ForeignKey("core.OutboxEvent", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    external_id = models.CharField(max_length=100, blank=True,
                                   help_text=_("The member, as this partner knows them."))
    payload = models.JSONField(null=True, blank=True,
                               help_text=_("The body as sent, with this partner's external_id."))
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker sends it: no other worker takes it, and it counts against the endpoint's
    # concurrency; a worker that dies leaves it to expire (WEBHOOK_LEASE_SECONDS).
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_due"),
                   models.Index(fields=["endpoint", "claimed_until"], condition=Q(claimed_until__isnull=False),
                                name="webhook_in_flight")]

    def __str__(self):
        return f"{self.type} {self.event_id} -> {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """Each try of a delivery, for the partner's delivery log and staff."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-at"], name="webhook_attempts")]

    def __str__(self):
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"
