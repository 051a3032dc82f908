"""Time passing: pending points become available, points expire. Safe to run twice."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Member
from rewards.ledger import Posting, lock_members
from rewards.models import (
    EntryKind,
    ExpiryPolicy,
    LedgerEntry,
    PointsLot,
)
from rewards.program import Program, add_months, current_program

# --- Time passing: pending points become available, points expire -------------------------------------


def pending_release_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Make pending points available once their return window has passed. Returns how many
    entries were released. Safe to run twice or concurrently, and catches up after downtime."""
    now = now or timezone.now()
    released = 0
    while True:
        due = list(
            LedgerEntry.objects.filter(kind=EntryKind.EARN, pending_delta__gt=0, available_at__lte=now)
            .exclude(followers__kind=EntryKind.RELEASE)
            .order_by("id").values_list("id", "member_id")[:batch_size]
        )
        if not due:
            return released
        with transaction.atomic():
            balances = lock_members(member_id for _, member_id in due)
            # Under the locks, take only what nobody released meanwhile.
            earns = list(
                LedgerEntry.objects.filter(id__in=[entry_id for entry_id, _ in due])
                .exclude(followers__kind=EntryKind.RELEASE).order_by("id")
            )
            reversed_pending = dict(
                LedgerEntry.objects.filter(related_entry__in=earns, kind=EntryKind.REVERSE)
                .values_list("related_entry_id").annotate(total=Sum("pending_delta"))
            )
            posting = Posting(balances, now=now)
            for earn in earns:
                still = earn.pending_delta + (reversed_pending.get(earn.pk) or 0)
                posting.credit_available(
                    earn.member_id, still, kind=EntryKind.RELEASE, from_pending=still, expires_at=earn.expires_at,
                    related_entry=earn, activity_id=earn.activity_id, effective_at=earn.available_at,
                    description=f"{earn.description}: points now available",
                )
            posting.flush()
        released += len(earns)
        if len(due) < batch_size:
            return released


def points_expire_due(*, now: datetime | None = None, batch_size: int = 1000) -> int:
    """Expire lots whose date has passed and, under the inactivity policy, the whole balance of
    members inactive too long. Returns the number of members touched; safe to run twice."""
    now = now or timezone.now()
    program = current_program()
    touched = 0
    while True:
        member_ids = list(
            PointsLot.objects.filter(remaining__gt=0, expires_at__lte=now)
            .values_list("member_id", flat=True).distinct().order_by("member_id")[:batch_size]
        )
        if not member_ids:
            break
        with transaction.atomic():
            balances = lock_members(member_ids)
            lots = PointsLot.objects.filter(member_id__in=member_ids, remaining__gt=0, expires_at__lte=now)
            groups: dict[tuple[int, datetime], list[PointsLot]] = defaultdict(list)
            for lot in lots:
                groups[(lot.member_id, lot.expires_at)].append(lot)
            posting = Posting(balances, now=now)
            for (member_id, expires_at), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
                posting.expire_lots(member_id, group, effective_at=expires_at,
                                    description=f"Expired (earned before {program.local_date(expires_at):%d %b %Y})")
            posting.flush()
        touched += len(member_ids)
    if program.settings.expiry_policy == ExpiryPolicy.INACTIVITY:
        touched += _expire_inactive(program, now, batch_size)
    return touched


def _expire_inactive(program: Program, now: datetime, batch_size: int) -> int:
    cutoff = add_months(now, -program.settings.expiry_months)
    idle = Q(last_activity_at__lte=cutoff) | Q(last_activity_at__isnull=True, created_at__lte=cutoff)
    touched = 0
    while True:
        member_ids = list(
            Member.objects.filter(idle, points_available__gt=0).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not member_ids:
            return touched
        with transaction.atomic():
            balances = lock_members(member_ids)
            posting = Posting(balances, now=now)
            lots: dict[int, list[PointsLot]] = defaultdict(list)
            for lot in PointsLot.objects.filter(member_id__in=member_ids, remaining__gt=0):
                lots[lot.member_id].append(lot)
            for member_id, balance in balances.items():
                last = balance.last_activity_at
                if last is not None and last > cutoff:
                    continue  # active again since we looked
                months = program.settings.expiry_months
                posting.expire_lots(member_id, lots[member_id], effective_at=now,
                                    description=f"Expired after {months} months without activity")
            posting.flush()
        touched += len(member_ids)
