"""Predictions campaigns can act on: a fit that ran off to a corner (a small or uniform store) is
not stored as if it meant something, the value model is not invented when nobody bought again for
money, identical customers get identical RFM scores, and historic CLV is computed from the
unrounded churn."""

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from accounts.models import Member
from insights import clv
from insights.models import MemberInsight
from insights.services import snapshot_compute
from tests.factories import RuleFactory, customer, place_order, set_program

pytestmark = pytest.mark.django_db
UTC = timezone.get_fixed_timezone(0)
END = datetime(2026, 6, 30, tzinfo=UTC).date()


@pytest.fixture
def store(tea_shop):
    set_program(time_zone="UTC", currency="EUR", accepted_currencies="EUR", pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    return tea_shop


def buy(shop, who: str, *days_before_end: int, amount: str = "20.00"):
    for n, back in enumerate(days_before_end):
        place_order(shop, f"{who}-{n}", who, lines=(("TEA", 1, amount, "tea"),),
                    placed_at=datetime(2026, 6, 30, 12, tzinfo=UTC) - timedelta(days=back))


def test_a_small_stores_degenerate_fit_is_not_shown_as_predictions(store, staff, client):
    # 20 who bought once, 5 who bought twice early on and never again: the fit gives every repeat
    # buyer P(alive) 0, which would put every good customer on the at-risk list.
    for n in range(25):
        customer(store, f"c{n}", email=f"c{n}@example.com")
        buy(store, f"c{n}", *((210, 196) if n < 5 else (200,)))
    snapshot = snapshot_compute(day=END)
    assert snapshot.model["fitted"] is False
    assert snapshot.model["reason"].startswith("Not enough history to predict yet: the fit gives almost every")
    assert not MemberInsight.objects.filter(p_alive__isnull=False).exists()
    client.force_login(staff)
    assert "Not enough history to predict yet" in client.get("/insights/").content.decode()
    assert "c0@example.com" not in client.get("/insights/at-risk/").content.decode()


def test_a_uniform_stores_fit_out_of_bounds_is_refused():
    # Everyone bought every four weeks, ten times, and still buys: no dropout to estimate.
    x, t_x, T = np.full(30, 10.0), np.full(30, 40.0), np.full(30, 40.0)
    assert clv.fit_bgnbd(x, t_x, T).trouble() == "the fitted parameters ran out of bounds"


def test_no_order_value_is_made_up_when_nobody_bought_again_for_money():
    assert clv.fit_gamma_gamma(m=[0.0, 0.0, 12.0], x=[2, 1, 0]) is None  # the third never bought again


def test_customers_with_the_same_history_get_the_same_rfm_scores(store):
    for n in range(12):
        customer(store, f"same{n}", email=f"same{n}@example.com")
        buy(store, f"same{n}", 40)  # twelve identical one-order customers
    for n in range(8):
        customer(store, f"other{n}", email=f"other{n}@example.com")
        buy(store, f"other{n}", *range(5 + n, 5 + n + 3 * (n + 1), 3), amount=f"{30 + 10 * n}.00")
    snapshot_compute(day=END)
    same = MemberInsight.objects.filter(member__email__startswith="same")
    assert same.count() == 12
    assert same.values("r", "f", "m", "segment").distinct().count() == 1


def test_historic_clv_uses_the_unrounded_churn(store):
    # 150 customers bought in May; 149 bought again in June: churn 0.667% (0.7 when rounded), a
    # lifespan of exactly 150 periods.
    for n in range(150):
        customer(store, f"k{n}", email=f"k{n}@example.com")
        buy(store, f"k{n}", *((45, 10) if n else (45,)))
    Member.objects.update(created_at=datetime(2026, 4, 1, tzinfo=UTC))
    june = snapshot_compute(day=END).overview["30"]["current"]
    assert june["churn_rate"] == 0.7  # shown rounded...
    assert june["lifespan_periods"] == 150.0  # ...computed exact
    assert Decimal(june["historic_clv"]) == Decimal("20.00") * 1 * 150  # AOV x frequency x lifespan
