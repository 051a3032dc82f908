"""Ways to earn: a page anyone can read, listing every rule the engine pays by, in plain words made
from the rules themselves; a rule changed or switched off changes the page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rewards.models import RuleKind
from rewards.services import earning_rule_save
from tests.factories import RuleFactory, make_tiers, set_program

pytestmark = pytest.mark.django_db


def test_every_rule_is_listed_in_plain_words_and_what_is_over_or_private_is_not(client, alice):
    set_program(pending_days=14, expiry_policy="never")
    now = timezone.now()
    [_, gold] = make_tiers(("Silver", 0), ("Gold", 500))
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Welcome", kind=RuleKind.FIXED, points_per_unit=None, points=100, activity_type="signup")
    RuleFactory(name="Reviews", kind=RuleKind.FIXED, points_per_unit=None, points=50, activity_type="review_approved",
                cap_per_month=150)
    RuleFactory(name="App", kind=RuleKind.FIXED, points_per_unit=None, points=150, activity_type="app_installed")
    tea = RuleFactory(name="Tea double", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("2"),
                      categories=["tea"], ends_at=now + timedelta(days=10))
    gold_rule = RuleFactory(name="Gold", kind=RuleKind.MULTIPLIER, points_per_unit=None, multiplier=Decimal("1.5"),
                            priority=50)
    earning_rule_save(rule=gold_rule, tier_ids=[gold.pk])
    RuleFactory(name="Last month", kind=RuleKind.FIXED, points_per_unit=None, points=999, activity_type="signup",
                starts_at=now - timedelta(days=40), ends_at=now - timedelta(days=10), priority=10)
    page = client.get("/rewards/earn/").content.decode()  # no login needed
    text = " | ".join(line.split("</li>")[0] for line in page.split("<li>")[1:])
    assert "<strong>1 point per EUR 1 spent</strong>" in text
    assert "<strong>100 points for joining</strong>" in text
    assert ('<strong>50 points for each review we publish</strong> <span class="muted">(up to 150 points a month)'
            in text)
    assert "<strong>150 points for app installed</strong>" in text
    assert '<strong>2x points on every order</strong> <span class="muted">(on tea; until ' in text
    assert '<strong>1.5x points on every order</strong> <span class="muted">(Gold members)' in text
    assert "999" not in text  # its dates are over
    tea.is_active = False
    earning_rule_save(rule=tea)
    assert "2x points" not in client.get("/rewards/earn/").content.decode()
    client.force_login(alice.user)
    assert 'href="/rewards/earn/"' in client.get("/dashboard/").content.decode()  # one click from the dashboard
