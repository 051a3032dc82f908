"""The storefront widgets in Chromium on two origins: a shop (storefront.demo_shop, on a port of its
own, minting customer tokens as a store's backend does) embedding loyalty.js from Loyalty Loop
(the live server). The launcher as a guest and as a member, redeeming from it, a review with a photo
from the reviews widget, stars on a listing in one request, a forged token, an origin the store
never registered, and axe-core inside the widgets."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from community.models import Review
from community.services import product_upsert, review_approve, review_submit
from community.services.reviews import ReviewInput
from rewards.models import Coupon
from storefront.demo_shop import DemoShop
from storefront.services import store_embed_origins_set, store_embed_secret_rotate
from storefront.tokens import token_mint
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.factories import RewardFactory, RuleFactory, customer, place_order, set_program

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def shop(live_server):
    """The Tea Shop's web shop on its own origin; Ada is signed in there (cust-42) with 620 points."""
    from accounts.services import partner_create

    tea = partner_create(name="Tea Shop")
    set_program(pending_days=0)
    RuleFactory(name="1 per EUR")
    RewardFactory(name="5 EUR off", points_cost=500, value=Decimal("5.00"))
    customer(tea, "cust-42", email="ada@example.com", first_name="Ada")
    customer(tea, "cust-43", email="bob@example.com", first_name="Bob", last_name="Baker")
    for sku, name in (("TEA-1", "Sencha"), ("TEA-2", "Assam"), ("CUP-1", "Stoneware cup")):
        product_upsert(partner=tea, sku=sku, name=name)
    place_order(tea, "1001", "cust-42", lines=(("TEA-1", 1, "600.00", "tea"), ("CUP-1", 1, "20.00", "cups")))
    place_order(tea, "1002", "cust-43", lines=(("TEA-1", 1, "12.00", "tea"),))
    from accounts.models import Member

    bob = Member.objects.get(email="bob@example.com")
    review = review_submit(member=bob, product=product_upsert(partner=tea, sku="TEA-1", name="Sencha")[0],
                           data=ReviewInput(4, "Grassy and fresh", "A fine everyday green tea, fresh and grassy."))
    review_approve(review_id=review.pk, moderator=None)
    demo = DemoShop(partner=tea, customer="cust-42", loyalty_url=live_server.url)
    url = demo.start()
    store_embed_origins_set(partner=tea, origins=[url])
    demo.secret = store_embed_secret_rotate(partner=tea)
    demo.url = url
    yield demo
    demo.stop()


def embed_calls(browser_page) -> list[tuple[int, str]]:
    calls = []
    browser_page.on("response", lambda r: calls.append((r.status, r.url)) if "/embed/v1/" in r.url else None)
    return calls


def test_a_guest_sees_how_to_join_and_earn_in_the_launcher(shop, page):  # noqa: F811
    page.goto(f"{shop.url}/?guest=1")
    toggle = page.get_by_role("button", name="★ Rewards")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("dialog")
    expect(panel.get_by_role("link", name="Join")).to_have_attribute("href", re.compile(r"/accounts/signup/$"))
    expect(panel.get_by_text("1 point per EUR 1 spent")).to_be_visible()
    expect(panel.get_by_text("5 EUR off")).to_be_visible()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(toggle).to_be_focused()


def test_a_member_redeems_a_reward_from_the_launcher_and_copies_the_coupon(shop, page):  # noqa: F811
    page.goto(f"{shop.url}/")
    expect(page.get_by_role("button", name="★ 620 points")).to_be_visible()
    toggle = page.locator("loyalty-launcher button.toggle")
    toggle.click()
    panel = page.get_by_role("dialog")
    expect(panel.get_by_text("Hello, Ada!")).to_be_visible()
    panel.get_by_role("button", name="Redeem").click()
    panel.get_by_role("button", name="Spend 500 points").click()
    expect(panel.locator("code.coupon")).to_be_visible()
    expect(panel.locator("code.coupon")).to_have_text(Coupon.objects.get(member__email="ada@example.com").code)
    expect(toggle).to_have_text("★ 120 points")
    expect(panel.get_by_role("status")).to_have_text("Redeemed 5 EUR off. Use the code at checkout.")


def test_a_buyer_writes_a_review_with_a_photo_in_the_widget(shop, page, tmp_path):  # noqa: F811
    photo = tmp_path / "cup.jpg"
    Image.new("RGB", (900, 600), (20, 120, 160)).save(photo, format="JPEG")
    page.goto(f"{shop.url}/products/CUP-1/")
    reviews = page.locator("loyalty-reviews")
    opener = reviews.get_by_role("button", name="Write a review")
    opener.click()
    expect(opener).to_have_attribute("aria-expanded", "true")
    expect(reviews.get_by_label("Title")).to_be_visible()
    reviews.get_by_text("Send review").click()  # nothing filled in: each problem next to its field
    expect(reviews.locator("p.error").first).to_have_text("Choose 1 to 5 stars.")
    reviews.get_by_title("5 stars").click()
    reviews.get_by_label("Title").fill("Keeps tea hot")
    reviews.get_by_label("Your review").fill("Heavy, warm to hold, and it survived the dishwasher.")
    reviews.get_by_label("Photos (up to 5)").set_input_files(str(photo))
    reviews.get_by_role("button", name="Send review").click()
    expect(reviews.get_by_role("status").filter(has_text="Thank you")).to_have_text(
        "Thank you: your review will appear once a moderator has read it.")
    review = Review.objects.get(title="Keeps tea hot")
    assert (review.rating, review.photo_count, review.verified_buyer, review.member.email) == (
        5, 1, True, "ada@example.com")


def test_the_stars_of_a_whole_listing_come_in_one_request(shop, page):  # noqa: F811
    calls = embed_calls(page)
    page.goto(f"{shop.url}/?guest=1")
    stars = page.locator("loyalty-stars")
    expect(stars).to_have_count(3)
    expect(page.get_by_role("img", name="Rated 4.0 out of 5, 1 review")).to_be_visible()
    expect(stars.get_by_text("No reviews yet")).to_have_count(2)
    assert len([url for _, url in calls if "/stars/" in url]) == 1


def test_a_forged_token_gets_the_guest_view(shop, page):  # noqa: F811
    shop.forged_token = token_mint(secret="sk_live_" + "f" * 43, external_id="cust-42")
    calls = embed_calls(page)
    page.goto(f"{shop.url}/")
    page.get_by_role("button", name="★ Rewards").click()
    expect(page.get_by_role("dialog").get_by_role("link", name="Join")).to_be_visible()
    assert [status for status, url in calls if url.endswith("/me/")] == [401]
    assert "620" not in page.get_by_role("dialog").inner_text()


def test_a_page_on_an_origin_the_store_never_registered_gets_nothing(shop, page):  # noqa: F811
    errors = []
    page.on("console", lambda message: errors.append(message.text))
    page.goto(shop.url.replace("127.0.0.1", "localhost") + "/")
    expect(page.locator("loyalty-launcher").get_by_role("status")).to_have_text(
        "Rewards are unavailable: Failed to fetch")
    assert any("CORS" in text for text in errors), errors
    expect(page.get_by_role("button", name="★ 620 points")).to_have_count(0)


def test_no_serious_accessibility_violation_inside_the_widgets(shop, page):  # noqa: F811
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci)")
    results = {}
    for path, open_launcher in (("/", True), ("/?guest=1", True), ("/products/TEA-1/", False)):
        page.goto(f"{shop.url}{path}")
        page.locator("loyalty-launcher button.toggle").click() if open_launcher else None
        page.locator("loyalty-reviews h2, loyalty-launcher [role=dialog] h2").first.wait_for()
        page.add_script_tag(path=str(AXE))
        results[path] = page.evaluate("""async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.filter(v => v.impact === "critical" || v.impact === "serious")
            .map(v => ({rule: v.id, where: v.nodes.slice(0, 3).map(n => n.target)}));
        }""")
    assert results == {path: [] for path in results}, json.dumps(results, indent=1)
