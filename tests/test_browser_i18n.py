"""The language switcher in a real browser: reachable and usable from the keyboard, named for
screen readers in each language's own words, on a desktop and on a phone (without opening the
menu); a signed-in member's choice is kept for the messages we send them."""

import pytest
from playwright.sync_api import expect

from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.conftest import make_portal_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_switches_to_german_from_the_keyboard_and_back_on_a_phone(live_server, page):  # noqa: F811
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Get more from every visit")).to_be_visible()
    switcher = page.get_by_role("form", name="Language")
    expect(switcher.get_by_role("button", name="English")).to_have_attribute("aria-current", "true")
    # From the keyboard: tab to the switcher, as a keyboard user does, and press Enter on "Deutsch".
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Deutsch":
            break
    expect(page.get_by_role("button", name="Deutsch")).to_be_focused()
    expect(page.get_by_role("button", name="Deutsch")).to_have_attribute("lang", "de")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Holen Sie mehr aus jedem Einkauf")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    switcher = page.get_by_role("form", name="Sprache")
    expect(switcher.get_by_role("button", name="Deutsch")).to_have_attribute("aria-current", "true")
    page.goto(f"{live_server.url}/rewards/earn/")  # the choice stays from page to page
    expect(page.get_by_role("heading", name="Wege zu Punkten")).to_be_visible()

    # On a phone the switcher stays in the header, outside the folded menu, and nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("button", name="Menü")).to_be_visible()
    expect(page.get_by_role("navigation", name="Hauptnavigation").get_by_role("link", name="Anmelden")).to_be_hidden()
    english = page.get_by_role("button", name="English")
    expect(english).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    english.click()
    expect(page.get_by_role("heading", name="Ways to earn")).to_be_visible()


def test_a_member_who_switches_to_german_gets_the_portal_and_their_messages_in_german(live_server,
                                                                                      page):  # noqa: F811
    from accounts.models import Member

    make_portal_member("ada@example.com", first_name="Ada")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password:", exact=True).fill("correct-horse-battery")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="Hello, Ada")).to_be_visible()
    page.get_by_role("button", name="Deutsch").click()
    expect(page.get_by_role("heading", name="Hallo, Ada")).to_be_visible()
    assert Member.objects.get(email="ada@example.com").language == "de"
    page.goto(f"{live_server.url}/me/profile/")
    expect(page.get_by_role("combobox", name="Sprache")).to_have_value("de")
