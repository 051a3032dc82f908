"""Reads of messaging: who can be reached how, and which addresses get nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Member
from core import bulk
from messaging.models import LifecycleNotice, Suppression
from rewards.models import Redemption, Reward


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    phone: str
    channels: dict[str, str]  # the member's field (reminders_channel...) -> their choice


_CHANNEL_FIELDS = ("offers_channel", "reminders_channel", "surveys_channel", "statements_channel")


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


def _pairs(table: str, key: str, value: str, keys) -> dict:
    """``{key: value}`` of the rows of ``table`` whose ``key`` is one of ``keys``: one query however
    many keys (an array parameter on PostgreSQL)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    matches, params = bulk.any_of(key, keys)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}, {value} FROM {table} WHERE {matches}", params)
        return dict(cursor.fetchall())


def languages(member_ids) -> dict[int, str]:
    """Each member's own language (empty: the program's), one query however many members."""
    return _pairs(Member._meta.db_table, "id", "language", member_ids)


def suppressed(addresses) -> dict[str, str]:
    """Of these addresses, those on the suppression list, with the reason."""
    return _pairs(Suppression._meta.db_table, "address", "reason", addresses)


def affordable_rewards(*, now: datetime, told_kind: str) -> list[tuple[int, int, str, int]]:
    """(member, reward, name, cost): members whose available points pay for a reward open to
    everyone (not tier-only or early access, in stock, in its dates, within its per-member limit),
    with the dearest such reward, unless they were told about that one under ``told_kind`` (a
    cheaper one is not worth telling them of then). One query per reward (a catalogue has few)."""
    open_rewards = (Reward.objects.filter(is_active=True, tiers__isnull=True, early_access_tiers__isnull=True)
                    .filter(Q(stock__isnull=True) | Q(stock__gt=0))
                    .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
                    .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now)).order_by("-points_cost", "id"))
    best: dict[int, tuple[int, int, str, int] | None] = {}
    for reward in open_rewards:
        told = LifecycleNotice.objects.filter(member_id=OuterRef("pk"), kind=told_kind, key=str(reward.pk))
        members = (Member.objects.filter(points_available__gte=reward.points_cost, erased_at__isnull=True)
                   .annotate(told=Exists(told)))
        if reward.per_member_limit is not None:
            taken = (Redemption.objects.filter(member_id=OuterRef("pk"), reward=reward).values("member_id")
                     .annotate(n=Count("id")).values("n"))
            members = (members.annotate(taken=Coalesce(Subquery(taken, output_field=IntegerField()), 0))
                       .exclude(taken__gte=reward.per_member_limit))
        for member_id, was_told in members.values_list("pk", "told"):
            if member_id not in best:
                best[member_id] = None if was_told else (member_id, reward.pk, reward.name, reward.points_cost)
    return [found for _, found in sorted(best.items()) if found is not None]
