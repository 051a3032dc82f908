"""Reads of messaging: who can be reached how, and which addresses get nothing."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from accounts.models import Member
from core import bulk
from messaging.models import Suppression


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    phone: str
    channels: dict[str, str]  # the member's field (reminders_channel...) -> their choice


_CHANNEL_FIELDS = ("offers_channel", "reminders_channel", "surveys_channel")


def recipients(member_ids) -> dict[int, Recipient]:
    """Members not erased, with their address, phone and choices: one query however many (an
    array parameter on PostgreSQL, not one placeholder per member)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    matches, params = bulk.any_of("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, email, phone, {', '.join(_CHANNEL_FIELDS)} FROM {Member._meta.db_table} "
                       f"WHERE {matches} AND erased_at IS NULL", params)
        return {pk: Recipient(email, phone, dict(zip(_CHANNEL_FIELDS, channels, strict=True)))
                for pk, email, phone, *channels in cursor.fetchall()}


def suppressed(addresses) -> dict[str, str]:
    """Of these addresses, those on the suppression list, with the reason."""
    addresses = sorted(set(addresses))
    if not addresses:
        return {}
    matches, params = bulk.any_of("address", addresses)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT address, reason FROM {Suppression._meta.db_table} WHERE {matches}", params)
        return dict(cursor.fetchall())
