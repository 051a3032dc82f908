"""axe-core (pinned in package.json) in Chromium on the demo: no critical or serious accessibility
violation on the member's pages (in English and in German), the product page, the insights pages
and the main admin pages, at desktop and phone widths."""

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.browser import chromium, settle  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
MEMBER_PAGES = ["/", "/dashboard/", "/rewards/", "/rewards/history/", "/rewards/coupons/", "/rewards/tier/",
                "/rewards/badges/", "/rewards/challenges/", "/community/", "/products/TEA-SENCHA/",
                "/products/TEA-SENCHA/review/", "/community/reviews/", "/surveys/", "/refer/", "/me/profile/",
                "/me/notifications/", "/rewards/earn/"]
STAFF_PAGES = ["/admin/", "/admin/accounts/member/", "/admin/community/review/", "/admin/rewards/reward/",
               "/admin/messaging/message/", "/admin/campaigns/campaign/add/", "/insights/", "/insights/cohorts/",
               "/insights/segments/"]
WIDTHS = [(1280, 800), (390, 844)]

RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "critical" || v.impact === "serious")
    .map(v => ({rule: v.id, impact: v.impact, where: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


def _check(context, base: str, paths: list[str], label: str = "") -> list[str]:
    found = []
    page = context.new_page()
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        for path in paths:
            page.goto(f"{base}{path}")
            page.add_script_tag(path=str(AXE))
            found += [f"{label}{path} at {width} px: {json.dumps(v)}" for v in page.evaluate(RUN)]
    settle(page)
    page.close()
    return found


def _log_in(context, base: str, path: str, email: str, password: str, button: str):
    page = context.new_page()
    page.goto(f"{base}{path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).or_(page.get_by_label("Password:", exact=True)).fill(password)
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state()
    page.close()


def test_no_serious_accessibility_violation_on_the_main_pages(live_server, chromium):  # noqa: F811
    if not AXE.exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"{AXE} is missing: run `npm ci` (make install does when npm is there)")
        pytest.skip("axe-core is not installed (npm ci)")
    call_command("seed_demo", stdout=StringIO())
    found = []
    # axe is injected as a script: the pages' Content-Security-Policy would rightly refuse it.
    member = chromium.new_context(bypass_csp=True)
    _log_in(member, live_server.url, "/accounts/login/", "member@example.com", "loyalty-demo-1", "Sign In")
    found += _check(member, live_server.url, MEMBER_PAGES)
    # The same pages in German (longer words, other labels), at both widths.
    member.add_cookies([{"name": "django_language", "value": "de", "url": live_server.url}])
    found += _check(member, live_server.url, MEMBER_PAGES, label="de ")
    member.close()
    staff = chromium.new_context(bypass_csp=True)
    _log_in(staff, live_server.url, "/admin/login/", "staff@example.com", "loyalty-staff-1", "Log in")
    from campaigns.models import Campaign

    win_back = Campaign.objects.order_by("pk").first().pk  # a demo campaign: its page and its report
    found += _check(staff, live_server.url, [*STAFF_PAGES, f"/admin/campaigns/campaign/{win_back}/change/",
                                             f"/admin/campaigns/campaign/{win_back}/report/"])
    staff.close()
    assert found == [], "\n".join(found)
