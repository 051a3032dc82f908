"""Reads of the shared kernel: the outbox as the relay takes it."""

from __future__ import annotations

from django.db import connection

from core import bulk
from core.models import OutboxEvent


def outbox_unrelayed(*, limit: int, lock: bool = False) -> list[int]:
    """The ids of the oldest events not relayed yet. With ``lock`` (inside a transaction), locked
    and skipped by any other relay running at once. Consumers read what they need of the events
    themselves, set-based (``webhooks.services.deliveries_create``)."""
    skip = bulk.skip_locked() if lock else ""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id FROM "{OutboxEvent._meta.db_table}" WHERE relayed_at IS NULL ORDER BY id '
                       f"LIMIT %s{skip}", [limit])
        return [pk for (pk,) in cursor.fetchall()]
