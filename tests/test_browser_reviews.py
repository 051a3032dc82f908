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


def test_staff_moderate_the_review_queue_from_the_keyboard(live_server, page):  # noqa: F811
    from accounts.models import User
    from accounts.services import partner_create
    from community.models import ModerationStatus
    from community.services import ReviewInput, review_submit

    shop = partner_create(name="Tea Shop")
    kettle, _ = product_upsert(partner=shop, sku="KETTLE-1", name="Glass kettle")
    for n, title in enumerate(["First to approve", "Second to reject", "Third stays"]):
        member = make_portal_member(f"m{n}@example.com", first_name=f"M{n}")
        review_submit(member=member, product=kettle, data=ReviewInput(5, title, "Boils fast and pours well."))
    User.objects.create_superuser("staff@example.com", "staff-password-1")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/community/review/")
    page.get_by_label("Email").fill("staff@example.com")
    page.get_by_label("Password").fill("staff-password-1")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_text("Keyboard: j next, k previous, a approve, r reject with a reason")).to_be_visible()
    page.get_by_role("searchbox").fill("jar")  # typed in a field: no shortcut
    expect(page.locator("tr.queue-current")).to_have_count(0)
    page.get_by_role("searchbox").blur()
    page.keyboard.press("j")
    expect(page.locator("tr.queue-current")).to_contain_text("First to approve")
    expect(page.get_by_role("link", name="First to approve")).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("tr.queue-current")).to_contain_text("First to approve")
    page.keyboard.press("a")
    expect(page.get_by_text("Published: First to approve.")).to_be_visible()
    # Back on the same row, which is now the next review.
    expect(page.locator("tr.queue-current")).to_contain_text("Second to reject")
    page.keyboard.press("r")
    reasons = page.get_by_label("Reason to reject review", exact=False).first
    expect(reasons).to_be_focused()
    page.keyboard.press("Escape")  # closes the list the browser opened
    reasons.select_option("Please keep it polite.")
    reasons.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Rejected: Second to reject (Please keep it polite.)")).to_be_visible()
    statuses = dict(Review.objects.values_list("title", "status"))
    assert statuses == {"First to approve": ModerationStatus.APPROVED, "Second to reject": ModerationStatus.REJECTED,
                        "Third stays": ModerationStatus.PENDING}
    assert Review.objects.get(title="Second to reject").rejection_reason == "Please keep it polite."
