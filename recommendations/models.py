"""Recommendations: what the nightly run learnt from the orders, read by the product pages, the
member's "for you", the partner API and campaign messages.

``recommendations.services.recommendations_compute`` replaces every row each night; nothing else
writes here. How the figures are made: docs/recommendations.md.
"""

from django.db import models

from community.models import Product
from rewards.models import Tier

KEEP = 50  # related products kept per product, popular products per tier


class RelatedProduct(models.Model):
    """``related`` is bought together with ``product`` more often than chance would have it."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", db_index=False)
    related = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    together = models.PositiveIntegerField(help_text="Orders with both.")
    score = models.FloatField(help_text="Dunning's log-likelihood ratio G² of the pair (higher: surer).")
    weight = models.FloatField(help_text="The score over the product's best pair's: 1 for the best.")
    rank = models.PositiveSmallIntegerField(help_text="1 for the pair with the highest score.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "related"], name="related_product_once")]
        indexes = [models.Index(fields=["product", "rank"], name="related_by_rank")]

    def __str__(self):
        return f"{self.product_id} -> {self.related_id} ({self.score:.1f})"


class PopularProduct(models.Model):
    """The products most members of a tier bought (``tier`` empty: of every member)."""

    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                             db_index=False)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    buyers = models.PositiveIntegerField()
    share = models.FloatField(help_text="Buyers over the buyers of the tier's most bought product: 1 for it.")
    rank = models.PositiveSmallIntegerField()

    class Meta:
        indexes = [models.Index(fields=["tier", "rank"], name="popular_by_rank")]

    def __str__(self):
        return f"{self.tier_id or 'all'}: {self.product_id} ({self.buyers})"


class ProductStats(models.Model):
    """Each product sold in the last year: its buyers and whether people buy it again."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, primary_key=True, related_name="+")
    orders = models.PositiveIntegerField()
    buyers = models.PositiveIntegerField()
    buyers_again = models.PositiveIntegerField(help_text="Buyers who ordered again after their first purchase of it.")
    rebought = models.PositiveIntegerField(help_text="...of whom bought it again.")
    rebuy = models.BooleanField(help_text="Recommended again to those who bought it (see docs/recommendations.md).")

    def __str__(self):
        return f"{self.product_id}: {self.buyers} buyers"
