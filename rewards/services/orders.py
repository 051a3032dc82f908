"""Orders and refunds: recording them once, awarding their points, reversing them exactly."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ExternalId, Member, Partner
from accounts.selectors import partner_member_ids
from core import bulk, events
from core.errors import Conflict, Invalid, NotFound
from rewards import rules
from rewards.currencies import money_str, quantum
from rewards.ledger import Posting, credits_sql, lock_and_claim, lock_members
from rewards.models import (
    Activity,
    ActivityType,
    EntryKind,
    LedgerEntry,
    Order,
    OrderLine,
    OrderStatus,
    PointsAward,
    Refund,
)
from rewards.payloads import OrderInput, RefundInput
from rewards.program import current_program
from rewards.selectors import CapTracker, member_rule_ids, member_tier_ids, partner_tier_ids
from rewards.services.earning import (
    ACTIVITY_FIELDS,
    AWARD_FIELDS,
    Earning,
    OrderResult,
    award_of_recorded,
    evaluate_award,
    post_earning,
)
from rewards.services.progress_hook import progress_check_after_commit

# --- Orders ------------------------------------------------------------------------------------------


def _rejected(order: OrderInput, *, code: str, message: str, fields: dict) -> OrderResult:
    return OrderResult(order.order_id, order.member, "rejected", error={
        "code": code, "message": message, "fields": {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
    })


def orders_record(*, partner: Partner, orders: list[OrderInput],
                  member_ids: dict[str, int] | None = None) -> list[OrderResult]:
    """Record orders and award their points, each order on its own.

    ``member_ids``: ``{external id: member id}`` for the orders' customers when the caller has just
    read them (an import, after ``members_ensure_for_partner``): a batch that locks its members
    late does not read them again. A customer missing from it is an unknown member.

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
    # One order carries its request's idempotency record, if it has one, in the write it makes.
    carry = bulk.carried() if len(todo) == 1 else None
    if todo and not _record_orders_at_once(partner=partner, program=program, orders=orders, todo=todo,
                                           results=results, carry=carry):
        # No savepoint in a caller's transaction: nothing in here raises for a duplicate, so the
        # two can be one; but a carried row whose key is taken raises, and undoes only this. A few
        # orders: their writes go out in one PostgreSQL pipeline, which waits only where a result is
        # read. (The pipeline sits inside the transaction: around it, psycopg refuses to switch
        # autocommit back while the pipeline still holds the COMMIT's answer: a 500 on every call.)
        with (transaction.atomic(savepoint=carry is not None),
              bulk.pipeline() if len(todo) < LOCK_LATE_FROM else nullcontext()):
            _record_orders(partner=partner, program=program, orders=orders, todo=todo, results=results,
                           member_ids=member_ids)
            if carry is not None and results[todo[0]].status == "accepted":
                carry.store(results[todo[0]])
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
    progress_check_after_commit(member_ids=[r.member_id for r in results if r.status == "accepted"],
                                activity_types=[ActivityType.ORDER])
    return results


# Batches at least this big lock their members only for the last writes, so that two batches
# touching some of the same customers do not wait on each other for the whole batch.
LOCK_LATE_FROM = 50


def _record_orders(*, partner, program, orders, todo, results, member_ids=None) -> None:
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
        balances = None
        links = member_ids if member_ids is not None else partner_member_ids(partner, {orders[i].member for i in todo})
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
    tier_ids = member_tier_ids({links[orders[i].member] for i in fresh}) if program.rules_need_tiers else {}
    given = member_rule_ids({links[orders[i].member] for i in fresh}) if program.rules_need_members else {}
    awards: list[tuple] = []
    earnings: list[Earning] = []
    order_rows = []
    for index in fresh:
        order, activity_id = orders[index], inserted[source[index]]
        occasion = rules.Occasion(activity_type=ActivityType.ORDER, at=order.placed_at, partner_id=partner.pk,
                                  currency=order.currency, lines=rules.order_line_values(order, order.lines),
                                  tier_id=tier_ids.get(links[order.member]),
                                  rule_ids=given.get(links[order.member], frozenset()))
        earning = evaluate_award(
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
        results[index] = OrderResult(order.order_id, order.member, "accepted", award=earning.award,
                                     member_id=earning.member_id)

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
        post_earning(posting, earning)
    posting.flush()


@functools.cache
def _at_once_sql(*, carried: str = "", spendable: bool = False) -> str:
    """The one statement of ``_record_orders_at_once``, made once per shape: with a carried row
    (``core.bulk.Carry``) or not, with points spendable at once (``credits_sql``) or only pending.
    Parameters, in order: the time of writing, the specs of the rules applied as one JSON array,
    the orders as another, of objects (``_AT_ONCE_ORDER`` names their fields; ``applied`` holds
    ``[spec's index, points]`` pairs), the lines as a third (``_AT_ONCE_LINE``), the partner three
    times, the carried row. The same text for any number of orders and lines, so PostgreSQL
    prepares it once. The pending-only texts (an API order in its return window) are short enough
    for psycopg to keep their conversion (at most 4,096 bytes and 50 parameters; converting again
    cost 0.27 ms of each call's 2.3); the spendable ones are longer, converted once per call."""
    activity, order, line = Activity._meta.db_table, Order._meta.db_table, OrderLine._meta.db_table
    member, link = Member._meta.db_table, ExternalId._meta.db_table
    now = "(TABLE p)"
    # v: the orders, w: their lines (short names: the text stays under psycopg's 4,096 bytes). m
    # looks each customer up by the index (LIMIT keeps it a nested loop: the planner takes the JSON
    # for 100 orders, and scanned all the partner's customers for them, 1.1 ms).
    sql = f"""
WITH p AS (SELECT %s::timestamptz AS now),
r AS (SELECT %s::jsonb AS s),
v AS (SELECT * FROM json_to_recordset(%s::json) AS v({_AT_ONCE_ORDER})),
w AS (SELECT * FROM json_to_recordset(%s::json) AS w({_AT_ONCE_LINE})),
m AS (
    SELECT x.external_id, m.id AS member_id{", m.points_owed AS owed" if spendable else ""}
    FROM (SELECT DISTINCT external_id FROM v) e
    JOIN LATERAL (SELECT x.external_id, x.member_id FROM "{link}" x
                  WHERE x.partner_id = %s AND x.external_id = e.external_id LIMIT 1) x ON true
    JOIN "{member}" m ON m.id = x.member_id
    ORDER BY m.id FOR NO KEY UPDATE OF m
),
a AS (
    INSERT INTO "{activity}" (member_id, partner_id, type, source_key, occurred_at, properties, created_at)
    SELECT m.member_id, %s, '{ActivityType.ORDER.value}', v.source_key, v.placed_at, '{{}}'::jsonb, {now}
    FROM v JOIN m ON m.external_id = v.external_id
    ON CONFLICT (source_key) DO NOTHING RETURNING id, source_key, member_id
),
o AS (
    INSERT INTO "{order}" (activity_id, partner_id, order_id, member_id, placed_at, currency, total, shipping, tax,
                           discount, refunded_amount, status, points, rules_applied, content_hash, created_at)
    SELECT a.id, %s, v.order_id, a.member_id, v.placed_at, v.currency, v.total, v.shipping, v.tax, v.discount,
           0, '{OrderStatus.PLACED.value}', v.points, COALESCE((
               -- rules_applied: each [spec, points] pair as {{"rule": spec, "points": points}}, in order
               SELECT jsonb_agg(jsonb_build_object('rule', r.s->(e.x->>0)::int, 'points', e.x->1) ORDER BY e.n)
               FROM r, jsonb_array_elements(v.applied) WITH ORDINALITY e(x, n)), '[]'), v.content_hash, {now}
    FROM a JOIN v ON v.source_key = a.source_key
),
l AS (
    INSERT INTO "{line}" (order_id, position, sku, name, category, quantity, unit_price, refunded_quantity,
                          refunded_value)
    SELECT a.id, w.position, w.sku, w.name, w.category, w.quantity, w.unit_price, 0, 0
    FROM a JOIN w ON w.source_key = a.source_key
),
credits AS (
    SELECT a.member_id,{" m.owed," if spendable else ""} a.id AS activity_id, v.points, v.available_at, v.expires_at,
           v.description, v.placed_at AS effective_at
    FROM a JOIN v ON v.source_key = a.source_key{" JOIN m ON m.member_id = a.member_id" if spendable else ""}
    WHERE v.points > 0
),
{credits_sql(source="credits", now=now, spendable=spendable)}{f", carried AS ({carried})" if carried else ""}
SELECT v.source_key, m.member_id, a.id FROM v
LEFT JOIN m ON m.external_id = v.external_id LEFT JOIN a ON a.source_key = v.source_key
"""
    # No indents, comments, or spaces after commas and around = (no literal in it has one), as short.
    lines = (line.strip() for line in sql.splitlines())
    short = "\n".join(line for line in lines if line and not line.startswith("--"))
    return short.replace(", ", ",").replace(" = ", "=")


_AT_ONCE_ORDER = ("source_key text, external_id text, order_id text, placed_at timestamptz, currency text, "
                  "total numeric, shipping numeric, tax numeric, discount numeric, points bigint, applied jsonb, "
                  "content_hash text, available_at text, expires_at text, description text")
_AT_ONCE_LINE = ("source_key text, position integer, sku text, name text, category text, quantity integer, "
                 "unit_price numeric")


def _record_orders_at_once(*, partner, program, orders, todo, results, carry: bulk.Carry | None = None) -> bool:
    """Orders on PostgreSQL, one or a thousand, in one SQL statement: locks the members (in key
    order), inserts activities (the unique source key turns away copies), orders, lines, and the
    ledger's entries, lots, events and balances (``credits_sql``: pending points, or points
    spendable at once that repay a debt first), all at once. Each order's data goes over once, not
    once per table it lands in, and nothing comes back but the ids. Returns False, having written
    nothing, when the orders need the general path: SQLite, a capped order rule (caps read what was
    earned today under the lock), a members-only rule (a campaign's multiplier). Being one
    statement, it is atomic without a transaction around it: no BEGIN and COMMIT round trips.
    ``carry``, for one order: a row to write in the statement if the order is recorded."""
    # Members-only rules (a campaign's multiplier) need the members before anything is written.
    if not bulk.writes_in_one_statement() or program.rules_need_members or any(
        s.cap_per_day is not None or s.cap_per_month is not None
        for s in program.specs if s.activity_type == ActivityType.ORDER
    ):
        return False
    now = timezone.now()
    # Tier-only rules (a Gold multiplier) need the members' tiers before anything is written.
    tiers = partner_tier_ids(partner, {orders[i].member for i in todo}) if program.rules_need_tiers else {}
    caps = CapTracker(program, (), ())  # no capped order rule here: nothing to read
    plans = []
    for index in todo:
        order = orders[index]
        occasion = rules.Occasion(activity_type=ActivityType.ORDER, at=order.placed_at, partner_id=partner.pk,
                                  currency=order.currency, lines=rules.order_line_values(order, order.lines),
                                  tier_id=tiers.get(order.member))
        # The same evaluation as every other path; the member and activity ids come from the statement.
        earning = evaluate_award(program=program, caps=caps, member_id=0, activity_id=0, occasion=occasion,
                                 description=f"Order {order.order_id}",
                                 pending_until=program.available_at(order.placed_at), now=now, awards=[])
        plans.append((index, f"order:{partner.pk}:{order.order_id}", earning.award, earning.results))
    # Activities go in in key order, as bulk.insert_new puts them: two statements sharing orders cannot deadlock.
    plans.sort(key=lambda plan: plan[1])
    order_rows, line_rows, specs = [], [], {}
    for index, source_key, award, given in plans:
        order = orders[index]
        # Pending points carry the time they become available; points spendable now carry none.
        available_at = award.available_at.isoformat() if award.pending and award.available_at else None
        expires_at = award.expires_at.isoformat() if award.expires_at else None
        # Times as isoformat() writes them (microseconds kept), amounts as str() does: exact in JSON.
        order_rows.append({
            "source_key": source_key, "external_id": order.member, "order_id": order.order_id,
            "placed_at": order.placed_at.isoformat(), "currency": order.currency, "total": str(order.total),
            "shipping": str(order.shipping), "tax": str(order.tax), "discount": str(order.discount),
            # The rules applied, as [spec, points] pairs: each spec goes over once (three quarters of
            # the bytes were the same specs again), and the statement makes rules_applied of them.
            "points": award.points, "applied": [[specs.setdefault(r.spec, len(specs)), r.points] for r in given],
            "content_hash": order.content_hash(), "available_at": available_at, "expires_at": expires_at,
            "description": f"Order {order.order_id}",
        })
        line_rows += [{"source_key": source_key, "position": position, "sku": line.sku, "name": line.name,
                       "category": line.category, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                      for position, line in enumerate(order.lines)]
    spendable = any(award.points > 0 and not award.pending for _index, _key, award, _given in plans)
    sql = _at_once_sql(carried=carry.statement_sql(after="a") if carry else "", spendable=spendable)
    params = [now, "[" + ",".join(map(rules.spec_json_text, specs)) + "]", json.dumps(order_rows),
              json.dumps(line_rows), partner.pk, partner.pk, partner.pk]
    if carry:
        index, _source_key, award, _given = plans[0]
        params += carry.row(OrderResult(orders[index].order_id, orders[index].member, "accepted", award=award))
    with carry.statement() if carry else nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        outcome = {source_key: (member_id, activity_id) for source_key, member_id, activity_id in cursor.fetchall()}
    seen = []
    for index, source_key, award, _plan in plans:
        order = orders[index]
        member_id, activity_id = outcome[source_key]
        if member_id is None:
            results[index] = _rejected(order, code="unknown_member", message="Unknown member.",
                                       fields={"member": f"No member with external_id {order.member!r}."})
        elif activity_id is None:
            seen.append(index)
        else:
            results[index] = OrderResult(order.order_id, order.member, "accepted", award=award, member_id=member_id)
            if carry:
                carry.done = True  # the statement wrote it beside the order
    if seen:
        _report_recorded(partner, orders, seen, results)
    events.relay_after_commit()
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
                                         award=award_of_recorded(known["activity_id"], known["points"], rules_given))


ORDER_FIELDS = ("activity_id", "partner_id", "order_id", "member_id", "placed_at", "currency", "total", "shipping",
                "tax", "discount", "refunded_amount", "status", "points", "rules_applied", "content_hash",
                "created_at")
LINE_FIELDS = ("order_id", "position", "sku", "name", "category", "quantity", "unit_price", "refunded_quantity",
               "refunded_value")


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
        raise NotFound(f"No order {order_id!r}.", code="unknown_order", fields={"order_id": _("No such order.")})
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
                                  currency=order.currency, lines=rules.order_line_values(order, lines))
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
            posting.reverse_earning(order.member_id, reverse, earn=earn, activity=activity,
                                    description=f"Refund {refund.refund_id} of order {order.order_id}")
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
    progress_check_after_commit(member_ids=[order.member_id], activity_types=[ActivityType.REFUND])
    return RefundResult(refund.refund_id, order.order_id, "accepted", amount, order.currency, reverse, order.points,
                        order.status)


def _refund_replay(order: Order, done: Refund, refund: RefundInput) -> RefundResult:
    sent_lines = [{"sku": line.sku, "quantity": line.quantity} for line in refund.lines]
    sent = sent_lines + ([{"amount": str(refund.amount)}] if refund.amount is not None else [])
    if sent != done.lines:
        raise Conflict(_("This refund id was already used for a different refund."), code="refund_exists",
                       fields={"refund_id": _("Already used for a different refund.")})
    return RefundResult(done.refund_id, order.order_id, "duplicate", done.amount, order.currency, done.points_reversed,
                        order.points, order.status)


def _apply_refund_to_lines(order: Order, lines: list[OrderLine], refund: RefundInput) -> Decimal:
    """Mark what is refunded on the lines (quantity and value) and return the money refunded."""
    merchandise = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    keep = (merchandise - order.discount) / merchandise if merchandise else Decimal(0)
    remaining_total = order.total - order.refunded_amount
    if remaining_total <= 0:
        raise Conflict(_("This order is already fully refunded."), code="already_refunded",
                       fields={"order_id": _("Already fully refunded.")})
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
            raise Invalid(_("Some refund lines are invalid."), fields=errors)
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
