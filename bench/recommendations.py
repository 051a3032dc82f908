"""Recommendations, evaluated offline on a synthetic store with a known answer.

The store sells 25 families of 8 products (2 consumables people buy again, 6 durables bought once);
each member keeps to a family of their own for most of what they buy, and takes the
rest from the whole catalogue by a long-tailed popularity. Each member's last order is held out:
the nightly computation sees the others (about 100,000 orders, 2% of them refunded in full), and
"for you" (top 10) is scored by whether it names anything of the held-out order, against the
popularity baseline (the 10 products most members bought, less what the member bought and cannot
buy again: the same rule). "Bought together" is checked against the families: how much of each
product's top 5 is of its own family.

Runs first, on the freshly migrated database, and removes its orders afterwards so that the other
parts count what they always counted.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

FAMILIES, PER_FAMILY, CONSUMABLES = 25, 8, 2
MEMBERS = 26_000  # more than needed: members are taken until the training orders reach 100,000
TRAINING_ORDERS = 100_000
OWN_FAMILY = 0.7  # the share of a member's items from their own family
PREFIX = "rec-bench-"


def _sku(family: int, n: int) -> str:
    return f"FAM{family:02d}-{n}"


def _store(rng: random.Random, member_ids: list[int], now):
    """Each member's orders, oldest first: (placed_at, [skus]), until the orders other than each
    member's last add up to TRAINING_ORDERS."""
    catalogue = [_sku(f, n) for f in range(FAMILIES) for n in range(PER_FAMILY)]
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(catalogue))]  # long-tailed popularity
    shuffled = catalogue[:]
    rng.shuffle(shuffled)
    popularity = dict(zip(shuffled, weights, strict=True))
    catalogue_weights = [popularity[sku] for sku in catalogue]
    histories: dict[int, list[tuple]] = {}
    training = 0
    for member_id in member_ids:
        if training >= TRAINING_ORDERS:
            break
        family = rng.randrange(FAMILIES)
        own = [_sku(family, n) for n in range(PER_FAMILY)]
        own_weights = [3 if n < CONSUMABLES else 1 for n in range(PER_FAMILY)]
        count = 2 + min(_poisson(rng, 3.0), 12)
        days = sorted(rng.sample(range(1, 360), count), reverse=True)
        had: set[str] = set()
        orders = []
        for day in days:
            items: set[str] = set()
            for _ in range(1 + sum(rng.random() < 0.4 for _ in range(3))):
                for _attempt in range(5):
                    if rng.random() < OWN_FAMILY:
                        sku = rng.choices(own, own_weights)[0]
                    else:
                        sku = rng.choices(catalogue, catalogue_weights)[0]
                    durable = int(sku.rsplit("-", 1)[1]) >= CONSUMABLES
                    if not (durable and sku in had):  # a durable is bought once
                        break
                items.add(sku)
            had |= items
            orders.append((now - timedelta(days=day, minutes=rng.randrange(1440)), sorted(items)))
        histories[member_id] = orders
        training += count - 1
    return histories, training


def _poisson(rng: random.Random, mean: float) -> int:
    import math

    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def _write(histories: dict[int, list[tuple]], rng: random.Random, now) -> None:
    """The training orders (all but each member's last), with their activities and lines, in bulk."""
    from accounts.models import Partner
    from core import bulk
    from rewards.models import Activity, Order, OrderLine

    partner_id = Partner.objects.order_by("pk").values_list("pk", flat=True).first()
    pending = [(member_id, n, placed, skus) for member_id, orders in histories.items()
               for n, (placed, skus) in enumerate(orders[:-1])]
    for start in range(0, len(pending), 10_000):
        part = pending[start:start + 10_000]
        keys = [f"{PREFIX}{member_id}-{n}" for member_id, n, _, _ in part]
        ids = bulk.insert(Activity, ("member_id", "partner_id", "type", "source_key", "occurred_at", "properties",
                                     "created_at"),
                          [(member_id, partner_id, "order", key, placed, "{}", now)
                           for key, (member_id, _, placed, _) in zip(keys, part, strict=True)])
        refunded = [rng.random() < 0.02 for _ in part]
        bulk.insert(Order, ("activity_id", "partner_id", "order_id", "member_id", "placed_at", "currency", "total",
                            "shipping", "tax", "discount", "refunded_amount", "status", "points", "rules_applied",
                            "content_hash", "created_at"),
                    [(pk, partner_id, key, member_id, placed, "EUR", Decimal(10 * len(skus)), 0, 0, 0,
                      Decimal(10 * len(skus)) if gone else 0, "refunded" if gone else "placed", 0, "[]", "", now)
                     for pk, key, (member_id, _, placed, skus), gone in zip(ids, keys, part, refunded, strict=True)],
                    ids=False)
        bulk.insert(OrderLine, ("order_id", "position", "sku", "name", "category", "quantity", "unit_price",
                                "refunded_quantity", "refunded_value"),
                    [(pk, position, sku, sku.replace("-", " item "), sku[:5], 1, Decimal(10), 1 if gone else 0,
                      Decimal(10) if gone else 0)
                     for pk, (_, _, _, skus), gone in zip(ids, part, refunded, strict=True)
                     for position, sku in enumerate(skus, start=1)],
                    ids=False)


def _remove() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM rewards_orderline WHERE order_id IN "
                       "(SELECT activity_id FROM rewards_order WHERE order_id LIKE %s)", [PREFIX + "%"])
        cursor.execute("DELETE FROM rewards_order WHERE order_id LIKE %s", [PREFIX + "%"])
        cursor.execute("DELETE FROM rewards_activity WHERE source_key LIKE %s", [PREFIX + "%"])


def bench_recommendations(rows: list, Row, ensure_members, vacuum, percentile) -> None:
    from django.utils import timezone

    from accounts.models import Member
    from community.models import Product
    from recommendations.models import ProductStats, RelatedProduct
    from recommendations.selectors import recommendations_for_member, recommendations_for_members
    from recommendations.services import recommendations_compute

    rng = random.Random(16)
    now = timezone.now()
    histories, training = _store(rng, ensure_members(MEMBERS), now)
    _write(histories, rng, now)
    vacuum()
    result = recommendations_compute()
    rows.append(Row(f"Recommendations nightly: {result.orders:,} orders counted ({training:,} written, 2% refunded "
                    f"in full), {result.products} products, {result.pairs:,} related pairs",
                    f"{result.seconds:.1f} s", "< 30 s", result.seconds < 30))

    # Bought together against the planted families.
    family = {}
    for pk, sku in Product.objects.filter(sku__startswith="FAM").values_list("pk", "sku"):
        family[pk] = sku[:5]
    top = [(p, r) for p, r in RelatedProduct.objects.filter(rank__lte=5).values_list("product_id", "related_id")
           if p in family]
    same = sum(family.get(r) == family[p] for p, r in top) / len(top) if top else 0.0
    rows.append(Row("Bought together, synthetic store: share of each product's top 5 in its own planted family",
                    f"{100 * same:.0f}% ({len(top):,} pairs)", ">= 80%", same >= 0.8))

    # For you against the popularity baseline, on each member's held-out last order.
    rebuy = set(Product.objects.filter(pk__in=ProductStats.objects.filter(rebuy=True).values("product_id"))
                .values_list("sku", flat=True))
    buyers: dict[str, set[int]] = {}
    bought: dict[int, set[str]] = {}
    for member_id, orders in histories.items():
        bought[member_id] = {sku for _, skus in orders[:-1] for sku in skus}
        for sku in bought[member_id]:
            buyers.setdefault(sku, set()).add(member_id)
    popular = sorted(buyers, key=lambda sku: (-len(buyers[sku]), sku))
    members = sorted(histories)
    hits = baseline_hits = discoverers = new_hits = new_baseline_hits = 0
    for start in range(0, len(members), 1000):
        chunk = members[start:start + 1000]
        found = recommendations_for_members(member_ids=chunk, limit=10)
        for member_id in chunk:
            held_out = set(histories[member_id][-1][1])
            suggested = {item.sku for item in found.get(member_id, [])}
            baseline = set([sku for sku in popular if sku not in bought[member_id] or sku in rebuy][:10])
            hits += bool(suggested & held_out)
            baseline_hits += bool(baseline & held_out)
            new = held_out - bought[member_id]  # what they had never bought: discovery, not buying again
            if new:
                discoverers += 1
                new_hits += bool(suggested & new)
                new_baseline_hits += bool(baseline & new)
    rate, base = hits / len(members), baseline_hits / len(members)
    rows.append(Row(f"For you, hit rate at 10 on each member's held-out last order ({len(members):,} members) vs "
                    "the popularity baseline (same exclusions)",
                    f"{100 * rate:.1f}% vs {100 * base:.1f}% ({rate / base:.1f}x)", "beats the baseline",
                    rate > base))
    rate, base = new_hits / discoverers, new_baseline_hits / discoverers
    rows.append(Row(f"...counting only products new to the member ({discoverers:,} members whose last order had one)",
                    f"{100 * rate:.1f}% vs {100 * base:.1f}% ({rate / base:.1f}x)", "beats the baseline",
                    rate > base))

    # One member's "for you", as the API and the portal ask for it: one query.
    sample = rng.sample(members, 300)
    latencies = []
    by_pk = {m.pk: m for m in Member.objects.filter(pk__in=sample)}
    for member_id in sample:
        begin = time.perf_counter()
        recommendations_for_member(member=by_pk[member_id], limit=10)
        latencies.append(time.perf_counter() - begin)
    p50, p95 = percentile(latencies, 50) * 1000, percentile(latencies, 95) * 1000
    rows.append(Row("For you, one member (one query, in process): p50 / p95", f"{p50:.1f} / {p95:.1f} ms",
                    "p95 < 50 ms", p95 < 50))
    _remove()
