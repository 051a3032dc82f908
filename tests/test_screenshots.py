"""README screenshots of the portal, taken from the demo data: `make screenshots`."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.browser import chromium, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.screenshots, pytest.mark.django_db(transaction=True)]
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

PAGES = [
    ("dashboard", "/dashboard/"),
    ("rewards", "/rewards/"),
    ("history", "/rewards/history/"),
    ("coupons", "/rewards/coupons/"),
    ("profile", "/me/profile/"),
    ("tier", "/rewards/tier/"),
    ("badges", "/rewards/badges/"),
    ("challenges", "/rewards/challenges/"),
    ("community", "/community/"),
    ("product", "/products/TEA-SENCHA/"),
    ("my-reviews", "/community/reviews/"),
    ("surveys", "/surveys/"),
    ("refer", "/refer/"),
]


def test_take_readme_screenshots(live_server, page):  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    OUT.mkdir(parents=True, exist_ok=True)
    page.goto(f"{live_server.url}/")
    page.screenshot(path=str(OUT / "home.png"), full_page=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("member@example.com")
    page.get_by_label("Password:", exact=True).fill("loyalty-demo-1")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Hello").wait_for()
    for name, path in PAGES:
        page.goto(f"{live_server.url}{path}")
        page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    from feedback.models import Survey

    page.goto(f"{live_server.url}/surveys/{Survey.objects.get(name='How are we doing?').pk}/")
    page.get_by_role("radiogroup").first.get_by_label("4", exact=True).check()
    page.screenshot(path=str(OUT / "survey.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/dashboard/")
    page.screenshot(path=str(OUT / "dashboard-mobile.png"), full_page=True)
    page.goto(f"{live_server.url}/rewards/history/")
    page.screenshot(path=str(OUT / "history-mobile.png"), full_page=True)
    page.goto(f"{live_server.url}/surveys/{Survey.objects.get(name='How are we doing?').pk}/")
    page.screenshot(path=str(OUT / "survey-mobile.png"), full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    _in_german(page, live_server, "/dashboard/", "dashboard-de")
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{live_server.url}/admin/login/?next=/insights/")
    page.get_by_label("Email").fill("staff@example.com")
    page.get_by_label("Password").fill("loyalty-staff-1")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    page.screenshot(path=str(OUT / "insights.png"), full_page=True)
    page.goto(f"{live_server.url}/insights/cohorts/")
    page.screenshot(path=str(OUT / "insights-cohorts.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/")
    page.screenshot(path=str(OUT / "owner-dashboard.png"), full_page=True)
    _in_german(page, live_server, "/admin/", "owner-dashboard-de")
    from campaigns.models import Campaign

    win_back = Campaign.objects.get(offer="points")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{win_back.pk}/report/")
    page.screenshot(path=str(OUT / "campaign-report.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{win_back.pk}/change/")
    page.screenshot(path=str(OUT / "campaign.png"), full_page=True)
    _messages(page, live_server)
    assert (OUT / "dashboard.png").stat().st_size > 10_000


def _in_german(page, live_server, path: str, name: str):  # noqa: F811
    """A page as a German reader sees it (the switcher's cookie), then back to English."""
    page.context.add_cookies([{"name": "django_language", "value": "de", "url": live_server.url}])
    page.goto(f"{live_server.url}{path}")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto(f"{live_server.url}{path}")


def _messages(page, live_server):  # noqa: F811
    """Three e-mails as the demo member gets them (their HTML part, rendered by Chromium), and the
    preference centre their footer links to."""
    from accounts.models import Member
    from messaging import rendering, services

    member = Member.objects.get(email="member@example.com")
    unsubscribe = services.unsubscribe_url(member_id=member.pk, address=member.email, purpose="reminders")
    preferences = services.preferences_url(member_id=member.pk)
    mails = {
        "email-tier": ("note", {"title": "Welcome to Gold!", "body": "You earn 1.5x points on every order now, "
                                "and Gold rewards are yours to redeem.", "url": "/rewards/tier/"}, unsubscribe),
        "email-review-request": ("review_request", {"items": [
            {"name": "Sencha, 100 g", "url": "/products/TEA-SENCHA/review/"},
            {"name": "Stoneware cup", "url": "/products/CUP-STONE/review/"}]}, unsubscribe),
        "email-survey": ("survey_invitation", {"survey": "How are we doing?", "intro": "Four quick questions "
                         "about your last order.", "url": "/surveys/1/"}, unsubscribe),
    }
    for name, (template, context, link) in mails.items():
        rendered = rendering.render(template=template, context=context, member=member, unsubscribe_url=link,
                                    preferences_url=preferences)
        page.set_viewport_size({"width": 700, "height": 600})
        page.set_content(rendered.html)
        page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto(preferences.replace("http://127.0.0.1:8000", live_server.url))
    page.screenshot(path=str(OUT / "preferences.png"), full_page=True)
