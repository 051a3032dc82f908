"""Demo program for ``seed_demo``: settings, rules, rewards, 18 months of orders, refunds and
redemptions, all through the real services. Idempotent: each part is skipped once it exists."""

import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import ExternalId
from rewards.models import (
    Badge,
    BadgeLevel,
    Challenge,
    EarningRule,
    Enrollment,
    Order,
    ProgramSettings,
    Reward,
    RuleKind,
    Tier,
)
from rewards.payloads import parse_order, parse_refund
from rewards.program import program_changed
from rewards.services import (
    earning_rule_save,
    order_refund,
    orders_record,
    pending_release_due,
    points_adjust,
    points_expire_due,
    program_settings_update,
    reward_redeem,
)
from rewards.services.progress import badge_saved, progress_evaluate
from rewards.services.tiers import tier_save

PRODUCTS = [
    # sku, name, category, price
    ("TEA-SENCHA", "Sencha green tea", "tea", "12.50"),
    ("TEA-ASSAM", "Assam breakfast tea", "tea", "9.90"),
    ("TEA-EARL", "Earl Grey", "tea", "10.50"),
    ("TEA-ROOIBOS", "Rooibos vanilla", "tea", "8.90"),
    ("TEA-MATCHA", "Ceremonial matcha", "tea", "24.00"),
    ("COF-ETHIOPIA", "Ethiopia Yirgacheffe beans", "coffee", "14.00"),
    ("COF-COLOMBIA", "Colombia Huila beans", "coffee", "12.00"),
    ("CUP-STONE", "Stoneware cup", "cups", "18.00"),
    ("POT-GLASS", "Glass teapot", "teaware", "34.00"),
    ("KIT-TASTER", "Tasting kit", "gifts", "29.00"),
]


def _rule(name: str, **fields) -> None:
    if not EarningRule.objects.filter(name=name).exists():
        earning_rule_save(rule=EarningRule(name=name, **fields))


def _reward(name: str, **fields) -> Reward:
    reward = Reward.objects.filter(name=name).first()
    return reward or Reward.objects.create(name=name, **fields)


def seed(*, rng: random.Random, stdout, context: dict) -> dict:
    now = timezone.now()
    if not ProgramSettings.objects.filter(pk=1, time_zone="Europe/London").exists():
        program_settings_update(actor_user=context.get("staff"), reason="demo setup", changes={
            "time_zone": "Europe/London", "currency": "EUR", "accepted_currencies": "EUR,GBP", "pending_days": 14,
            "expiry_policy": "rolling", "expiry_months": 12, "expiring_soon_days": 45, "point_value": Decimal("0.01"),
        })
    _rule("1 point per euro", kind=RuleKind.PER_CURRENCY, activity_type="order", points_per_unit=Decimal("1"))
    _rule("Welcome bonus", kind=RuleKind.FIXED, activity_type="signup", points=100)
    _rule("Profile completed", kind=RuleKind.FIXED, activity_type="profile_completed", points=50)
    _rule("Birthday treat", kind=RuleKind.FIXED, activity_type="birthday", points=250)
    _rule("Review with thanks", kind=RuleKind.FIXED, activity_type="review_approved", points=50)
    _rule("Survey thanks", kind=RuleKind.FIXED, activity_type="survey_completed", points=25)
    _rule("App installed", kind=RuleKind.FIXED, activity_type="app_installed", points=150, cap_per_month=150)
    _rule("Big basket bonus", kind=RuleKind.FIXED, activity_type="order", points=50, min_order_value=Decimal("80"),
          priority=90)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    _rule("Double points on tea this month", kind=RuleKind.MULTIPLIER, activity_type="order",
          multiplier=Decimal("2"), categories=["tea"], starts_at=month_start, ends_at=month_start + timedelta(days=32))

    rewards = [
        _reward("Free shipping", kind="free_shipping", points_cost=300,
                description="Free standard shipping on your next order."),
        _reward("5 EUR off", kind="fixed_discount", value=Decimal("5"), currency="EUR", points_cost=500,
                description="5 EUR off any order over 20 EUR."),
        _reward("10% off", kind="percentage_discount", value=Decimal("10"), points_cost=800,
                description="10% off your whole basket."),
        _reward("Free stoneware cup", kind="free_product", product_sku="CUP-STONE", points_cost=1200, stock=50,
                description="Our handmade stoneware cup, on us."),
        _reward("20 EUR off", kind="fixed_discount", value=Decimal("20"), currency="EUR", points_cost=1800,
                per_member_limit=1, description="Once per member: 20 EUR off an order over 60 EUR."),
    ]

    partner = context["partners"][0]
    if not Order.objects.filter(partner=partner).exists():
        _seed_orders(rng=rng, partner=partner, now=now)
        pending_release_due()
        points_expire_due()
        member = context["member"]
        member.refresh_from_db()
        # Redeemed over the last weeks, before yesterday's insights snapshot: it counts them.
        if member.points_available >= 300:
            reward_redeem(member=member, reward=rewards[0], now=now - timedelta(days=3))
        points_adjust(member=member, points=120, reason="Sorry your parcel was late", actor_user=context.get("staff"))
        for other in ExternalId.objects.filter(partner=partner).select_related("member")[:40]:
            other.member.refresh_from_db()
            if other.member.points_available >= 500:
                reward_redeem(member=other.member, reward=rewards[1],
                              now=now - timedelta(days=rng.randint(2, 25), hours=rng.randint(0, 12)))
    if not Tier.objects.exists():
        _seed_progress(now=now, staff=context.get("staff"))
    return {"rewards": rewards, "products": PRODUCTS}


TIERS = [
    # name, threshold (points earned over 12 months), colour, benefits
    ("Bronze", 0, "#b45309", "1 point per euro\n250 points on your birthday"),
    ("Silver", 300, "#64748b", "1.25 points per euro\n400 points on your birthday\nEarly access to new rewards"),
    ("Gold", 1000, "#ca8a04", "1.5 points per euro\n750 points on your birthday\nEarly access to new rewards\n"
                             "Gold-only rewards"),
]
BADGES = [
    # name, criterion, activity type, description, levels (name, threshold, points bonus)
    ("First order", "first", "order", "Placed your first order.", [("Unlocked", 1, 0)]),
    ("Regular", "order_streak", "", "Ordered in consecutive months.",
     [("Bronze", 2, 0), ("Silver", 4, 100), ("Gold", 8, 250)]),
    ("Big spender", "spend", "", "Total spend with us, in euros.",
     [("Bronze", 100, 0), ("Silver", 300, 50), ("Gold", 800, 150)]),
    ("Explorer", "distinct_categories", "", "Tried different kinds of products.",
     [("Bronze", 3, 0), ("Silver", 5, 100)]),
    ("Reviewer", "activity_count", "review_approved", "Wrote reviews other shoppers can rely on.",
     [("Bronze", 1, 0), ("Silver", 5, 100), ("Gold", 15, 300)]),
    ("Old friend", "membership_years", "", "Years in the program.", [("1 year", 1, 100), ("3 years", 3, 300)]),
]


def _seed_progress(*, now, staff) -> None:
    """Tiers with their benefits, badges with levels and two running challenges, then everyone's
    standing computed the way the nightly task does it."""
    program_settings_update(actor_user=staff, reason="demo tiers", changes={
        "tier_measure": "points", "tier_window": "rolling", "tier_window_months": 12, "tier_grace_days": 30,
        "tier_warning_days": 30, "tier_max_drop": 1,
    })
    tiers = [tier_save(tier=Tier(name=name, rank=rank, threshold=Decimal(threshold), color=colour, benefits=benefits),
                       actor_user=staff)
             for rank, (name, threshold, colour, benefits) in enumerate(TIERS)]
    bronze, silver, gold = tiers
    for tier, multiplier, birthday in ((silver, "1.25", 150), (gold, "1.5", 500)):
        earning_rule_save(rule=EarningRule(name=f"{tier.name}: {multiplier}x points", kind=RuleKind.MULTIPLIER,
                                           activity_type="order", multiplier=Decimal(multiplier)),
                          tier_ids=[tier.pk], actor_user=staff)
        earning_rule_save(rule=EarningRule(name=f"{tier.name}: birthday extra", kind=RuleKind.FIXED,
                                           activity_type="birthday", points=birthday),
                          tier_ids=[tier.pk], actor_user=staff)
    tasting = Reward.objects.create(name="Gold tasting evening", kind="free_product", product_sku="EVENT-TASTING",
                                    points_cost=1500, stock=20,
                                    description="An evening of rare teas, for Gold members.")
    tasting.tiers.set([gold])
    whisk = Reward.objects.create(name="Bamboo matcha whisk", kind="free_product", product_sku="WHISK-BAMBOO",
                                  points_cost=900, valid_from=now + timedelta(days=7),
                                  early_access_from=now - timedelta(days=2),
                                  description="Silver and Gold members get it a week before everyone else.")
    whisk.early_access_tiers.set([silver, gold])

    for name, criterion, activity_type, description, levels in BADGES:
        badge = Badge.objects.create(name=name, slug=name.lower().replace(" ", "-"), criterion=criterion,
                                     activity_type=activity_type, description=description)
        BadgeLevel.objects.bulk_create([
            BadgeLevel(badge=badge, level=number, name=level, threshold=Decimal(threshold), points_bonus=bonus)
            for number, (level, threshold, bonus) in enumerate(levels, start=1)
        ])
        badge_saved(badge=badge)

    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    Challenge.objects.create(name="Two kinds this month", criterion="distinct_categories", threshold=Decimal(2),
                             description="Order from two different categories before the month ends.",
                             starts_at=month_start, ends_at=next_month, reward_points=200)
    Challenge.objects.create(name="Spend 60 EUR in two weeks", criterion="spend", threshold=Decimal(60),
                             description="Join, then spend 60 EUR before the deadline.",
                             starts_at=now - timedelta(days=3), ends_at=now + timedelta(days=11),
                             enrollment=Enrollment.OPT_IN, reward_points=150)
    program_changed()  # as the admin does after saving a challenge
    progress_evaluate()


def _seed_orders(*, rng: random.Random, partner, now) -> None:
    customers = list(ExternalId.objects.filter(partner=partner).values_list("external_id", flat=True))
    payloads = []
    for external_id in customers:
        # A believable spread: loyal regulars, lapsed shoppers and newcomers.
        profile = rng.random()
        if profile < 0.25:
            count, window = rng.randint(6, 14), 540
        elif profile < 0.6:
            count, window = rng.randint(1, 4), 540
        elif profile < 0.85:
            count, window = rng.randint(1, 3), 90
        else:
            continue
        if external_id == "cust-demo":
            count, window = 9, 400
        for number in range(count):
            days_ago = rng.randint(1, window) if not (external_id == "cust-demo" and number == 0) else 3
            if external_id == "cust-demo" and number == 1:
                # Her first order over a year ago, whatever the draw (the customers come in no set
                # order, so the draws fall differently): she joined before it, an "Old friend".
                days_ago = window
            placed_at = now - timedelta(days=days_ago, minutes=rng.randint(0, 600))
            lines = []
            for sku, name, category, price in rng.sample(PRODUCTS, rng.randint(1, 3)):
                lines.append({"sku": sku, "name": name, "category": category, "quantity": rng.randint(1, 3),
                              "unit_price": price})
            merchandise = sum(Decimal(line["unit_price"]) * line["quantity"] for line in lines)
            shipping = Decimal("0") if merchandise >= 40 else Decimal("4.90")
            payloads.append({
                "order_id": f"D{len(payloads) + 10001}", "member": external_id, "placed_at": placed_at.isoformat(),
                "currency": "EUR", "total": str(merchandise + shipping), "shipping": str(shipping), "lines": lines,
            })
    payloads.sort(key=lambda p: p["placed_at"])
    accepted = ["EUR", "GBP"]
    for start in range(0, len(payloads), 500):
        orders = [parse_order(p, accepted_currencies=accepted, now=now) for p in payloads[start:start + 500]]
        orders_record(partner=partner, orders=orders)
    # A few returns, as in any shop.
    for payload in rng.sample(payloads, min(12, len(payloads))):
        order_refund(partner=partner, order_id=payload["order_id"],
                     refund=parse_refund({"refund_id": "R1", "lines": [{"sku": payload["lines"][0]["sku"],
                                                                        "quantity": 1}]}))
