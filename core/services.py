"""Writes of the shared kernel."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from core import bulk
from core.models import OutboxEvent


def outbox_mark_relayed(*, ids: list[int]) -> None:
    """Mark events handed on to every consumer (inside the relay's transaction)."""
    if not ids:
        return
    matches, params = bulk.any_of("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{OutboxEvent._meta.db_table}" SET relayed_at = %s WHERE {matches}',
                       [timezone.now(), *params])
