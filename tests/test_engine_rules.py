"""Earning rules: what an order or an activity earns, and which rule configurations are refused."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import Invalid
from rewards.models import RuleKind
from rewards.services import activity_record
from tests.factories import RuleFactory, at, customer, place_order, same_store, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=0, expiry_policy="never", accepted_currencies="EUR,USD", time_zone="UTC")
    return customer(tea_shop, "cust-42", email="ada@example.com")


def points_by_rule(result):
    return {item["name"]: item["points"] for item in result.award.rules}


def test_points_per_euro_round_down_by_default(tea_shop, ada):
    RuleFactory(name="1 per EUR", points_per_unit=Decimal("1"))
    result = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "25.90", "tea"),))
    assert result.award.points == 25
    assert points_by_rule(result) == {"1 per EUR": 25}


def test_nearest_rounding_rounds_halves_up(tea_shop, ada):
    RuleFactory(name="1 per EUR", points_per_unit=Decimal("1"), rounding="nearest")
    assert place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "25.50", "tea"),)).award.points == 26
    assert place_order(tea_shop, "2", "cust-42", lines=(("TEA-1", 1, "25.49", "tea"),)).award.points == 25


def test_rounding_is_on_the_order_not_each_line(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    lines = (("A", 1, "1.50", "x"), ("B", 1, "1.50", "x"), ("C", 1, "1.50", "x"))
    assert place_order(tea_shop, "1", "cust-42", lines=lines).award.points == 4


def test_double_points_only_inside_its_dates_and_credited_separately(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    start = timezone.now() - timedelta(days=1)
    RuleFactory(name="Double weekend", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("2"),
                starts_at=start, ends_at=start + timedelta(days=2))
    inside = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "25.00", "tea"),))
    assert points_by_rule(inside) == {"1 per EUR": 25, "Double weekend": 25}
    before = place_order(tea_shop, "2", "cust-42", lines=(("TEA-1", 1, "25.00", "tea"),),
                         placed_at=start - timedelta(minutes=1))
    assert points_by_rule(before) == {"1 per EUR": 25}


def test_category_multiplier_only_multiplies_its_lines(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Triple tea", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("3"),
                categories=["tea"])
    lines = (("TEA-1", 2, "10.00", "tea"), ("COF-1", 1, "10.00", "coffee"))
    result = place_order(tea_shop, "1", "cust-42", lines=lines)
    assert points_by_rule(result) == {"1 per EUR": 30, "Triple tea": 40}
    assert result.award.points == 70


def test_two_multipliers_multiply(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    RuleFactory(name="x2", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("2"), priority=20)
    RuleFactory(name="x1.5", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("1.5"), priority=10)
    result = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "10.00", "tea"),))
    assert points_by_rule(result) == {"1 per EUR": 10, "x2": 10, "x1.5": 10}


def test_a_rule_that_does_not_stack_stops_lower_priority_rules(tea_shop, ada):
    RuleFactory(name="1 per EUR", priority=100)
    RuleFactory(name="VIP 3 per EUR", points_per_unit=Decimal("3"), priority=200, stacks=False)
    result = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "10.00", "tea"),))
    assert points_by_rule(result) == {"VIP 3 per EUR": 30}


def test_stacking_rules_add_up(tea_shop, ada):
    RuleFactory(name="1 per EUR", priority=100)
    RuleFactory(name="Order bonus", kind=RuleKind.FIXED, points_per_unit=None, points=50, priority=50)
    result = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "10.00", "tea"),))
    assert points_by_rule(result) == {"1 per EUR": 10, "Order bonus": 50}


def test_minimum_order_value_counts_lines_after_discount(tea_shop, ada):
    RuleFactory(name="Big basket bonus", kind=RuleKind.FIXED, points_per_unit=None, points=50,
                min_order_value=Decimal("30.00"))
    small = place_order(tea_shop, "1", "cust-42", lines=(("TEA-1", 1, "35.00", "tea"),), discount="10.00")
    big = place_order(tea_shop, "2", "cust-42", lines=(("TEA-1", 1, "35.00", "tea"),), shipping="4.90")
    assert small.award.points == 0
    assert big.award.points == 50


def test_discount_is_shared_over_lines_and_shipping_earns_nothing(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    result = place_order(tea_shop, "1", "cust-42", lines=(("A", 1, "60.00", "x"), ("B", 1, "40.00", "y")),
                         discount="20.00", shipping="5.00", tax="3.00")
    assert result.award.points == 80


def test_rule_limited_to_a_partner_ignores_other_partners(tea_shop, coffee_bar, ada):
    RuleFactory(name="Tea shop only", partners=[tea_shop])
    same_store(tea_shop, coffee_bar)
    customer(coffee_bar, "cb-1", email="ada@example.com")
    assert place_order(tea_shop, "1", "cust-42").award.points == 10
    assert place_order(coffee_bar, "1", "cb-1").award.points == 0


def test_rules_only_count_orders_in_their_currency(tea_shop, ada):
    RuleFactory(name="1 per EUR")
    RuleFactory(name="1 per USD", currency="USD", points_per_unit=Decimal("0.9"))
    assert points_by_rule(place_order(tea_shop, "1", "cust-42", currency="USD")) == {"1 per USD": 9}


def test_daily_cap_limits_points_per_member_per_day(tea_shop, ada):
    RuleFactory(name="Share bonus", kind=RuleKind.FIXED, points_per_unit=None, points=100, activity_type="social_share",
                cap_per_day=150)
    day = at("2026-05-01 09:00")
    earned = [
        activity_record(member=ada, type="social_share", source_key=f"s{i}", description="Shared",
                        occurred_at=day + timedelta(hours=i)).award.points
        for i in range(3)
    ]
    assert earned == [100, 50, 0]
    next_day = activity_record(member=ada, type="social_share", source_key="s-next", description="Shared",
                               occurred_at=day + timedelta(days=1))
    assert next_day.award.points == 100


def test_monthly_cap_counts_the_calendar_month_in_the_program_time_zone(tea_shop, ada):
    set_program(time_zone="America/New_York")
    RuleFactory(name="Share bonus", kind=RuleKind.FIXED, points_per_unit=None, points=100, activity_type="social_share",
                cap_per_month=100)
    # 03:00 UTC on 1 June is still 31 May in New York: the same month as the first share.
    first = activity_record(member=ada, type="social_share", source_key="a", description="Shared",
                            occurred_at=at("2026-05-20 12:00"))
    second = activity_record(member=ada, type="social_share", source_key="b", description="Shared",
                             occurred_at=at("2026-06-01 03:00"))
    third = activity_record(member=ada, type="social_share", source_key="c", description="Shared",
                            occurred_at=at("2026-06-01 05:00"))
    assert [first.award.points, second.award.points, third.award.points] == [100, 0, 100]


def test_same_activity_twice_earns_once(tea_shop, ada):
    RuleFactory(name="App", kind=RuleKind.FIXED, points_per_unit=None, points=200, activity_type="app_installed")
    first = activity_record(member=ada, type="app_installed", source_key="app:1", description="Installed")
    again = activity_record(member=ada, type="app_installed", source_key="app:1", description="Installed")
    assert (first.created, first.award.points) == (True, 200)
    assert again.created is False
    ada.refresh_from_db()
    assert ada.points_available == 200


class TestRuleValidation:
    def test_two_rules_that_would_be_a_coin_toss_are_refused(self, ada):
        RuleFactory(name="A", priority=100, stacks=False)
        with pytest.raises(Invalid) as refused:
            RuleFactory(name="B", priority=100, points_per_unit=Decimal("2"))
        assert "priority" in refused.value.fields
        assert "'A' has the same priority" in refused.value.fields["priority"][0]

    def test_same_priority_is_fine_when_dates_do_not_overlap_or_both_stack(self, ada):
        now = timezone.now()
        RuleFactory(name="May", priority=100, stacks=False, starts_at=now, ends_at=now + timedelta(days=30))
        RuleFactory(name="June", priority=100, stacks=False, starts_at=now + timedelta(days=30),
                    ends_at=now + timedelta(days=60))
        RuleFactory(name="Base", priority=50)
        RuleFactory(name="Bonus", kind=RuleKind.FIXED, points_per_unit=None, points=5, priority=50)
        with pytest.raises(Invalid):
            # Same priority as the non-stacking May rule: would it stop this one or not?
            RuleFactory(name="Also bonus", kind=RuleKind.FIXED, points_per_unit=None, points=5, priority=100)

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"kind": RuleKind.PER_CURRENCY, "points_per_unit": None}, "points_per_unit"),
            ({"kind": RuleKind.FIXED, "points_per_unit": None, "points": None}, "points"),
            ({"kind": RuleKind.MULTIPLIER, "points_per_unit": None, "multiplier": Decimal("0")}, "multiplier"),
            ({"activity_type": "signup"}, "activity_type"),
            ({"currency": "XYZ"}, "currency"),
            ({"starts_at": at("2026-05-02 00:00"), "ends_at": at("2026-05-01 00:00")}, "ends_at"),
            ({"activity_type": "Bad Type!"}, "activity_type"),
        ],
    )
    def test_incomplete_or_impossible_rules_are_refused_naming_the_field(self, ada, fields, field):
        with pytest.raises(Invalid) as refused:
            RuleFactory(**fields)
        assert field in refused.value.fields


def test_a_back_dated_activity_cannot_beat_the_monthly_cap(tea_shop, ada):
    RuleFactory(name="Install bonus", kind=RuleKind.FIXED, points_per_unit=None, points=150,
                activity_type="app_installed", cap_per_month=150)
    later = activity_record(member=ada, type="app_installed", source_key="e-2", description="Installed",
                            occurred_at=at("2026-12-02 10:00"))
    earlier = activity_record(member=ada, type="app_installed", source_key="e-1", description="Installed",
                              occurred_at=at("2026-12-01 10:00"))
    assert (later.award.points, earlier.award.points) == (150, 0)


def test_no_cap_is_exceeded_whatever_order_activities_arrive_in(tea_shop):
    import random

    RuleFactory(name="Share bonus", kind=RuleKind.FIXED, points_per_unit=None, points=100,
                activity_type="social_share", cap_per_day=100, cap_per_month=250)
    rng = random.Random(7)
    members = [customer(tea_shop, f"m{n}") for n in range(20)]
    # Each member shares on 5 days of May and 2 of June, twice a day: 28 shares worth 100 each.
    arrivals = [(member, day, share) for member in members
                for day in [*(f"2026-05-{d:02d}" for d in (3, 9, 17, 24, 30)), "2026-06-01", "2026-06-02"]
                for share in range(2)]
    rng.shuffle(arrivals)
    for member, day, share in arrivals:
        activity_record(member=member, type="social_share", source_key=f"{member.pk}-{day}-{share}",
                        description="Shared", occurred_at=at(f"{day} 1{share}:00"))
    for member in members:
        member.refresh_from_db()
        # 100 a day at most, 250 a month at most: May gives 250, June 200.
        assert member.points_available + member.points_pending == 450
