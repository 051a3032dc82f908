import re

import pytest
from playwright.sync_api import expect

from accounts.models import Member
from tests.browser import chromium, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_shopper_signs_up_verifies_logs_in_and_edits_profile(live_server, page, mailoutbox):  # noqa: F811
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Join for free").click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password:", exact=True).fill("a-long-and-unusual-passphrase")
    page.get_by_label("Password (again)").fill("a-long-and-unusual-passphrase")
    page.get_by_role("button", name="Sign Up").click()
    page.get_by_role("heading", name="Verify Your Email Address").wait_for()

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[-1].body).group(0)
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Hello").wait_for()

    # Log out and back in with the password, as a returning shopper would.
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password:", exact=True).fill("a-long-and-unusual-passphrase")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Hello").wait_for()

    page.get_by_role("link", name="Profile", exact=True).click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Birthday").fill("1986-12-09")
    page.get_by_label("Phone").fill("12")
    page.get_by_role("button", name="Save profile").click()
    # The error sits next to the phone field, and nothing was saved.
    error = page.locator("#id_phone_error")
    assert "country code" in error.inner_text()
    assert Member.objects.get(email="grace@example.com").first_name == ""

    page.get_by_label("Phone").fill("+1 202 555 0147")
    page.get_by_role("group", name="Offers and news").get_by_label("Email").check()
    page.get_by_role("button", name="Save profile").click()
    page.get_by_text("Your profile is saved.").wait_for()

    member = Member.objects.get(email="grace@example.com")
    assert (member.first_name, member.last_name, str(member.birthday)) == ("Grace", "Hopper", "1986-12-09")
    assert member.phone == "+12025550147"
    assert member.offers_channel == "email"
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.get_by_role("heading", name="Hello, Grace")).to_be_visible()
