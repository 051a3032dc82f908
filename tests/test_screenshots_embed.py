"""README screenshots of the storefront widgets on the demo shop: `make screenshots`."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.browser import chromium, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.screenshots, pytest.mark.django_db(transaction=True)]
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def test_take_embed_screenshots(live_server, page):  # noqa: F811
    from accounts.demo import DEMO_PARTNERS
    from accounts.models import Partner
    from storefront.demo_shop import DemoShop
    from storefront.services import store_embed_origins_set

    call_command("seed_demo", stdout=StringIO())
    partner = Partner.objects.get(name=DEMO_PARTNERS[0])
    shop = DemoShop(partner=partner, customer="cust-demo", loyalty_url=live_server.url)
    url = shop.start()
    try:
        store_embed_origins_set(partner=partner, origins=[url])
        page.goto(f"{url}/")
        page.locator("loyalty-launcher button.toggle").click()
        page.get_by_role("dialog").get_by_text("Hello, Ada!").wait_for()
        page.screenshot(path=str(OUT / "embed-launcher.png"))
        page.goto(f"{url}/products/TEA-SENCHA/")
        page.locator("loyalty-reviews article").first.wait_for()
        page.add_style_tag(content="loyalty-launcher { display: none }")  # it floats over the page
        page.locator("loyalty-reviews").screenshot(path=str(OUT / "embed-reviews.png"))
    finally:
        shop.stop()
    assert (OUT / "embed-launcher.png").stat().st_size > 10_000
