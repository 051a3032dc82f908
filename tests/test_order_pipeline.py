"""The order pipeline has one evaluation (``evaluate_award``) and one ledger (``rewards.ledger``), written
two ways: on PostgreSQL orders go out in one SQL statement (``credits_sql``), on SQLite and where a
capped or members-only rule applies through ``Posting``. The same orders sent both ways must leave
the same rows: orders, lines, ledger entries, lots, balances and the events partners receive."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Member
from core import bulk
from core.models import OutboxEvent
from rewards.models import LedgerEntry, Order, OrderLine, PointsLot
from rewards.payloads import parse_order
from rewards.selectors import ledger_discrepancies
from rewards.services import orders_record
from tests.factories import (
    RuleFactory,
    customer,
    in_debt,
    make_tiers,
    order_payload,
    place_order,
    set_program,
)

pytestmark = pytest.mark.postgres

# Times with microseconds: the events must carry them as Python writes them (".500000", not ".5").
# Placed in the last days: their points wait out the 14-day return window.
_DAY = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
PLACED = [_DAY - timedelta(days=3) + timedelta(hours=9, microseconds=500000),
          _DAY - timedelta(days=2) + timedelta(hours=18, microseconds=123456), _DAY - timedelta(days=1)]
ORDERS = [  # order id, customer, lines (sku, quantity, unit price, category), when
    ("1001", "a", (("TEA-1", 2, "12.50", "tea"), ("CUP-1", 1, "8.00", "cups")), PLACED[0]),
    ("1002", "b", (("TEA-2", 1, "30.00", "tea"),), PLACED[1]),
    ("1003", "a", (("CUP-1", 3, "8.00", "cups"),), PLACED[2]),
    ("1004", "nobody", (("TEA-1", 1, "12.50", "tea"),), PLACED[2]),
    ("1001", "a", (("TEA-1", 2, "12.50", "tea"), ("CUP-1", 1, "8.00", "cups")), PLACED[0]),  # sent again
]


def _send(partner) -> list[tuple]:
    return [(r.status, r.award.points, r.award.pending, (r.error or {}).get("code"))
            for r in (place_order(partner, order_id, member, lines=lines, placed_at=when)
                      for order_id, member, lines, when in ORDERS)]


def _rows(partner) -> dict:
    members = {x: customer(partner, x) for x in ("a", "b")}
    by_id = {m.pk: x for x, m in members.items()}
    orders = Order.objects.filter(partner=partner).order_by("order_id")
    return {
        "orders": [(o.order_id, by_id[o.member_id], o.placed_at, o.total, o.points, o.status, o.content_hash,
                    o.rules_applied) for o in orders],
        "lines": list(OrderLine.objects.filter(order__partner=partner).order_by("order__order_id", "position")
                      .values_list("order__order_id", "position", "sku", "quantity", "unit_price", "category")),
        "entries": [(by_id[e.member_id], e.activity.order.order_id, e.kind, e.available_delta, e.pending_delta,
                     e.owed_delta, e.available_at, e.expires_at, e.description, e.effective_at)
                    for e in LedgerEntry.objects.filter(member__in=members.values())
                    .order_by("activity__order__order_id")],
        "events": sorted(((by_id[e.member_id], e.type, {k: v for k, v in e.data.items() if k != "activity_id"})
                          for e in OutboxEvent.objects.filter(member__in=members.values(), type="points.earned")),
                         key=lambda event: event[2]["description"]),
        "balances": [Member.objects.filter(pk=members[x].pk).values_list(
            "points_available", "points_pending", "points_owed", "last_activity_at").get() for x in ("a", "b")],
    }


def test_one_statement_and_the_general_path_write_the_same_rows(tea_shop, coffee_bar, monkeypatch):
    set_program(pending_days=14)
    tiers = make_tiers(("Bronze", 0), ("Gold", 10_000))
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Tea: 1 more per EUR", categories=["tea"])
    RuleFactory(name="Gold double", kind="multiplier", points_per_unit=None, multiplier=Decimal("2"), tiers=[tiers[1]])
    for partner in (tea_shop, coffee_bar):
        for x in ("a", "b"):
            customer(partner, x, email=f"{x}@{partner.pk}.example.com")

    with CaptureQueriesContext(connection) as one:
        tea = _send(tea_shop)  # each order in one statement
    monkeypatch.setattr(bulk, "writes_in_one_statement", lambda: False)
    with CaptureQueriesContext(connection) as general:
        coffee = _send(coffee_bar)  # each through Posting

    # 1001: 33 EUR + 25 of tea; 1002: 30 + 30; 1003: 24, no tea; nobody is Gold.
    assert tea == coffee == [("accepted", 58, True, None), ("accepted", 60, True, None),
                             ("accepted", 24, True, None), ("rejected", 0, False, "unknown_member"),
                             ("duplicate", 58, True, None)]
    assert _rows(tea_shop) == _rows(coffee_bar)
    first = _rows(tea_shop)
    assert first["balances"][0][:3] == (0, 82, 0) and first["balances"][1][:3] == (0, 60, 0)
    # Each rule applied with its whole spec, kept for refunds, in the order the rules ran.
    assert [(item["rule"]["name"], item["rule"]["kind"], item["points"]) for item in first["orders"][0][7]] == [
        ("1 per EUR", "per_currency", 33), ("Tea: 1 more per EUR", "per_currency", 25)]
    assert first["events"][0][2]["available_at"] == (PLACED[0] + timedelta(days=14)).isoformat()
    # The two writers really are two: one statement for each order sent, against several.
    writes = [sum(q["sql"].lstrip().upper().startswith(("INSERT", "WITH", "UPDATE")) for q in c.captured_queries)
              for c in (one, general)]
    assert writes[0] == 5 and writes[1] >= 3 * 4, writes


def _spendable_rows(members: dict) -> dict:
    by_id = {m.pk: x for x, m in members.items()}
    earned = LedgerEntry.objects.filter(member__in=members.values(), kind="earn", activity__order__isnull=False,
                                        activity__order__order_id__startswith="s")
    return {
        "entries": [(by_id[e.member_id], e.activity.order.order_id, e.available_delta, e.pending_delta,
                     e.owed_delta, e.available_at, e.expires_at, e.effective_at)
                    for e in earned.order_by("activity__order__order_id")],
        "lots": sorted((by_id[lot.member_id], lot.entry.activity.order.order_id, lot.points, lot.remaining,
                        lot.expires_at) for lot in PointsLot.objects.filter(entry__in=earned)),
        "events": sorted(((by_id[e.member_id], {k: v for k, v in e.data.items() if k != "activity_id"})
                          for e in OutboxEvent.objects.filter(member__in=members.values(), type="points.earned",
                                                              data__description__startswith="Order s")),
                         key=lambda event: (event[0], event[1]["description"])),
        "balances": [Member.objects.filter(pk=members[x].pk).values_list(
            "points_available", "points_pending", "points_owed").get() for x in sorted(members)],
    }


def test_a_batch_spendable_at_once_writes_the_same_rows_both_ways_and_repays_a_debt_first(tea_shop, coffee_bar,
                                                                                         monkeypatch):
    """Orders past their return window (an import of history, a store without one) are spendable at
    once: in one statement too, each repaying what the member owes before it opens a lot."""
    set_program(pending_days=14, expiry_policy="rolling", expiry_months=12, time_zone="UTC")
    RuleFactory(name="1 per EUR")
    old = _DAY - timedelta(days=40) + timedelta(microseconds=250000)
    batch = [  # order id, customer, EUR, when: the debtor's 50 and 40 repay the 80 owed, 10 left to spend
        ("s1", "debtor", "50.00", old), ("s2", "debtor", "40.00", old + timedelta(days=1)),
        ("s3", "debtor", "25.00", PLACED[0]), ("s4", "fresh", "30.00", old), ("s5", "fresh", "20.00", PLACED[1]),
        ("s1", "debtor", "50.00", old),  # twice in the batch
    ]
    members, answers, queries = {}, {}, {}
    for partner in (tea_shop, coffee_bar):
        members[partner] = {"debtor": in_debt(partner, "debtor"),
                            "fresh": customer(partner, "fresh", email=f"fresh@{partner.pk}.example.com")}
        orders = [parse_order(order_payload(order_id, who, lines=(("TEA-1", 1, eur, "cups"),), placed_at=when),
                              accepted_currencies={"EUR"}) for order_id, who, eur, when in batch]
        if partner == coffee_bar:
            monkeypatch.setattr(bulk, "writes_in_one_statement", lambda: False)
        with CaptureQueriesContext(connection) as captured:
            answers[partner] = [(r.status, r.award.points, r.award.pending)
                                for r in orders_record(partner=partner, orders=orders)]
        queries[partner] = captured.captured_queries
    monkeypatch.undo()

    assert answers[tea_shop] == answers[coffee_bar] == [
        ("accepted", 50, False), ("accepted", 40, False), ("accepted", 25, True), ("accepted", 30, False),
        ("accepted", 20, True), ("duplicate", 50, False)]
    first = _spendable_rows(members[tea_shop])
    assert first == _spendable_rows(members[coffee_bar])
    assert [row[:5] for row in first["entries"]] == [
        ("debtor", "s1", 0, 0, -50), ("debtor", "s2", 10, 0, -30), ("debtor", "s3", 0, 25, 0),
        ("fresh", "s4", 30, 0, 0), ("fresh", "s5", 0, 20, 0)]
    assert [lot[1:4] for lot in first["lots"]] == [("s2", 10, 10), ("s4", 30, 30)]
    assert first["balances"] == [(10, 25, 0), (30, 20, 0)]
    # The inactivity clock moves forward only: the debtor's stays at the redemption, after s3.
    for partner in (tea_shop, coffee_bar):
        debtor, fresh = (Member.objects.get(pk=m.pk).last_activity_at for m in members[partner].values())
        assert debtor == members[partner]["debtor"].last_activity_at > PLACED[0] and fresh == PLACED[1]
    assert first["events"][0][1] == {
        "points": 50, "available_delta": 0, "pending_delta": 0, "owed_delta": -50, "pending": False,
        "available_at": None, "expires_at": (old + timedelta(days=365)).isoformat(), "description": "Order s1",
        "reason": "", "actor_partner_id": None}
    # The two writers really are two: the batch in one statement, against several.
    writes = [sum(q["sql"].lstrip().upper().startswith(("INSERT", "WITH", "UPDATE", "COPY")) for q in queries[p])
              for p in (tea_shop, coffee_bar)]
    assert writes[0] == 1 and writes[1] >= 5, writes
    assert list(ledger_discrepancies()) == []


def test_the_one_statement_is_one_text_short_enough_for_psycopg_to_keep_converted():
    """psycopg turns a statement's placeholders into $1, $2... with a regular expression, and keeps
    the result only for texts of at most 4,096 bytes and 50 parameters: the order's statement was
    longer once, and converting it cost 0.27 ms of each call's 2.3. Whatever the orders and lines, for
    orders whose points wait out a return window (an API call's); a batch with points spendable at
    once sends a longer text, converted once per batch."""
    from psycopg import _queries

    from accounts.idempotency import FIELDS
    from accounts.models import IdempotencyRecord
    from rewards.services.orders import _at_once_sql

    carry = bulk.Carry(IdempotencyRecord, FIELDS, row=None, unique=("partner_id", "key"))
    for sql in (_at_once_sql(), _at_once_sql(carried=carry.statement_sql(after="a"))):
        assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
        assert sql.count("%s") + sql.count("%b") <= _queries.MAX_CACHED_STATEMENT_PARAMS
