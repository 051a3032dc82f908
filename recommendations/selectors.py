"""Reads of recommendations, for the portal, the partner API, the storefront and campaign messages.

"Bought together" is last night's list for a product. "For you" is made when asked, from last
night's tables and the member's orders as they are now (an order placed today already counts), in
one query for one member or a thousand:

- each product the member bought votes for the products bought together with it, with the pair's
  weight (1 for the product's surest pair, less for the others), so a product related to several
  of their purchases comes first;
- a product they bought that people buy again votes for itself (REBUY_WEIGHT);
- what their tier's members buy most votes with TIER_WEIGHT times its share, and what everyone buys
  most with EVERYONE_WEIGHT: enough to fill the list, and all there is for a member with no orders;
- what they bought is left out, unless people buy it again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from accounts.models import Member, Partner
from community.models import Product
from core import bulk
from recommendations.models import KEEP, PopularProduct, ProductStats, RelatedProduct
from rewards.models import MemberTier, Order, OrderLine, OrderStatus
from rewards.program import current_program

REBUY_WEIGHT = 0.5
TIER_WEIGHT = 0.3
EVERYONE_WEIGHT = 0.1
MAX_LIMIT = KEEP  # the nightly run keeps this many related and popular products


@dataclass(frozen=True)
class Recommendation:
    sku: str
    name: str
    url: str  # the product's page in the store, as the partner sent it; "" when it never did
    image_url: str
    score: float  # orders the list; not comparable between "bought together" and "for you"


def related_products(*, product: Product, limit: int = 10) -> list[Recommendation]:
    """The products bought together with ``product``, surest first; the score is the pair's G²."""
    rows = RelatedProduct.objects.filter(product=product).select_related("related").order_by("rank")[:limit]
    return [Recommendation(row.related.sku, row.related.name, row.related.url, row.related.image_url,
                           round(row.score, 2)) for row in rows]


def recommendations_for_member(*, member: Member, limit: int = 10,
                               partner: Partner | None = None) -> list[Recommendation]:
    """What to suggest to ``member``, best first. With ``partner`` only that partner's orders are
    the member's history (what the partner may see: another store's purchases are neither
    revealed by what is suggested nor by what is left out)."""
    return recommendations_for_members(member_ids=[member.pk], limit=limit, partner=partner).get(member.pk, [])


def top_recommendation_names(*, member_ids: Iterable[int]) -> dict[int, str]:
    """Each member's first suggestion's name (members with none are left out): ``{recommended}``."""
    return {member_id: found[0].name for member_id, found in
            recommendations_for_members(member_ids=member_ids, limit=1).items() if found}


def recommendations_for_members(*, member_ids: Iterable[int], limit: int,
                                 partner: Partner | None = None) -> dict[int, list[Recommendation]]:
    """``recommendations_for_member`` for many members at once, in one query."""
    member_ids = list(member_ids)
    if not member_ids or limit < 1:
        return {}
    base = current_program().base_tier
    who_in, who_params = bulk.any_of("m.id", member_ids)
    bought_in, bought_params = bulk.any_of("o.member_id", member_ids)
    own, own_params = (" AND o.partner_id = %s", [partner.pk]) if partner is not None else ("", [])
    tier, tier_params = ("COALESCE(mt.tier_id, %s)", [base.pk]) if base is not None else ("mt.tier_id", [])
    t = {"member": Member._meta.db_table, "member_tier": MemberTier._meta.db_table,
         "line": OrderLine._meta.db_table, "order": Order._meta.db_table, "product": Product._meta.db_table,
         "related": RelatedProduct._meta.db_table, "stats": ProductStats._meta.db_table,
         "popular": PopularProduct._meta.db_table}
    sql = (
        f"WITH who AS (SELECT m.id AS member_id, {tier} AS tier_id FROM {t['member']} m "
        f"             LEFT JOIN {t['member_tier']} mt ON mt.member_id = m.id WHERE {who_in}), "
        "     bought AS (SELECT DISTINCT o.member_id, p.id AS product_id "
        f"               FROM {t['line']} l JOIN {t['order']} o ON o.activity_id = l.order_id "
        f"               JOIN {t['product']} p ON p.sku = l.sku "
        f"               WHERE {bought_in} AND o.status <> %s AND l.refunded_quantity < l.quantity{own}), "
        "     vote AS (SELECT b.member_id, r.related_id AS product_id, r.weight AS score FROM bought b "
        f"             JOIN {t['related']} r ON r.product_id = b.product_id "
        "             UNION ALL "
        f"             SELECT b.member_id, b.product_id, %s FROM bought b JOIN {t['stats']} s "
        "             ON s.product_id = b.product_id WHERE s.rebuy = %s "
        "             UNION ALL "
        f"             SELECT w.member_id, pp.product_id, %s * pp.share FROM who w JOIN {t['popular']} pp "
        "             ON pp.tier_id = w.tier_id "
        "             UNION ALL "
        f"             SELECT w.member_id, pp.product_id, %s * pp.share FROM who w JOIN {t['popular']} pp "
        "             ON pp.tier_id IS NULL), "
        "     total AS (SELECT member_id, product_id, SUM(score) AS score FROM vote GROUP BY member_id, product_id), "
        "     ranked AS (SELECT v.member_id, v.product_id, v.score, "
        "                       ROW_NUMBER() OVER (PARTITION BY v.member_id ORDER BY v.score DESC, v.product_id) AS n "
        f"                FROM total v LEFT JOIN {t['stats']} s ON s.product_id = v.product_id "
        "                WHERE s.rebuy = %s OR NOT EXISTS (SELECT 1 FROM bought b "
        "                      WHERE b.member_id = v.member_id AND b.product_id = v.product_id)) "
        "SELECT r.member_id, p.sku, p.name, p.url, p.image_url, r.score "
        f"FROM ranked r JOIN {t['product']} p ON p.id = r.product_id WHERE r.n <= %s ORDER BY r.member_id, r.n"
    )
    params = [*tier_params, *who_params, *bought_params, OrderStatus.REFUNDED, *own_params, REBUY_WEIGHT, True,
              TIER_WEIGHT, EVERYONE_WEIGHT, True, limit]
    found: dict[int, list[Recommendation]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for member_id, sku, name, url, image_url, score in cursor.fetchall():
            found[member_id].append(Recommendation(sku, name, url, image_url, round(score, 3)))
    return dict(found)
