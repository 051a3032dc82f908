"""Reads of webhooks."""

from django.db import connection

from accounts.models import ExternalId, Partner
from core import bulk
from core.errors import NotFound
from rewards.models import Activity
from webhooks.models import WebhookEndpoint


def endpoint_for_partner(*, partner: Partner, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(partner=partner, pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", fields={"id": "No such webhook endpoint."})
    return endpoint


def partner_links(*, member_ids, partner_ids) -> dict[int, dict[int, str]]:
    """``{member id: {partner id: that partner's external id}}`` for these members and partners."""
    if not member_ids or not partner_ids:
        return {}
    members, member_params = bulk.any_of("member_id", sorted(member_ids))
    partners, partner_params = bulk.any_of("partner_id", sorted(partner_ids))
    links: dict[int, dict[int, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT member_id, partner_id, external_id FROM "{ExternalId._meta.db_table}" '
                       f"WHERE {members} AND {partners}", [*member_params, *partner_params])
        for member_id, partner_id, external_id in cursor.fetchall():
            links.setdefault(member_id, {})[partner_id] = external_id
    return links


def activity_partners(*, activity_ids) -> dict[int, int | None]:
    """The partner that reported each activity (None for the program's own)."""
    if not activity_ids:
        return {}
    matches, params = bulk.any_of("id", sorted(activity_ids))
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, partner_id FROM "{Activity._meta.db_table}" WHERE {matches}', params)
        return dict(cursor.fetchall())
