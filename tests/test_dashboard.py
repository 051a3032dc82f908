"""The owner's dashboard on the admin's front page: the last 30 days against the 30 before, from
the latest snapshot, each figure linking to its detail, and the size of every queue staff work
through, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from community import services as community
from community.services import ReviewInput
from insights.services import snapshot_compute
from tests.factories import RuleFactory, customer, place_order, set_program

pytestmark = pytest.mark.django_db


def test_the_front_page_shows_the_programs_month_against_the_one_before_and_what_waits(staff_client, tea_shop,
                                                                                      alice):
    set_program(time_zone="UTC", pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    now = timezone.now()
    for n in range(3):  # two buyers this month, one the month before
        customer(tea_shop, f"c{n}", email=f"c{n}@example.com")
        place_order(tea_shop, f"o{n}", f"c{n}", lines=(("TEA", 1, "25.00", "tea"),),
                    placed_at=now - timedelta(days=40 if n == 2 else 3))
    product, _ = community.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle", category="teaware")
    community.review_submit(member=alice, product=product, data=ReviewInput(5, "Lovely", "Boils fast, looks great."),
                            photos=[])
    snapshot_compute(day=(now - timedelta(days=1)).date())
    page = staff_client.get("/admin/").content.decode()
    assert "The last 30 days" in page
    assert '<a href="/insights/">Active members (bought in 30 days)</a></th><td class="num">2</td>' in page
    assert "▲ </span>+1</td>" in page  # one more active member than the 30 days before
    assert '<a href="/admin/community/review/?status__exact=pending">Reviews waiting for moderation</a>' in page
    assert 'Reviews waiting for moderation</a></th><td class="num">1</td>' in page
    assert "Campaigns running" in page and "Members who redeemed" in page
    with CaptureQueriesContext(connection) as queries:
        staff_client.get("/admin/")
    assert len(queries) <= 20, [q["sql"][:80] for q in queries]


def test_before_the_first_snapshot_the_dashboard_says_how_to_get_one(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert "No insights snapshot yet" in page and "Waiting for you" in page
