"""Tiers: up the moment a member qualifies, down only at review after the grace period."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditLog, Notification
from rewards.models import MemberTier, RuleKind, TierChange
from rewards.services.tiers import (
    tier_set_manually,
    tier_thresholds_apply,
    tier_thresholds_plan,
    tiers_evaluate,
)
from tests.factories import RuleFactory, at, customer, make_tiers, place_order, refund, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers():
    set_program(pending_days=0, expiry_policy="never", tier_measure="points", tier_window="rolling",
                tier_window_months=12, tier_grace_days=30, tier_warning_days=30, tier_max_drop=1)
    RuleFactory(name="1 per EUR")
    return make_tiers(("Bronze", 0), ("Silver", 100), ("Gold", 500))


@pytest.fixture
def ada(tea_shop, tiers):
    return customer(tea_shop, "cust-42", email="ada@example.com")


def tier_of(member):
    status = MemberTier.objects.filter(member=member).select_related("tier").first()
    return status.tier.name if status else None


def buy(tea_shop, order_id, amount, placed_at=None):
    return place_order(tea_shop, order_id, "cust-42", lines=(("TEA-1", 1, amount, "tea"),),
                       placed_at=placed_at or timezone.now() - timedelta(minutes=5))


def test_a_member_moves_up_the_moment_they_qualify(tea_shop, ada, django_capture_on_commit_callbacks, eager_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        buy(tea_shop, "1", "60.00")
    assert tier_of(ada) is None  # 60 points: still the entry tier
    with django_capture_on_commit_callbacks(execute=True):
        buy(tea_shop, "2", "50.00")
    assert tier_of(ada) == "Silver"
    change = TierChange.objects.get(member=ada)
    assert (change.from_tier.name, change.to_tier.name, change.cause, change.measure) == (
        "Bronze", "Silver", "qualified", Decimal("110"))
    assert Notification.objects.filter(member=ada, kind="tier_up", title="Welcome to Silver!").exists()


def test_pending_points_count_towards_the_tier(tea_shop, ada):
    set_program(pending_days=14)
    buy(tea_shop, "1", "120.00")
    tiers_evaluate(member_ids=[ada.pk])
    assert tier_of(ada) == "Silver"


def test_no_downgrade_before_the_period_and_grace_end_then_one_step_down(tea_shop, ada):
    buy(tea_shop, "1", "600.00")
    reached_at = timezone.now()
    tiers_evaluate(member_ids=[ada.pk], now=reached_at)
    status = MemberTier.objects.get(member=ada)
    assert status.tier.name == "Gold"
    end = status.period_end
    # Held for the 12-month window: the same day and time a year on.
    assert end == reached_at.replace(year=reached_at.year + 1)
    # A year on, the points have left the window. Until the grace period ends, Gold stays.
    assert tiers_evaluate(now=end + timedelta(days=29)).downgraded == 0
    assert tier_of(ada) == "Gold"
    run = tiers_evaluate(now=end + timedelta(days=31))
    assert run.downgraded == 1
    assert tier_of(ada) == "Silver"  # one step, though the measure (0) would allow Bronze
    change = TierChange.objects.filter(member=ada, cause="downgraded").get()
    assert (change.from_tier.name, change.to_tier.name) == ("Gold", "Silver")
    assert Notification.objects.filter(member=ada, kind="tier_down").exists()


def test_staff_can_allow_a_bigger_drop(tea_shop, ada):
    set_program(tier_max_drop=2)
    buy(tea_shop, "1", "600.00")
    tiers_evaluate(member_ids=[ada.pk])
    end = MemberTier.objects.get(member=ada).period_end
    tiers_evaluate(now=end + timedelta(days=31))
    assert tier_of(ada) == "Bronze"


def test_a_tier_kept_at_review_is_renewed_for_another_period(tea_shop, ada):
    buy(tea_shop, "1", "150.00", placed_at=timezone.now() - timedelta(days=1))
    tiers_evaluate(member_ids=[ada.pk])
    status = MemberTier.objects.get(member=ada)
    first_end = status.period_end
    # Another order inside the window that ends at the period's end keeps Silver.
    buy(tea_shop, "2", "150.00", placed_at=timezone.now())
    run = tiers_evaluate(now=first_end + timedelta(days=31))
    # The measure at review is over the 12 months ending at the period's end: both orders count.
    assert (run.renewed, run.downgraded) == (1, 0)
    status.refresh_from_db()
    assert status.tier.name == "Silver" and status.period_end > first_end


def test_refunds_count_against_the_measure(tea_shop, ada):
    buy(tea_shop, "1", "150.00")
    tiers_evaluate(member_ids=[ada.pk])
    assert tier_of(ada) == "Silver"
    refund(tea_shop, "1", refund_id="r-1")
    end = MemberTier.objects.get(member=ada).period_end
    tiers_evaluate(now=end + timedelta(days=31))
    assert tier_of(ada) == "Bronze"


def test_running_the_nightly_evaluation_twice_changes_nothing(tea_shop, ada):
    buy(tea_shop, "1", "600.00")
    first = tiers_evaluate()
    second = tiers_evaluate()
    assert (first.upgraded, second.upgraded, second.downgraded, second.renewed, second.warned) == (1, 0, 0, 0, 0)
    assert TierChange.objects.count() == 1


def test_members_are_warned_once_before_a_downgrade_with_what_keeps_the_tier(tea_shop, ada):
    buy(tea_shop, "1", "50.00", placed_at=timezone.now() - timedelta(days=340))
    buy(tea_shop, "2", "60.00", placed_at=timezone.now() - timedelta(days=300))
    tiers_evaluate(member_ids=[ada.pk], now=timezone.now() - timedelta(days=300))
    end = MemberTier.objects.get(member=ada).period_end
    assert tiers_evaluate(now=end - timedelta(days=31)).warned == 0
    # 29 days before the end, the first order has left the 12-month window: Silver is at risk.
    run = tiers_evaluate(now=end - timedelta(days=29))
    assert run.warned == 1
    note = Notification.objects.get(member=ada, kind="tier_warning")
    assert note.title == "Keep Silver"
    assert "40 points more before then" in note.body
    assert tiers_evaluate(now=end - timedelta(days=28)).warned == 0


def test_staff_set_a_tier_by_hand_until_a_date(tea_shop, ada, staff):
    until = timezone.now() + timedelta(days=60)
    tier_set_manually(member=ada, tier=make_tiers_named("Gold"), until=until, reason="Press partner",
                      actor_user=staff)
    assert tier_of(ada) == "Gold"
    assert tiers_evaluate(now=until - timedelta(days=1)).downgraded == 0
    assert tier_of(ada) == "Gold"
    change = TierChange.objects.get(member=ada, cause="manual")
    assert (change.actor_user, change.reason) == (staff, "Press partner")
    assert AuditLog.objects.filter(action="tier.set_manually", member=ada, actor_user=staff).exists()
    # After its end date, the normal review applies (no grace for a hand-set tier).
    tiers_evaluate(now=until + timedelta(hours=1))
    assert tier_of(ada) == "Silver"


def make_tiers_named(name):
    from rewards.models import Tier

    return Tier.objects.get(name=name)


def test_calendar_year_reviews_the_year_that_ended(tea_shop, ada):
    set_program(tier_window="calendar_year", time_zone="UTC")
    now = timezone.now()
    buy(tea_shop, "1", "150.00", placed_at=now - timedelta(minutes=1))
    tiers_evaluate(member_ids=[ada.pk])
    end = MemberTier.objects.get(member=ada).period_end
    assert (end.month, end.day, end.year) == (1, 1, now.year + 1)
    # At the review (the end of next January) the order from last year still counts for last year.
    run = tiers_evaluate(now=end + timedelta(days=31))
    assert (run.renewed, run.downgraded) == (1, 0)


def test_a_threshold_change_is_previewed_then_applied_in_one_audited_step(tea_shop, ada, coffee_bar, staff):
    customer(tea_shop, "cust-43", email="grace@example.com")
    buy(tea_shop, "1", "150.00")
    place_order(tea_shop, "2", "cust-43", lines=(("TEA-1", 1, "450.00", "tea"),))
    tiers_evaluate()
    assert tier_of(ada) == "Silver"
    silver = make_tiers_named("Silver")
    gold = make_tiers_named("Gold")
    plan = tier_thresholds_plan(thresholds={silver.pk: Decimal(200), gold.pk: Decimal(400)})
    assert (plan.up, plan.down) == (1, 1)  # grace reaches Gold, Ada falls below Silver
    assert tier_of(ada) == "Silver"  # a dry run changes nothing
    tier_thresholds_apply(thresholds={silver.pk: Decimal(200), gold.pk: Decimal(400)}, actor_user=staff,
                          reason="new season")
    assert tier_of(ada) == "Bronze"
    assert MemberTier.objects.get(member__email="grace@example.com").tier.name == "Gold"
    assert AuditLog.objects.filter(action="tier.thresholds_changed", actor_user=staff).exists()
    assert TierChange.objects.filter(cause="thresholds").count() == 2


def test_a_tier_multiplier_rule_only_counts_for_that_tier(tea_shop, ada, tiers):
    RuleFactory(name="Gold double", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal(2),
                tiers=[tiers[2]])
    assert buy(tea_shop, "1", "600.00").award.points == 600
    tiers_evaluate(member_ids=[ada.pk])
    assert tier_of(ada) == "Gold"
    assert buy(tea_shop, "2", "10.00").award.points == 20


def test_tier_only_and_early_access_rewards(tea_shop, ada, tiers):
    from rewards.selectors import catalog
    from rewards.services import points_adjust
    from tests.factories import RewardFactory

    points_adjust(member=ada, points=1000, reason="test")  # an adjustment earns no tier
    gold_only = RewardFactory(name="Gold lounge", points_cost=10)
    gold_only.tiers.set([tiers[2]])
    early = RewardFactory(name="Preview sale", points_cost=10, valid_from=timezone.now() + timedelta(days=5),
                          early_access_from=timezone.now() - timedelta(days=1))
    early.early_access_tiers.set([tiers[1]])
    blocked = {item.reward.name: item.blocked for item in catalog(member=ada)}
    assert blocked["Gold lounge"] == "For Gold members."
    assert blocked["Preview sale"].startswith("Available from")
    buy(tea_shop, "1", "150.00")
    tiers_evaluate(member_ids=[ada.pk])
    blocked = {item.reward.name: item.blocked for item in catalog(member=ada)}
    assert blocked["Preview sale"] is None
    assert blocked["Gold lounge"] == "For Gold members."


def test_the_partner_api_returns_tier_and_progress(api, ada, tea_shop):
    buy(tea_shop, "1", "150.00")
    tiers_evaluate(member_ids=[ada.pk])
    tier = api.get("/api/v1/members/cust-42/").json()["tier"]
    assert (tier["name"], tier["rank"], tier["measure"]) == ("Silver", 1, "150")
    assert tier["next"] == {"name": "Gold", "needed": "350"}
    assert tier["progress"].startswith("350 points more to reach Gold")
    assert "You have done enough to keep Silver" in tier["keep"]


def test_the_tier_page_says_where_the_member_stands(client, alice, tea_shop, tiers, django_assert_max_num_queries):
    customer(tea_shop, "cust-42", email="alice@example.com")
    buy(tea_shop, "1", "150.00")
    tiers_evaluate()
    client.force_login(alice.user)
    with django_assert_max_num_queries(20):
        page = client.get("/rewards/tier/")
    html = page.content.decode()
    assert 'data-testid="tier-name">Silver<' in html
    assert "350 points more to reach Gold" in html
    # Each tier says what it takes with its unit (it said "From 500", and numbers three ways).
    bronze, _silver, gold = (t.pk for t in page.context["progress"].tiers)
    assert f'data-testid="threshold-{bronze}">Where everyone starts<' in html
    assert f'data-testid="threshold-{gold}">From 500 points<' in html


class TestTierDecide:
    """The rule of tiers on its own: no database reads or writes in the decision."""

    @pytest.fixture
    def program(self, db):
        make_tiers(("Bronze", 0), ("Silver", 100), ("Gold", 500), ("Platinum", 2000))
        set_program(tier_grace_days=10, tier_warning_days=30, tier_max_drop=1)
        from rewards.program import current_program

        return current_program()

    def tier(self, program, name):
        return next(t for t in program.tiers if t.name == name)

    def status(self, program, name, *, period_end, manual_until=None, warned_for=None):
        from rewards.models import MemberTier

        return MemberTier(tier=self.tier(program, name), period_end=period_end, manual_until=manual_until,
                          warned_for=warned_for)

    def decide(self, program, current, status, measure, review=None, now=None):
        from rewards.services.tiers import tier_decide

        return tier_decide(program=program, current=self.tier(program, current) if current else None, status=status,
                           measure=Decimal(measure), review_measure=None if review is None else Decimal(review),
                           now=now or at("2026-06-01 12:00"))

    def test_reaching_a_higher_tier_moves_up_at_once(self, program, django_assert_num_queries):
        with django_assert_num_queries(0):
            decision = self.decide(program, "Bronze", None, "650")
        assert (decision.kind, decision.tier.name) == ("upgrade", "Gold")

    def test_a_review_keeps_a_tier_that_still_qualifies_and_renews_its_period(self, program):
        status = self.status(program, "Gold", period_end=at("2026-05-01 00:00"))
        decision = self.decide(program, "Gold", status, "0", review="520")
        assert (decision.kind, decision.tier.name) == ("renew", "Gold")
        assert decision.period_end > at("2026-06-01 12:00")

    def test_a_review_drops_at_most_one_step(self, program):
        status = self.status(program, "Platinum", period_end=at("2026-05-01 00:00"))
        decision = self.decide(program, "Platinum", status, "0", review="0")
        assert (decision.kind, decision.tier.name) == ("downgrade", "Gold")

    def test_a_warning_comes_once_a_period_and_never_to_a_tier_set_by_hand(self, program):
        end = at("2026-06-20 00:00")
        assert self.decide(program, "Gold", self.status(program, "Gold", period_end=end), "100").kind == "warn"
        warned = self.status(program, "Gold", period_end=end, warned_for=end)
        assert self.decide(program, "Gold", warned, "100").kind == "none"
        manual = self.status(program, "Gold", period_end=end, manual_until=end)
        assert self.decide(program, "Gold", manual, "100").kind == "none"
        far = self.status(program, "Gold", period_end=at("2026-09-01 00:00"))
        assert self.decide(program, "Gold", far, "100").kind == "none"
