"""Test data made through the real services (factory-boy where a model has many fields)."""

from datetime import datetime, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.services import member_upsert_for_partner, partner_set_sharing
from rewards.models import EarningRule, Reward, RuleKind
from rewards.payloads import parse_order, parse_refund
from rewards.program import current_program
from rewards.services import (
    earning_rule_save,
    order_record,
    order_refund,
    program_settings_update,
)


def at(text: str) -> datetime:
    """``at("2026-05-01 10:00")`` -> an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.get_fixed_timezone(0))


def set_program(**changes):
    return program_settings_update(actor_user=None, changes=changes)


class RuleFactory(factory.Factory):
    class Meta:
        model = EarningRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = RuleKind.PER_CURRENCY
    activity_type = "order"
    points_per_unit = Decimal("1")

    @classmethod
    def _create(cls, model_class, *args, partners=(), tiers=(), **kwargs):
        return earning_rule_save(rule=model_class(**kwargs), partner_ids=[p.pk for p in partners],
                                 tier_ids=[t.pk for t in tiers])


class RewardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reward

    name = factory.Sequence(lambda n: f"{5 + n} EUR off")
    kind = "fixed_discount"
    value = Decimal("5.00")
    currency = "EUR"
    points_cost = 500


def same_store(*partners):
    """Staff mark these partners as one store (a web shop and its till): they share members by email."""
    for partner in partners:
        partner_set_sharing(partner=partner, shares_with=[p for p in partners if p != partner])


def customer(partner, external_id: str, **data):
    member, _ = member_upsert_for_partner(partner=partner, external_id=external_id, data=data)
    return member


def order_payload(order_id: str, member: str, *, lines=(("TEA-1", 1, "10.00", "tea"),), placed_at=None,
                  currency="EUR", shipping="0", tax="0", discount="0", total=None) -> dict:
    amounts = sum(Decimal(price) * qty for _, qty, price, _ in lines)
    total = total if total is not None else amounts + Decimal(shipping) + Decimal(tax) - Decimal(discount)
    return {
        "order_id": order_id, "member": member,
        "placed_at": (placed_at or timezone.now() - timedelta(minutes=1)).isoformat(),
        "currency": currency, "total": str(total), "shipping": shipping, "tax": tax, "discount": discount,
        "lines": [{"sku": sku, "name": sku.title(), "category": category, "quantity": qty, "unit_price": price}
                  for sku, qty, price, category in lines],
    }


def place_order(partner, order_id: str, member: str, **kwargs):
    payload = order_payload(order_id, member, **kwargs)
    order = parse_order(payload, accepted_currencies=current_program().settings.accepted())
    return order_record(partner=partner, order=order)


def refund(partner, order_id: str, **payload):
    return order_refund(partner=partner, order_id=order_id, refund=parse_refund(payload))


def make_tiers(*specs):
    """``make_tiers(("Bronze", 0), ("Silver", 100), ("Gold", 500))``: tiers in rank order."""
    from rewards.models import Tier
    from rewards.services.tiers import tier_save

    return [tier_save(tier=Tier(name=name, rank=rank, threshold=Decimal(threshold)))
            for rank, (name, threshold) in enumerate(specs)]


def make_badge(name, criterion, *levels, activity_type="", slug=None):
    """``make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), ("Silver", 5, 100), activity_type=...)``;
    levels are (name, threshold, points bonus). Saved the way the admin saves a badge."""
    from django.utils.text import slugify

    from rewards.models import Badge, BadgeLevel
    from rewards.services.progress import badge_level_ensure_image

    badge = Badge.objects.create(name=name, slug=slug or slugify(name), criterion=criterion,
                                 activity_type=activity_type)
    for number, (level_name, threshold, bonus) in enumerate(levels, start=1):
        badge_level_ensure_image(level=BadgeLevel.objects.create(
            badge=badge, level=number, name=level_name, threshold=Decimal(threshold), points_bonus=bonus))
    from rewards.program import forget_program

    forget_program()
    return badge
