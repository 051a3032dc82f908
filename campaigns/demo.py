"""Demo campaigns for ``seed_demo``, each run in the past and followed by what members did, so
their reports have numbers: a win-back with bonus points, a birthday coupon, and double points on
tea for a weekend. What the members bought afterwards is made up here,
more often by those sent than by those held out, and the reports measure it like any other."""

import contextlib
import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import ExternalId
from campaigns import services
from campaigns.models import Campaign, CampaignEntry, CampaignStatus, Group, OfferKind, Trigger
from core.errors import DomainError
from rewards.models import Reward
from rewards.payloads import parse_order
from rewards.services import coupon_use, orders_record, pending_release_due


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    if Campaign.objects.exists():
        return {}
    staff, partner = context.get("staff"), context["partners"][0]
    now = timezone.now()
    cheapest = Reward.objects.filter(is_active=True).order_by("points_cost").first()
    plans = [
        (Campaign(name="Win back: 500 points for the lapsed", trigger=Trigger.ENTERING, offer=OfferKind.POINTS,
                  offer_points=500, holdout_percent=20, starts_at=now - timedelta(days=60),
                  audience={"match": "all", "conditions": [
                      {"field": "days_since_last_order", "op": "gte", "value": 45}]},
                  title="{first_name}, we miss you", body="{offer} are waiting in your account: you now have "
                  "{points} points. Treat yourself to something from {program}."), 45, (0.34, 0.16)),
        (Campaign(name="Birthday coupon", trigger=Trigger.MONTHLY, offer=OfferKind.COUPON, offer_reward=cheapest,
                  holdout_percent=20, starts_at=now - timedelta(days=60),
                  audience={"match": "all", "conditions": [{"field": "birthday_this_month", "value": True}]},
                  title="Happy birthday month, {first_name}!", body="Here is {offer}, with our best wishes."),
         20, (0.30, 0.18)),
        (Campaign(name="Double points on tea, last weekend", trigger=Trigger.ONCE, offer=OfferKind.MULTIPLIER,
                  offer_multiplier=Decimal("2"), offer_categories="tea", offer_days=3, holdout_percent=25,
                  starts_at=now - timedelta(days=20), report_days=3, audience={"match": "all", "conditions": []},
                  title="{first_name}: {offer}", body="Every tea you order this weekend earns double points. "
                  "You have {points} points now."), 20, (0.24, 0.12)),
    ]
    links = dict(ExternalId.objects.filter(partner=partner).values_list("member_id", "external_id"))
    number = 0
    for campaign, days_ago, (sent_rate, held_rate) in plans:
        campaign = services.campaign_save(campaign=campaign, actor_user=staff)
        services.campaign_set_status(campaign=campaign, status=CampaignStatus.RUNNING, actor_user=staff)
        entered = now - timedelta(days=days_ago)
        campaign.refresh_from_db()
        services.campaign_run(campaign=campaign, now=entered)
        payloads = []
        within = min(days_ago, campaign.report_days)  # in the report's window, and not in the future
        for entry in CampaignEntry.objects.filter(campaign=campaign).select_related("coupon"):
            external_id = links.get(entry.member_id)
            rate = sent_rate if entry.group == Group.TREATED else held_rate
            if external_id is None or rng.random() >= rate:
                continue
            number += 1
            price = Decimal(rng.choice(["18.50", "24.00", "32.90", "41.00", "56.00"]))
            payloads.append({"order_id": f"C{number + 50000}", "member": external_id, "currency": "EUR",
                             "placed_at": (entered + timedelta(days=rng.randint(0, within - 1),
                                                               hours=rng.randint(1, 12))).isoformat(),
                             "total": str(price),
                             "lines": [{"sku": "TEA-SENCHA", "name": "Sencha", "category": "tea", "quantity": 1,
                                        "unit_price": str(price)}]})
            if entry.coupon is not None and rng.random() < 0.7:
                with contextlib.suppress(DomainError):  # a coupon that has run out meanwhile
                    coupon_use(code=entry.coupon.code, partner=partner, order_id=payloads[-1]["order_id"])
        orders = [parse_order(p, accepted_currencies=["EUR"], now=now) for p in payloads]
        if orders:
            orders_record(partner=partner, orders=orders)
    pending_release_due()  # the return window of the older ones is over
    stdout.write(f"  {len(plans)} campaigns run, {number} orders after them")
    return {}
