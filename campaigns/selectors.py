"""Reads of campaigns: who is in an audience now, and what a campaign did (its report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    OuterRef,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns import audience, stats
from campaigns.models import Campaign, CampaignEntry, Group


def audience_preview(*, audience_spec: dict, now: datetime | None = None, sample: int = 10) -> tuple[int, list]:
    """How many members are in the audience now, and a few of them (for staff editing it)."""
    members = audience.members(audience_spec, now=now or timezone.now())
    return members.count(), list(members.order_by("pk").values("pk", "email", "first_name", "last_name")[:sample])


def baseline_rate(*, audience_spec: dict, days: int, now: datetime | None = None) -> float:
    """The share of the audience who ordered in the last ``days`` days: the holdout's expected
    conversion, for the minimum detectable effect before launch."""
    from rewards.models import Order, OrderStatus

    now = now or timezone.now()
    members = audience.members(audience_spec, now=now)
    total = members.count()
    if not total:
        return 0.0
    bought = members.filter(pk__in=Order.objects.filter(placed_at__gte=now - timedelta(days=days), placed_at__lt=now)
                            .exclude(status=OrderStatus.REFUNDED).values("member_id")).count()
    return bought / total


MIN_GROUP = 30  # members in each group before the report gives a verdict


@dataclass(frozen=True)
class GroupFigures:
    members: int
    converted: int
    revenue: Decimal

    @property
    def rate(self) -> float | None:
        return self.converted / self.members if self.members else None

    @property
    def revenue_per_member(self) -> Decimal | None:
        return (self.revenue / self.members).quantize(Decimal("0.01")) if self.members else None


@dataclass(frozen=True)
class Report:
    treated: GroupFigures
    holdout: GroupFigures
    conversion: stats.Interval
    revenue_per_member: stats.Interval
    cost: Decimal  # the offers, in the program's currency (points x point value)
    incremental_revenue: Decimal | None  # (revenue per member difference) x treated members
    net: Decimal | None  # incremental revenue less the cost
    coupons_used: int
    window_days: int
    complete: bool  # every entry's window is over

    @property
    def verdict(self) -> str:
        if min(self.treated.members, self.holdout.members) < MIN_GROUP:
            # With a handful held out, no interval means much (a bootstrap of three members least of all).
            return f"too few members to measure yet (at least {MIN_GROUP} in each group are needed)"
        return self.conversion.verdict


def _multiplier_points(campaign: Campaign) -> int:
    """What a multiplier offer gave: its rule's points on the sent members' orders (each order
    keeps its points per rule), less what refunds took back is not counted (a small overstatement)."""
    from rewards.models import Order

    if not campaign.offer_rule_id:
        return 0
    treated = CampaignEntry.objects.filter(campaign=campaign, group=Group.TREATED).values("member_id")
    total = 0
    for applied in Order.objects.filter(member_id__in=treated, rules_applied__isnull=False).filter(
            placed_at__gte=campaign.offer_rule.starts_at, placed_at__lt=campaign.offer_rule.ends_at) \
            .values_list("rules_applied", flat=True).iterator(chunk_size=5000):
        total += sum(item["points"] for item in applied or [] if item["rule"].get("id") == campaign.offer_rule_id)
    return total


def campaign_report(*, campaign: Campaign, window_days: int | None = None, now: datetime | None = None) -> Report:
    """Intent to treat: every member who entered counts in their group, whatever they did; each
    member's orders in ``window_days`` after their entry (in the program's currency, not refunded
    in full) make their conversion and revenue. Two grouped queries, however many entries."""
    from rewards.models import Order, OrderStatus
    from rewards.program import current_program

    program = current_program()
    days = window_days or campaign.report_days
    now = now or timezone.now()
    orders = (Order.objects.filter(member=OuterRef("member_id"), placed_at__gte=OuterRef("entered_at"),
                                   placed_at__lt=OuterRef("window_end"), currency=program.settings.currency)
              .exclude(status=OrderStatus.REFUNDED).order_by().values("member"))
    money = DecimalField(max_digits=16, decimal_places=3)
    # One row per member, from their first entry: a weekly campaign enters a member each week, and
    # counting every entry would count one order in several windows.
    firsts = (CampaignEntry.objects.filter(campaign=campaign).values("member_id").annotate(first=Min("pk"))
              .values("first"))
    window_end = ExpressionWrapper(F("entered_at") + timedelta(days=days), output_field=DateTimeField())
    count = Subquery(orders.annotate(n=Count("pk")).values("n"), output_field=IntegerField())
    rows = (CampaignEntry.objects.filter(pk__in=firsts)
            .annotate(window_end=window_end)
            .annotate(bought=Coalesce(count, 0),
                      spent=Coalesce(Subquery(orders.annotate(v=Sum(F("total") - F("refunded_amount"))).values("v"),
                                              output_field=money), Value(Decimal(0)), output_field=money))
            .values_list("group", "bought", "spent"))
    values: dict[str, list[float]] = {Group.TREATED: [], Group.HOLDOUT: []}
    converted = {Group.TREATED: 0, Group.HOLDOUT: 0}
    totals = {Group.TREATED: Decimal(0), Group.HOLDOUT: Decimal(0)}
    for group, bought, spent in rows.iterator(chunk_size=20_000):
        values[group].append(float(spent))
        converted[group] += bought > 0
        totals[group] += Decimal(spent)
    figures = {g: GroupFigures(len(values[g]), converted[g], totals[g]) for g in values}
    treated, holdout = figures[Group.TREATED], figures[Group.HOLDOUT]
    conversion = stats.rate_difference(treated.converted, treated.members, holdout.converted, holdout.members)
    revenue = stats.mean_difference(np.array(values[Group.TREATED]), np.array(values[Group.HOLDOUT]),
                                    seed=campaign.pk)
    entries = CampaignEntry.objects.filter(campaign=campaign)
    spent_points = (entries.aggregate(points=Sum("offer_points"))["points"] or 0) + _multiplier_points(campaign)
    cost = (Decimal(spent_points) * program.settings.point_value).quantize(Decimal("0.01"))
    incremental = net = None
    if treated.members and holdout.members:
        incremental = (Decimal(str(revenue.estimate)) * treated.members).quantize(Decimal("0.01"))
        net = incremental - cost
    last = entries.order_by("-entered_at").values_list("entered_at", flat=True).first()
    return Report(treated=treated, holdout=holdout, conversion=conversion, revenue_per_member=revenue, cost=cost,
                  incremental_revenue=incremental, net=net,
                  coupons_used=entries.filter(coupon__used_at__isnull=False).count(), window_days=days,
                  complete=last is not None and last + timedelta(days=days) <= now)
