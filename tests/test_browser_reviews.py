"""A shopper reviews what they bought, with a photo, in a real browser; staff approve it; another
shopper finds it on the product page and marks it helpful."""

import pytest
from PIL import Image
from playwright.sync_api import expect

from community.models import Review
from community.services import product_upsert, review_approve
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.conftest import make_portal_member
from tests.factories import customer, place_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, url, email):  # noqa: F811
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password:", exact=True).fill("correct-horse-battery")
    page.get_by_role("button", name="Sign In").click()
    page.get_by_role("heading", name="Hello").wait_for()


def test_a_buyer_reviews_with_a_photo_and_another_member_finds_it_helpful(live_server, page, tmp_path):  # noqa: F811
    from accounts.models import User
    from accounts.services import partner_create

    shop = partner_create(name="Tea Shop")
    product_upsert(partner=shop, sku="KETTLE-1", name="Glass kettle")
    make_portal_member("alice@example.com", first_name="Alice", last_name="Archer")
    customer(shop, "alice", email="alice@example.com")
    place_order(shop, "o-1", "alice", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    make_portal_member("bob@example.com", first_name="Bob")
    photo = tmp_path / "kettle.jpg"
    Image.new("RGB", (900, 600), (20, 120, 160)).save(photo, format="JPEG")
    (tmp_path / "notes.jpg").write_bytes(b"just some text, not a picture\n" * 20)

    log_in(page, live_server.url, "alice@example.com")
    page.goto(f"{live_server.url}/products/KETTLE-1/")
    page.get_by_role("link", name="Write a review").click()
    expect(page.get_by_text("Verified buyer").first).to_be_visible()
    page.get_by_title("4 stars", exact=True).click()  # the fourth star, as a shopper picks it
    expect(page.get_by_label("4 stars")).to_be_checked()
    page.get_by_label("Title").fill("Pours well")
    page.get_by_label("Your review").fill("No drips, and the glass stays clear.")
    page.get_by_label("Photos").set_input_files(str(tmp_path / "notes.jpg"))
    page.get_by_role("button", name="Send review").click()
    assert "not a picture" in page.locator("#id_photos_error").inner_text()
    page.get_by_label("Photos").set_input_files(str(photo))
    page.get_by_role("button", name="Send review").click()
    page.get_by_text("Waiting for moderation").wait_for()

    review = Review.objects.get()
    review_approve(review_id=review.pk, moderator=User.objects.create_superuser("s@example.com", "pw-12345678"))
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_server.url, "bob@example.com")
    page.goto(f"{live_server.url}/products/KETTLE-1/")
    assert page.get_by_test_id("average").inner_text().endswith("4.0 / 5")
    article = page.locator(f"#review-{review.pk}")
    assert "Alice A." in article.inner_text() and "Verified buyer" in article.inner_text()
    assert article.get_by_role("img").count() == 1
    article.get_by_role("button", name="Helpful").click()
    page.get_by_text("Thanks for your vote.").wait_for()
    assert page.locator(f"#review-{review.pk}").get_by_text("You found this helpful").is_visible()
    assert Review.objects.get().helpful_count == 1
