"""Posting to the ledger: entries, lots and balances, written set-based.

``Posting`` is the only code that creates ledger entries, changes lots or writes a member's
cached balances, except one SQL writer of the same credits from inside one statement on
PostgreSQL: ``credits_sql`` (orders' points; badges' and challenges' bonuses). The caller must hold
the members' row locks (``lock_members``) for the whole transaction; ``Posting`` then keeps the
three in step in memory and ``flush()`` writes them with one statement per table, so a batch of a
thousand orders costs a handful of queries.

Spending rule: points leave the lots that expire first (lots without expiry last, then oldest),
so no order of spending could have saved a member points that this one lets expire.

Refunds of points already spent: the documented choice, the same everywhere, is that the member
owes them. ``points_owed`` grows by the shortfall and the next credits repay it before anything
else; the balance itself never goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import ExternalId, Member
from core import bulk, events
from core.errors import Conflict
from core.events import Emitted
from rewards.models import EntryKind, LedgerEntry, PointsLot


@dataclass(slots=True)
class Entry:
    """A ledger entry on its way to the table; ``pk`` is set once written (when asked for)."""

    member_id: int
    kind: str
    available_delta: int = 0
    pending_delta: int = 0
    owed_delta: int = 0
    activity_id: int | None = None
    related_entry_id: int | None = None
    available_at: datetime | None = None
    expires_at: datetime | None = None
    description: str = ""
    reason: str = ""
    actor_user_id: int | None = None
    actor_partner_id: int | None = None
    effective_at: datetime | None = None
    created_at: datetime | None = None
    pk: int | None = None


@dataclass(slots=True)
class NewLot:
    member_id: int
    entry: Entry
    points: int
    remaining: int
    expires_at: datetime | None
    created_at: datetime
    pk: int | None = None

    @property
    def entry_id(self) -> int | None:
        return self.entry.pk


_OBJECT_FIELDS = {"activity": "activity_id", "related_entry": "related_entry_id", "actor_user": "actor_user_id",
                  "actor_partner": "actor_partner_id"}


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
    matches, params = bulk.any_of("id", sorted(set(member_ids)))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, points_available, points_pending, points_owed, last_activity_at "
            f'FROM "{Member._meta.db_table}" WHERE {matches} ORDER BY id{bulk.lock_clause()}',
            params,
        )
        rows = cursor.fetchall()
    return {pk: Balance(pk, available, pending, owed, bulk.aware(last)) for pk, available, pending, owed, last in rows}


def lock_partner_members(partner, external_ids) -> tuple[dict[int, Balance], dict[str, int]]:
    """``lock_members`` for the customers a partner names by its own ids, in one query; returns
    the balances and ``{external id: member id}`` for those that exist."""
    # Raw SQL: this runs once per API order, and the ORM would spend longer building it than
    # PostgreSQL spends running it.
    member, link = Member._meta.db_table, ExternalId._meta.db_table
    matches, params = bulk.any_of("x.external_id", sorted(set(external_ids)))
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT m.id, x.external_id, m.points_available, m.points_pending, m.points_owed, m.last_activity_at '
            f'FROM "{member}" m JOIN "{link}" x ON x.member_id = m.id '
            f"WHERE x.partner_id = %s AND {matches} ORDER BY m.id{bulk.lock_clause(of='m')}",
            [partner.pk, *params],
        )
        rows = cursor.fetchall()
    balances, links = {}, {}
    for pk, external_id, available, pending, owed, last in rows:
        balances[pk] = Balance(pk, available, pending, owed, bulk.aware(last))
        links[external_id] = pk
    return balances, links


def lock_and_claim(partner, claims: list[tuple[str, str, datetime]], *, activity_type: str, now: datetime
                   ) -> tuple[dict[int, Balance], dict[str, int], dict[str, int]]:
    """Lock the members a partner names and insert their new activities.

    ``claims`` are ``(external id, source key, occurred at)``. Returns the locked balances,
    ``{external id: member id}`` and ``{source key: activity id}`` for the activities inserted: a
    source key seen before, or a customer the partner never sent, gets no row (the unique key
    decides between concurrent copies; the loser waits for the winner's commit, then gets none).
    """
    from rewards.models import Activity

    balances, links = lock_partner_members(partner, {external for external, _, _ in claims})
    inserted = bulk.insert_new(Activity, ("member_id", "partner_id", "type", "source_key", "occurred_at",
                                          "properties", "created_at"), [
        (links[external], partner.pk, activity_type, key, at, "{}", now)
        for external, key, at in claims if external in links
    ], unique="source_key")
    return balances, links, inserted


class Posting:
    def __init__(self, balances: dict[int, Balance], *, now: datetime | None = None, keep_entry_ids: bool = True):
        self.balances = balances
        # Callers that only need the entries written (not their ids) save a round trip.
        self.keep_entry_ids = keep_entry_ids
        self.now = now or timezone.now()
        self.entries: list[Entry] = []
        self._new_lots: list[NewLot] = []
        self._lots: dict[int, list[PointsLot | NewLot]] = {}
        self._touched_lots: dict[int, PointsLot] = {}

    # --- credits ------------------------------------------------------------------------------

    def _entry(self, member_id: int, kind: str, **fields) -> Entry:
        for name, attname in _OBJECT_FIELDS.items():
            if name in fields:
                related = fields.pop(name)
                fields[attname] = related.pk if related is not None else None
        fields.setdefault("effective_at", self.now)
        fields.setdefault("created_at", self.now)
        entry = Entry(member_id, kind, **fields)
        self.entries.append(entry)
        return entry

    def credit_pending(self, member_id: int, points: int, *, kind: str = EntryKind.EARN, **fields) -> Entry:
        balance = self.balances[member_id]
        balance.pending += points
        balance.changed = True
        return self._entry(member_id, kind, pending_delta=points, **fields)

    def credit_available(self, member_id: int, points: int, *, kind: str, expires_at: datetime | None,
                         from_pending: int = 0, **fields) -> Entry:
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
            lot = NewLot(member_id, entry, spendable, spendable, expires_at, self.now)
            self._new_lots.append(lot)
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
            self._lots[member_id] = [lot for lot in self._new_lots if lot.member_id == member_id]
        for lot in PointsLot.objects.filter(member_id__in=missing, remaining__gt=0).order_by(
            "member_id", F("expires_at").asc(nulls_last=True), "id"
        ):
            self._lots[lot.member_id].append(lot)
        for member_id in missing:
            self._lots[member_id].sort(key=_spending_order)

    def debit_available(self, member_id: int, points: int, *, kind: str, allow_debt: bool = False,
                        first_lot_entry_id: int | None = None, **fields) -> Entry:
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

    def debit_pending(self, member_id: int, points: int, *, kind: str, **fields) -> Entry:
        balance = self.balances[member_id]
        balance.pending -= points
        balance.changed = True
        return self._entry(member_id, kind, pending_delta=-points, **fields)

    def reverse_earning(self, member_id: int, points: int, *, earn: LedgerEntry, **fields) -> Entry:
        """Take back ``points`` of what ``earn`` credited (a refund, a rejected review, a void
        referral): from pending while they have not become available, otherwise from available
        points, that earning's own lot first; what was already spent becomes points owed."""
        release = earn.followers.filter(kind=EntryKind.RELEASE).first()
        if earn.pending_delta > 0 and release is None:
            return self.debit_pending(member_id, points, kind=EntryKind.REVERSE, related_entry=earn, **fields)
        return self.debit_available(member_id, points, kind=EntryKind.REVERSE, allow_debt=True,
                                    first_lot_entry_id=(release or earn).pk, related_entry=earn, **fields)

    def expire_lots(self, member_id: int, lots: list[PointsLot], **fields) -> Entry | None:
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

    def _touch(self, lot: PointsLot | NewLot) -> None:
        if isinstance(lot, PointsLot):
            self._touched_lots[lot.pk] = lot

    # --- writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write entries, lots and balances: one statement per table."""
        rows = [tuple(getattr(entry, name) for name in ENTRY_FIELDS) for entry in self.entries]
        if self.keep_entry_ids or self._new_lots:
            for entry, pk in zip(self.entries, bulk.insert(LedgerEntry, ENTRY_FIELDS, rows), strict=True):
                entry.pk = pk
        else:
            bulk.insert(LedgerEntry, ENTRY_FIELDS, rows, ids=False)
        if self._new_lots:
            bulk.insert(PointsLot, LOT_FIELDS, [
                (lot.member_id, lot.entry.pk, lot.points, lot.remaining, lot.expires_at, lot.created_at)
                for lot in self._new_lots
            ], ids=False)
        if self._touched_lots:
            write_lot_remaining(list(self._touched_lots.values()))
        changed = [b for b in self.balances.values() if b.changed]
        if changed:
            write_balances(changed)
        _announce(self.entries)
        self.entries, self._new_lots, self._touched_lots = [], [], {}
        for balance in changed:
            balance.changed = False


# What each kind of ledger entry announces (core.events); every entry is announced with its change.
_EVENT_OF_KIND = {EntryKind.EARN: "points.earned", EntryKind.RELEASE: "points.available",
                  EntryKind.REVERSE: "points.reversed", EntryKind.REDEEM: "points.spent",
                  EntryKind.EXPIRE: "points.expired", EntryKind.ADJUST: "points.adjusted"}


def entry_event_data(entry: Entry) -> dict:
    """The event data of a ledger entry: its points (signed; a reversal that left a debt counts
    the debt), the moves, when pending points become available, what it was, and whose it was."""
    return {
        "points": entry.available_delta + entry.pending_delta - entry.owed_delta,
        "available_delta": entry.available_delta, "pending_delta": entry.pending_delta,
        "owed_delta": entry.owed_delta, "pending": entry.pending_delta > 0 and entry.kind == EntryKind.EARN,
        "available_at": entry.available_at.isoformat() if entry.available_at else None,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        "description": entry.description, "reason": entry.reason, "activity_id": entry.activity_id,
        "actor_partner_id": entry.actor_partner_id,
    }


def _announce(entries: list[Entry]) -> None:
    by_event: dict[str, list[Emitted]] = {}
    for entry in entries:
        by_event.setdefault(_EVENT_OF_KIND[entry.kind], []).append(
            Emitted(entry.member_id, entry_event_data(entry), at=entry.effective_at))
    for name, items in by_event.items():
        events.emit_many(name, items)


def _earned_data_sql() -> str:
    """``entry_event_data`` of an earning entry, in SQL over a row ``c`` of ``credits_sql``."""
    return ("jsonb_build_object('points', c.points, 'available_delta', c.available, 'pending_delta', c.pending, "
            "'owed_delta', -c.repay, 'pending', c.pending > 0, 'available_at', c.available_at, "
            "'expires_at', c.expires_at, 'description', c.description, 'reason', '', "
            "'activity_id', c.activity_id, 'actor_partner_id', NULL)")


def credits_sql(*, source: str, now: str, spendable: bool = True) -> str:
    """The ledger's part of a one-statement write on PostgreSQL (orders' points; a badge's or a
    challenge's bonuses): CTEs that post a credit for each row of the CTE ``source``, with the
    columns ``member_id, owed, activity_id, points, available_at, expires_at, description,
    effective_at`` (points > 0; ``owed`` is the member's debt as the statement's lock read it; the
    two times as text, as ``isoformat()`` writes them, which the events carry as they are). A row
    with an ``available_at`` is pending until then; one without is spendable at once and, in
    ``activity_id`` order within a member, repays what is still owed first, the rest opening a lot.
    Writes what ``credit_pending``, ``credit_available``, ``touch_activity`` and ``flush`` write
    for the same credits: the entries, their ``points.earned`` events with ``entry_event_data``'s
    data, the lots, and the members' balances and inactivity clocks (one UPDATE per member: a row
    changes once per statement). With ``spendable=False`` every row is
    pending (``owed`` is not read): a shorter text, which the order pipeline needs to stay under
    psycopg's 4,096 bytes for a single order (``rewards.services.orders._at_once_sql``). ``now``
    is the SQL of the time of writing. Precondition: the same statement locked the members first
    (FOR NO KEY UPDATE, in key order). tests/test_order_pipeline.py and
    tests/test_badges_challenges.py pin it to the rows ``Posting`` writes."""
    entries, lots, members = LedgerEntry._meta.db_table, PointsLot._meta.db_table, Member._meta.db_table
    data = _earned_data_sql()
    announce = events.outbox_insert_sql("points.earned", now=now,
                                        select=f"SELECT c.member_id, {data} AS data FROM ledger_credits c")
    if spendable:
        credits = f"""
ledger_repaid AS (
    -- What each spendable credit repays: the debt left after the member's earlier ones here.
    SELECT c.*, CASE WHEN c.available_at IS NULL THEN LEAST(c.points, GREATEST(c.owed - COALESCE(SUM(c.points)
        OVER (PARTITION BY c.member_id, c.available_at IS NULL ORDER BY c.activity_id
              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) ELSE 0 END AS repay
    FROM {source} c
),
ledger_credits AS (
    SELECT c.*, CASE WHEN c.available_at IS NULL THEN c.points - c.repay ELSE 0 END AS available,
           CASE WHEN c.available_at IS NULL THEN 0 ELSE c.points END AS pending
    FROM ledger_repaid c
),"""
        lots_cte = f"""
ledger_lots AS (
    INSERT INTO "{lots}" (member_id, entry_id, points, remaining, expires_at, created_at)
    SELECT e.member_id, e.id, e.available_delta, e.available_delta, e.expires_at, {now}
    FROM ledger_entries e WHERE e.available_delta > 0
),"""
        balances = ("points_available = u.points_available + t.available, "
                    "points_pending = u.points_pending + t.pending, points_owed = u.points_owed - t.repaid")
        returning = " RETURNING id, member_id, available_delta, expires_at"  # for the lots
    else:
        credits = f"ledger_credits AS (SELECT c.*, 0 AS repay, 0 AS available, c.points AS pending FROM {source} c),"
        lots_cte = ""
        balances = "points_pending = u.points_pending + t.pending"
        returning = ""
    return f"""{credits}
ledger_entries AS (
    INSERT INTO "{entries}" (member_id, kind, available_delta, pending_delta, owed_delta, activity_id, available_at,
                             expires_at, description, reason, effective_at, created_at)
    SELECT c.member_id, '{EntryKind.EARN.value}', c.available, c.pending, -c.repay, c.activity_id,
           c.available_at::timestamptz, c.expires_at::timestamptz, c.description, '', c.effective_at, {now}
    FROM ledger_credits c{returning}
),{lots_cte}
ledger_events AS ({announce}),
ledger_totals AS (
    SELECT c.member_id, SUM(c.available) AS available, SUM(c.pending) AS pending, SUM(c.repay) AS repaid,
           MAX(c.effective_at) AS last
    FROM ledger_credits c GROUP BY c.member_id
),
ledger_balances AS (
    UPDATE "{members}" u SET {balances}, last_activity_at = GREATEST(u.last_activity_at, t.last)
    FROM ledger_totals t WHERE u.id = t.member_id
)"""


def run_sql(sql: str, params: list) -> list[tuple]:
    """Run a one-statement write built with the CTEs above and return its rows (PostgreSQL)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot see into the statement's own rows and guesses millions of them: with
        # JIT on it would spend longer compiling the statement than running it.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return cursor.fetchall()


ENTRY_FIELDS = ("member_id", "kind", "available_delta", "pending_delta", "owed_delta", "activity_id",
                "related_entry_id", "available_at", "expires_at", "description", "reason", "actor_user_id",
                "actor_partner_id", "effective_at", "created_at")
LOT_FIELDS = ("member_id", "entry_id", "points", "remaining", "expires_at", "created_at")


def write_lot_remaining(lots: list[PointsLot]) -> None:
    bulk.update(PointsLot, ("remaining",), [(lot.pk, lot.remaining) for lot in lots])


def write_balances(balances: list[Balance]) -> None:
    bulk.update(Member, ("points_available", "points_pending", "points_owed", "last_activity_at"),
                [(b.member_id, b.available, b.pending, b.owed, b.last_activity_at) for b in balances])


_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def _spending_order(lot: PointsLot | NewLot):
    # Lots without an expiry go last; among equals the oldest first (unsaved lots are newest).
    return (lot.expires_at or _NEVER, lot.pk is None, lot.pk or 0)
