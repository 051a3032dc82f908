"""Test data made the way the code makes it: through the services, never by writing rows.

Factories (factory-boy) for the rows staff keep in the admin save through the admin's own path
(a model form validated and written by ``accounts.services.staff_save``, audited); members,
orders and refunds go through the partner services.
"""

import json
from datetime import datetime, timedelta
from decimal import Decimal

import factory
from django.db import models
from django.forms import modelform_factory
from django.utils import timezone
from django.utils.text import slugify

from accounts.services import member_upsert_for_partner, partner_set_sharing, staff_save
from feedback.models import Survey, SurveyQuestion
from rewards.models import Badge, BadgeLevel, Challenge, EarningRule, Reward, RuleKind
from rewards.payloads import parse_order, parse_refund
from rewards.program import current_program
from rewards.services import (
    earning_rule_save,
    order_record,
    order_refund,
    program_settings_update,
    reward_redeem,
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


def _form_value(field, value):
    if isinstance(field, models.ManyToManyField):
        return [getattr(item, "pk", item) for item in value]
    if isinstance(field, models.JSONField):
        return json.dumps(value)
    return getattr(value, "pk", value)


class StaffSavedFactory(factory.Factory):
    """A row saved as staff save it in the admin: the model form of the fields given, validated
    (a test that sets up something the admin would refuse fails here, naming the field)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        form_class = modelform_factory(model_class, fields=list(kwargs))
        data = {name: _form_value(model_class._meta.get_field(name), value) for name, value in kwargs.items()}
        form = form_class(data=data)
        if not form.is_valid():
            raise ValueError(f"{model_class.__name__}: {form.errors.get_json_data()}")
        return staff_save(form=form, actor_user=None)


class RewardFactory(StaffSavedFactory):
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


def in_debt(partner, external_id: str):
    """A member who spent 80 points, then had the order that earned them refunded: owes 80 (with a
    rule of 1 point per EUR and a return window under 30 days)."""
    member = customer(partner, external_id, email=f"{external_id}@{partner.pk}.example.com")
    place_order(partner, f"{external_id}-1", external_id, lines=(("TEA-1", 1, "100.00", "tea"),),
                placed_at=timezone.now() - timedelta(days=30))
    reward_redeem(member=member, reward=RewardFactory(points_cost=80))
    refund(partner, f"{external_id}-1", refund_id=f"{external_id}-r")
    member.refresh_from_db()
    assert (member.points_available, member.points_owed) == (0, 80)
    return member


def make_tiers(*specs):
    """``make_tiers(("Bronze", 0), ("Silver", 100), ("Gold", 500))``: tiers in rank order."""
    from rewards.models import Tier
    from rewards.services.tiers import tier_save

    return [tier_save(tier=Tier(name=name, rank=rank, threshold=Decimal(threshold)))
            for rank, (name, threshold) in enumerate(specs)]


class SurveyFactory(StaffSavedFactory):
    class Meta:
        model = Survey

    name = factory.Sequence(lambda n: f"Survey {n}")
    opens_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class SurveyQuestionFactory(StaffSavedFactory):
    class Meta:
        model = SurveyQuestion

    position = factory.Sequence(lambda n: n + 1)
    kind = "nps"
    text = "How likely are you to recommend us to a friend?"


class ChallengeFactory(StaffSavedFactory):
    class Meta:
        model = Challenge

    name = factory.Sequence(lambda n: f"Challenge {n}")
    criterion = "activity_count"
    threshold = Decimal(1)
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyAttribute(lambda challenge: challenge.starts_at + timedelta(days=7))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from rewards.program import program_changed

        challenge = super()._create(model_class, *args, **kwargs)
        program_changed()  # as the admin does after saving a challenge
        return challenge


class BadgeFactory(StaffSavedFactory):
    """``BadgeFactory(name="Reviewer", criterion="activity_count", levels=[("Bronze", 1, 0)])``: the
    badge, then each level (name, threshold, points bonus) with its drawn image, as the admin does."""

    class Meta:
        model = Badge

    name = factory.Sequence(lambda n: f"Badge {n}")
    slug = factory.LazyAttribute(lambda badge: slugify(badge.name))
    criterion = "activity_count"

    @classmethod
    def _create(cls, model_class, *args, levels=(), **kwargs):
        from rewards.program import program_changed
        from rewards.services.progress import badge_level_ensure_image

        badge = super()._create(model_class, **kwargs)
        for number, (level_name, threshold, bonus) in enumerate(levels, start=1):
            level = StaffSavedFactory._create(BadgeLevel, badge=badge, level=number, name=level_name,
                                              threshold=Decimal(threshold), points_bonus=bonus)
            badge_level_ensure_image(level=level)
        program_changed()
        return badge


def make_badge(name, criterion, *levels, activity_type="", slug=None):
    """``make_badge("Reviewer", "activity_count", ("Bronze", 1, 0), ("Silver", 5, 100), activity_type=...)``:
    shorthand for ``BadgeFactory``; levels are (name, threshold, points bonus)."""
    return BadgeFactory(name=name, slug=slug or slugify(name), criterion=criterion, activity_type=activity_type,
                        levels=levels)
