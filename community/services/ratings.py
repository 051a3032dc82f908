"""Products' rating summaries (``ProductRating``), kept in step with their published reviews.

Every service that publishes a review or takes one off the page (approving, rejecting, an edit, a
hold after reports or a banned word, an erasure) calls ``rating_add`` or ``ratings_remove`` in its
own transaction, after locking the review: the summary changes exactly when the review does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum

from community.models import ModerationStatus, ProductRating, Review

STARS = range(1, 6)
_FIGURES = ["count", "total", *(f"stars_{n}" for n in STARS)]


def rating_add(*, product_id: int, stars: int) -> None:
    """One more published review of ``stars`` stars in its product's summary.

    One statement that makes the row or adds to it, never a read and then a write: two reviews of
    a product published at once both count (on PostgreSQL the second waits for the first's row,
    then adds to what the first committed). The row stays locked until the caller commits, so the
    caller's other writes come first."""
    table = ProductRating._meta.db_table
    columns = ", ".join(f'"{name}"' for name in ["product_id", *_FIGURES])
    additions = ", ".join(f'"{name}" = "{table}"."{name}" + excluded."{name}"' for name in _FIGURES)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join(["%s"] * (1 + len(_FIGURES)))}) '
            f'ON CONFLICT ("product_id") DO UPDATE SET {additions}',
            [product_id, 1, stars, *(int(n == stars) for n in STARS)])


def ratings_remove(*, reviews: Iterable[tuple[int, int]]) -> None:
    """Take published reviews, as (product id, stars), out of their products' summaries.

    One UPDATE per product (PostgreSQL checks an upsert's new row before it finds the old one, so
    subtracting cannot share ``rating_add``'s statement), in product order: two transactions that
    unpublish reviews of the same products wait for each other instead of deadlocking. The rows
    exist (``rating_add`` made them); a figure that would go below zero fails the transaction."""
    by_product: dict[int, Counter] = defaultdict(Counter)
    for product_id, stars in reviews:
        by_product[product_id][stars] += 1
    for product_id in sorted(by_product):
        gone = by_product[product_id]
        updated = ProductRating.objects.filter(product_id=product_id).update(
            count=F("count") - gone.total(), total=F("total") - sum(n * k for n, k in gone.items()),
            **{f"stars_{n}": F(f"stars_{n}") - k for n, k in gone.items()})
        if not updated:
            raise ProductRating.DoesNotExist(
                f"Product {product_id} has published reviews but no rating summary: reviews were written "
                "without the review services; product_ratings_recount rebuilds it.")


def product_ratings_recount(*, product_ids: list[int]) -> list[int]:
    """Rebuild these products' summaries from their published reviews: after reviews were written
    in bulk without the review services (the benchmark's and the tests' large fixtures), or to
    repair a summary (``manage.py recount_ratings``). Returns the ids of the products whose summary
    was wrong. The summaries are locked before the reviews are counted, so a review published
    meanwhile waits and then adds to the recounted row."""
    stars = {f"stars_{n}": Count("id", filter=Q(rating=n)) for n in STARS}
    with transaction.atomic():
        before = {row["product_id"]: row for row in ProductRating.objects.select_for_update()
                  .filter(product_id__in=product_ids).order_by("product_id").values("product_id", *_FIGURES)}
        rows = (Review.objects.filter(product_id__in=product_ids, status=ModerationStatus.APPROVED)
                .values("product_id").annotate(count=Count("id"), total=Sum("rating"), **stars).order_by("product_id"))
        after = {row["product_id"]: row for row in rows}
        ProductRating.objects.filter(product_id__in=product_ids).delete()
        ProductRating.objects.bulk_create([ProductRating(**row) for row in after.values()])

    def figures(row: dict | None) -> tuple:
        return tuple(row[name] for name in _FIGURES) if row else (0,) * len(_FIGURES)

    return [pid for pid in sorted(set(before) | set(after)) if figures(before.get(pid)) != figures(after.get(pid))]
