"""The points a member holds: pending, available, expiring, refunded, spent and adjusted."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import AuditLog, Member
from core.errors import Conflict, Invalid, NotFound
from rewards.models import Coupon, EntryKind, LedgerEntry, Order, PointsLot, RuleKind
from rewards.payloads import parse_order
from rewards.program import current_program
from rewards.selectors import expiring_soon, ledger_discrepancies, pending_batches
from rewards.services import (
    birthdays_award,
    coupon_use,
    orders_record,
    pending_release_due,
    points_adjust,
    points_expire_due,
    reward_redeem,
)
from tests.factories import (
    RewardFactory,
    RuleFactory,
    at,
    customer,
    order_payload,
    place_order,
    refund,
    same_store,
    set_program,
)

pytestmark = pytest.mark.django_db


def balance(member) -> tuple[int, int, int]:
    member.refresh_from_db()
    return member.points_available, member.points_pending, member.points_owed


def assert_books_balance():
    assert list(ledger_discrepancies()) == []


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=14, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
    RuleFactory(name="1 per EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com")


class TestPending:
    def test_order_points_wait_for_the_return_window(self, tea_shop, ada):
        placed = timezone.now() - timedelta(hours=1)
        result = place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),), placed_at=placed)
        assert (result.status, result.award.points, result.award.pending) == ("accepted", 25, True)
        assert result.award.available_at == placed + timedelta(days=14)
        assert balance(ada) == (0, 25, 0)
        assert [(b.points, b.available_at) for b in pending_batches(member=ada)] == [(25, placed + timedelta(days=14))]

    def test_release_after_the_window_is_safe_to_run_twice(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),))
        assert pending_release_due(now=timezone.now() + timedelta(days=13)) == 0
        assert balance(ada) == (0, 25, 0)
        later = timezone.now() + timedelta(days=15)
        assert pending_release_due(now=later) == 1
        assert pending_release_due(now=later) == 0
        assert balance(ada) == (25, 0, 0)
        assert LedgerEntry.objects.filter(kind=EntryKind.RELEASE).count() == 1
        assert_books_balance()

    def test_an_order_older_than_the_window_is_available_at_once(self, tea_shop, ada):
        result = place_order(tea_shop, "old", "cust-42", placed_at=timezone.now() - timedelta(days=20))
        assert result.award.pending is False
        assert balance(ada) == (10, 0, 0)


class TestDuplicates:
    def test_the_same_order_twice_counts_once_and_answers_the_same(self, tea_shop, ada):
        placed = timezone.now() - timedelta(minutes=5)
        first = place_order(tea_shop, "1001", "cust-42", placed_at=placed)
        again = place_order(tea_shop, "1001", "cust-42", placed_at=placed)
        assert again.status == "duplicate"
        assert (again.award.points, again.award.pending, again.award.rules) == (10, True, first.award.rules)
        assert Order.objects.count() == 1
        assert LedgerEntry.objects.count() == 1
        assert balance(ada) == (0, 10, 0)

    def test_the_same_order_id_with_other_content_is_rejected_naming_order_id(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42")
        changed = place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 3, "10.00", "tea"),))
        assert changed.status == "rejected"
        assert changed.error["code"] == "order_exists"
        assert "order_id" in changed.error["fields"]
        assert balance(ada) == (0, 10, 0)

    def test_two_partners_may_use_the_same_order_id(self, tea_shop, coffee_bar, ada):
        same_store(tea_shop, coffee_bar)
        customer(coffee_bar, "cb-1", email="ada@example.com")
        place_order(tea_shop, "1", "cust-42")
        assert place_order(coffee_bar, "1", "cb-1").status == "accepted"

    def test_a_batch_reports_each_order_and_one_bad_order_sinks_nothing(self, tea_shop, ada):
        accepted = current_program().settings.accepted()
        placed = timezone.now() - timedelta(minutes=3)
        orders = [
            parse_order(order_payload(order_id, member, placed_at=placed, lines=lines), accepted_currencies=accepted)
            for order_id, member, lines in [
                ("a", "cust-42", (("X", 1, "10.00", "x"),)),
                ("b", "nobody", (("X", 1, "10.00", "x"),)),
                ("a", "cust-42", (("X", 1, "10.00", "x"),)),
                ("c", "cust-42", (("X", 1, "5.00", "x"),)),
            ]
        ]
        results = orders_record(partner=tea_shop, orders=orders)
        assert [r.status for r in results] == ["accepted", "rejected", "duplicate", "accepted"]
        assert results[1].error["fields"] == {"member": ["No member with external_id 'nobody'."]}
        assert results[2].award.points == 10
        assert balance(ada) == (0, 15, 0)


class TestRefunds:
    @pytest.fixture
    def tea_triple(self, ada):
        RuleFactory(name="Triple tea", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("3"),
                    categories=["tea"])

    def test_full_refund_in_the_return_window_voids_the_pending_points(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),))
        result = refund(tea_shop, "1001", refund_id="r-1")
        assert (result.amount, result.points_reversed, result.order_status) == (Decimal("25.000"), 25, "refunded")
        assert balance(ada) == (0, 0, 0)
        assert pending_release_due(now=timezone.now() + timedelta(days=30)) == 1
        assert balance(ada) == (0, 0, 0)
        assert_books_balance()

    def test_line_refund_reverses_the_points_of_those_lines_with_their_multiplier(self, tea_shop, ada, tea_triple):
        lines = (("TEA-1", 2, "10.00", "tea"), ("COF-1", 1, "10.00", "coffee"))
        # 30 points at 1 per EUR, and the tea's 20 tripled: +40.
        assert place_order(tea_shop, "1001", "cust-42", lines=lines).award.points == 70
        first = refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 1}])
        assert (first.points_reversed, first.order_points, first.amount) == (30, 40, Decimal("10.000"))
        second = refund(tea_shop, "1001", refund_id="r-2", lines=[{"sku": "COF-1", "quantity": 1}])
        assert (second.points_reversed, second.order_points) == (10, 30)
        last = refund(tea_shop, "1001", refund_id="r-3", lines=[{"sku": "TEA-1", "quantity": 1}])
        assert (last.points_reversed, last.order_points, last.order_status) == (30, 0, "refunded")
        assert balance(ada) == (0, 0, 0)
        assert_books_balance()

    def test_refund_uses_the_rules_of_the_order_day_not_today(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 4, "10.00", "tea"),))
        from rewards.models import EarningRule
        from rewards.services import earning_rule_save

        rule = EarningRule.objects.get(name="1 per EUR")
        rule.points_per_unit = Decimal("10")
        earning_rule_save(rule=rule)
        result = refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 1}])
        assert result.points_reversed == 10
        assert balance(ada) == (0, 30, 0)

    def test_amount_refund_spreads_over_lines_by_value(self, tea_shop, ada, tea_triple):
        lines = (("TEA-1", 1, "60.00", "tea"), ("COF-1", 1, "40.00", "coffee"))
        assert place_order(tea_shop, "1001", "cust-42", lines=lines).award.points == 220
        result = refund(tea_shop, "1001", refund_id="r-1", amount="25.00")
        # 15.00 of tea (x3) and 10.00 of coffee come back: 45 + 10 points.
        assert (result.points_reversed, result.order_points, result.order_status) == (55, 165, "partially_refunded")

    def test_a_bonus_that_needed_a_minimum_order_value_is_reversed_when_a_refund_goes_below_it(self, tea_shop, ada):
        RuleFactory(name="Basket bonus", kind=RuleKind.FIXED, points_per_unit=None, points=50,
                    min_order_value=Decimal("30.00"))
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 4, "10.00", "tea"),))
        result = refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 2}])
        assert result.points_reversed == 20 + 50

    def test_refunding_every_unit_one_by_one_reverses_exactly_what_was_earned(self, tea_shop, ada):
        RuleFactory(name="Odd rate", points_per_unit=Decimal("0.7"))
        lines = (("A", 3, "3.33", "x"), ("B", 2, "7.77", "y"))
        earned = place_order(tea_shop, "1001", "cust-42", lines=lines, discount="1.11").award.points
        reversed_ = sum(
            refund(tea_shop, "1001", refund_id=f"r{i}", lines=[{"sku": sku, "quantity": 1}]).points_reversed
            for i, sku in enumerate(["A", "B", "A", "B", "A"])
        )
        assert reversed_ == earned
        assert balance(ada) == (0, 0, 0)
        assert_books_balance()

    def test_refund_after_release_takes_available_points_and_what_was_spent_becomes_owed(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 1, "100.00", "tea"),))
        pending_release_due(now=timezone.now() + timedelta(days=15))
        reward_redeem(member=ada, reward=RewardFactory(points_cost=80))
        assert balance(ada) == (20, 0, 0)
        result = refund(tea_shop, "1001", refund_id="r-1")
        assert result.points_reversed == 100
        assert balance(ada) == (0, 0, 80)
        # The next points repay the debt first.
        place_order(tea_shop, "1002", "cust-42", lines=(("TEA-1", 1, "50.00", "tea"),),
                    placed_at=timezone.now() - timedelta(days=20))
        assert balance(ada) == (0, 0, 30)
        points_adjust(member=ada, points=40, reason="goodwill")
        assert balance(ada) == (10, 0, 0)
        assert_books_balance()

    def test_a_refund_id_applies_once_and_cannot_be_reused_for_another_refund(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 4, "10.00", "tea"),))
        first = refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 1}])
        again = refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 1}])
        assert (again.status, again.points_reversed) == ("duplicate", first.points_reversed)
        assert balance(ada) == (0, 30, 0)
        with pytest.raises(Conflict) as refused:
            refund(tea_shop, "1001", refund_id="r-1", lines=[{"sku": "TEA-1", "quantity": 2}])
        assert "refund_id" in refused.value.fields

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"lines": [{"sku": "TEA-1", "quantity": 5}]}, "lines.0.quantity"),
            ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines.0.sku"),
            ({"amount": "40.01"}, "amount"),
        ],
    )
    def test_impossible_refunds_are_refused_naming_the_field_and_change_nothing(self, tea_shop, ada, payload, field):
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 4, "10.00", "tea"),))
        with pytest.raises(Invalid) as refused:
            refund(tea_shop, "1001", refund_id="r-1", **payload)
        assert field in refused.value.fields
        assert balance(ada) == (0, 40, 0)
        assert Order.objects.get().refunded_amount == 0

    def test_refund_of_an_unknown_order_is_not_found(self, tea_shop, ada):
        with pytest.raises(NotFound):
            refund(tea_shop, "nope", refund_id="r-1")

    def test_a_fully_refunded_order_refuses_more(self, tea_shop, ada):
        place_order(tea_shop, "1001", "cust-42")
        refund(tea_shop, "1001", refund_id="r-1")
        with pytest.raises(Conflict):
            refund(tea_shop, "1001", refund_id="r-2", amount="1.00")


class TestExpiry:
    def _earn(self, tea_shop, order_id, amount, placed_at):
        return place_order(tea_shop, order_id, "cust-42", lines=(("TEA-1", 1, amount, "tea"),), placed_at=placed_at)

    def test_each_lot_expires_months_after_it_was_earned(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="rolling", expiry_months=12)
        self._earn(tea_shop, "1", "100.00", at("2025-12-15 10:00"))
        assert PointsLot.objects.get().expires_at == at("2026-12-15 10:00")

    def test_end_of_month_policy_keeps_points_through_the_last_day_in_the_program_time_zone(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="end_of_month", expiry_months=1, time_zone="Europe/Paris")
        self._earn(tea_shop, "1", "100.00", at("2026-01-31 23:30"))  # 1 February 00:30 in Paris
        assert PointsLot.objects.get().expires_at == at("2026-03-31 22:00")  # 1 April 00:00 in Paris

    def test_end_of_year_policy(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="end_of_year", expiry_months=12, time_zone="UTC")
        self._earn(tea_shop, "1", "100.00", at("2025-03-10 10:00"))
        assert PointsLot.objects.get().expires_at == at("2027-01-01 00:00")

    def test_expiry_takes_only_the_expired_lots_and_running_twice_changes_nothing(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="rolling", expiry_months=12)
        self._earn(tea_shop, "1", "100.00", timezone.now() - timedelta(days=400))
        self._earn(tea_shop, "2", "50.00", timezone.now() - timedelta(days=10))
        assert balance(ada) == (150, 0, 0)
        assert points_expire_due() == 1
        assert points_expire_due() == 0
        assert balance(ada) == (50, 0, 0)
        entry = LedgerEntry.objects.get(kind=EntryKind.EXPIRE)
        assert entry.available_delta == -100
        assert_books_balance()

    def test_spending_takes_the_soonest_expiring_points_first(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="rolling", expiry_months=12)
        self._earn(tea_shop, "new", "100.00", timezone.now() - timedelta(days=30))
        self._earn(tea_shop, "old", "100.00", timezone.now() - timedelta(days=330))
        reward_redeem(member=ada, reward=RewardFactory(points_cost=100))
        # A month later the old lot's date passes; it was the one spent, so nothing is lost.
        assert points_expire_due(now=timezone.now() + timedelta(days=40)) == 0
        assert balance(ada) == (100, 0, 0)

    def test_expiring_soon_lists_points_by_date(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="rolling", expiry_months=12, expiring_soon_days=30)
        self._earn(tea_shop, "1", "40.00", timezone.now() - timedelta(days=350))
        self._earn(tea_shop, "2", "60.00", timezone.now() - timedelta(days=100))
        soon = expiring_soon(member_ids=[ada.pk])[ada.pk]
        assert [b.points for b in soon] == [40]

    def test_inactivity_policy_expires_the_whole_balance_of_idle_members_only(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="inactivity", expiry_months=6)
        grace = customer(tea_shop, "cust-43", email="grace@example.com")
        self._earn(tea_shop, "1", "80.00", timezone.now() - timedelta(days=250))
        place_order(tea_shop, "2", "cust-43", placed_at=timezone.now() - timedelta(days=250))
        place_order(tea_shop, "3", "cust-43", placed_at=timezone.now() - timedelta(days=20))
        points_expire_due()
        assert balance(ada) == (0, 0, 0)
        assert balance(grace) == (20, 0, 0)
        assert_books_balance()

    def test_expiry_catches_up_after_downtime(self, tea_shop, ada):
        set_program(pending_days=0, expiry_policy="rolling", expiry_months=1)
        self._earn(tea_shop, "1", "10.00", timezone.now() - timedelta(days=100))
        self._earn(tea_shop, "2", "20.00", timezone.now() - timedelta(days=70))
        points_expire_due()
        expiries = LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).order_by("effective_at")
        assert [e.available_delta for e in expiries] == [-10, -20]
        assert expiries[0].effective_at < expiries[1].effective_at < timezone.now()


class TestAdjustments:
    def test_staff_credit_is_recorded_with_who_and_why(self, ada, staff):
        entry = points_adjust(member=ada, points=40, reason="Parcel arrived late", actor_user=staff)
        assert (entry.kind, entry.available_delta, entry.actor_user, entry.reason) == (
            "adjust", 40, staff, "Parcel arrived late")
        log = AuditLog.objects.get(action="points.adjusted")
        assert (log.before, log.after["available"], log.actor_user) == ({"available": 0}, 40, staff)

    def test_a_debit_cannot_take_more_than_is_available(self, ada, staff):
        points_adjust(member=ada, points=30, reason="goodwill", actor_user=staff)
        with pytest.raises(Conflict) as refused:
            points_adjust(member=ada, points=-40, reason="duplicate credit", actor_user=staff)
        assert refused.value.fields == {"points": ["Only 30 points are available."]}
        assert balance(ada) == (30, 0, 0)

    def test_a_reason_is_required(self, ada):
        with pytest.raises(Invalid) as refused:
            points_adjust(member=ada, points=10, reason="  ")
        assert "reason" in refused.value.fields


class TestRedemption:
    def test_redeeming_spends_points_and_issues_an_unguessable_coupon(self, ada):
        points_adjust(member=ada, points=600, reason="test")
        redemption = reward_redeem(member=ada, reward=RewardFactory(points_cost=500, coupon_valid_days=30))
        coupon = redemption.coupon
        assert len(coupon.code) == 14 and coupon.code.count("-") == 2
        assert coupon.expires_at.date() == (timezone.now() + timedelta(days=30)).date()
        assert balance(ada) == (100, 0, 0)
        other = reward_redeem(member=ada, reward=RewardFactory(points_cost=50)).coupon
        assert other.code != coupon.code

    def test_not_enough_points_is_a_conflict_and_nothing_changes(self, ada):
        points_adjust(member=ada, points=400, reason="test")
        with pytest.raises(Conflict) as refused:
            reward_redeem(member=ada, reward=RewardFactory(points_cost=500))
        assert refused.value.code == "insufficient_points"
        assert balance(ada) == (400, 0, 0)
        assert not Coupon.objects.exists()

    def test_stock_and_member_limit_are_enforced(self, ada):
        points_adjust(member=ada, points=1000, reason="test")
        limited = RewardFactory(points_cost=100, per_member_limit=2)
        reward_redeem(member=ada, reward=limited)
        reward_redeem(member=ada, reward=limited)
        with pytest.raises(Conflict, match="Limit reached"):
            reward_redeem(member=ada, reward=limited)
        scarce = RewardFactory(points_cost=100, stock=1)
        reward_redeem(member=ada, reward=scarce)
        with pytest.raises(Conflict, match="Out of stock"):
            reward_redeem(member=ada, reward=scarce)
        scarce.refresh_from_db()
        assert scarce.stock == 0
        assert balance(ada) == (700, 0, 0)

    def test_a_reward_outside_its_dates_cannot_be_redeemed(self, ada):
        points_adjust(member=ada, points=1000, reason="test")
        later = RewardFactory(points_cost=100, valid_from=timezone.now() + timedelta(days=1))
        ended = RewardFactory(points_cost=100, valid_to=timezone.now() - timedelta(days=1))
        for reward in (later, ended):
            with pytest.raises(Conflict):
                reward_redeem(member=ada, reward=reward)

    def test_a_coupon_is_used_once(self, tea_shop, ada):
        points_adjust(member=ada, points=500, reason="test")
        code = reward_redeem(member=ada, reward=RewardFactory(points_cost=500)).coupon.code
        used = coupon_use(code=code.lower().replace("-", ""), partner=tea_shop, order_id="2001")
        assert (used.used_by, used.used_order_id) == (tea_shop, "2001")
        with pytest.raises(Conflict) as again:
            coupon_use(code=code, partner=tea_shop)
        assert again.value.code == "coupon_used"

    def test_an_expired_or_unknown_coupon_is_refused(self, tea_shop, ada):
        points_adjust(member=ada, points=500, reason="test")
        coupon = reward_redeem(member=ada, reward=RewardFactory(points_cost=500)).coupon
        Coupon.objects.filter(pk=coupon.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(Conflict) as expired:
            coupon_use(code=coupon.code, partner=tea_shop)
        assert expired.value.code == "coupon_expired"
        with pytest.raises(NotFound):
            coupon_use(code="AAAA-BBBB-CCCC", partner=tea_shop)


class TestBuiltInActivities:
    def test_signup_bonus_is_given_once_when_a_member_joins(self, tea_shop):
        set_program(pending_days=0, expiry_policy="never")
        RuleFactory(name="Welcome", kind=RuleKind.FIXED, points_per_unit=None, points=100, activity_type="signup")
        member = customer(tea_shop, "new-1", email="new@example.com")
        customer(tea_shop, "new-1", first_name="Again")
        assert balance(member) == (100, 0, 0)

    def test_birthday_points_once_a_year_in_the_program_time_zone(self, tea_shop):
        set_program(pending_days=0, expiry_policy="never", time_zone="Pacific/Auckland")
        RuleFactory(name="Birthday", kind=RuleKind.FIXED, points_per_unit=None, points=250, activity_type="birthday")
        today = timezone.now().astimezone(current_program().tz).date()
        birthday = today.replace(year=1992)  # a leap year, so any date exists
        member = customer(tea_shop, "b-1", email="b@example.com", birthday=birthday)
        customer(tea_shop, "b-2", email="c@example.com", birthday=birthday + timedelta(days=1))
        assert birthdays_award() == 1
        assert birthdays_award() == 0
        assert balance(member) == (250, 0, 0)

    def test_a_birthday_missed_while_the_scheduler_was_down_is_caught_up_and_the_member_told(
            self, tea_shop, mailoutbox):
        from datetime import date

        set_program(pending_days=0, expiry_policy="never")
        RuleFactory(name="Birthday", kind=RuleKind.FIXED, points_per_unit=None, points=250, activity_type="birthday")
        member = customer(tea_shop, "late", email="late@example.com", first_name="Lee", birthday=date(1990, 3, 10))
        too_old = customer(tea_shop, "old", email="old@example.com", birthday=date(1990, 3, 1))
        assert birthdays_award(today=date(2027, 3, 13)) == 1  # down on the 10th: celebrated on the 13th
        assert balance(member) == (250, 0, 0) and balance(too_old) == (0, 0, 0)  # a week late is too late
        activity = member.activities.get(type="birthday")
        assert activity.occurred_at.date() == date(2027, 3, 10)  # dated on the day itself
        assert birthdays_award(today=date(2027, 3, 14)) == 0  # once a year
        [mail] = list(mailoutbox)
        assert mail.to == ["late@example.com"] and mail.subject.startswith("Happy birthday from ")
        assert "Hello Lee," in mail.body and "250 birthday points are yours." in mail.body
        from messaging.services import message_kind_update

        message_kind_update(actor_user=None, kind="birthday", changes={"delivery": "off"})  # staff: no mail
        quiet = customer(tea_shop, "quiet", email="quiet@example.com", birthday=date(1990, 3, 12))
        assert birthdays_award(today=date(2027, 3, 13)) == 1 and balance(quiet) == (250, 0, 0)
        assert len(mailoutbox) == 1  # the points, no message...
        assert quiet.notifications.get().title.startswith("Happy birthday")  # ...but the portal wishes them well

    def test_a_leap_day_birthday_is_celebrated_on_28_february(self, tea_shop):
        set_program(pending_days=0, expiry_policy="never")
        RuleFactory(name="Birthday", kind=RuleKind.FIXED, points_per_unit=None, points=250, activity_type="birthday")
        from datetime import date

        member = customer(tea_shop, "leap", email="leap@example.com", birthday=date(2000, 2, 29))
        assert birthdays_award(today=date(2027, 2, 28)) == 1
        assert balance(member) == (250, 0, 0)


def test_verify_ledger_passes_on_good_books_and_names_the_member_whose_cache_is_wrong(tea_shop, ada):
    place_order(tea_shop, "1", "cust-42", placed_at=timezone.now() - timedelta(days=20))
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "every balance equals the sum of its ledger entries" in out.getvalue()
    Member.objects.filter(pk=ada.pk).update(points_available=999)
    err = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_ledger", stdout=out, stderr=err)
    assert exit_.value.code == 1
    assert f"member {ada.pk}" in err.getvalue()
