from django.core.management.base import BaseCommand

from community.models import Product
from community.services import product_ratings_recount

CHUNK = 1_000


class Command(BaseCommand):
    help = (
        "Count every product's rating summary again from its published reviews (or only the products "
        "named with --sku) and repair those that differ: after reviews were written without the review "
        "services, or the reviews published by an old release during a deploy that added the summaries."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sku", action="append", default=[], help="only this product (repeatable)")

    def handle(self, *args, sku, **options):
        products = Product.objects.order_by("pk")
        if sku:
            products = products.filter(sku__in=sku)
        ids = list(products.values_list("pk", flat=True))
        wrong = []
        for start in range(0, len(ids), CHUNK):
            wrong += product_ratings_recount(product_ids=ids[start:start + CHUNK])
        for product in Product.objects.filter(pk__in=wrong).order_by("sku"):
            self.stdout.write(f"{product.sku}: repaired")
        self.stdout.write(f"{len(ids)} products counted again, {len(wrong)} summaries repaired.")
