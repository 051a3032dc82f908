from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OutboxEvent(models.Model):
    """A public domain event (``core.events.CATALOGUE``), written in the transaction of the change it
    describes. Never updated but for ``relayed_at``; kept ``OUTBOX_RETENTION_DAYS`` for replays."""

    event_id = models.CharField(max_length=40, help_text=_("evt_...; the same on every delivery."))
    type = models.CharField(max_length=40)
    member = models.ForeignKey("accounts.Member", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+", db_index=False)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The relay's queue: small, since relayed rows leave it.
            models.Index(fields=["id"], condition=Q(relayed_at__isnull=True), name="outbox_unrelayed"),
            models.Index(fields=["created_at"], name="outbox_created"),
            models.Index(fields=["member", "created_at"], name="outbox_member"),
        ]
        # A constraint, not unique=True: that would add a second (LIKE) index on the id, which no
        # query reads, and every event written would pay for.
        constraints = [models.UniqueConstraint(fields=["event_id"], name="outbox_event_id_unique")]

    def __str__(self):
        return f"{self.event_id} {self.type}"
