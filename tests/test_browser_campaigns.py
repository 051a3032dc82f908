"""Staff building a campaign in a real browser see its audience counted as they change a
condition, before saving."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from rewards.services import points_adjust
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.conftest import make_portal_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_audience_is_counted_as_staff_change_a_condition(live_server, page):  # noqa: F811
    get_user_model().objects.create_superuser("boss@example.com", "staff-password-1", name="Boss")
    for n, points in enumerate((900, 600, 100)):
        member = make_portal_member(f"m{n}@example.com", consents={"offers": "email"})
        points_adjust(member=member, points=points, reason="test")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/campaigns/campaign/add/")
    page.get_by_label("Email").fill("boss@example.com")
    page.get_by_label("Password").fill("staff-password-1")
    page.get_by_role("button", name="Log in").click()
    count = page.locator("[data-audience-count]")
    expect(count).to_contain_text("Fill in the conditions")
    page.get_by_label("Points available at least").fill("500")
    expect(count).to_contain_text("2 members")  # nothing saved yet
    page.get_by_label("Points available at least").fill("800")
    expect(count).to_contain_text("1 member")
    expect(count).to_contain_text("m0@example.com")
    page.get_by_label("P(alive) at most").fill("7")
    expect(count).to_contain_text("Not counted")  # a P(alive) of 7: named, not counted
