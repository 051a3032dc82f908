"""Insights: nightly snapshots of the program's metrics, and per-member predictions.

Pages read these rows (a constant number of queries); ``insights.services.snapshot_compute``
writes them. Definitions of every metric: docs/metrics.md.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member


class Snapshot(models.Model):
    """Everything the insight pages show, as of the end of ``day`` (in the program's time zone)."""

    day = models.DateField(unique=True)
    computed_at = models.DateTimeField(default=timezone.now)
    seconds = models.FloatField(default=0, help_text=_("How long the computation took."))
    currency = models.CharField(max_length=3)
    overview = models.JSONField(encoder=DjangoJSONEncoder, default=dict,
                                help_text=_("Per period length in days: this period and the previous."))
    cohorts = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    segments = models.JSONField(encoder=DjangoJSONEncoder, default=list)
    impact = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    model = models.JSONField(encoder=DjangoJSONEncoder, default=dict,
                             help_text=_("The fitted BG/NBD and Gamma-Gamma parameters."))

    class Meta:
        ordering = ["-day"]
        get_latest_by = "day"

    def __str__(self):
        return f"Insights of {self.day}"


class MemberInsight(models.Model):
    """A member's history and predictions as of the latest snapshot (members with an order)."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="insight")
    day = models.DateField()
    orders = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=14, decimal_places=2)
    first_order_at = models.DateTimeField()
    last_order_at = models.DateTimeField()
    recency_days = models.PositiveIntegerField()
    r = models.PositiveSmallIntegerField(help_text=_("Recency quintile, 5 = most recent."))
    f = models.PositiveSmallIntegerField(help_text=_("Frequency quintile, 5 = most orders."))
    m = models.PositiveSmallIntegerField(help_text=_("Monetary quintile, 5 = most revenue."))
    segment = models.CharField(max_length=30)
    p_alive = models.FloatField(null=True)
    p_alive_before = models.FloatField(null=True, help_text=_("P(alive) at the previous snapshot."))
    expected_90 = models.FloatField(null=True, help_text=_("Expected orders in the next 90 days."))
    expected_365 = models.FloatField(null=True, help_text=_("Expected orders in the next 365 days."))
    expected_value = models.DecimalField(max_digits=12, decimal_places=2, null=True,
                                         help_text=_("Expected value of a future order (Gamma-Gamma)."))
    predicted_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True,
                                        help_text=_("Expected revenue in the next 365 days."))

    class Meta:
        indexes = [models.Index(fields=["segment", "-revenue"], name="insight_segment"),
                   models.Index(fields=["-predicted_clv"], name="insight_clv")]

    def __str__(self):
        return f"{self.member_id}: {self.segment}"


class SnapshotRun(models.Model):
    """A computation staff started ("recompute now") or the nightly task ran, with its progress."""

    day = models.DateField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    step = models.CharField(max_length=60, blank=True)
    done_steps = models.PositiveSmallIntegerField(default=0)
    total_steps = models.PositiveSmallIntegerField(default=6)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"Run for {self.day}: {self.step}"
