"""Posting to the ledger: entries, lots and balances, written set-based.

``Posting`` is the only code that creates ledger entries, changes lots or writes a member's
cached balances. The caller must hold the members' row locks (``lock_members``) for the whole
transaction; ``Posting`` then keeps the three in step in memory and ``flush()`` writes them with
one statement per table, so a batch of a thousand orders costs a handful of queries.

Spending rule: points leave the lots that expire first (lots without expiry last, then oldest),
so no order of spending could have saved a member points that this one lets expire.

Refunds of points already spent: the documented choice, the same everywhere, is that the member
owes them. ``points_owed`` grows by the shortfall and the next credits repay it before anything
else; the balance itself never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone

from accounts.models import Member
from loyalty_site.errors import Conflict
from rewards.models import EntryKind, LedgerEntry, PointsLot


@dataclass
class Balance:
    member_id: int
    available: int
    pending: int
    owed: int
    last_activity_at: datetime | None
    changed: bool = False


def lock_members(member_ids) -> dict[int, Balance]:
    """Lock the members' rows in key order and read their balances.

    ``FOR NO KEY UPDATE``: the ledger rows we insert take key-share locks on these members through
    their foreign keys; a plain ``FOR UPDATE`` taken later in the same pattern could deadlock.
    """
    rows = (
        Member.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted(set(member_ids)))
        .order_by("pk")
        .values_list("pk", "points_available", "points_pending", "points_owed", "last_activity_at")
    )
    return {pk: Balance(pk, available, pending, owed, last) for pk, available, pending, owed, last in rows}


class Posting:
    def __init__(self, balances: dict[int, Balance], *, now: datetime | None = None):
        self.balances = balances
        self.now = now or timezone.now()
        self.entries: list[LedgerEntry] = []
        self._new_lots: list[tuple[LedgerEntry, PointsLot]] = []
        self._lots: dict[int, list[PointsLot]] = {}
        self._touched_lots: dict[int, PointsLot] = {}

    # --- credits ------------------------------------------------------------------------------

    def _entry(self, member_id: int, kind: str, **fields) -> LedgerEntry:
        fields.setdefault("effective_at", self.now)
        fields.setdefault("created_at", self.now)
        entry = LedgerEntry(member_id=member_id, kind=kind, **fields)
        self.entries.append(entry)
        return entry

    def credit_pending(self, member_id: int, points: int, *, kind: str = EntryKind.EARN, **fields) -> LedgerEntry:
        balance = self.balances[member_id]
        balance.pending += points
        balance.changed = True
        return self._entry(member_id, kind, pending_delta=points, **fields)

    def credit_available(self, member_id: int, points: int, *, kind: str, expires_at: datetime | None,
                         from_pending: int = 0, **fields) -> LedgerEntry:
        """Add spendable points (``from_pending`` of them leave pending), repaying any debt first."""
        balance = self.balances[member_id]
        repay = min(points, balance.owed)
        spendable = points - repay
        balance.owed -= repay
        balance.available += spendable
        balance.pending -= from_pending
        balance.changed = True
        entry = self._entry(member_id, kind, available_delta=spendable, pending_delta=-from_pending,
                            owed_delta=-repay, expires_at=expires_at, **fields)
        if spendable:
            lot = PointsLot(member_id=member_id, points=spendable, remaining=spendable, expires_at=expires_at,
                            created_at=self.now)
            self._new_lots.append((entry, lot))
            if member_id in self._lots:
                self._lots[member_id].append(lot)
                self._lots[member_id].sort(key=_spending_order)
        return entry

    # --- debits -------------------------------------------------------------------------------

    def load_lots(self, member_ids) -> None:
        """Read the members' open lots in spending order (needed before any debit)."""
        missing = sorted(set(member_ids) - set(self._lots))
        if not missing:
            return
        for member_id in missing:
            self._lots[member_id] = [lot for _, lot in self._new_lots if lot.member_id == member_id]
        for lot in PointsLot.objects.filter(member_id__in=missing, remaining__gt=0).order_by(
            "member_id", F("expires_at").asc(nulls_last=True), "id"
        ):
            self._lots[lot.member_id].append(lot)
        for member_id in missing:
            self._lots[member_id].sort(key=_spending_order)

    def debit_available(self, member_id: int, points: int, *, kind: str, allow_debt: bool = False,
                        first_lot_entry_id: int | None = None, **fields) -> LedgerEntry:
        """Take spendable points, soonest-expiring lots first; what is missing becomes debt or a Conflict."""
        self.load_lots([member_id])
        balance = self.balances[member_id]
        if points > balance.available and not allow_debt:
            raise Conflict(
                f"Not enough points: {balance.available} available, {points} needed.",
                code="insufficient_points", fields={"points": f"Only {balance.available} points are available."},
            )
        lots = self._lots[member_id]
        if first_lot_entry_id is not None:
            # A refund takes back its own order's points first, whatever their expiry.
            lots = sorted(lots, key=lambda lot: lot.entry_id != first_lot_entry_id)
        left = points
        for lot in lots:
            if left == 0:
                break
            take = min(lot.remaining, left)
            if take:
                lot.remaining -= take
                left -= take
                self._touch(lot)
        taken = points - left
        balance.available -= taken
        balance.owed += left
        balance.changed = True
        return self._entry(member_id, kind, available_delta=-taken, owed_delta=left, **fields)

    def debit_pending(self, member_id: int, points: int, *, kind: str, **fields) -> LedgerEntry:
        balance = self.balances[member_id]
        balance.pending -= points
        balance.changed = True
        return self._entry(member_id, kind, pending_delta=-points, **fields)

    def expire_lots(self, member_id: int, lots: list[PointsLot], **fields) -> LedgerEntry | None:
        points = sum(lot.remaining for lot in lots)
        if not points:
            return None
        for lot in lots:
            lot.remaining = 0
            self._touch(lot)
        balance = self.balances[member_id]
        balance.available -= points
        balance.changed = True
        return self._entry(member_id, EntryKind.EXPIRE, available_delta=-points, **fields)

    def touch_activity(self, member_id: int, at: datetime) -> None:
        """The member did something: the inactivity clock restarts."""
        balance = self.balances[member_id]
        if balance.last_activity_at is None or at > balance.last_activity_at:
            balance.last_activity_at = at
            balance.changed = True

    def _touch(self, lot: PointsLot) -> None:
        if lot.pk is not None:
            self._touched_lots[lot.pk] = lot

    # --- writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write entries, lots and balances: one statement per table."""
        if self.entries:
            LedgerEntry.objects.bulk_create(self.entries, batch_size=2000)
        if self._new_lots:
            for entry, lot in self._new_lots:
                lot.entry_id = entry.pk
            PointsLot.objects.bulk_create([lot for _, lot in self._new_lots], batch_size=2000)
        if self._touched_lots:
            PointsLot.objects.bulk_update(list(self._touched_lots.values()), ["remaining"], batch_size=2000)
        changed = [b for b in self.balances.values() if b.changed]
        if changed:
            Member.objects.bulk_update(
                [Member(pk=b.member_id, points_available=b.available, points_pending=b.pending,
                        points_owed=b.owed, last_activity_at=b.last_activity_at) for b in changed],
                ["points_available", "points_pending", "points_owed", "last_activity_at"],
                batch_size=1000,
            )
        self.entries, self._new_lots, self._touched_lots = [], [], {}
        for balance in changed:
            balance.changed = False


_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def _spending_order(lot: PointsLot):
    # Lots without an expiry go last; among equals the oldest first (unsaved lots are newest).
    return (lot.expires_at or _NEVER, lot.pk is None, lot.pk or 0)
