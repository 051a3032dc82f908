"""Product pages, the partner's product and review endpoints, questions and answers, review requests."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Channel
from community import services
from community.models import Answer, HelpfulVote, ModerationStatus, Product, Question, Review, ReviewRequest
from community.services import ReviewInput
from core.errors import Conflict
from tests import images
from tests.conftest import partner_client
from tests.factories import customer, place_order, refund, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def kettle(tea_shop):
    set_program(pending_days=14, expiry_policy="never")
    product, _ = services.product_upsert(partner=tea_shop, sku="KETTLE-1", name="Glass kettle", category="teaware",
                                         url="https://shop.example.com/kettle",
                                         image_url="https://shop.example.com/kettle.jpg")
    return product


def review_by(member, product, rating, title, *, staff, text="A perfectly fine kettle for every day.", photos=()):
    review = services.review_submit(member=member, product=product, data=ReviewInput(rating, title, text),
                                    photos=photos)
    return services.review_approve(review_id=review.pk, moderator=staff)


@pytest.fixture
def reviewed(kettle, tea_shop, staff):
    """Five published reviews of the kettle: 5, 5, 4, 2 and 1 stars; one pending."""
    members = [customer(tea_shop, f"c{n}", email=f"c{n}@example.com", first_name=f"Name{n}", last_name="Doe")
               for n in range(6)]
    for member, rating in zip(members, [5, 5, 4, 2, 1], strict=False):
        review_by(member, kettle, rating, f"{rating} stars", staff=staff)
    services.review_submit(member=members[5], product=kettle, data=ReviewInput(3, "Pending", "Not yet moderated."))
    return members


def json_ld(html: str) -> dict:
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_the_product_page_shows_the_average_count_and_a_bar_per_star(client, reviewed):
    page = client.get("/products/KETTLE-1/")
    assert page.status_code == 200
    summary = page.context["summary"]
    assert (summary.count, summary.average) == (5, Decimal("3.4"))
    assert summary.distribution == [(5, 2, 40), (4, 1, 20), (3, 0, 0), (2, 1, 20), (1, 1, 20)]
    html = page.content.decode()
    assert "3.4" in html and "5 reviews" in html and 'style="width: 40%"' in html
    assert "Pending" not in html


def test_json_ld_describes_the_product_its_rating_and_the_reviews_shown(client, reviewed):
    data = json_ld(client.get("/products/KETTLE-1/").content.decode())
    assert data["@context"] == "https://schema.org" and data["@type"] == "Product"
    assert (data["name"], data["sku"], data["url"], data["image"]) == (
        "Glass kettle", "KETTLE-1", "https://shop.example.com/kettle", "https://shop.example.com/kettle.jpg")
    assert data["aggregateRating"] == {"@type": "AggregateRating", "ratingValue": "3.4", "reviewCount": 5,
                                       "bestRating": 5, "worstRating": 1}
    assert len(data["review"]) == 5
    first = data["review"][0]
    assert first["@type"] == "Review" and first["reviewRating"]["@type"] == "Rating"
    assert first["author"] == {"@type": "Person", "name": first["author"]["name"]} and first["author"]["name"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first["datePublished"])


def test_a_product_without_reviews_has_no_rating_in_json_ld(client, kettle):
    data = json_ld(client.get("/products/KETTLE-1/").content.decode())
    assert "aggregateRating" not in data and "review" not in data


def test_member_text_is_escaped_on_the_page_and_in_json_ld(client, kettle, tea_shop, staff):
    member = customer(tea_shop, "mallory", email="m@example.com", first_name="Mal")
    review_by(member, kettle, 1, "<b>Bold</b> claim", staff=staff,
              text='Bad kettle </script><script>alert("x")</script> really.')
    html = client.get("/products/KETTLE-1/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;b&gt;Bold&lt;/b&gt; claim" in html
    assert json_ld(html)["review"][0]["reviewBody"].startswith("Bad kettle </script>")


def test_sorting_filtering_and_pages(client, kettle, tea_shop, staff):
    members = [customer(tea_shop, f"s{n}", email=f"s{n}@example.com") for n in range(14)]
    for n, member in enumerate(members):
        review_by(member, kettle, 1 + n % 5, f"Review {n}", staff=staff,
                  photos=[images.photo(size=(100, 100))] if n == 3 else ())
    services.review_vote_helpful(review_id=Review.objects.get(title="Review 7").pk, member=members[0])

    def titles(query):
        return [review.title for review, *_ in client.get(f"/products/KETTLE-1/?{query}").context["reviews"]]

    assert titles("sort=helpful")[0] == "Review 7"
    assert titles("sort=relevant")[:2] == ["Review 3", "Review 7"]  # photos (3) beat one helpful vote (2)
    assert titles("sort=newest")[0] == "Review 13"
    assert titles("sort=lowest")[:3] == ["Review 10", "Review 5", "Review 0"]
    assert titles("rating=5") == ["Review 9", "Review 4"]
    assert titles("photos=1") == ["Review 3"]
    assert len(titles("")) == 10 and len(titles("page=2")) == 4
    assert client.get("/products/KETTLE-1/?rating=9&sort=nonsense&page=x").status_code == 200


def test_an_unknown_product_is_404_and_one_known_from_orders_gets_a_page(client, tea_shop):
    assert client.get("/products/NOPE/").status_code == 404
    customer(tea_shop, "c1")
    place_order(tea_shop, "o-1", "c1", lines=(("MUG-7", 1, "9.00", "mugs"),))
    page = client.get("/products/MUG-7/")
    assert page.status_code == 200 and b"Mug-7" in page.content
    assert Product.objects.get(sku="MUG-7").category == "mugs"


def test_the_product_page_runs_a_constant_number_of_queries(client, kettle, tea_shop, alice,
                                                             django_assert_max_num_queries):
    """1,000 published reviews with photos; a logged-in member; the same queries as for 1."""
    from accounts.models import Member

    members = Member.objects.bulk_create([Member(email=f"bulk{n}@example.com", first_name="Bulk",
                                                 referral_code=f"BULK-{n}") for n in range(1000)])
    now = timezone.now()
    reviews = Review.objects.bulk_create([
        Review(product=kettle, member=member, rating=1 + n % 5, title=f"Bulk {n}", text="Fine kettle " * 5,
               status=ModerationStatus.APPROVED, published_at=now - timedelta(minutes=n), relevance=n)
        for n, member in enumerate(members)])
    services.product_ratings_recount(product_ids=[kettle.pk])  # written in bulk, without the review services
    HelpfulVote.objects.create(review=reviews[-1], member=alice)
    client.force_login(alice.user)
    # 10, the navigation's count of unread notifications, and what is bought together with it
    with django_assert_max_num_queries(12):
        page = client.get("/products/KETTLE-1/?sort=relevant")
    assert page.context["summary"].count == 1000
    assert page.context["reviews"][0][0].title == "Bulk 999"
    with django_assert_max_num_queries(12):  # the stars' count comes from the summary too
        page = client.get("/products/KETTLE-1/?rating=3&page=20")
    assert (page.context["page"].paginator.count, page.context["page"].number) == (200, 20)
    assert [review.rating for review, *_ in page.context["reviews"]] == [3] * 10


# --- Portal forms -----------------------------------------------------------------------------------

def test_a_member_writes_a_review_with_a_photo_through_the_portal(alice_client, alice, kettle):
    form = alice_client.get("/products/KETTLE-1/review/")
    assert b"is signed <strong>Alice A.</strong>;" in form.content and b"A.." not in form.content
    response = alice_client.post("/products/KETTLE-1/review/", {
        "rating": "4", "title": "Nice", "text": "Pours without dripping.", "photos": [images.photo()]})
    assert response.status_code == 302 and response["Location"] == "/community/reviews/"
    review = Review.objects.get(member=alice)
    assert (review.rating, review.photo_count, review.status) == (4, 1, ModerationStatus.PENDING)
    assert b"Waiting for moderation" in alice_client.get("/community/reviews/").content


def test_a_bad_photo_is_reported_next_to_the_photo_field(alice_client, alice, kettle):
    response = alice_client.post("/products/KETTLE-1/review/", {
        "rating": "4", "title": "Nice", "text": "Pours without dripping.", "photos": [images.renamed_text()]})
    assert response.status_code == 200
    assert response.context["form"].errors["photos"] == ["photo.jpg: This file is not a picture; send a JPEG, "
                                                         "PNG or WebP."]
    assert not Review.objects.exists()


def test_a_bad_photo_is_reported_with_the_other_errors_and_good_ones_are_asked_for_again(alice_client, kettle):
    """Seen: the photo was reported only once the other errors were fixed, and then it had to be
    picked again; the rating was plain radio buttons."""
    page = alice_client.get("/products/KETTLE-1/review/").content.decode()
    stars = page[page.index('class="star-rating"'):page.index("</fieldset>", page.index('class="star-rating"'))]
    assert stars.count('type="radio"') == 5 and "4 stars</span>" in stars and "★" in stars
    both = alice_client.post("/products/KETTLE-1/review/", {
        "rating": "4", "title": "Nice", "text": "Short", "photos": [images.renamed_text()]})
    assert set(both.context["form"].errors) == {"text", "photos"}
    fine = alice_client.post("/products/KETTLE-1/review/", {
        "rating": "4", "title": "Nice", "text": "Short", "photos": [images.photo()]})
    assert set(fine.context["form"].errors) == {"text"}
    assert 'data-testid="photos-again"' in fine.content.decode() and ">\nShort</textarea>" in fine.content.decode()
    assert not Review.objects.exists()


def test_forms_are_csrf_protected(alice, kettle):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice.user)
    assert strict.post("/products/KETTLE-1/review/", {"rating": "5", "title": "x" * 5,
                                                       "text": "y" * 20}).status_code == 403


def test_helpful_and_report_buttons_work_for_members(client, alice, reviewed):
    review = Review.objects.filter(status=ModerationStatus.APPROVED).first()
    client.force_login(alice.user)
    client.post(f"/reviews/{review.pk}/helpful/")
    second = client.post(f"/reviews/{review.pk}/helpful/", follow=True)
    assert b"already marked this review helpful" in second.content
    client.post(f"/reviews/{review.pk}/report/", {"reason": "Not about the product"})
    review.refresh_from_db()
    assert (review.helpful_count, review.report_count) == (1, 1)


# --- Partner API ------------------------------------------------------------------------------------

def test_partners_create_and_update_products_by_sku(api):
    created = api.post("/api/v1/products/", {"sku": "POT-2", "name": "Teapot", "category": "teaware",
                                              "url": "https://shop.example.com/pot"}, format="json")
    assert created.status_code == 201
    assert created.json()["page_url"] == "http://testserver/products/POT-2/"
    updated = api.post("/api/v1/products/", {"sku": "POT-2", "name": "Big teapot"}, format="json")
    assert updated.status_code == 200 and Product.objects.get(sku="POT-2").name == "Big teapot"


def test_bad_product_input_names_the_field(api):
    response = api.post("/api/v1/products/", {"sku": "POT-2", "name": "", "url": "not a url"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "url"}


def test_product_endpoints_need_their_scopes(tea_shop, kettle):
    reader = partner_client(tea_shop, scopes=["reviews:read"])
    assert reader.post("/api/v1/products/", {"sku": "X", "name": "X"}, format="json").status_code == 403
    writer = partner_client(tea_shop, scopes=["products:write"])
    assert writer.get("/api/v1/products/KETTLE-1/reviews/").status_code == 403


def test_partners_read_approved_reviews_with_the_summary_sorted_and_paginated(api, reviewed):
    body = api.get("/api/v1/products/KETTLE-1/reviews/?sort=highest&page_size=2").json()
    assert body["summary"] == {"count": 5, "average": "3.4",
                               "distribution": {"5": 2, "4": 1, "3": 0, "2": 1, "1": 1}}
    assert body["count"] == 5 and [r["rating"] for r in body["results"]] == [5, 5]
    assert body["next"] == "http://testserver/api/v1/products/KETTLE-1/reviews/?sort=highest&page_size=2&page=2"
    last = api.get("/api/v1/products/KETTLE-1/reviews/?sort=highest&page_size=2&page=3").json()
    assert [r["rating"] for r in last["results"]] == [1] and last["next"] is None
    review = body["results"][0]
    assert set(review) >= {"id", "rating", "title", "text", "author", "verified_buyer", "rewarded",
                           "helpful_count", "photos", "published_at"}
    assert review["author"].endswith("D.")  # first name and initial, never the email
    assert api.get("/api/v1/products/KETTLE-1/reviews/?rating=2").json()["count"] == 1


def test_bad_review_queries_get_400_with_the_field_and_unknown_products_404(api, kettle):
    for query, field in [("sort=best", "sort"), ("rating=6", "rating"), ("page=0", "page"),
                         ("page_size=1000", "page_size"), ("with_photos=maybe", "with_photos")]:
        response = api.get(f"/api/v1/products/KETTLE-1/reviews/?{query}")
        assert response.status_code == 400 and field in response.json()["error"]["fields"], query
    assert api.get("/api/v1/products/NOPE/reviews/").status_code == 404
    assert api.get("/api/v1/products/KETTLE-1/reviews/?page=2").status_code == 404


# --- Questions and answers --------------------------------------------------------------------------

def test_buyers_and_staff_answer_and_the_asker_is_told(kettle, tea_shop, alice, staff, mailoutbox):
    question = services.question_ask(member=alice, product=kettle, text="Does it work on induction?")
    assert question.status == ModerationStatus.PENDING
    services.post_moderate(kind="question", post_id=question.pk, approve=True, moderator=staff)
    stranger = customer(tea_shop, "stranger", email="s@example.com")
    with pytest.raises(Conflict):
        services.answer_post(question_id=question.pk, member=stranger, text="No idea, sorry.")
    buyer = customer(tea_shop, "buyer", email="b@example.com")
    place_order(tea_shop, "o-1", "buyer", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    answer = services.answer_post(question_id=question.pk, member=buyer, text="Yes, mine works on induction.")
    assert (answer.status, answer.verified_buyer) == (ModerationStatus.PENDING, True)
    assert mailoutbox == []
    services.post_moderate(kind="answer", post_id=answer.pk, approve=True, moderator=staff)
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert "induction" in mailoutbox[0].body
    staff_answer = services.answer_post(question_id=question.pk, staff_user=staff, text="Yes, any hob.")
    assert staff_answer.status == ModerationStatus.APPROVED and len(mailoutbox) == 2
    services.answer_vote_helpful(answer_id=answer.pk, member=alice)
    with pytest.raises(Conflict):
        services.answer_vote_helpful(answer_id=answer.pk, member=buyer)  # their own


def test_questions_are_flagged_like_reviews_and_shown_once_published(client, kettle, alice, staff):
    services.community_settings_update(actor_user=None, changes={"banned_words": "scam"})
    flagged = services.question_ask(member=alice, product=kettle, text="Is this a scam? See http://x.io")
    assert set(flagged.flags) == {"banned_word", "link"}
    fine = services.question_ask(member=alice, product=kettle, text="How many cups does it hold?")
    assert b"How many cups" not in client.get("/products/KETTLE-1/").content
    services.post_moderate(kind="question", post_id=fine.pk, approve=True, moderator=staff)
    assert b"How many cups" in client.get("/products/KETTLE-1/").content
    assert Question.objects.count() == 2 and Answer.objects.count() == 0


def test_many_questions_in_a_short_time_are_flagged(kettle, alice):
    flags = [services.question_ask(member=alice, product=kettle, text=f"Question number {n}: does it fit?").flags
             for n in range(3)]
    assert flags == [[], [], ["burst"]]


def test_members_ask_from_the_product_page(alice_client, kettle):
    alice_client.post("/products/KETTLE-1/questions/", {"text": "Is the glass heat resistant?"})
    assert Question.objects.get().text == "Is the glass heat resistant?"


def _field(html: str, box_id: str) -> str:
    """The field group of the box with this id: from its label to the box (help, error, box)."""
    return re.search(rf'<label for="{box_id}".*?id="{box_id}"[^>]*>(?:[^<]*</textarea>)?', html, re.S).group(0)


def test_a_refused_question_answer_or_report_comes_back_next_to_its_box_with_the_text_kept(
        alice_client, alice, bob, kettle, staff):
    """Seen: the error in a banner at the top of a 4,000 px page while the page jumped to the
    questions, and the typed text gone."""
    review = review_by(bob, kettle, 4, "Nice kettle", staff=staff)
    question = services.question_ask(member=bob, product=kettle, text="Does the lid come off for cleaning?")
    services.post_moderate(kind="question", post_id=question.pk, approve=True, moderator=staff)

    asked = alice_client.post("/products/KETTLE-1/questions/", {"text": "Why?"})
    assert asked.status_code == 200  # the page again, not a redirect that loses the text
    box = _field(asked.content.decode(), "id_question_text")
    assert "at least 10 characters" in box and ">\nWhy?</textarea>" in box and "autofocus" in box
    assert 'aria-invalid="true"' in box

    answered = alice_client.post(f"/questions/{question.pk}/answers/", {"text": "x"})
    box = _field(answered.content.decode(), f"id_answer_{question.pk}_text")
    assert "at least 2 characters" in box and ">\nx</textarea>" in box
    assert f'id="question-{question.pk}"' in answered.content.decode()

    reported = alice_client.post(f"/reviews/{review.pk}/report/", {"reason": "no"})
    box = _field(reported.content.decode(), f"id_report_{review.pk}_reason")
    assert "at least 3 characters" in box and 'value="no"' in box
    assert Question.objects.filter(member=alice).count() == 0


def test_the_product_page_has_one_id_per_box_and_each_label_its_own_box(alice_client, bob, kettle, staff, tea_shop):
    """Seen: id_reason nine times, id_text twice, "Your question" labelling the answer box and
    aria-describedby pointing at nothing."""
    import re

    for n in range(3):
        review_by(customer(tea_shop, f"c{n}", email=f"c{n}@example.com"), kettle, 5, f"Review {n}", staff=staff)
    question = services.question_ask(member=bob, product=kettle, text="Does the lid come off for cleaning?")
    services.post_moderate(kind="question", post_id=question.pk, approve=True, moderator=staff)
    html = alice_client.get("/products/KETTLE-1/").content.decode()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for target in re.findall(r'aria-describedby="([^"]+)"', html):
        for one in target.split():
            assert f'id="{one}"' in html, one
    label_for = dict(re.findall(r'<label for="([^"]+)"[^>]*>([^<]+)</label>', html))
    assert label_for["id_question_text"].startswith("Your question")
    assert label_for[f"id_answer_{question.pk}_text"].startswith("Your answer")


# --- Review requests --------------------------------------------------------------------------------

@pytest.fixture
def shoppers(kettle, tea_shop):
    """Three orders placed 15 days ago (past the 14-day return window) and one 3 days ago."""
    long_ago = timezone.now() - timedelta(days=15)
    who = {}
    for name, channel in [("yes", Channel.EMAIL), ("no", Channel.NONE), ("refunded", Channel.EMAIL),
                          ("recent", Channel.EMAIL)]:
        member = customer(tea_shop, name, email=f"{name}@example.com")
        member.surveys_channel = channel
        member.save(update_fields=["surveys_channel"])
        placed = timezone.now() - timedelta(days=3) if name == "recent" else long_ago
        place_order(tea_shop, f"o-{name}", name, placed_at=placed,
                    lines=(("KETTLE-1", 1, "30.00", "teaware"), ("CUP-1", 2, "5.00", "cups")))
        who[name] = member
    refund(tea_shop, "o-refunded", refund_id="r-1")
    return who


def test_review_requests_go_once_to_members_who_agreed_after_the_return_window(shoppers, mailoutbox):
    assert services.review_requests_send() == 1
    assert [m.to for m in mailoutbox] == [["yes@example.com"]]
    assert "/products/KETTLE-1/review/" in mailoutbox[0].body and "/products/CUP-1/review/" in mailoutbox[0].body
    assert services.review_requests_send() == 0  # run twice: nothing new
    assert len(mailoutbox) == 1
    later = timezone.now() + timedelta(days=12)
    assert services.review_requests_send(now=later) == 1  # the recent order's window has passed now
    assert mailoutbox[-1].to == ["recent@example.com"]
    assert ReviewRequest.objects.count() == 2


def test_a_review_request_leaves_out_what_the_member_already_reviewed(shoppers, kettle, mailoutbox):
    services.review_submit(member=shoppers["yes"], product=kettle,
                           data=ReviewInput(5, "Great kettle", "Reviewed before being asked."))
    services.review_requests_send()
    assert "/products/KETTLE-1/review/" not in mailoutbox[0].body and "/products/CUP-1/review/" in mailoutbox[0].body


def test_review_requests_run_as_a_celery_task(shoppers, mailoutbox, eager_tasks):
    from community.tasks import send_review_requests

    assert send_review_requests.delay().get() == 1


def test_questions_and_answers_are_approved_or_rejected_with_a_reason_in_one_click_from_their_queues(
        kettle, tea_shop, alice, bob, staff_client):
    question = services.question_ask(member=alice, product=kettle, text="Does it work on induction?")
    spam = services.question_ask(member=bob, product=kettle, text="Cheap kettles at my own shop, call me!")
    queue = staff_client.get("/admin/community/question/").content.decode()
    assert f'formaction="/admin/community/question/{question.pk}/decide/approve/"' in queue
    assert "Please leave out links and advertising." in queue  # the store's reasons, one click away
    assert "data-queue-keys" in queue  # the keyboard's hint
    staff_client.post(f"/admin/community/question/{question.pk}/decide/approve/")
    staff_client.post(f"/admin/community/question/{spam.pk}/decide/reject/", {f"reason-{spam.pk}": "Spam"})
    question.refresh_from_db(), spam.refresh_from_db()
    assert (question.status, spam.status) == (ModerationStatus.APPROVED, ModerationStatus.PENDING)  # not a reason
    staff_client.post(f"/admin/community/question/{spam.pk}/decide/reject/",
                      {f"reason-{spam.pk}": "Please leave out links and advertising."})
    spam.refresh_from_db()
    assert (spam.status, spam.rejection_reason) == (ModerationStatus.REJECTED,
                                                    "Please leave out links and advertising.")
    buyer = customer(tea_shop, "buyer", email="b@example.com")
    place_order(tea_shop, "o-1", "buyer", lines=(("KETTLE-1", 1, "30.00", "teaware"),))
    answer = services.answer_post(question_id=question.pk, member=buyer, text="Yes, mine works on induction.")
    queue = staff_client.get("/admin/community/answer/").content.decode()
    assert f'formaction="/admin/community/answer/{answer.pk}/decide/approve/"' in queue
    response = staff_client.post(f"/admin/community/answer/{answer.pk}/decide/approve/",
                                 HTTP_REFERER="/admin/community/answer/")
    assert response["Location"] == "/admin/community/answer/"
    answer.refresh_from_db()
    assert answer.status == ModerationStatus.APPROVED
    assert alice.notifications.get().title == "Your question about Glass kettle has an answer"  # the asker told
    assert f"/admin/community/answer/{answer.pk}/decide/" not in staff_client.get(
        "/admin/community/answer/?status=all").content.decode()
