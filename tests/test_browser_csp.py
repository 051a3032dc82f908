"""The Content-Security-Policy holds in a real browser: no page breaks a rule (no inline script),
and the portal's scripts still work from their file."""

import pytest

from accounts.services import api_key_create, partner_create
from community import services as community
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.conftest import make_portal_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEMBER_PAGES = ["/dashboard/", "/rewards/", "/rewards/history/", "/rewards/tier/", "/rewards/badges/", "/surveys/",
                "/refer/", "/community/", "/products/KETTLE-1/", "/products/KETTLE-1/review/", "/me/profile/"]
STAFF_PAGES = ["/admin/", "/admin/accounts/member/", "/admin/accounts/apikey/", "/admin/rewards/earningrule/",
               "/insights/", "/api/docs/"]


def watch(page):  # noqa: F811
    problems = []
    page.on("console", lambda message: problems.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def login(page, base, email, password):  # noqa: F811
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_load_state()


def test_member_pages_break_no_rule_and_their_script_runs(live_server, page):  # noqa: F811
    partner = partner_create(name="Tea Shop")
    community.product_upsert(partner=partner, sku="KETTLE-1", name="Glass kettle", category="teaware")
    make_portal_member("alice@example.com", first_name="Alice")
    problems = watch(page)
    login(page, live_server.url, "alice@example.com", "correct-horse-battery")
    for path in MEMBER_PAGES:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    assert problems == []
    # The copy button is wired by static/js/portal.js: it still works under the policy.
    page.goto(f"{live_server.url}/refer/")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator("#copy-link").click()
    page.get_by_text("Copied").wait_for()


def test_staff_pages_and_the_api_docs_break_no_rule(live_server, page):  # noqa: F811
    from accounts.models import User

    User.objects.create_superuser("staff@example.com", "staff-password-1")
    api_key_create(partner=partner_create(name="Tea Shop"), name="k", scopes=["members:read"])
    problems = watch(page)
    login(page, live_server.url, "staff@example.com", "staff-password-1")
    for path in STAFF_PAGES:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
    page.get_by_text("Loyalty Loop partner API").first.wait_for()  # Swagger UI rendered the schema
    assert problems == []


def test_on_a_phone_the_navigation_folds_behind_a_menu_button(live_server, page):  # noqa: F811
    """Seen: three rows of links above every page at 390 px."""
    from playwright.sync_api import expect

    make_portal_member("alice@example.com", first_name="Alice")
    login(page, live_server.url, "alice@example.com", "correct-horse-battery")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dashboard/")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    rewards = page.get_by_role("navigation", name="Main").get_by_role("link", name="Rewards")
    expect(rewards).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(rewards).to_be_visible()
    rewards.click()
    expect(page).to_have_url(f"{live_server.url}/rewards/")
    page.set_viewport_size({"width": 1280, "height": 800})  # a desktop: no button, every link shown
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Rewards")).to_be_visible()
