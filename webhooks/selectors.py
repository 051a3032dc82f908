"""Reads of webhooks."""

from accounts.models import Partner
from core.errors import NotFound
from webhooks.models import WebhookEndpoint


def endpoint_for_partner(*, partner: Partner, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(partner=partner, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", fields={"id": "No such webhook endpoint."})
    return endpoint
