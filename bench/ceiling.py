"""The raw-SQL ceiling for batch ingest: the same orders, the same tables, the same work, written
by hand with psycopg and no framework, so that ``/orders/batch/`` can be read as a ratio to it.

Per batch of 1,000 orders, in one transaction, as the pipeline does: parse the JSON, lock the
partner's members in key order (``FOR NO KEY UPDATE``), insert the activities (the unique source key
turns copies away), then with COPY the orders, their lines, one pending ledger entry per order and
its ``points.earned`` outbox row, and raise the pending balances with one ``UPDATE ... FROM
unnest``. The points follow the bench program's three rules (1 per EUR, tea x2, 50 over 80 EUR),
computed inline. Two processes, like the two clients and two server workers of the ingest row.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import psycopg
from psycopg.types.json import Jsonb


def _points(lines) -> int:
    total, tea = Decimal(0), Decimal(0)
    for line in lines:
        value = Decimal(line["unit_price"]) * line["quantity"]
        total += value
        if line["category"] == "tea":
            tea += value
    points = int(total.to_integral_value(ROUND_DOWN)) + int(tea.to_integral_value(ROUND_DOWN))
    return points + (50 if total >= 80 else 0)


def _ingest(args) -> int:
    url, partner_id, bodies, outbox = args
    written = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for body in bodies:
            orders = json.loads(body)["orders"]
            now = datetime.now(UTC)
            with conn.transaction():
                cur.execute(
                    "SELECT x.external_id, m.id FROM accounts_member m "
                    "JOIN accounts_externalid x ON x.member_id = m.id WHERE x.partner_id = %s "
                    "AND x.external_id = ANY(%s) ORDER BY m.id FOR NO KEY UPDATE OF m",
                    [partner_id, sorted({o["member"] for o in orders})],
                )
                members = dict(cur.fetchall())
                known = [o for o in orders if o["member"] in members]
                keys = [f"order:{partner_id}:{o['order_id']}" for o in known]
                placed = [datetime.fromisoformat(o["placed_at"]) for o in known]
                cur.execute(
                    "INSERT INTO rewards_activity (member_id, partner_id, type, source_key, occurred_at, properties, "
                    "created_at) SELECT m, %s, 'order', k, t, '{}'::jsonb, %s "
                    "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(m, k, t) "
                    "ON CONFLICT (source_key) DO NOTHING RETURNING id, source_key",
                    [partner_id, now, [members[o["member"]] for o in known], keys, placed],
                )
                activity = dict((key, pk) for pk, key in cur.fetchall())
                gains: dict[int, int] = {}
                with cur.copy("COPY rewards_order (activity_id, partner_id, order_id, member_id, placed_at, currency, "
                              "total, shipping, tax, discount, refunded_amount, status, points, rules_applied, "
                              "content_hash, created_at) FROM STDIN") as copy:
                    fresh = []
                    for o, key, at in zip(known, keys, placed, strict=True):
                        if key not in activity:
                            continue
                        points = _points(o["lines"])
                        member = members[o["member"]]
                        fresh.append((o, activity[key], member, at, points))
                        gains[member] = gains.get(member, 0) + points
                        copy.write_row((activity[key], partner_id, o["order_id"], member, at, o["currency"],
                                        o["total"], 0, 0, 0, 0, "placed", points, "[]", "", now))
                with cur.copy("COPY rewards_orderline (order_id, position, sku, name, category, quantity, "
                              "unit_price, refunded_quantity, refunded_value) FROM STDIN") as copy:
                    for o, activity_id, _, _, _ in fresh:
                        for position, line in enumerate(o["lines"]):
                            copy.write_row((activity_id, position, line["sku"], line["name"], line["category"],
                                            line["quantity"], line["unit_price"], 0, 0))
                available_at = now + timedelta(days=14)
                with cur.copy("COPY rewards_ledgerentry (member_id, kind, available_delta, pending_delta, owed_delta, "
                              "activity_id, available_at, description, reason, effective_at, created_at) "
                              "FROM STDIN") as copy:
                    for o, activity_id, member, at, points in fresh:
                        copy.write_row((member, "earn", 0, points, 0, activity_id, available_at,
                                        f"Order {o['order_id']}", "", at, now))
                with cur.copy("COPY core_outboxevent (event_id, type, member_id, data, created_at) FROM STDIN") as copy:
                    for o, activity_id, member, _, points in fresh if outbox else ():
                        copy.write_row((f"evt_{uuid.uuid4().hex}", "points.earned", member,
                                        Jsonb({"points": points, "pending_delta": points, "activity_id": activity_id,
                                               "description": f"Order {o['order_id']}"}), now))
                cur.execute(
                    "UPDATE accounts_member m SET points_pending = m.points_pending + v.p "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, p) WHERE m.id = v.id",
                    [list(gains), list(gains.values())],
                )
                written += len(fresh)
    return written


def ceiling(url: str, partner_id: int, bodies: list[bytes], *, outbox: bool = True) -> float:
    """Orders per second for ``bodies`` (batches of orders as the API takes them), two processes;
    ``outbox=False`` leaves out the ``points.earned`` row (the ceiling as measured before the outbox)."""
    work = [bodies[0::2], bodies[1::2]]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        written = sum(pool.map(_ingest, [(url, partner_id, part, outbox) for part in work]))
        elapsed = time.perf_counter() - started
    expected = sum(len(json.loads(body)["orders"]) for body in bodies)
    assert written == expected, (written, expected)
    return written / elapsed
