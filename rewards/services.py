"""Writes of the points engine: orders, refunds, activities, adjustments, redemptions, coupons,
pending release and expiry. Each function is one transaction that locks the members it changes
(``rewards.ledger.lock_members``) before it writes."""

from __future__ import annotations

import calendar
import secrets
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from accounts.models import AuditLog, ExternalId, Member, Partner, User
from accounts.selectors import partner_member_ids
from accounts.services import CODE_ALPHABET
from loyalty_site import bulk
from loyalty_site.errors import Conflict, Invalid, NotFound
from rewards import rules
from rewards.currencies import is_currency, money_str, quantum
from rewards.ledger import Posting, lock_and_claim, lock_members
from rewards.models import (
    Activity,
    ActivityType,
    Coupon,
    EarningRule,
    EntryKind,
    ExpiryPolicy,
    LedgerEntry,
    Order,
    OrderLine,
    OrderStatus,
    PointsAward,
    PointsLot,
    ProgramSettings,
    Redemption,
    Refund,
    Reward,
    RuleKind,
)
from rewards.payloads import _EVENT_TYPE as _ACTIVITY_TYPE
from rewards.payloads import EventInput, OrderInput, RefundInput
from rewards.program import Program, add_months, current_program, forget_program, load_program, rule_spec

# --- Results ---------------------------------------------------------------------------------------


@dataclass
class AwardResult:
    """What one activity earned."""

    points: int = 0
    pending: bool = False
    available_at: datetime | None = None
    expires_at: datetime | None = None
    rules: list[dict] = field(default_factory=list)


@dataclass
class OrderResult:
    order_id: str
    member: str
    status: str  # accepted, duplicate or rejected
    award: AwardResult = field(default_factory=AwardResult)
    error: dict | None = None


@dataclass
class ActivityResult:
    activity: Activity | None  # the stored activity, when it was there before
    created: bool
    award: AwardResult = field(default_factory=AwardResult)
    activity_id: int | None = None


# --- Rule evaluation shared by orders and other activities -------------------------------------------


class CapTracker:
    """Points each capped rule already gave each member on a day and in a month (program time zone)."""

    def __init__(self, program: Program, member_ids, moments: list[datetime]):
        self.program = program
        self.capped = [s.id for s in program.specs if s.cap_per_day is not None or s.cap_per_month is not None]
        self.by_day: dict[tuple[int, int, date], int] = defaultdict(int)
        if not self.capped or not moments:
            return
        days = [program.local_date(m) for m in moments]
        rows = (
            PointsAward.objects.filter(member_id__in=set(member_ids), rule_id__in=self.capped,
                                       day__gte=min(days).replace(day=1), day__lte=max(days))
            .values_list("member_id", "rule_id", "day").annotate(total=Sum("points"))
        )
        for member_id, rule_id, day, total in rows:
            self.by_day[(member_id, rule_id, day)] += total

    def used(self, member_id: int, day: date) -> tuple[dict, dict]:
        today, month = {}, {}
        for (m, rule_id, d), total in self.by_day.items():
            if m != member_id:
                continue
            if d == day:
                today[rule_id] = today.get(rule_id, 0) + total
            if (d.year, d.month) == (day.year, day.month):
                month[rule_id] = month.get(rule_id, 0) + total
        return today, month

    def add(self, member_id: int, rule_id: int | None, day: date, points: int) -> None:
        if rule_id in self.capped:
            self.by_day[(member_id, rule_id, day)] += points


def _evaluate(program: Program, occasion: rules.Occasion, caps: CapTracker, member_id: int) -> list[rules.RulePoints]:
    selected = rules.select(list(program.specs), occasion)
    results = rules.evaluate(selected, occasion)
    if caps.capped:
        today, month = caps.used(member_id, program.local_date(occasion.at))
        results = rules.apply_caps(results, used_today=today, used_this_month=month)
    return results


AWARD_FIELDS = ("activity_id", "member_id", "rule_id", "rule_name", "points", "day")


@dataclass
class _Earning:
    """What one activity earns, worked out before any member is locked."""

    member_id: int
    activity_id: int
    at: datetime
    description: str
    award: AwardResult
    results: list[rules.RulePoints]


def _evaluate_award(*, program: Program, caps: CapTracker, member_id: int, activity_id: int,
                    occasion: rules.Occasion, description: str, pending_until: datetime | None,
                    now: datetime, awards: list[tuple]) -> _Earning:
    """Evaluate the rules for one activity. Appends the per-rule awards to ``awards`` as rows of
    ``AWARD_FIELDS``; the points are credited by ``_post_earning``."""
    results = _evaluate(program, occasion, caps, member_id)
    day = program.local_date(occasion.at)
    total = 0
    for result in results:
        if result.points:
            awards.append((activity_id, member_id, result.spec.id, result.spec.name, result.points, day))
            caps.add(member_id, result.spec.id, day, result.points)
            total += result.points
    award = AwardResult(points=total, rules=[
        {"rule_id": r.spec.id, "name": r.spec.name, "points": r.points} for r in results if r.points
    ])
    if total > 0:
        award.expires_at = program.expires_at(occasion.at)
        if pending_until is not None and pending_until > now:
            award.pending, award.available_at = True, pending_until
    return _Earning(member_id, activity_id, occasion.at, description, award, results)


def _post_earning(posting: Posting, earning: _Earning) -> None:
    """Credit what an activity earned: pending until its date, or available now."""
    award = earning.award
    if award.points <= 0:
        return
    # The inactivity clock counts earning and spending, not visits that earn nothing.
    posting.touch_activity(earning.member_id, earning.at)
    common = {"activity_id": earning.activity_id, "description": earning.description,
              "expires_at": award.expires_at, "effective_at": earning.at}
    if award.pending:
        posting.credit_pending(earning.member_id, award.points, available_at=award.available_at, **common)
    else:
        posting.credit_available(earning.member_id, award.points, kind=EntryKind.EARN, **common)


def order_line_values(order: OrderInput | Order, lines) -> list[rules.LineValue]:
    """Each line's merchandise value for earning: price x quantity, less its share of the discount
    and less what was refunded on it."""
    merchandise = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    keep = (merchandise - order.discount) / merchandise if merchandise else Decimal(0)
    values = []
    for line in lines:
        value = line.unit_price * line.quantity * keep - getattr(line, "refunded_value", Decimal(0))
        values.append(rules.LineValue(sku=line.sku, category=line.category, value=max(value, Decimal(0))))
    return values


# --- Orders ------------------------------------------------------------------------------------------


def _rejected(order: OrderInput, *, code: str, message: str, fields: dict) -> OrderResult:
    return OrderResult(order.order_id, order.member, "rejected", error={
        "code": code, "message": message, "fields": {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
    })


def orders_record(*, partner: Partner, orders: list[OrderInput]) -> list[OrderResult]:
    """Record orders and award their points, each order on its own.

    Guarantees: an order id is counted once per partner, whatever arrives twice (in one batch, in
    two batches, concurrently: the activity's unique key decides, and the loser reports a
    duplicate); an order for a customer the partner never sent is rejected naming ``member``; the
    same order id with different content is rejected naming ``order_id``; every accepted order is
    written with its lines, activity, ledger entry and balance in one transaction.
    """
    program = current_program()
    results: list[OrderResult | None] = [None] * len(orders)
    first_index: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    todo: list[int] = []
    for index, order in enumerate(orders):
        if order.order_id in first_index:
            repeats.append((index, first_index[order.order_id]))
        else:
            first_index[order.order_id] = index
            todo.append(index)
    if todo and not _record_orders_at_once(partner=partner, program=program, orders=orders, todo=todo,
                                           results=results):
        # No savepoint: nothing in here raises for a duplicate, so a caller's transaction (the
        # idempotency record) and this one can be the same, which saves two round trips per call.
        with transaction.atomic(savepoint=False):
            _record_orders(partner=partner, program=program, orders=orders, todo=todo, results=results)
    for index, first in repeats:
        # The same order twice in one batch: the second is a duplicate of the first.
        original, order = results[first], orders[index]
        if order.content_hash() != orders[first].content_hash():
            results[index] = _rejected(order, code="order_exists", message="This order id appears twice in the batch.",
                                       fields={"order_id": "Appears earlier in this batch with different content."})
        elif original.status == "rejected":
            results[index] = OrderResult(order.order_id, order.member, "rejected", error=original.error)
        else:
            results[index] = OrderResult(order.order_id, order.member, "duplicate", award=original.award)
    return results


# Batches at least this big lock their members only for the last writes, so that two batches
# touching some of the same customers do not wait on each other for the whole batch.
LOCK_LATE_FROM = 50


def _record_orders(*, partner, program, orders, todo, results) -> None:
    capped = any(s.cap_per_day is not None or s.cap_per_month is not None
                 for s in program.specs if s.activity_type == ActivityType.ORDER)
    # Caps read what a member already earned today: that read must happen under the lock.
    lock_early = capped or len(todo) < LOCK_LATE_FROM
    now = timezone.now()
    source = {index: f"order:{partner.pk}:{orders[index].order_id}" for index in todo}
    # The unique source key decides between concurrent copies of one order: the loser gets no row.
    if lock_early:
        balances, links, inserted = lock_and_claim(
            partner, [(orders[i].member, source[i], orders[i].placed_at) for i in todo],
            activity_type=ActivityType.ORDER, now=now,
        )
    else:
        balances, links = None, partner_member_ids(partner, {orders[i].member for i in todo})
        inserted = bulk.insert_new(Activity, ACTIVITY_FIELDS, [
            (links[orders[i].member], partner.pk, ActivityType.ORDER, source[i], orders[i].placed_at, "{}", now)
            for i in todo if orders[i].member in links
        ], unique="source_key")
    candidates = []
    for index in todo:
        order = orders[index]
        if order.member not in links:
            results[index] = _rejected(order, code="unknown_member", message="Unknown member.",
                                       fields={"member": f"No member with external_id {order.member!r}."})
        else:
            candidates.append(index)
    fresh = [i for i in candidates if source[i] in inserted]
    seen = [i for i in candidates if source[i] not in inserted]
    if seen:
        _report_recorded(partner, orders, seen, results)
    if not fresh:
        return

    caps = CapTracker(program, {links[orders[i].member] for i in fresh}, [orders[i].placed_at for i in fresh])
    awards: list[tuple] = []
    earnings: list[_Earning] = []
    order_rows = []
    for index in fresh:
        order, activity_id = orders[index], inserted[source[index]]
        occasion = rules.Occasion(activity_type=ActivityType.ORDER, at=order.placed_at, partner_id=partner.pk,
                                  currency=order.currency, lines=order_line_values(order, order.lines),
                                  tier_id=None)
        earning = _evaluate_award(
            program=program, caps=caps, member_id=links[order.member], activity_id=activity_id, occasion=occasion,
            description=f"Order {order.order_id}", pending_until=program.available_at(order.placed_at), now=now,
            awards=awards,
        )
        earnings.append(earning)
        order_rows.append((
            activity_id, partner.pk, order.order_id, earning.member_id, order.placed_at, order.currency, order.total,
            order.shipping, order.tax, order.discount, Decimal(0), OrderStatus.PLACED, earning.award.points,
            rules.applied_json_text(earning.results), order.content_hash(), now,
        ))
        results[index] = OrderResult(order.order_id, order.member, "accepted", award=earning.award)

    # A few orders: send the remaining writes in one round trip (PostgreSQL pipeline mode).
    with bulk.pipeline() if lock_early else nullcontext():
        bulk.insert(Order, ORDER_FIELDS, order_rows, ids=False)
        bulk.insert(OrderLine, LINE_FIELDS, [
            (inserted[source[index]], position, line.sku, line.name, line.category, line.quantity, line.unit_price,
             0, Decimal(0))
            for index in fresh
            for position, line in enumerate(orders[index].lines)
        ], ids=False)
        # An order's per-rule points live in rules_applied; only capped rules need rows to count against.
        bulk.insert(PointsAward, AWARD_FIELDS, [row for row in awards if row[2] in caps.capped], ids=False)
        if balances is None:
            # FOR NO KEY UPDATE does not conflict with the key-share locks our inserts took on these
            # members, so taking it now, in key order, cannot deadlock with another batch.
            balances = lock_members({e.member_id for e in earnings if e.award.points > 0})
        posting = Posting(balances, now=now, keep_entry_ids=False)
        for earning in earnings:
            _post_earning(posting, earning)
        posting.flush()


_AT_ONCE_SQL = """
WITH v_orders (source_key, external_id, order_id, placed_at, currency, total, shipping, tax, discount, points,
               rules_applied, content_hash, available_at, expires_at, description) AS (VALUES {orders}),
v_lines (source_key, position, sku, name, category, quantity, unit_price) AS (VALUES {lines}),
m AS (
    SELECT x.external_id, m.id AS member_id FROM accounts_member m JOIN accounts_externalid x ON x.member_id = m.id
    WHERE x.partner_id = %(partner)s AND x.external_id IN (SELECT external_id FROM v_orders)
    ORDER BY m.id FOR NO KEY UPDATE OF m
),
a AS (
    INSERT INTO rewards_activity (member_id, partner_id, type, source_key, occurred_at, properties, created_at)
    SELECT m.member_id, %(partner)s, 'order', v.source_key, v.placed_at, '{{}}'::jsonb, %(now)s
    FROM v_orders v JOIN m ON m.external_id = v.external_id
    ON CONFLICT (source_key) DO NOTHING RETURNING id, source_key, member_id
),
o AS (
    INSERT INTO rewards_order (activity_id, partner_id, order_id, member_id, placed_at, currency, total, shipping, tax,
                               discount, refunded_amount, status, points, rules_applied, content_hash, created_at)
    SELECT a.id, %(partner)s, v.order_id, a.member_id, v.placed_at, v.currency, v.total, v.shipping, v.tax, v.discount,
           0, 'placed', v.points, v.rules_applied, v.content_hash, %(now)s
    FROM a JOIN v_orders v ON v.source_key = a.source_key
),
l AS (
    INSERT INTO rewards_orderline (order_id, position, sku, name, category, quantity, unit_price, refunded_quantity,
                                   refunded_value)
    SELECT a.id, w.position, w.sku, w.name, w.category, w.quantity, w.unit_price, 0, 0
    FROM a JOIN v_lines w ON w.source_key = a.source_key
),
e AS (
    INSERT INTO rewards_ledgerentry (member_id, kind, available_delta, pending_delta, owed_delta, activity_id,
                                     available_at, expires_at, description, reason, effective_at, created_at)
    SELECT a.member_id, 'earn', 0, v.points, 0, a.id, v.available_at, v.expires_at, v.description, '', v.placed_at,
           %(now)s
    FROM a JOIN v_orders v ON v.source_key = a.source_key WHERE v.points > 0
),
t AS (
    SELECT a.member_id, SUM(v.points) AS points, MAX(v.placed_at) AS last
    FROM a JOIN v_orders v ON v.source_key = a.source_key WHERE v.points > 0 GROUP BY a.member_id
),
u AS (
    UPDATE accounts_member SET points_pending = accounts_member.points_pending + t.points,
           last_activity_at = GREATEST(accounts_member.last_activity_at, t.last)
    FROM t WHERE accounts_member.id = t.member_id
)
SELECT v.source_key, m.member_id, a.id FROM v_orders v
LEFT JOIN m ON m.external_id = v.external_id LEFT JOIN a ON a.source_key = v.source_key
"""
_AT_ONCE_ORDER = ("(%s::text, %s::text, %s::text, %s::timestamptz, %s::text, %s::numeric, %s::numeric, %s::numeric, "
                  "%s::numeric, %s::bigint, %s::jsonb, %s::text, %s::timestamptz, %s::timestamptz, %s::text)")
_AT_ONCE_LINE = "(%s::text, %s::integer, %s::text, %s::text, %s::text, %s::integer, %s::numeric)"


def _record_orders_at_once(*, partner, program, orders, todo, results) -> bool:
    """The common case of the API, in one SQL statement: a few new orders whose points wait out the
    return window, and no capped rule. Locks the members (in key order), inserts activities (the
    unique source key turns away copies), orders, lines and pending entries, and raises the pending
    balances, all at once. Returns False, having written nothing, when the orders need the general
    path (points available at once must repay debt and open lots, which needs the balances). Being
    one statement, it is atomic without a transaction around it: no BEGIN and COMMIT round trips."""
    if connection.vendor != "postgresql" or len(todo) >= LOCK_LATE_FROM or any(
        s.cap_per_day is not None or s.cap_per_month is not None
        for s in program.specs if s.activity_type == ActivityType.ORDER
    ):
        return False
    now = timezone.now()
    specs = list(program.specs)
    plans = []
    for index in todo:
        order = orders[index]
        occasion = rules.Occasion(activity_type=ActivityType.ORDER, at=order.placed_at, partner_id=partner.pk,
                                  currency=order.currency, lines=order_line_values(order, order.lines))
        given = rules.evaluate(rules.select(specs, occasion), occasion)
        points = sum(r.points for r in given)
        available_at = program.available_at(order.placed_at)
        if points > 0 and (available_at is None or available_at <= now):
            return False
        award = AwardResult(points=points, rules=[
            {"rule_id": r.spec.id, "name": r.spec.name, "points": r.points} for r in given if r.points
        ])
        if points > 0:
            award.pending, award.available_at = True, available_at
            award.expires_at = program.expires_at(order.placed_at)
        plans.append((index, f"order:{partner.pk}:{order.order_id}", award, given))
    order_params, line_params = [], []
    for index, source_key, award, given in plans:
        order = orders[index]
        order_params += [source_key, order.member, order.order_id, order.placed_at, order.currency, order.total,
                         order.shipping, order.tax, order.discount, award.points, rules.applied_json_text(given),
                         order.content_hash(), award.available_at, award.expires_at, f"Order {order.order_id}"]
        for position, line in enumerate(order.lines):
            line_params += [source_key, position, line.sku, line.name, line.category, line.quantity, line.unit_price]
    sql = _AT_ONCE_SQL.format(orders=", ".join([_AT_ONCE_ORDER] * len(plans)),
                              lines=", ".join([_AT_ONCE_LINE] * (len(line_params) // 7)))
    # Named parameters for the repeated ones, positional for the rows: psycopg wants one style.
    sql = sql.replace("%(partner)s", str(int(partner.pk))).replace("%(now)s", "%s::timestamptz")
    params = [*order_params, *line_params]
    # %(now)s appears in a, o and e, in that order, after the VALUES lists.
    params += [now, now, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        outcome = {source_key: (member_id, activity_id) for source_key, member_id, activity_id in cursor.fetchall()}
    seen = []
    for index, source_key, award, _ in plans:
        order = orders[index]
        member_id, activity_id = outcome[source_key]
        if member_id is None:
            results[index] = _rejected(order, code="unknown_member", message="Unknown member.",
                                       fields={"member": f"No member with external_id {order.member!r}."})
        elif activity_id is None:
            seen.append(index)
        else:
            results[index] = OrderResult(order.order_id, order.member, "accepted", award=award)
    if seen:
        _report_recorded(partner, orders, seen, results)
    return True


def _report_recorded(partner, orders, indexes, results) -> None:
    """Answer for orders already recorded: a duplicate with the first answer, or a conflict."""
    existing = {
        row["order_id"]: row
        for row in Order.objects.filter(partner=partner, order_id__in=[orders[i].order_id for i in indexes])
        .values("order_id", "content_hash", "points", "activity_id", "rules_applied")
    }
    for index in indexes:
        order = orders[index]
        known = existing.get(order.order_id)
        if known is None or known["content_hash"] != order.content_hash():
            results[index] = _rejected(
                order, code="order_exists",
                message="This order id was already recorded with different content.",
                fields={"order_id": "Already recorded with different content; send a refund to change it."},
            )
        else:
            rules_given = [{"rule_id": item["rule"]["id"], "name": item["rule"]["name"], "points": item["points"]}
                           for item in known["rules_applied"] if item["points"]]
            results[index] = OrderResult(order.order_id, order.member, "duplicate",
                                         award=_award_of_recorded(known["activity_id"], known["points"], rules_given))


ACTIVITY_FIELDS = ("member_id", "partner_id", "type", "source_key", "occurred_at", "properties", "created_at")
ORDER_FIELDS = ("activity_id", "partner_id", "order_id", "member_id", "placed_at", "currency", "total", "shipping",
                "tax", "discount", "refunded_amount", "status", "points", "rules_applied", "content_hash",
                "created_at")
LINE_FIELDS = ("order_id", "position", "sku", "name", "category", "quantity", "unit_price", "refunded_quantity",
               "refunded_value")


def _award_of_recorded(activity_id: int, points: int, rules_given: list[dict] | None = None) -> AwardResult:
    """The award an already recorded activity earned, for answering a duplicate. Orders keep their
    breakdown in ``rules_applied``; other activities in their ``PointsAward`` rows."""
    entry = LedgerEntry.objects.filter(activity_id=activity_id, kind=EntryKind.EARN).first()
    if rules_given is None:
        rules_given = [
            {"rule_id": a.rule_id, "name": a.rule_name, "points": a.points}
            for a in PointsAward.objects.filter(activity_id=activity_id, points__gt=0).order_by("id")
        ]
    award = AwardResult(points=points, rules=rules_given)
    if entry is not None:
        award.pending = entry.pending_delta > 0 and not entry.followers.filter(kind=EntryKind.RELEASE).exists()
        award.available_at, award.expires_at = entry.available_at, entry.expires_at
    return award


def order_record(*, partner: Partner, order: OrderInput) -> OrderResult:
    return orders_record(partner=partner, orders=[order])[0]


# --- Refunds -----------------------------------------------------------------------------------------


@dataclass
class RefundResult:
    refund_id: str
    order_id: str
    status: str  # accepted or duplicate
    amount: Decimal
    currency: str
    points_reversed: int
    order_points: int
    order_status: str


def order_refund(*, partner: Partner, order_id: str, refund: RefundInput) -> RefundResult:
    """Refund all or part of an order and reverse the points earned on the refunded part.

    The points are recomputed with the rules kept from the order's day on what is left of the
    order (``rewards.rules``); the difference is reversed: from pending points while the order is
    in its return window, otherwise from available points, this order's own lot first, and what
    was already spent becomes points owed. A ``refund_id`` is applied once; sent again it
    answers as before.
    """
    head = Order.objects.filter(partner=partner, order_id=order_id).values("pk", "member_id").first()
    if head is None:
        raise NotFound(f"No order {order_id!r}.", code="unknown_order", fields={"order_id": "No such order."})
    with transaction.atomic():
        balances = lock_members([head["member_id"]])
        order = Order.objects.select_for_update().get(pk=head["pk"])
        done = Refund.objects.filter(order=order, refund_id=refund.refund_id).first()
        if done is not None:
            return _refund_replay(order, done, refund)
        lines = list(order.lines.all())
        amount = _apply_refund_to_lines(order, lines, refund)

        program = current_program()
        occasion = rules.Occasion(activity_type=ActivityType.ORDER, at=order.placed_at, partner_id=partner.pk,
                                  currency=order.currency, lines=order_line_values(order, lines))
        after = rules.reevaluate(order.rules_applied, occasion)
        reverse = order.points - sum(r.points for r in after)
        now = timezone.now()
        activity = Activity.objects.create(
            member_id=order.member_id, partner=partner, type=ActivityType.REFUND,
            source_key=f"refund:{partner.pk}:{order.order_id}:{refund.refund_id}", occurred_at=now,
            properties={"order_id": order.order_id, "amount": str(amount)},
        )
        posting = Posting(balances, now=now)
        if reverse > 0:
            earn = LedgerEntry.objects.get(activity_id=order.activity_id, kind=EntryKind.EARN)
            release = earn.followers.filter(kind=EntryKind.RELEASE).first()
            description = f"Refund {refund.refund_id} of order {order.order_id}"
            if earn.pending_delta > 0 and release is None:
                posting.debit_pending(order.member_id, reverse, kind=EntryKind.REVERSE, related_entry=earn,
                                      activity=activity, description=description)
            else:
                own_lot = (release or earn).pk
                posting.debit_available(order.member_id, reverse, kind=EntryKind.REVERSE, allow_debt=True,
                                        first_lot_entry_id=own_lot, related_entry=earn, activity=activity,
                                        description=description)
        posting.flush()
        day = program.local_date(order.placed_at)
        # Only capped rules kept a row for this order (see PointsAward); only they get the reversal.
        PointsAward.objects.bulk_create([
            PointsAward(activity_id=order.activity_id, member_id=order.member_id, rule_id=new.spec.id,
                        rule_name=new.spec.name, points=new.points - old["points"], day=day)
            for new, old in zip(after, order.rules_applied, strict=True)
            if new.points != old["points"] and (new.spec.cap_per_day is not None or new.spec.cap_per_month is not None)
        ])
        order.rules_applied = [{"rule": r.spec.to_json(), "points": r.points} for r in after]
        order.points -= reverse
        order.refunded_amount += amount
        fully = order.refunded_amount >= order.total or all(line.refunded_quantity == line.quantity for line in lines)
        order.status = OrderStatus.REFUNDED if fully else OrderStatus.PARTIALLY_REFUNDED
        order.save(update_fields=["rules_applied", "points", "refunded_amount", "status"])
        Refund.objects.create(
            activity=activity, order=order, refund_id=refund.refund_id, amount=amount, points_reversed=reverse,
            lines=[{"sku": line.sku, "quantity": line.quantity} for line in refund.lines]
            + ([{"amount": str(refund.amount)}] if refund.amount is not None else []),
        )
    return RefundResult(refund.refund_id, order.order_id, "accepted", amount, order.currency, reverse, order.points,
                        order.status)


def _refund_replay(order: Order, done: Refund, refund: RefundInput) -> RefundResult:
    sent_lines = [{"sku": line.sku, "quantity": line.quantity} for line in refund.lines]
    sent = sent_lines + ([{"amount": str(refund.amount)}] if refund.amount is not None else [])
    if sent != done.lines:
        raise Conflict("This refund id was already used for a different refund.", code="refund_exists",
                       fields={"refund_id": "Already used for a different refund."})
    return RefundResult(done.refund_id, order.order_id, "duplicate", done.amount, order.currency, done.points_reversed,
                        order.points, order.status)


def _apply_refund_to_lines(order: Order, lines: list[OrderLine], refund: RefundInput) -> Decimal:
    """Mark what is refunded on the lines (quantity and value) and return the money refunded."""
    merchandise = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    keep = (merchandise - order.discount) / merchandise if merchandise else Decimal(0)
    remaining_total = order.total - order.refunded_amount
    if remaining_total <= 0:
        raise Conflict("This order is already fully refunded.", code="already_refunded",
                       fields={"order_id": "Already fully refunded."})
    q4 = Decimal("0.0001")

    def net_left(line: OrderLine) -> Decimal:
        return max(line.unit_price * line.quantity * keep - line.refunded_value, Decimal(0))

    if refund.lines:
        errors: dict[str, str] = {}
        wanted: dict[str, int] = defaultdict(int)
        for index, item in enumerate(refund.lines):
            wanted[item.sku] += item.quantity
            matching = [line for line in lines if line.sku == item.sku]
            if not matching:
                errors[f"lines.{index}.sku"] = "This order has no line with this SKU."
        for index, item in enumerate(refund.lines):
            left = sum(line.quantity - line.refunded_quantity for line in lines if line.sku == item.sku)
            if item.sku in wanted and wanted[item.sku] > left and f"lines.{index}.sku" not in errors:
                errors[f"lines.{index}.quantity"] = f"Only {left} left to refund."
        if errors:
            raise Invalid("Some refund lines are invalid.", fields=errors)
        value = Decimal(0)
        for sku, quantity in wanted.items():
            for line in lines:
                if line.sku != sku or quantity == 0:
                    continue
                take = min(quantity, line.quantity - line.refunded_quantity)
                part = (line.unit_price * take * keep).quantize(q4)
                if line.refunded_quantity + take == line.quantity:
                    part = net_left(line)  # the last unit takes whatever rounding left
                line.refunded_quantity += take
                line.refunded_value += part
                value += part
                quantity -= take
        amount = min(value.quantize(quantum(order.currency), rounding=ROUND_HALF_UP), remaining_total)
    else:
        amount = remaining_total if refund.amount is None else refund.amount
        if amount > remaining_total:
            raise Invalid(f"At most {money_str(remaining_total, order.currency)} can still be refunded.",
                          fields={"amount": f"At most {money_str(remaining_total, order.currency)} is left."})
        left_values = [net_left(line) for line in lines]
        merch_left = sum(left_values, Decimal(0))
        to_spread = merch_left if refund.amount is None else min(amount, merch_left)
        spread = Decimal(0)
        for position, (line, left) in enumerate(zip(lines, left_values, strict=True)):
            if not merch_left:
                break
            share = (to_spread * left / merch_left).quantize(q4)
            if position == len(lines) - 1:
                share = to_spread - spread
            line.refunded_value += share
            spread += share
            if refund.amount is None:
                line.refunded_quantity = line.quantity
    OrderLine.objects.bulk_update(lines, ["refunded_quantity", "refunded_value"])
    return amount


# --- Other activities (signup, birthday, reviews, surveys, referrals, partner events) -----------------


@dataclass(frozen=True)
class ActivityInput:
    member_id: int
    type: str
    source_key: str
    occurred_at: datetime
    description: str
    partner: Partner | None = None
    properties: dict | None = None
    pending_until: datetime | None = None


def activities_record(*, items: list[ActivityInput]) -> list[ActivityResult]:
    """Store activities and award what the rules give for them; an activity whose ``source_key``
    was seen before is not stored or rewarded again."""
    if not items:
        return []
    program = current_program()
    now = timezone.now()
    with transaction.atomic():
        balances = lock_members(item.member_id for item in items)
        # The unique source key decides what is new, also against a concurrent copy.
        inserted = bulk.insert_new(Activity, ACTIVITY_FIELDS, [
            (item.member_id, item.partner.pk if item.partner else None, item.type, item.source_key, item.occurred_at,
             bulk.json_text(item.properties or {}), now)
            for item in items
        ], unique="source_key")
        results: list[ActivityResult | None] = [None] * len(items)
        repeated = [index for index, item in enumerate(items) if item.source_key not in inserted]
        if repeated:
            known = {a.source_key: a for a in Activity.objects.filter(
                source_key__in=[items[index].source_key for index in repeated])}
        posting = Posting(balances, now=now)
        caps = CapTracker(program, balances.keys(), [item.occurred_at for item in items])
        awards: list[tuple] = []
        claimed = set()
        for index, item in enumerate(items):
            activity_id = inserted.get(item.source_key)
            if activity_id is None or item.source_key in claimed:
                activity = known.get(item.source_key) if repeated else None
                results[index] = ActivityResult(activity, created=False, activity_id=activity.pk if activity else None)
                continue
            claimed.add(item.source_key)
            occasion = rules.Occasion(activity_type=item.type, at=item.occurred_at,
                                      partner_id=item.partner.pk if item.partner else None)
            earning = _evaluate_award(program=program, caps=caps, member_id=item.member_id,
                                      activity_id=activity_id, occasion=occasion, description=item.description,
                                      pending_until=item.pending_until, now=now, awards=awards)
            _post_earning(posting, earning)
            results[index] = ActivityResult(None, created=True, award=earning.award, activity_id=activity_id)
        posting.flush()
        bulk.insert(PointsAward, AWARD_FIELDS, awards, ids=False)
    return results


def activity_record(*, member: Member, type: str, source_key: str, description: str,
                    occurred_at: datetime | None = None, partner: Partner | None = None,
                    properties: dict | None = None, pending_until: datetime | None = None) -> ActivityResult:
    return activities_record(items=[ActivityInput(
        member_id=member.pk, type=type, source_key=source_key, occurred_at=occurred_at or timezone.now(),
        description=description, partner=partner, properties=properties, pending_until=pending_until,
    )])[0]


def event_record(*, partner: Partner, event: EventInput) -> ActivityResult:
    """A partner's custom event (``app_installed``...) for rules of that type to reward."""
    link = ExternalId.objects.filter(partner=partner, external_id=event.member).values("member_id").first()
    if link is None:
        raise Invalid("Unknown member.", code="unknown_member",
                      fields={"member": f"No member with external_id {event.member!r}."})
    source_key = f"event:{partner.pk}:{event.event_id}"
    result = activities_record(items=[ActivityInput(
        member_id=link["member_id"], type=event.type, source_key=source_key, occurred_at=event.occurred_at,
        description=event.type.replace("_", " ").capitalize(), partner=partner, properties=event.properties,
    )])[0]
    if not result.created:
        if result.activity.type != event.type or result.activity.member_id != link["member_id"]:
            raise Conflict("This event id was already used for a different event.", code="event_exists",
                           fields={"event_id": "Already used for a different event."})
        result.award = _award_of_recorded(result.activity.pk, _points_of(result.activity.pk))
    result.activity_id = result.activity_id or (result.activity.pk if result.activity else None)
    return result


def _points_of(activity_id: int) -> int:
    return PointsAward.objects.filter(activity_id=activity_id).aggregate(total=Sum("points"))["total"] or 0


# --- Adjustments -------------------------------------------------------------------------------------


def points_adjust(*, member: Member, points: int, reason: str, actor_user: User | None = None,
                  actor_partner: Partner | None = None) -> LedgerEntry:
    """Credit or debit points by hand, with a reason; recorded with who did it, before and after.

    A debit never takes more than is available (``Conflict``); a credit repays owed points first.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("A reason is required.", fields={"reason": "A reason is required."})
    if not points:
        raise Invalid("Points must not be zero.", fields={"points": "Must not be zero."})
    program = current_program()
    with transaction.atomic():
        balances = lock_members([member.pk])
        before = balances[member.pk].available
        posting = Posting(balances)
        who = {"actor_user": actor_user, "actor_partner": actor_partner, "reason": reason}
        if points > 0:
            entry = posting.credit_available(member.pk, points, kind=EntryKind.ADJUST, description="Adjustment",
                                             expires_at=program.expires_at(posting.now), **who)
        else:
            entry = posting.debit_available(member.pk, -points, kind=EntryKind.ADJUST, description="Adjustment", **who)
        posting.flush()
        AuditLog.objects.create(
            action="points.adjusted", member=member, actor_user=actor_user, actor_partner=actor_partner,
            subject=f"ledger_entry:{entry.pk}", before={"available": before},
            after={"available": balances[member.pk].available, "points": points}, reason=reason,
        )
    return LedgerEntry.objects.get(pk=entry.pk)


# --- Rewards and coupons -----------------------------------------------------------------------------


def coupon_code_generate() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_coupon_code(code: str) -> str:
    raw = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}" if len(raw) == 12 else raw


def reward_check(*, reward: Reward, member: Member, now: datetime | None = None) -> str | None:
    """Why ``member`` cannot redeem ``reward`` now (None when they can), without the balance."""
    now = now or timezone.now()
    if not reward.is_active:
        return "This reward is not offered any more."
    if reward.valid_from and now < reward.valid_from:
        return f"Available from {timezone.localtime(reward.valid_from):%d %b %Y}."
    if reward.valid_to and now >= reward.valid_to:
        return "This reward has ended."
    if reward.stock is not None and reward.stock <= 0:
        return "Out of stock."
    return None


def reward_redeem(*, member: Member, reward: Reward, partner: Partner | None = None) -> Redemption:
    """Spend points on a reward and issue its coupon.

    Under the member's lock: the reward is open, in stock (decremented by a conditional update, so
    stock never goes below zero), within the member's limit, and affordable; the points leave the
    soonest-expiring lots. Twenty simultaneous redemptions by one member get exactly as many
    coupons as the balance pays for; the rest get ``Conflict``.
    """
    now = timezone.now()
    with transaction.atomic():
        balances = lock_members([member.pk])
        reward = Reward.objects.get(pk=reward.pk)
        problem = reward_check(reward=reward, member=member, now=now)
        if problem:
            raise Conflict(problem, code="reward_unavailable", fields={"reward": problem})
        if reward.per_member_limit is not None:
            taken = Redemption.objects.filter(member=member, reward=reward).count()
            if taken >= reward.per_member_limit:
                message = f"Limit reached: {reward.per_member_limit} per member."
                raise Conflict(message, code="limit_reached", fields={"reward": message})
        available = balances[member.pk].available
        if available < reward.points_cost:
            message = f"Not enough points: {available} available, {reward.points_cost} needed."
            raise Conflict(message, code="insufficient_points", fields={"reward": message})
        if reward.stock is not None:
            taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
            if not taken:
                raise Conflict("Out of stock.", code="out_of_stock", fields={"reward": "Out of stock."})
        posting = Posting(balances, now=now)
        entry = posting.debit_available(member.pk, reward.points_cost, kind=EntryKind.REDEEM,
                                        description=f"Redeemed: {reward.name}", actor_partner=partner)
        posting.touch_activity(member.pk, now)
        posting.flush()
        redemption = Redemption.objects.create(member=member, reward=reward, points=reward.points_cost,
                                               entry_id=entry.pk, partner=partner, created_at=now)
        for _ in range(5):
            try:
                with transaction.atomic():
                    Coupon.objects.create(
                        code=coupon_code_generate(), redemption=redemption, member=member, reward=reward,
                        expires_at=now + timedelta(days=reward.coupon_valid_days), created_at=now,
                    )
                break
            except IntegrityError:
                continue  # 31^12 codes: a collision is rare enough to just draw again
    return Redemption.objects.select_related("coupon", "reward").get(pk=redemption.pk)


def coupon_use(*, code: str, partner: Partner, order_id: str = "") -> Coupon:
    """Mark a coupon used, once: a single conditional UPDATE, so two checkouts cannot both win."""
    code = normalize_coupon_code(code)
    now = timezone.now()
    used = Coupon.objects.filter(code=code, used_at__isnull=True, expires_at__gt=now).update(
        used_at=now, used_by=partner, used_order_id=order_id[:100]
    )
    coupon = Coupon.objects.select_related("reward", "member").filter(code=code).first()
    if coupon is None:
        raise NotFound("No such coupon.", code="unknown_coupon", fields={"code": "No such coupon."})
    if not used:
        if coupon.used_at is not None:
            raise Conflict("This coupon was already used.", code="coupon_used", fields={"code": "Already used."})
        raise Conflict("This coupon has expired.", code="coupon_expired", fields={"code": "Expired."})
    return coupon


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


# --- Program settings ----------------------------------------------------------------------------


def program_settings_update(*, actor_user: User | None, changes: dict, reason: str = "") -> ProgramSettings:
    """Change the points settings; the old and new values go to the audit log."""
    with transaction.atomic():
        current, _ = ProgramSettings.objects.select_for_update().get_or_create(pk=1)
        before = {key: str(getattr(current, key)) for key in changes}
        for key, value in changes.items():
            setattr(current, key, value)
        current.full_clean()
        current.save()
        AuditLog.objects.create(action="program.settings_changed", actor_user=actor_user, subject="program_settings",
                                before=before, after={key: str(value) for key, value in changes.items()},
                                reason=reason)
        transaction.on_commit(forget_program)
    forget_program()
    return current


# --- Earning rules -------------------------------------------------------------------------------


def earning_rule_problems(*, rule: EarningRule, partner_ids: list[int]) -> dict[str, list[str]]:
    """What is wrong with a rule, by field: missing values for its kind, impossible dates, or a
    contradiction with an active rule (see ``rewards.rules.conflicts``)."""
    problems: dict[str, list[str]] = defaultdict(list)
    is_order = rule.activity_type == ActivityType.ORDER
    if not _ACTIVITY_TYPE.match(rule.activity_type or ""):
        problems["activity_type"].append("Use lower-case letters, digits and underscores.")
    if rule.kind == RuleKind.PER_CURRENCY:
        if not rule.points_per_unit or rule.points_per_unit <= 0:
            problems["points_per_unit"].append("A per-currency rule needs points per unit above zero.")
        if not is_order:
            problems["activity_type"].append("Points per currency unit only apply to orders.")
        if rule.currency and not is_currency(rule.currency.upper()):
            problems["currency"].append("Unknown currency; use an ISO 4217 code such as EUR.")
    elif rule.kind == RuleKind.FIXED:
        if not rule.points:
            problems["points"].append("A fixed rule needs a number of points.")
    elif rule.kind == RuleKind.MULTIPLIER:
        if not rule.multiplier or rule.multiplier <= 0:
            problems["multiplier"].append("A multiplier rule needs a multiplier above zero (2 = double points).")
    if rule.kind != RuleKind.FIXED and rule.points:
        problems["points"].append("Only fixed rules give fixed points.")
    if rule.kind != RuleKind.PER_CURRENCY and rule.points_per_unit:
        problems["points_per_unit"].append("Only per-currency rules use points per unit.")
    if rule.kind != RuleKind.MULTIPLIER and rule.multiplier:
        problems["multiplier"].append("Only multiplier rules multiply.")
    if not is_order and (rule.categories or rule.skus or rule.min_order_value is not None):
        problems["activity_type"].append("Categories, SKUs and a minimum order value only apply to orders.")
    if rule.kind == RuleKind.FIXED and (rule.categories or rule.skus):
        problems["categories"].append("Fixed points are per order; limit them with a minimum order value instead.")
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        problems["ends_at"].append("Must be after the start.")
    if rule.is_active and not problems:
        program = current_program()
        spec = rule_spec(rule, program_currency=program.settings.currency, partner_ids=partner_ids)
        others = [s for s in load_program().specs if s.id != rule.pk]
        for message in rules.conflicts(spec, others):
            problems["priority"].append(message)
    return dict(problems)


def earning_rule_save(*, rule: EarningRule, partner_ids: list[int] | None = None,
                      actor_user: User | None = None) -> EarningRule:
    """Save a rule after checking it; every process applies it within seconds."""
    partner_ids = list(partner_ids if partner_ids is not None else (rule.partners.values_list("pk", flat=True)
                                                                    if rule.pk else []))
    problems = earning_rule_problems(rule=rule, partner_ids=partner_ids)
    if problems:
        raise Invalid("This rule cannot be saved.", fields=problems)
    with transaction.atomic():
        created = rule.pk is None
        rule.save()
        rule.partners.set(partner_ids)
        snapshot = rule_spec(rule, program_currency="", partner_ids=partner_ids).to_json()
        AuditLog.objects.create(action="rule.created" if created else "rule.changed", actor_user=actor_user,
                                subject=f"earning_rule:{rule.pk}", after=snapshot)
        transaction.on_commit(forget_program)
    forget_program()
    return rule


def birthdays_award(*, today: date | None = None, batch_size: int = 1000) -> int:
    """Record a birthday activity for members whose birthday is today in the program's time zone
    (29 February birthdays count on 28 February in other years). Once per member per year."""
    program = current_program()
    today = today or timezone.now().astimezone(program.tz).date()
    wanted = Q(birthday__month=today.month, birthday__day=today.day)
    if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
        wanted |= Q(birthday__month=2, birthday__day=29)
    noon = datetime(today.year, today.month, today.day, 12, tzinfo=program.tz)
    member_ids = list(Member.objects.filter(wanted, erased_at__isnull=True).order_by("pk").values_list("pk", flat=True))
    created = 0
    for start in range(0, len(member_ids), batch_size):
        results = activities_record(items=[
            ActivityInput(member_id=member_id, type=ActivityType.BIRTHDAY, occurred_at=noon,
                          source_key=f"birthday:{member_id}:{today.year}", description="Happy birthday!")
            for member_id in member_ids[start:start + batch_size]
        ])
        created += sum(1 for result in results if result.created)
    return created
