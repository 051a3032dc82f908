"""Staff running the points program from the admin."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from rewards.models import EarningRule, LedgerEntry, ProgramSettings
from rewards.program import current_program
from tests.factories import RuleFactory, customer, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def rule_form(**overrides):
    data = {"name": "1 per EUR", "is_active": "on", "kind": "per_currency", "activity_type": "order",
            "points_per_unit": "1", "rounding": "down", "priority": "100", "stacks": "on", "categories": "[]",
            "skus": "[]"}
    data.update(overrides)
    return data


def test_staff_create_a_rule_that_applies_at_once(staff_client, staff):
    response = staff_client.post("/admin/rewards/earningrule/add/", rule_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get()
    assert [s.name for s in current_program().specs] == ["1 per EUR"]
    assert AuditLog.objects.filter(action="rule.created", actor_user=staff, subject=f"earning_rule:{rule.pk}").exists()


def test_a_contradictory_rule_is_refused_with_the_reason_next_to_priority(staff_client):
    RuleFactory(name="Exclusive", stacks=False, priority=100)
    response = staff_client.post("/admin/rewards/earningrule/add/", rule_form(name="Other", stacks=""))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "'Exclusive' has the same priority" in errors["priority"][0]
    assert EarningRule.objects.count() == 1


def test_a_rule_missing_its_value_is_refused_next_to_the_field(staff_client):
    response = staff_client.post("/admin/rewards/earningrule/add/", rule_form(points_per_unit=""))
    assert response.context["adminform"].form.errors["points_per_unit"] == [
        "A per-currency rule needs points per unit above zero."]


def test_preview_says_what_an_order_would_earn_and_why_a_rule_did_not_apply(staff_client, tea_shop):
    set_program(pending_days=14)
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Tea x2", kind="multiplier", points_per_unit=None, multiplier=Decimal("2"), categories=["tea"])
    RuleFactory(name="Big basket", kind="fixed", points_per_unit=None, points=100, min_order_value=Decimal("100"))
    response = staff_client.post("/admin/rewards/earningrule/preview/", {
        "currency": "EUR", "placed_at": "2026-05-01 10:00", "discount": "0",
        "lines": "TEA-1, tea, 2, 12.50\nCUP-3, accessories, 1, 8.00",
    })
    html = response.content.decode()
    assert "This order would earn 58 points" in html  # 33 at 1 per EUR, +25 for doubling the tea
    assert "not applied: order value below 100" in html
    assert not LedgerEntry.objects.exists()


def test_preview_for_a_member_counts_their_tier(staff_client, tea_shop, staff):
    from rewards.services.tiers import tier_set_manually
    from tests.factories import make_tiers

    _, gold = make_tiers(("Bronze", 0), ("Gold", 500))
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Gold 1.5x", kind="multiplier", points_per_unit=None, multiplier=Decimal("1.5"), tiers=[gold])
    ada = customer(tea_shop, "ada", email="ada@example.com")
    tier_set_manually(member=ada, tier=gold, until=timezone.now() + timedelta(days=30), reason="VIP", actor_user=staff)
    ask = {"currency": "EUR", "placed_at": "2026-05-01 10:00", "discount": "0", "lines": "TEA-1, tea, 2, 20.00"}
    anyone = staff_client.post("/admin/rewards/earningrule/preview/", ask).content.decode()
    assert "This order would earn 40 points" in anyone  # no member: no tier
    gold_member = staff_client.post("/admin/rewards/earningrule/preview/",
                                    {**ask, "member_email": "ada@example.com"}).content.decode()
    assert "This order would earn 60 points" in gold_member  # what Ada's order will earn


def test_changing_settings_is_audited_with_old_and_new_values(staff_client, staff):
    set_program(pending_days=14)
    current = ProgramSettings.objects.get()
    data = {"time_zone": "Europe/Paris", "currency": "EUR", "accepted_currencies": "eur, gbp", "pending_days": "30",
            "expiry_policy": "rolling", "expiry_months": "12", "expiring_soon_days": "30", "point_value": "0.01",
            "colour": "#0f766e", "accent_colour": "#b45309"}
    response = staff_client.post(f"/admin/rewards/programsettings/{current.pk}/change/", data)
    assert response.status_code == 302
    assert current_program().settings.pending_days == 30
    assert current_program().settings.accepted() == ["EUR", "GBP"]
    log = AuditLog.objects.filter(action="program.settings_changed", actor_user=staff).latest("id")
    assert (log.before["pending_days"], log.after["pending_days"]) == ("14", "30")


def test_an_unknown_time_zone_is_refused(staff_client):
    set_program(pending_days=14)
    current = ProgramSettings.objects.get()
    data = {"time_zone": "Mars/Olympus", "currency": "EUR", "accepted_currencies": "EUR", "pending_days": "14",
            "expiry_policy": "rolling", "expiry_months": "12", "expiring_soon_days": "30", "point_value": "0.01",
            "colour": "#0f766e", "accent_colour": "#b45309"}
    response = staff_client.post(f"/admin/rewards/programsettings/{current.pk}/change/", data)
    assert response.context["adminform"].form.errors["time_zone"]


def test_staff_adjust_a_members_points_with_a_reason(staff_client, staff, tea_shop):
    member = customer(tea_shop, "c1", email="c1@example.com")
    page = staff_client.get(f"/admin/accounts/member/{member.pk}/change/")
    assert b"Adjust points" in page.content
    missing = staff_client.post(f"/admin/accounts/member/{member.pk}/adjust/", {"points": "50", "reason": ""})
    assert "reason" in missing.context["form"].errors
    response = staff_client.post(f"/admin/accounts/member/{member.pk}/adjust/", {"points": "50", "reason": "VIP gift"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.available_delta, entry.actor_user, entry.reason) == (50, staff, "VIP gift")
    too_much = staff_client.post(f"/admin/accounts/member/{member.pk}/adjust/", {"points": "-80", "reason": "oops"})
    assert too_much.context["form"].errors["points"] == ["Only 50 points are available."]


def test_ledger_entries_are_read_only_in_the_admin(staff_client, staff, tea_shop):
    member = customer(tea_shop, "c1", email="c1@example.com")
    from rewards.services import points_adjust

    entry = points_adjust(member=member, points=5, reason="x")
    assert staff_client.get("/admin/rewards/ledgerentry/").status_code == 200
    assert staff_client.get("/admin/rewards/ledgerentry/add/").status_code == 403
    assert staff_client.post(f"/admin/rewards/ledgerentry/{entry.pk}/delete/").status_code == 403
    page = staff_client.get(f"/admin/rewards/ledgerentry/{entry.pk}/change/")
    assert b'name="_save"' not in page.content
