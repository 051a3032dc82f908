"""The member portal's points pages: what a shopper sees and does."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rewards.models import Coupon
from rewards.services import points_adjust
from tests.factories import RewardFactory, RuleFactory, customer, place_order, refund, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tea_shop, alice):
    set_program(pending_days=14, expiry_policy="rolling", expiry_months=12, expiring_soon_days=30)
    RuleFactory(name="1 per EUR")
    customer(tea_shop, "alice-1", email="alice@example.com")
    return tea_shop


def test_dashboard_shows_available_pending_with_dates_expiring_and_recent(alice_client, alice, shop):
    placed = timezone.now() - timedelta(days=1)
    place_order(shop, "1001", "alice-1", lines=(("TEA-1", 1, "25.00", "tea"),), placed_at=placed)
    place_order(shop, "900", "alice-1", lines=(("TEA-1", 1, "40.00", "tea"),),
                placed_at=timezone.now() - timedelta(days=350))
    points_adjust(member=alice, points=15, reason="Sorry for the delay")
    page = alice_client.get(reverse("dashboard"))
    html = page.content.decode()
    assert page.context["member"].points_available == 55
    assert 'data-testid="points-available">55<' in html
    assert 'data-testid="points-pending">25<' in html
    assert f"25 available on {(placed + timedelta(days=14)):%-d %b %Y}" in html
    assert "<strong>40</strong> on" in html
    assert "Order 1001" in html and "Adjustment" in html


def test_dashboard_shows_each_badge_once_at_the_level_held_when_levels_came_together(alice_client, alice, shop):
    from rewards.services.progress import badges_evaluate
    from tests.factories import make_badge

    make_badge("Regular", "activity_count", ("Bronze", 1, 0), ("Silver", 2, 0), activity_type="order")
    for name in ("Explorer", "Night owl", "Collector", "Early bird"):
        make_badge(name, "activity_count", ("Bronze", 1, 0), activity_type="order")
    place_order(shop, "1", "alice-1")
    place_order(shop, "2", "alice-1")
    badges_evaluate(member_ids=[alice.pk])  # six levels awarded at one moment
    html = alice_client.get(reverse("dashboard")).content.decode()
    card = html[html.index('id="badges-heading"'):html.index("All badges")]
    assert 'Regular <span class="pill">Silver</span>' in card
    assert 'Regular <span class="pill">Bronze</span>' not in card
    assert card.count('class="pill"') == 4  # four different badges, none twice


def test_dashboard_queries_stay_constant_with_500_ledger_entries(
    alice_client, alice, shop, django_assert_max_num_queries
):
    RewardFactory(points_cost=100)
    points_adjust(member=alice, points=1, reason="first")
    alice_client.get(reverse("dashboard"))  # the program's settings are cached for a few seconds
    with django_assert_max_num_queries(20) as few:
        alice_client.get(reverse("dashboard"))
    baseline = len(few.captured_queries)
    for i in range(500):
        points_adjust(member=alice, points=1, reason=f"r{i}")
    alice_client.get(reverse("dashboard"))
    with django_assert_max_num_queries(baseline):
        page = alice_client.get(reverse("dashboard"))
    assert 'data-testid="points-available">501<' in page.content.decode()


def test_history_is_paginated_and_filtered_by_kind(alice_client, alice, shop):
    for i in range(30):
        points_adjust(member=alice, points=1, reason=f"r{i}")
    place_order(shop, "1001", "alice-1")
    first = alice_client.get(reverse("rewards:history"))
    assert len(first.context["page"]) == 25
    assert first.context["page"].paginator.count == 31  # 30 adjustments and 1 order
    earned = alice_client.get(reverse("rewards:history"), {"kind": "earn"})
    assert [e.description for e in earned.context["page"]] == ["Order 1001"]


def test_history_tells_which_pending_entry_a_refund_took_back(alice_client, alice, shop):
    """Seen: after a refund, the order's pending entry still said "pending until ..." and nothing
    told which entry the reversal cancelled."""
    import re

    place_order(shop, "1001", "alice-1", lines=(("TEA-1", 1, "25.00", "tea"),))
    place_order(shop, "1002", "alice-1", lines=(("TEA-1", 2, "20.00", "tea"),))
    refund(shop, "1001", refund_id="r1")  # in full
    refund(shop, "1002", refund_id="r2", lines=[{"sku": "TEA-1", "quantity": 1}])  # half
    html = alice_client.get(reverse("rewards:history")).content.decode()
    rows = {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip(): row_id
            for row_id, row in re.findall(r'<tr[^>]* id="entry-(\d+)"[^>]*>(.*?)</tr>', html, re.S)}
    full = next(text for text in rows if "Order 1001 " in text and "Takes back" not in text)
    assert "cancelled before it became available" in full and "pending until" not in full
    half = next(text for text in rows if "Order 1002 " in text and "Takes back" not in text)
    assert "20 pending until" in half and "20 cancelled" in half
    reversal = next(text for text in rows if "Takes back: Order 1001 of" in text)
    assert f'href="#entry-{rows[full]}"' in html and reversal


def test_catalog_shows_what_is_affordable_and_how_far_the_rest_is(alice_client, alice, shop):
    RewardFactory(name="Free shipping", kind="free_shipping", value=None, points_cost=100)
    RewardFactory(name="10 EUR off", points_cost=1000)
    points_adjust(member=alice, points=250, reason="x")
    html = alice_client.get(reverse("rewards:catalog")).content.decode()
    assert html.count(">Redeem</a>") == 1
    assert "750 more points to go." in html


def test_redeem_asks_for_confirmation_then_issues_the_coupon(alice_client, alice, shop):
    reward = RewardFactory(name="5 EUR off", points_cost=100, coupon_valid_days=60)
    points_adjust(member=alice, points=150, reason="x")
    confirm = alice_client.get(reverse("rewards:redeem", args=[reward.pk]))
    assert b"Yes, redeem for 100 points" in confirm.content
    assert not Coupon.objects.exists()  # looking is free
    response = alice_client.post(reverse("rewards:redeem", args=[reward.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("rewards:coupons")
    coupon = Coupon.objects.get()
    page = alice_client.get(reverse("rewards:coupons")).content.decode()
    assert coupon.code in page
    assert f"Your coupon code is {coupon.code}." in page
    alice.refresh_from_db()
    assert alice.points_available == 50


def test_redeeming_without_enough_points_explains_and_changes_nothing(alice_client, alice, shop):
    reward = RewardFactory(points_cost=100)
    points_adjust(member=alice, points=30, reason="x")
    confirm = alice_client.get(reverse("rewards:redeem", args=[reward.pk]))
    assert b"You need 70 more points." in confirm.content
    response = alice_client.post(reverse("rewards:redeem", args=[reward.pk]), follow=True)
    assert b"Not enough points: 30 available, 100 needed." in response.content
    assert not Coupon.objects.exists()


def test_one_member_never_sees_another_members_coupons(client, alice, bob, shop):
    reward = RewardFactory(points_cost=10)
    points_adjust(member=alice, points=10, reason="x")
    from rewards.services import reward_redeem

    code = reward_redeem(member=alice, reward=reward).coupon.code
    client.force_login(bob.user)
    assert code not in client.get(reverse("rewards:coupons")).content.decode()


def test_points_pages_need_a_login(client):
    for name in ("rewards:catalog", "rewards:coupons", "rewards:history", "dashboard"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
