"""Reviews with photos: writing, verified buyers, moderation and its flags, points, votes, reports."""

import os

import pytest
from PIL import Image

from community import services
from community.models import Flag, ModerationLog, ModerationStatus, Review, ReviewPhoto
from community.services import ReviewInput
from core.errors import Conflict, Invalid, NotFound
from rewards.models import ActivityType
from tests import images
from tests.factories import RuleFactory, customer, place_order, refund, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def program(tea_shop):
    set_program(pending_days=0, expiry_policy="never")
    RuleFactory(name="1 per EUR")
    RuleFactory(name="Review", kind="fixed", activity_type="review_approved", points=50, points_per_unit=None)
    RuleFactory(name="Photo bonus", kind="fixed", activity_type="review_photo", points=20, points_per_unit=None)
    return tea_shop


@pytest.fixture
def kettle(program):
    product, _ = services.product_upsert(partner=program, sku="KETTLE-1", name="Glass kettle", category="teaware")
    return product


@pytest.fixture
def buyer(program, alice, kettle):
    """Alice, who bought the kettle from the tea shop."""
    customer(program, "alice", email="alice@example.com")
    place_order(program, "o-1", "alice", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    alice.refresh_from_db()
    return alice


def write(member, product, *, rating=5, title="Lovely kettle", text="Boils fast and looks great on the table.",
          photos=(), **kwargs):
    return services.review_submit(member=member, product=product, data=ReviewInput(rating, title, text),
                                  photos=photos, **kwargs)


def test_a_buyers_review_carries_the_verified_mark_and_waits_for_moderation(buyer, bob, kettle, client):
    review = write(buyer, kettle)
    other = write(bob, kettle, title="Looks nice", text="Saw it at a friend's place, very pretty.")
    assert (review.verified_buyer, other.verified_buyer) == (True, False)
    assert review.status == other.status == ModerationStatus.PENDING
    assert b"Lovely kettle" not in client.get("/products/KETTLE-1/").content  # nothing public before approval


def test_the_program_can_allow_only_buyers_to_review(buyer, bob, kettle):
    services.community_settings_update(actor_user=None, changes={"allow_unverified_reviews": False})
    with pytest.raises(Conflict) as refused:
        write(bob, kettle)
    assert "product" in refused.value.fields
    assert write(buyer, kettle).verified_buyer is True


def test_a_fully_refunded_order_does_not_make_a_verified_buyer(program, bob, kettle):
    customer(program, "bob", email="bob@example.com")
    place_order(program, "o-9", "bob", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    refund(program, "o-9", refund_id="r-1")
    assert write(bob, kettle).verified_buyer is False


def test_bad_review_input_names_the_field(buyer, kettle):
    with pytest.raises(Invalid) as bad:
        write(buyer, kettle, rating=6, title="", text="short")
    assert set(bad.value.fields) == {"rating", "title", "text"}
    assert not Review.objects.exists()


def test_one_review_per_member_per_product_and_an_edit_goes_back_to_moderation(buyer, kettle, client, staff):
    review = write(buyer, kettle)
    services.review_approve(review_id=review.pk, moderator=staff)
    assert b"Lovely kettle" in client.get("/products/KETTLE-1/").content
    edited = write(buyer, kettle, rating=3, title="Good, but the lid rattles", text="The lid rattles when it boils.")
    assert edited.pk == review.pk and Review.objects.count() == 1
    assert edited.status == ModerationStatus.PENDING
    page = client.get("/products/KETTLE-1/").content.decode()
    assert "lid rattles" not in page and "Lovely kettle" not in page
    assert list(ModerationLog.objects.filter(subject=f"review:{review.pk}").values_list("action", flat=True)) == [
        "edited", "approved", "submitted"]


# --- Points ---------------------------------------------------------------------------------------

def test_approval_earns_points_once_even_when_approved_again_after_an_edit(buyer, kettle, staff):
    review = write(buyer, kettle)
    services.review_approve(review_id=review.pk, moderator=staff)
    services.review_approve(review_id=review.pk, moderator=staff)
    buyer.refresh_from_db()
    assert buyer.points_available == 30 + 50  # the order's 30 (1 per EUR) and the review's 50
    write(buyer, kettle, title="Still lovely", text="A month later it still boils fast.")
    services.review_approve(review_id=review.pk, moderator=staff)
    buyer.refresh_from_db()
    assert buyer.points_available == 80
    assert buyer.activities.filter(type=ActivityType.REVIEW_APPROVED).count() == 1


def test_a_photo_review_earns_the_photo_bonus_and_the_page_discloses_the_reward(buyer, kettle, staff, client):
    review = write(buyer, kettle, photos=[images.photo()])
    services.review_approve(review_id=review.pk, moderator=staff)
    buyer.refresh_from_db()
    assert buyer.points_available == 30 + 50 + 20
    assert b"earned loyalty points for this review" in client.get("/products/KETTLE-1/").content


def test_rejecting_after_approval_reverses_the_points_and_tells_the_member_why(buyer, kettle, staff, mailoutbox,
                                                                             alice_client):
    review = write(buyer, kettle, photos=[images.photo()])
    services.review_approve(review_id=review.pk, moderator=staff)
    services.review_reject(review_id=review.pk, moderator=staff, reason="Please leave out the shop's address.")
    buyer.refresh_from_db()
    assert buyer.points_available == 30
    assert "leave out the shop's address" in mailoutbox[-1].body
    page = alice_client.get("/community/reviews/").content.decode()
    assert "Please leave out the shop&#x27;s address." in page
    # Edited and approved again: the points come back, once.
    write(buyer, kettle, title="Lovely kettle", text="Boils fast and looks great on any table.")
    services.review_approve(review_id=review.pk, moderator=staff)
    services.review_approve(review_id=review.pk, moderator=staff)
    buyer.refresh_from_db()
    assert buyer.points_available == 30 + 50 + 20


def test_a_rejection_needs_a_reason(buyer, kettle, staff):
    review = write(buyer, kettle)
    with pytest.raises(Invalid) as bad:
        services.review_reject(review_id=review.pk, moderator=staff, reason="  ")
    assert "reason" in bad.value.fields


# --- Photos ---------------------------------------------------------------------------------------

def test_photos_are_re_encoded_without_location_and_get_thumbnails(buyer, kettle):
    review = write(buyer, kettle, photos=[images.photo(), images.photo("p.png", fmt="PNG", size=(800, 600))])
    photos = list(review.photos.all())
    assert len(photos) == review.photo_count == 2
    with Image.open(photos[0].image.path) as stored:
        assert stored.size == (1600, 1067)
        assert not stored.getexif()  # no camera, no GPS
    with Image.open(photos[0].thumbnail.path) as thumb:
        assert max(thumb.size) == 320


@pytest.mark.parametrize("upload, message", [
    (images.renamed_text, "not a picture"),
    (images.svg, "not a picture"),
    (images.truncated, "damaged or incomplete"),
    (images.bomb, "too many pixels"),
    (images.huge, "larger than 10 MB"),
])
def test_a_bad_photo_refuses_the_review_and_stores_nothing(buyer, kettle, settings, upload, message):
    def files():
        return sorted(name for _, _, names in os.walk(settings.MEDIA_ROOT) for name in names)

    before = files()
    with pytest.raises(Invalid) as bad:
        write(buyer, kettle, photos=[images.photo("good.jpg"), upload()])
    assert message in bad.value.fields["photos"][0]
    assert not Review.objects.exists() and not ReviewPhoto.objects.exists()
    assert files() == before


def test_at_most_five_photos(buyer, kettle):
    with pytest.raises(Invalid) as bad:
        write(buyer, kettle, photos=[images.photo(f"p{n}.jpg", size=(200, 200)) for n in range(6)])
    assert "photos" in bad.value.fields


# --- Flags ----------------------------------------------------------------------------------------

def test_links_banned_words_and_repeated_text_are_flagged(buyer, bob, kettle, program):
    services.community_settings_update(actor_user=None, changes={"banned_words": "rubbish\nrip off"})
    linked = write(buyer, kettle, text="Cheaper at www.example.com if you ask me, honestly.")
    assert linked.flags == [Flag.LINK]
    teapot, _ = services.product_upsert(partner=program, sku="POT", name="Teapot")
    banned = write(buyer, teapot, title="A rip off", text="It broke after one week of careful use.")
    assert banned.flags == [Flag.BANNED_WORD]
    copied = write(bob, kettle, text="It broke after one week of careful use!")
    assert Flag.REPEATED_TEXT in copied.flags
    # A word that only contains a banned one is not flagged ("ripe", "offer").
    cup, _ = services.product_upsert(partner=program, sku="CUP", name="Cup")
    assert write(bob, cup, title="Ripe offer", text="Came with a ripe offer for the next order.").flags == []


def test_many_reviews_in_a_short_time_are_flagged(buyer, program):
    flags = []
    for n in range(3):
        product, _ = services.product_upsert(partner=program, sku=f"P{n}", name=f"Product {n}")
        flags.append(write(buyer, product, text=f"Review number {n} of a busy evening.").flags)
    assert flags == [[], [], [Flag.BURST]]


def test_changing_banned_words_holds_published_reviews_that_now_contain_one(buyer, bob, kettle, staff, client):
    first = write(buyer, kettle, text="The handle gets hot, a bit rubbish really.")
    second = write(bob, kettle, title="Fine", text="Does the job, nothing more to say.")
    for review in (first, second):
        services.review_approve(review_id=review.pk, moderator=staff)
    changed = services.community_settings_update(actor_user=staff, changes={"banned_words": "Rubbish"})
    assert changed.rechecked == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.flags) == (ModerationStatus.PENDING, [Flag.BANNED_WORD])
    assert second.status == ModerationStatus.APPROVED
    assert "bit rubbish" not in client.get("/products/KETTLE-1/").content.decode()


def test_posting_is_rate_limited_per_member(buyer, program):
    services.community_settings_update(actor_user=None, changes={"posts_per_hour": 2, "burst_count": 10})
    for n in range(2):
        product, _ = services.product_upsert(partner=program, sku=f"R{n}", name=f"Product {n}")
        write(buyer, product)
    product, _ = services.product_upsert(partner=program, sku="R9", name="One too many")
    with pytest.raises(Conflict) as limited:
        write(buyer, product)
    assert limited.value.code == "rate_limited"


# --- Votes and reports ----------------------------------------------------------------------------

@pytest.fixture
def published(buyer, kettle, staff):
    review = write(buyer, kettle)
    return services.review_approve(review_id=review.pk, moderator=staff)


def test_helpful_votes_once_never_your_own(published, buyer, bob):
    services.review_vote_helpful(review_id=published.pk, member=bob)
    with pytest.raises(Conflict):
        services.review_vote_helpful(review_id=published.pk, member=bob)
    with pytest.raises(Conflict) as own:
        services.review_vote_helpful(review_id=published.pk, member=buyer)
    assert own.value.code == "own_review"
    published.refresh_from_db()
    assert published.helpful_count == 1
    # The author's badge criterion "helpful votes received" counts it.
    assert buyer.activities.filter(type=ActivityType.HELPFUL_VOTE_RECEIVED).count() == 1


def test_a_pending_review_cannot_be_voted_for(buyer, bob, kettle):
    review = write(buyer, kettle)
    with pytest.raises(NotFound):
        services.review_vote_helpful(review_id=review.pk, member=bob)


def test_three_reports_hold_a_review_for_moderation(published, bob, program, kettle):
    services.review_report(review_id=published.pk, member=bob, reason="Spam")
    published.refresh_from_db()
    assert (published.status, published.flags) == (ModerationStatus.APPROVED, [Flag.REPORTED])
    with pytest.raises(Conflict):
        services.review_report(review_id=published.pk, member=bob, reason="Spam again")
    for name in ("carol", "dave"):
        services.review_report(review_id=published.pk, member=customer(program, name), reason="Offensive")
    published.refresh_from_db()
    assert (published.status, published.report_count) == (ModerationStatus.PENDING, 3)


# --- Staff --------------------------------------------------------------------------------------

def test_staff_reply_and_feature_show_publicly(published, staff, client):
    services.review_reply(review_id=published.pk, moderator=staff, text="Thank you, enjoy your tea!")
    services.review_feature(review_id=published.pk, moderator=staff, featured=True)
    assert "Thank you, enjoy your tea!" in client.get("/products/KETTLE-1/").content.decode()
    assert "Lovely kettle" in client.get("/community/").content.decode()


def test_only_a_published_review_can_be_featured(buyer, kettle, staff):
    review = write(buyer, kettle)
    with pytest.raises(Conflict):
        services.review_feature(review_id=review.pk, moderator=staff, featured=True)


def test_the_admin_queue_approves_in_bulk_and_rejects_only_with_a_reason(buyer, bob, kettle, staff, client):
    reviews = [write(buyer, kettle), write(bob, kettle, title="Pretty", text="Pretty, and it pours well too.")]
    client.force_login(staff)
    url = "/admin/community/review/"
    assert client.get(url).status_code == 200
    ids = [str(r.pk) for r in reviews]
    client.post(url, {"action": "reject_selected", "_selected_action": ids, "reason": ""})
    assert Review.objects.filter(status=ModerationStatus.PENDING).count() == 2  # no reason: nothing rejected
    client.post(url, {"action": "approve_selected", "_selected_action": ids, "reason": ""})
    assert Review.objects.filter(status=ModerationStatus.APPROVED).count() == 2
    # Published ones are under "Approved" (the queue opens on what waits): rejected from there.
    client.post(f"{url}?status=approved", {"action": "reject_selected", "_selected_action": ids[1:],
                                           "reason": "Off topic"})
    rejected = Review.objects.get(pk=reviews[1].pk)
    assert (rejected.status, rejected.rejection_reason) == (ModerationStatus.REJECTED, "Off topic")
    log = ModerationLog.objects.filter(subject=f"review:{rejected.pk}", action="rejected").get()
    assert (log.actor_user, log.reason) == (staff, "Off topic")
    assert client.get(f"{url}{rejected.pk}/change/").status_code == 200


def test_the_queue_opens_on_what_waits_with_the_text_and_a_thumbnail_in_a_few_queries(
        buyer, bob, kettle, staff, client, django_assert_max_num_queries):
    """Seen: the queue opened on "All", 1,391 px wide with status and flags off screen, no text or
    photo in the list, 774 KB a page."""
    from tests import images

    waiting = services.review_submit(member=buyer, product=kettle, photos=[images.photo()], data=services.ReviewInput(
        4, "Pours well", "No drips at all, and the glass stays clear after a month of daily use."))
    done = write(bob, kettle, title="Pretty", text="Pretty, and it pours well too.")
    services.review_approve(review_id=done.pk, moderator=staff)
    client.force_login(staff)
    url = "/admin/community/review/"
    client.get(url)
    with django_assert_max_num_queries(12) as counted:
        page = client.get(url).content.decode()
    baseline = len(counted.captured_queries)  # read now: the next request clears the query log
    assert "Pours well" in page and "No drips at all" in page and "Pretty" not in page
    assert 'alt="Photo of the review"' in page and "★★★★☆" in page
    everything = client.get(f"{url}?status=all").content.decode()
    assert "Pours well" in everything and "Pretty" in everything
    for n in range(20):  # a longer queue: the same queries
        services.review_submit(member=customer_with_email(kettle, n), product=kettle, photos=[images.photo()],
                               data=services.ReviewInput(5, f"Review {n}", "A perfectly fine kettle for every day."))
    client.get(url)  # as before the first count: the program's settings read (kept until they change)
    with django_assert_max_num_queries(baseline):
        longer = client.get(url).content.decode()
    assert longer.count('alt="Photo of the review"') == 21 and waiting.title in longer


def customer_with_email(kettle, n):
    from tests.factories import customer

    return customer(kettle.partner, f"q{n}", email=f"q{n}@example.com")


def test_staff_moderate_one_review_from_its_page(buyer, kettle, staff, client):
    review = write(buyer, kettle)
    client.force_login(staff)
    response = client.post(f"/admin/community/review/{review.pk}/change/",
                           {"decision": "approve", "reason": "", "staff_reply": "Thanks!", "featured": "on",
                            "photos-TOTAL_FORMS": "0", "photos-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    review.refresh_from_db()
    assert (review.status, review.staff_reply, review.featured) == (ModerationStatus.APPROVED, "Thanks!", True)


# --- Erasure and export ---------------------------------------------------------------------------

def test_erasing_a_member_removes_their_reviews_and_photos_but_keeps_the_points_books(published, buyer, settings):
    from accounts.services import member_erase

    photo_review = write(buyer, services.product_upsert(partner=None, sku="POT", name="Teapot")[0],
                         photos=[images.photo()])
    path = photo_review.photos.get().image.path
    member_erase(member=buyer, actor_user=None)
    assert not Review.objects.filter(member=buyer).exists()
    assert not os.path.exists(path)
    assert buyer.activities.filter(type=ActivityType.REVIEW_APPROVED).count() == 1


def test_staff_edit_banned_words_in_the_admin_and_are_told_what_was_held(published, staff, client):
    client.force_login(staff)
    assert client.get("/admin/community/communitysettings/").status_code == 302  # straight to the one row
    response = client.post("/admin/community/communitysettings/1/change/", {
        "allow_unverified_reviews": "on", "banned_words": "kettle", "posts_per_hour": "10", "burst_count": "3",
        "burst_minutes": "10"}, follow=True)
    assert "1 published post contains a banned word" in response.content.decode()
    published.refresh_from_db()
    assert published.status == ModerationStatus.PENDING
    from accounts.models import AuditLog

    assert AuditLog.objects.filter(action="community.settings", actor_user=staff).exists()


def test_a_40_megapixel_png_of_a_few_kilobytes_is_refused_at_once():
    import time

    from core.images import clean_image

    upload = images.smooth("wide.png", (6300, 6300), "PNG")
    started = time.perf_counter()
    with pytest.raises(Invalid) as bad:
        clean_image(upload, field="photos")
    assert "too many pixels" in bad.value.fields["photos"][0]
    assert time.perf_counter() - started < 0.5


def test_a_48_megapixel_phone_jpeg_is_accepted_and_scaled_down():
    from core.images import clean_image

    cleaned = clean_image(images.smooth("big.jpg", (8000, 6000), "JPEG"), field="photos")
    assert (cleaned.width, cleaned.height) == (1600, 1200)


def test_the_stores_auto_publish_rule_publishes_a_verified_buyers_good_plain_review_at_once(buyer, bob, kettle,
                                                                                           client):
    services.community_settings_update(actor_user=None, changes={"auto_publish_min_rating": 4})
    review = write(buyer, kettle, rating=4)
    assert review.status == ModerationStatus.APPROVED
    assert b"Lovely kettle" in client.get("/products/KETTLE-1/").content
    buyer.refresh_from_db()
    assert buyer.points_available == 30 + 50  # the order, and the review's points
    log = ModerationLog.objects.filter(subject=f"review:{review.pk}", action="approved").get()
    assert "Published at once" in log.reason
    # Everything else still waits for a moderator: not a buyer, too few stars, a photo, a flag.
    assert write(bob, kettle, title="Pretty", text="Saw it at a friend's place, very pretty.").status == \
        ModerationStatus.PENDING
    assert write(buyer, kettle, rating=3).status == ModerationStatus.PENDING
    assert write(buyer, kettle, rating=5).status == ModerationStatus.PENDING  # an edit waits for a moderator
    assert write(buyer, kettle, photos=[images.photo()]).status == ModerationStatus.PENDING
    services.community_settings_update(actor_user=None, changes={"banned_words": "rubbish"})
    assert write(buyer, kettle, text="Not rubbish at all, boils fast.").status == ModerationStatus.PENDING


def test_staff_approve_or_reject_with_a_reason_from_the_list_in_one_click_from_the_queue(buyer, bob, kettle,
                                                                                       staff):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    first = write(buyer, kettle)
    second = write(bob, kettle, title="Meh", text="Call me on 0123 456 789 to hear more about it.")
    queue = client.get("/admin/community/review/").content.decode()
    assert f'formaction="/admin/community/review/{first.pk}/decide/approve/"' in queue
    assert "Please leave out personal details" in queue  # the store's reasons, one click away
    response = client.post(f"/admin/community/review/{first.pk}/decide/approve/",
                           HTTP_REFERER="/admin/community/review/")
    assert response.status_code == 302 and response["Location"] == "/admin/community/review/"
    first.refresh_from_db()
    assert first.status == ModerationStatus.APPROVED
    reasons = services.community_settings().reasons()
    client.post(f"/admin/community/review/{second.pk}/decide/reject/", {f"reason-{second.pk}": ""})
    second.refresh_from_db()
    assert second.status == ModerationStatus.PENDING  # no reason picked: nothing decided
    client.post(f"/admin/community/review/{second.pk}/decide/reject/", {f"reason-{second.pk}": reasons[1]})
    second.refresh_from_db()
    assert second.status == ModerationStatus.REJECTED and second.rejection_reason == reasons[1]
    assert bob.notifications.get().body.startswith(f"Our moderators said: {reasons[1]}")
    after = client.get("/admin/community/review/?status=all").content.decode()
    assert "Lovely kettle" in after and f"/admin/community/review/{first.pk}/decide/" not in after  # decided


def test_staff_reply_in_public_with_a_saved_reply_from_the_community_settings(buyer, kettle, staff_client, client):
    review = services.review_approve(review_id=write(buyer, kettle).pk, moderator=None)
    services.community_settings_update(actor_user=None, changes={
        "reply_templates": "Thank you, that made our day!\nSorry to hear it: write to us and we will put it right."})
    page = staff_client.get(f"/admin/community/review/{review.pk}/change/").content.decode()
    assert '<option value="Thank you, that made our day!">Thank you, that made our day!</option>' in page
    form = {"decision": "", "reason": "", "reply_template": "Thank you, that made our day!", "staff_reply": "",
            "photos-TOTAL_FORMS": "0", "photos-INITIAL_FORMS": "0"}
    # Without a script to put the words in the box, the saved reply picked is the reply.
    assert staff_client.post(f"/admin/community/review/{review.pk}/change/", form).status_code == 302
    review.refresh_from_db()
    assert review.staff_reply == "Thank you, that made our day!"
    # Words typed in the box (the script copies the saved reply there to be changed) win.
    form.update(staff_reply="Thank you, Alice, that made our day!")
    staff_client.post(f"/admin/community/review/{review.pk}/change/", form)
    review.refresh_from_db()
    assert review.staff_reply == "Thank you, Alice, that made our day!"
    assert list(ModerationLog.objects.filter(subject=f"review:{review.pk}", action="replied")
                .values_list("reason", flat=True)) == ["Thank you, Alice, that made our day!",
                                                      "Thank you, that made our day!"]
    assert "Thank you, Alice, that made our day!" in client.get("/products/KETTLE-1/").content.decode()
    form.update(staff_reply="", reply_template="Not one of ours")
    assert "Select a valid choice" in staff_client.post(f"/admin/community/review/{review.pk}/change/",
                                                        form).content.decode()


def test_a_shop_includes_the_reviews_fragment_with_its_json_ld_and_nothing_breaks_out(buyer, bob, kettle, client):
    import json
    import re

    review = write(buyer, kettle, rating=4, title="Lovely </script><script>alert(1)</script>",
                   text="Boils fast & looks great.")
    services.review_approve(review_id=review.pk, moderator=None)
    write(bob, kettle, rating=1, title="Waiting", text="Not yet moderated, should not show.")
    response = client.get("/embed/v1/products/KETTLE-1/reviews.html")
    assert response.status_code == 200 and response["Cache-Control"] == "public, max-age=300"
    html = response.content.decode()
    assert html.count("<script") == 1  # the JSON-LD, and no script smuggled in through a title
    data = json.loads(re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1))
    assert data["aggregateRating"] == {"@type": "AggregateRating", "ratingValue": "4.0", "reviewCount": 1,
                                       "bestRating": 5, "worstRating": 1}
    assert data["review"][0]["name"] == "Lovely </script><script>alert(1)</script>"  # kept, as text
    assert "Boils fast &amp; looks great." in html and "Not yet moderated" not in html
    assert "4.0</strong> out of 5, from 1 review" in html and "verified buyer" in html
    assert client.get("/embed/v1/products/NO-SUCH/reviews.html").status_code == 404


# --- The product's rating summary -------------------------------------------------------------------

def shown(product) -> tuple:
    """What the product page shows: (count, average, {stars: reviews}) from the product's summary."""
    from community.selectors import rating_summary

    summary = rating_summary(product=product)
    return summary.count, summary.average, {stars: count for stars, count, _ in summary.distribution if count}


def counted(product) -> tuple:
    """The same figures counted afresh from the product's published reviews."""
    from collections import Counter
    from decimal import ROUND_HALF_UP, Decimal

    ratings = list(Review.objects.filter(product=product, status=ModerationStatus.APPROVED)
                   .values_list("rating", flat=True))
    average = (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.1"), ROUND_HALF_UP) if ratings else None
    return len(ratings), average, dict(Counter(ratings))


def test_the_rating_summary_follows_every_change_to_what_is_published(buyer, bob, kettle, program, staff, client):
    """Publish, approve again, edit, reject, hold after reports, hold for a banned word, the admin's
    bulk action, erasure and auto-publish: after each, the summary the page reads is what counting
    the published reviews gives."""
    from decimal import Decimal

    from accounts.services import member_erase

    carol, dave, erin = (customer(program, name) for name in ("carol", "dave", "erin"))
    teapot, _ = services.product_upsert(partner=program, sku="POT-1", name="Teapot")
    by = {}
    for member, rating, text in ((buyer, 5, "Boils in two minutes, and quietly."), (bob, 4, "Pours well, heavy."),
                                 (carol, 2, "A flimsy lid that rattles."), (dave, 1, "Mine came with a crack.")):
        by[member.pk] = write(member, kettle, rating=rating, title=f"{rating} stars", text=text)
        services.review_approve(review_id=by[member.pk].pk, moderator=staff)
    services.review_approve(review_id=write(bob, teapot, rating=5).pk, moderator=staff)

    def step(expected):
        assert shown(kettle) == counted(kettle) == expected
        assert shown(teapot) == (1, Decimal("5.0"), {5: 1})  # the other product's summary is its own

    step((4, Decimal("3.0"), {5: 1, 4: 1, 2: 1, 1: 1}))
    services.review_approve(review_id=by[buyer.pk].pk, moderator=staff)  # approved again: counted once
    step((4, Decimal("3.0"), {5: 1, 4: 1, 2: 1, 1: 1}))
    write(buyer, kettle, rating=3, text="Second thoughts: it whistles when it boils.")  # an edit waits
    step((3, Decimal("2.3"), {4: 1, 2: 1, 1: 1}))
    services.review_approve(review_id=by[buyer.pk].pk, moderator=staff)
    step((4, Decimal("2.5"), {4: 1, 3: 1, 2: 1, 1: 1}))
    services.review_reject(review_id=by[dave.pk].pk, moderator=staff, reason="Off topic")
    step((3, Decimal("3.0"), {4: 1, 3: 1, 2: 1}))
    services.review_reject(review_id=write(erin, kettle, rating=5).pk, moderator=staff, reason="Off topic")
    step((3, Decimal("3.0"), {4: 1, 3: 1, 2: 1}))  # never published: nothing to take away
    for reporter in (buyer, carol, erin):
        services.review_report(review_id=by[bob.pk].pk, member=reporter, reason="Not about the kettle")
    step((2, Decimal("2.5"), {3: 1, 2: 1}))  # held after three reports
    services.reviews_moderate(review_ids=[by[bob.pk].pk], approve=True, moderator=staff)  # the admin's action
    step((3, Decimal("3.0"), {4: 1, 3: 1, 2: 1}))
    services.community_settings_update(actor_user=staff, changes={"banned_words": "flimsy"})
    step((2, Decimal("3.5"), {4: 1, 3: 1}))  # carol's is held for a banned word
    member_erase(member=buyer, actor_user=None)
    step((1, Decimal("4.0"), {4: 1}))
    services.community_settings_update(actor_user=None, changes={"auto_publish_min_rating": 4})
    frank = customer(program, "frank", email="frank@example.com")
    place_order(program, "o-2", "frank", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    assert write(frank, kettle, rating=5, text="Exactly as pictured, and it keeps warm.").status == \
        ModerationStatus.APPROVED  # published at once
    step((2, Decimal("4.5"), {5: 1, 4: 1}))
    assert client.get("/products/KETTLE-1/").context["summary"].count == 2


def test_recount_ratings_repairs_a_summary_that_drifted_and_names_the_product(buyer, bob, kettle, program, staff):
    """Reviews written around the services (a restore, an old release during the deploy that added
    the summaries) leave a summary that is wrong: the command counts again and says which it fixed."""
    from io import StringIO

    from django.core.management import call_command

    from community.models import ProductRating

    teapot, _ = services.product_upsert(partner=program, sku="POT-1", name="Teapot")
    services.review_approve(review_id=write(buyer, kettle, rating=5).pk, moderator=staff)
    services.review_approve(review_id=write(bob, teapot, rating=3).pk, moderator=staff)
    Review.objects.filter(product=kettle).update(rating=1)  # behind the services' back
    assert shown(kettle) != counted(kettle)
    out = StringIO()
    call_command("recount_ratings", stdout=out)
    assert out.getvalue().splitlines() == ["KETTLE-1: repaired", "2 products counted again, 1 summaries repaired."]
    assert shown(kettle) == counted(kettle) == (1, counted(kettle)[1], {1: 1})
    assert shown(teapot) == counted(teapot)
    ProductRating.objects.filter(product=teapot).delete()  # a product whose summary row went missing
    call_command("recount_ratings", "--sku", "POT-1", stdout=out)
    assert shown(teapot) == counted(teapot) and ProductRating.objects.filter(product=teapot).exists()
