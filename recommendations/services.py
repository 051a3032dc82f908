"""The nightly computation of recommendations, in SQL: which products are bought together (and how
surely), which products each tier's members buy most, and which products people buy again. Every
row is replaced in one transaction: readers see last night's rows until it commits, and running it
twice gives the same rows.

What counts is an order of the last year (up to the latest order, so an imported history counts
too) that was not refunded in full, and of it the lines not refunded in full. Why the log-likelihood
ratio, and the thresholds below: docs/recommendations.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from community.models import Product
from community.services import products_from_order_lines
from core import bulk
from recommendations.models import KEEP, PopularProduct, ProductStats, RelatedProduct
from rewards.models import MemberTier, Order, OrderLine, OrderStatus
from rewards.program import current_program

HISTORY_DAYS = 365
# A pair seen in fewer orders than this is not judged at all: two orders prove nothing.
MIN_TOGETHER = 3
# G² of a 2x2 table is chi-squared with one degree of freedom when the two products are
# independent: 10.83 is its 99.9th percentile, so a pair of unrelated products passes one time in
# a thousand (and then at the bottom of its list).
MIN_SCORE = 10.83
# An order with more distinct products than this (a wholesale or office order) says little about
# what goes together, and its pairs grow with the square of its size: left out of the pairs.
MAX_BASKET = 50
# People buy a product again when at least this share of its buyers who ordered again later bought
# it again, among at least REBUY_MIN_BUYERS such buyers (fewer: not known, so not recommended again).
REBUY_SHARE = 0.25
REBUY_MIN_BUYERS = 5


@dataclass(frozen=True)
class ComputeResult:
    orders: int  # orders that counted
    products: int  # products sold in them
    pairs: int  # related pairs kept (each direction counted)
    seconds: float
    start: datetime | None = None  # the year that counted: (start, end]
    end: datetime | None = None


def _tables() -> dict[str, str]:
    return {"line": OrderLine._meta.db_table, "order": Order._meta.db_table, "product": Product._meta.db_table,
            "tier": MemberTier._meta.db_table, "related": RelatedProduct._meta.db_table,
            "popular": PopularProduct._meta.db_table, "stats": ProductStats._meta.db_table}


def _xlogx(expression: str) -> str:
    """x ln x, 0 for 0, in floating point on both databases (SQLite's LN is Django's function)."""
    value = f"CAST({expression} AS DOUBLE PRECISION)"
    return f"(CASE WHEN {expression} > 0 THEN {value} * LN({value}) ELSE 0 END)"


# G² = 2 * sum over the four cells of k ln(k / expected), written with x ln x so that empty cells
# count 0: the cells, minus the two row sums and the two column sums, plus the total.
_G2 = "2 * (" + " + ".join(_xlogx(cell) for cell in ("k11", "k12", "k21", "k22")) + " - " + " - ".join(
    _xlogx(margin) for margin in ("k11 + k12", "k21 + k22", "k11 + k21", "k12 + k22")) + " + " + _xlogx("n") + ")"


def recommendations_compute(*, now: datetime | None = None) -> ComputeResult:
    """Recompute every recommendation from the orders of the year up to the latest order placed by
    ``now``. Products sold without a product row get one first (named from their latest line)."""
    started = time.perf_counter()
    now = now or timezone.now()
    products_from_order_lines()
    latest = Order.objects.filter(placed_at__lte=now).aggregate(latest=Max("placed_at"))["latest"]
    t = _tables()
    with bulk.big_read() as cursor:
        # Two runs at once (a redelivered task) take turns: the second replaces the first's rows.
        bulk.lock_table(RelatedProduct)
        RelatedProduct.objects.all().delete()
        PopularProduct.objects.all().delete()
        ProductStats.objects.all().delete()
        if latest is None:
            return ComputeResult(0, 0, 0, round(time.perf_counter() - started, 2))
        start = latest - timedelta(days=HISTORY_DAYS)
        # What counts, once: one row per order and product.
        cursor.execute("DROP TABLE IF EXISTS rec_line")
        cursor.execute("CREATE TEMP TABLE rec_line (basket BIGINT, member BIGINT, placed_at TIMESTAMP WITH TIME ZONE,"
                       " product BIGINT)")
        cursor.execute(
            f"INSERT INTO rec_line SELECT DISTINCT l.order_id, o.member_id, o.placed_at, p.id "
            f"FROM {t['line']} l JOIN {t['order']} o ON o.activity_id = l.order_id "
            f"JOIN {t['product']} p ON p.sku = l.sku "
            "WHERE o.placed_at > %s AND o.placed_at <= %s AND o.status <> %s AND l.refunded_quantity < l.quantity",
            [start, latest, OrderStatus.REFUNDED])
        cursor.execute("CREATE INDEX rec_line_basket ON rec_line (basket, product)")
        cursor.execute("ANALYZE rec_line")
        cursor.execute("SELECT COUNT(DISTINCT basket), COUNT(DISTINCT product) FROM rec_line")
        orders, products = cursor.fetchone()

        # Who buys each product again: of its buyers who ordered again after first buying it, how
        # many bought it again.
        cursor.execute(
            f"INSERT INTO {t['stats']} (product_id, orders, buyers, buyers_again, rebought, rebuy) "
            "WITH bought AS (SELECT member, product, COUNT(*) AS times, MIN(placed_at) AS first FROM rec_line "
            "                GROUP BY member, product), "
            "     latest AS (SELECT member, MAX(placed_at) AS last FROM rec_line GROUP BY member), "
            "     counted AS (SELECT b.product, SUM(b.times) AS orders, COUNT(*) AS buyers, "
            "                        SUM(CASE WHEN l.last > b.first THEN 1 ELSE 0 END) AS again, "
            "                        SUM(CASE WHEN b.times > 1 THEN 1 ELSE 0 END) AS rebought "
            "                 FROM bought b JOIN latest l ON l.member = b.member GROUP BY b.product) "
            "SELECT product, orders, buyers, again, rebought, "
            "       CASE WHEN again >= %s AND rebought >= %s * again THEN %s ELSE %s END FROM counted",
            [REBUY_MIN_BUYERS, REBUY_SHARE, True, False])

        # Bought together: for every pair seen in MIN_TOGETHER orders or more, the 2x2 table of
        # orders (both, one without the other, the other without the one, neither) and its G².
        # Only pairs seen together more often than independence predicts (k11 n > a b) are kept:
        # G² is as large for products that avoid each other.
        cursor.execute(
            f"INSERT INTO {t['related']} (product_id, related_id, together, score, weight, rank) "
            "WITH b AS (SELECT basket, product FROM rec_line WHERE basket IN "
            "           (SELECT basket FROM rec_line GROUP BY basket HAVING COUNT(*) <= %s)), "
            "     total AS (SELECT COUNT(DISTINCT basket) AS n FROM b), "
            "     item AS (SELECT product, COUNT(*) AS k FROM b GROUP BY product), "
            "     pair AS (SELECT x.product AS a, y.product AS c, COUNT(*) AS k11 FROM b x "
            "              JOIN b y ON y.basket = x.basket AND y.product <> x.product "
            "              GROUP BY x.product, y.product HAVING COUNT(*) >= %s), "
            "     cells AS (SELECT pair.a, pair.c, pair.k11, ia.k - pair.k11 AS k12, ic.k - pair.k11 AS k21, "
            "                      total.n - ia.k - ic.k + pair.k11 AS k22, total.n AS n "
            "               FROM pair JOIN item ia ON ia.product = pair.a JOIN item ic ON ic.product = pair.c "
            "               CROSS JOIN total WHERE pair.k11 * total.n > ia.k * ic.k), "
            f"     scored AS (SELECT a, c, k11, {_G2} AS score FROM cells), "
            "     ranked AS (SELECT a, c, k11, score, score / MAX(score) OVER (PARTITION BY a) AS weight, "
            "                       ROW_NUMBER() OVER (PARTITION BY a ORDER BY score DESC, c) AS n "
            "                FROM scored WHERE score >= %s) "
            "SELECT a, c, k11, score, weight, n FROM ranked WHERE n <= %s",
            [MAX_BASKET, MIN_TOGETHER, MIN_SCORE, KEEP])
        pairs = cursor.rowcount

        # Popular: the most buyers in the year, among every member (tier empty) and in each tier
        # (members without a tier row are in the entry tier).
        cursor.execute(_popular_sql(t, "CAST(NULL AS BIGINT)"), [KEEP])
        base = current_program().base_tier
        if base is not None:
            cursor.execute(_popular_sql(t, "COALESCE(m.tier_id, %s)"), [base.pk, KEEP])
        cursor.execute("DROP TABLE rec_line")
    return ComputeResult(orders, products, pairs, round(time.perf_counter() - started, 2), start, latest)


def _popular_sql(t: dict[str, str], tier: str) -> str:
    return (
        f"INSERT INTO {t['popular']} (tier_id, product_id, buyers, share, rank) "
        f"WITH tiered AS (SELECT {tier} AS tier, l.product, l.member FROM rec_line l "
        f"                LEFT JOIN {t['tier']} m ON m.member_id = l.member), "
        "     counted AS (SELECT tier, product, COUNT(DISTINCT member) AS buyers FROM tiered GROUP BY tier, product), "
        "     ranked AS (SELECT tier, product, buyers, "
        "                       CAST(buyers AS DOUBLE PRECISION) / MAX(buyers) OVER (PARTITION BY tier) AS share, "
        "                       ROW_NUMBER() OVER (PARTITION BY tier ORDER BY buyers DESC, product) AS n "
        "                FROM counted) "
        "SELECT tier, product, buyers, share, n FROM ranked WHERE n <= %s")
