"""The portal on a phone (390 px wide): wide tables become a card per row with each value named,
the 0-10 survey scale keeps its eleven answers on one row, and no page scrolls sideways."""

from io import StringIO

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser import chromium, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_on_a_phone_tables_are_cards_the_nps_scale_is_one_row_and_nothing_scrolls_sideways(live_server,
                                                                                           page):  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("member@example.com")
    page.get_by_label("Password:", exact=True).fill("loyalty-demo-1")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Hello").wait_for()
    for path in ("/dashboard/", "/rewards/", "/rewards/history/", "/community/", "/community/reviews/", "/surveys/",
                 "/me/profile/"):
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto(f"{live_server.url}/rewards/history/")
    cell = page.locator("table.cards td[data-label='Points']").first
    expect(cell).to_be_visible()
    assert cell.evaluate("td => getComputedStyle(td).display") == "block"
    assert cell.evaluate("td => getComputedStyle(td, '::before').content") == '"Points: "'
    from feedback.models import Survey

    page.goto(f"{live_server.url}/surveys/{Survey.objects.get(name='How are we doing?').pk}/")
    options = page.get_by_role("radiogroup").first.locator("label")
    assert options.count() == 11
    tops = {round(options.nth(n).bounding_box()["y"]) for n in range(11)}
    assert len(tops) == 1, tops  # one row
