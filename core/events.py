"""The catalogue of domain events: every event the program emits, what it carries, and who reacts.

This module is the one place where one app reacts to another. A service that changes state calls
``emit(...)`` (or ``emit_many(...)`` for a batch) inside its transaction; then

- each *reaction* named for the event runs at once, in the same transaction (a signup bonus when
  a member is created, a referral's conversion when orders are recorded). Reactions are named by
  dotted path, so that core imports no app and grep finds every wiring here;
- a *public* event is also written to the outbox (``core.models.OutboxEvent``) in that same
  transaction: no event without its change, no change without its event. ``relay_outbox`` hands
  the outbox on (webhooks, campaign triggers) after commit, safe to run twice.

Each event is about one member (``member_id``, or ``None`` for program-wide events) and carries a
small JSON ``data``; the names of public events are the partner contract (PRODUCT.md, "Webhooks").
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class EventType:
    name: str
    doc: str
    public: bool = True
    reactions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Emitted:
    """One event as reactions see it."""

    member_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # when it happened, for reactions (a signup bonus dated at the signup)


CATALOGUE: dict[str, EventType] = {event.name: event for event in [
    # --- Members -----------------------------------------------------------------------------
    EventType("member.created", "A member joined: by signing up in the portal, from a partner, or an import. "
              "data: {}", reactions=("rewards.reactions.award_signup",)),
    EventType("member.updated", "A member's profile or preferences changed. data: {changed: [field names]}",
              reactions=("rewards.reactions.award_profile_completed",)),
    EventType("member.erased", "A member's personal data was erased (the books stay). data: {}. Sent before the "
              "partners' ids are forgotten, with each partner's id.",
              reactions=("community.reactions.erase_member_content", "feedback.reactions.erase_member_feedback")),
    # --- What members did (internal: the engine's reactions, not sent out) ---------------------------
    EventType("activities.recorded", "Activities were recorded for members (orders, refunds, events...). "
              "data: {types: [activity types]}. Internal.", public=False,
              reactions=("feedback.reactions.check_referrals", "rewards.reactions.check_progress")),
    # --- Points ------------------------------------------------------------------------------
    EventType("points.earned", "Points were credited for an activity. data: {points, pending, available_at, "
              "expires_at, description, activity_id, activity_type, partner_id (the store of the activity)}"),
    EventType("points.available", "Pending points became spendable. data: {points}"),
    EventType("points.spent", "Points were spent on a reward. data: {points, reward_id}"),
    EventType("points.reversed", "Points earned were taken back (a refund, a rejected review). data: {points, "
              "reason}"),
    EventType("points.expired", "Points expired. data: {points}"),
    EventType("points.adjusted", "Staff or a partner credited or debited points. data: {points, reason}"),
    EventType("points.expiring", "A reminder: points expire soon. data: {points, expires_at}"),
    # --- Progress ----------------------------------------------------------------------------
    EventType("tier.changed", "A member moved to another tier. data: {from, to, cause}"),
    EventType("tier.downgrade_warning", "A member will drop a tier at the end of their period unless they "
              "qualify. data: {tier, period_end}"),
    EventType("badge.awarded", "A badge level was awarded. data: {badge, level}"),
    EventType("challenge.completed", "A challenge was completed. data: {challenge}"),
    # --- Rewards -----------------------------------------------------------------------------
    EventType("reward.redeemed", "A reward was redeemed for a coupon. data: {reward_id, reward, points, "
              "coupon, expires_at}"),
    EventType("coupon.used", "A coupon was used at checkout. data: {coupon, order_id}"),
    # --- Community and feedback ----------------------------------------------------------------
    EventType("review.approved", "A member's review was published. data: {review_id, sku, rating}"),
    EventType("review.rejected", "A member's review was rejected. data: {review_id, sku, reason}"),
    EventType("survey.completed", "A member finished a survey. data: {survey_id, nps}"),
    EventType("referral.converted", "A referred friend placed their first qualifying order. data: {referral_id}"),
    EventType("referral.rewarded", "A referral's rewards were paid. data: {referral_id}"),
    EventType("campaign.message", "A campaign message for stores that send through their own service. "
              "data: {campaign, subject, text}"),
    EventType("ping", "A test delivery to a webhook endpoint. data: {}"),
]}

EVENT_ID_PREFIX = "evt_"


def new_event_id() -> str:
    """``evt_`` and 32 hex digits: the time in milliseconds (12), then 80 random bits (20), as in
    a UUIDv7. Ids made one after another sort together, so the outbox's unique index grows at its
    end instead of at a random page for each event (a random id cost a page read and write per
    event once the index outgrew the cache). The SQL writers make them the same way (``_SQL_EVENT_ID``)."""
    return f"{EVENT_ID_PREFIX}{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


_SQL_EVENT_ID = (f"'{EVENT_ID_PREFIX}' "
                 "|| lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') "
                 "|| left(replace(gen_random_uuid()::text, '-', ''), 20)")


def emit(name: str, *, member_id: int | None, data: dict[str, Any] | None = None,
         occurred_at: datetime | None = None) -> None:
    """Emit one event inside the current transaction (see the module docstring)."""
    emit_many(name, [Emitted(member_id, data or {}, at=occurred_at)], occurred_at=occurred_at)


def emit_many(name: str, items: Iterable[Emitted], *, occurred_at: datetime | None = None) -> int:
    """Emit an event for many members at once: reactions once with all of them, and one INSERT
    per 5,000 outbox rows. Must run inside a transaction: the outbox rows commit with the change."""
    event = CATALOGUE[name]
    items = list(items)
    if not items:
        return 0
    if event.public and not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"emit({name!r}) outside a transaction: the event could outlive or miss its change.")
    for path in event.reactions:
        import_string(path)(event=name, items=items)
    if event.public:
        from core import bulk
        from core.models import OutboxEvent

        at = occurred_at or timezone.now()
        fields = ("event_id", "type", "member_id", "data", "created_at")
        for start in range(0, len(items), 5000):
            bulk.insert(OutboxEvent, fields, [(new_event_id(), name, item.member_id, bulk.json_text(item.data), at)
                                              for item in items[start:start + 5000]], ids=False)
        relay_after_commit()
    return len(items)


def outbox_insert_sql(name: str, *, select: str, now: str) -> str:
    """An INSERT of ``name`` events into the outbox for each row of ``select`` (columns
    ``member_id`` and ``data``, a jsonb), for writers that announce their change inside the same SQL
    statement as the change (``rewards.ledger.credits_sql``); ``now`` is the SQL of the
    creation time. Event ids are made as ``new_event_id`` makes them. The caller then calls
    ``relay_after_commit``."""
    from core.models import OutboxEvent

    if not CATALOGUE[name].public or CATALOGUE[name].reactions:
        raise ValueError(f"{name!r}: only public events without reactions can be written by SQL alone.")
    return (f'INSERT INTO "{OutboxEvent._meta.db_table}" (event_id, type, member_id, data, created_at) '
            f"SELECT {_SQL_EVENT_ID}, '{name}', "
            f"announced.member_id, announced.data, {now} FROM ({select}) AS announced")


def relay_after_commit() -> None:
    """Queue a relay of the outbox once the current transaction commits (writers that put events
    in the outbox by SQL of their own call this)."""
    if settings.OUTBOX_RELAY_ON_COMMIT:
        transaction.on_commit(_relay_soon)


_last_relay_queued = 0.0


def _relay_soon() -> None:
    """Queue a relay a second from now, at most one every half second per process: every event
    committed before the relay runs is in it, and a burst of writes costs one task, not one each."""
    global _last_relay_queued
    from core.tasks import relay_outbox

    now = time.monotonic()
    if settings.CELERY_TASK_ALWAYS_EAGER:
        relay_outbox.delay()
    elif now - _last_relay_queued >= 0.5:
        _last_relay_queued = now
        relay_outbox.apply_async(countdown=1)
