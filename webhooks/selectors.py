"""Reads of webhooks."""

from django.db import connection

from accounts.models import Partner
from core import bulk
from core.errors import NotFound
from rewards.models import Activity
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def endpoint_for_partner(*, partner: Partner, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(partner=partner, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", fields={"id": "No such webhook endpoint."})
    return endpoint


def activity_partners(*, activity_ids) -> dict[int, int | None]:
    """The partner that reported each activity (None for the program's own)."""
    if not activity_ids:
        return {}
    matches, params = bulk.any_of("id", sorted(activity_ids))
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, partner_id FROM "{Activity._meta.db_table}" WHERE {matches}', params)
        return dict(cursor.fetchall())


def outbox_events_needed():
    """Outbox events a pending delivery has not made its body from yet: the purge keeps them."""
    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, payload__isnull=True,
                                          outbox_event__isnull=False).values("outbox_event_id")
