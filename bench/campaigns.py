"""Campaigns: a win-back audience (90 days without an order and P(alive) at most 0.5) over
100,000 members, counted and entered with 100 bonus points each and a message on the members'
channel (a 10% holdout); and the report of a campaign with 100,000 entries, 20,000 of whom ordered
after entering."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

MEMBERS = 100_000


def bench_campaigns(rows: list, Row, ensure_members) -> None:
    from django.utils import timezone

    from accounts.models import Member
    from campaigns import selectors, services
    from campaigns.models import Campaign, CampaignEntry, CampaignStatus, Group, OfferKind
    from core import bulk
    from insights.models import MemberInsight
    from rewards.models import Order

    member_ids = ensure_members(MEMBERS)
    Member.objects.update(offers_channel="email")  # the bench database holds only its own members
    now = timezone.now()
    rng = random.Random(15)
    MemberInsight.objects.all().delete()
    insight_rows = []
    for pk in member_ids:
        days = rng.randint(1, 400)
        last = now - timedelta(days=days)
        alive = rng.random() if days > 60 else 0.5 + rng.random() / 2
        insight_rows.append((pk, now.date(), rng.randint(1, 12), Decimal(rng.randint(10, 900)),
                             last - timedelta(days=90), last, days, 3, 3, 3, "Hibernating", alive, alive, 0.5, 1.5,
                             Decimal("30.00"), Decimal("45.00")))
    fields = ("member_id", "day", "orders", "revenue", "first_order_at", "last_order_at", "recency_days", "r", "f",
              "m", "segment", "p_alive", "p_alive_before", "expected_90", "expected_365", "expected_value",
              "predicted_clv")
    for start in range(0, len(insight_rows), 10_000):
        bulk.insert(MemberInsight, fields, insight_rows[start:start + 10_000], ids=False)

    campaign = services.campaign_save(campaign=Campaign(
        name="Win back", audience={"match": "all", "conditions": [
            {"field": "days_since_last_order", "op": "gte", "value": 90},
            {"field": "p_alive", "op": "lte", "value": 0.5}]},
        offer=OfferKind.POINTS, offer_points=100, title="{first_name}, we miss you", body="{offer} are yours.",
        holdout_percent=10, starts_at=now - timedelta(days=1)), actor_user=None)
    campaign = services.campaign_set_status(campaign=campaign, status=CampaignStatus.RUNNING, actor_user=None)
    started = time.perf_counter()
    count, _ = selectors.audience_preview(audience_spec=campaign.audience)
    counted = time.perf_counter() - started
    result = services.campaign_run(campaign=campaign)
    seconds = time.perf_counter() - started
    rows.append(Row(f"A win-back audience over {MEMBERS:,} members counted and entered (100 bonus points and a "
                    "message each, 10% held out)",
                    f"{seconds:.1f} s ({count:,} in it, counted in {counted * 1000:.0f} ms; {result.treated:,} "
                    f"paid and written to, {result.held_out:,} held out)", "< 10 s", seconds < 10))

    # A report over 100,000 entries: entries written directly, 20,000 orders after entering.
    report_campaign = services.campaign_save(campaign=Campaign(
        name="Report", title="Hello", starts_at=now - timedelta(days=40)), actor_user=None)
    entered = now - timedelta(days=35)
    bulk.insert(CampaignEntry, ("campaign_id", "member_id", "occurrence", "group", "entered_at", "offer_points"),
                [(report_campaign.pk, pk, "once", Group.HOLDOUT if rng.random() < 0.1 else Group.TREATED, entered,
                  100) for pk in member_ids], ids=False)
    buyers = rng.sample(member_ids, 20_000)
    order_rows = [(None, None, f"bench-campaign-{n}", pk, entered + timedelta(days=rng.randint(0, 40)), "EUR",
                   Decimal(rng.randint(10, 120)), 0, 0, 0, 0, "placed", 0, "[]", "", now)
                  for n, pk in enumerate(buyers)]
    _orders(order_rows)
    started = time.perf_counter()
    report = selectors.campaign_report(campaign=report_campaign)
    seconds = time.perf_counter() - started
    rows.append(Row(f"A campaign report over {report.treated.members + report.holdout.members:,} entries "
                    "(conversion interval, bootstrap of revenue per member)",
                    f"{seconds:.2f} s ({report.treated.converted + report.holdout.converted:,} converted)", "< 2 s",
                    seconds < 2))
    Order.objects.filter(order_id__startswith="bench-campaign-").delete()


def _orders(order_rows) -> None:
    """Orders for the report, each with its own activity (an order is one), written in bulk."""
    from django.utils import timezone

    from accounts.models import Partner
    from core import bulk
    from rewards.models import Activity, Order

    partner = Partner.objects.first()
    now = timezone.now()
    for start in range(0, len(order_rows), 5000):
        part = order_rows[start:start + 5000]
        ids = bulk.insert(Activity, ("member_id", "partner_id", "type", "source_key", "occurred_at", "properties",
                                     "created_at"),
                          [(row[3], partner.pk, "order", f"order:bench:{row[2]}", row[4], "{}", now) for row in part])
        bulk.insert(Order, ("activity_id", "partner_id", "order_id", "member_id", "placed_at", "currency", "total",
                            "shipping", "tax", "discount", "refunded_amount", "status", "points", "rules_applied",
                            "content_hash", "created_at"),
                    [(activity, partner.pk, *row[2:]) for activity, row in zip(ids, part, strict=True)], ids=False)
