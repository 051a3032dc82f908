"""The storefront embed's two APIs through the real request cycle: the partner's embed settings
(public key, origins, token secret) and the widgets' API (/embed/v1/) that loyalty.js calls from a
shop's pages with X-Store and a customer token. Personas: the Tea Shop (Ada is its customer) and
the Coffee Bar (Bob is its customer)."""

import time
from decimal import Decimal

import jwt
import pytest
from django.test import Client

from accounts.models import AuditLog, Scope
from rewards.models import Coupon, Redemption
from storefront.tokens import token_mint
from tests import images
from tests.conftest import partner_client
from tests.factories import RewardFactory, RuleFactory, customer, place_order, set_program

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.com"


@pytest.fixture
def tea_embed(api):
    """The Tea Shop set up its embed: its shop's origin and a token secret."""
    assert api.put("/api/v1/embed/", {"origins": [SHOP]}, format="json").status_code == 200
    secret = api.post("/api/v1/embed/rotate-secret/").json()["secret"]
    key = api.get("/api/v1/embed/").json()["public_key"]
    return key, secret


def widget(key, token=None, origin=SHOP) -> Client:
    headers = {"X-Store": key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if origin:
        headers["Origin"] = origin
    return Client(headers=headers)


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=0)
    RuleFactory(name="1 per EUR")
    member = customer(tea_shop, "cust-42", email="ada@example.com", first_name="Ada")
    place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 1, "620.00", "tea"),))
    return member


class TestThePartnersEmbedSettings:
    def test_a_public_key_on_first_read_origins_checked_and_a_secret_shown_once(self, api):
        first = api.get("/api/v1/embed/").json()
        assert first["public_key"].startswith("pk_live_") and first["origins"] == [] and first["has_secret"] is False
        assert api.get("/api/v1/embed/").json()["public_key"] == first["public_key"]
        bad = api.put("/api/v1/embed/", {"origins": [SHOP, "http://shop.example.com", "https://x.com/path"]},
                      format="json")
        assert bad.status_code == 400
        assert sorted(bad.json()["error"]["fields"]) == ["origins.1", "origins.2"]
        good = api.put("/api/v1/embed/", {"origins": ["https://Shop.Example.com", "http://localhost:8001"]},
                       format="json").json()
        assert good["origins"] == ["http://localhost:8001", SHOP]
        secret = api.post("/api/v1/embed/rotate-secret/").json()["secret"]
        assert secret.startswith("sk_live_") and secret not in str(api.get("/api/v1/embed/").json())
        assert [a.action for a in AuditLog.objects.filter(action__startswith="embed.").order_by("id")] == [
            "embed.created", "embed.origins_changed", "embed.secret_rotated"]

    def test_it_needs_the_embed_scope_and_each_partner_has_its_own(self, api, tea_shop, coffee_api):
        mine = api.get("/api/v1/embed/").json()["public_key"]
        assert coffee_api.get("/api/v1/embed/").json()["public_key"] != mine
        reader = partner_client(tea_shop, scopes=[Scope.MEMBERS_READ])
        assert reader.get("/api/v1/embed/").status_code == 403


class TestTheCustomerToken:
    def test_a_shoppers_launcher_shows_their_points_tier_rewards_and_referral_link(self, tea_embed, ada, tea_shop):
        key, secret = tea_embed
        from recommendations.services import recommendations_compute

        RewardFactory(name="5 EUR off", points_cost=500)
        RewardFactory(name="Tea set", points_cost=900)
        customer(tea_shop, "cust-43", email="bob@example.com")
        place_order(tea_shop, "2001", "cust-43", lines=(("CUP-9", 1, "9.00", "cups"),))
        recommendations_compute()
        body = widget(key, token_mint(secret=secret, external_id="cust-42")).get("/embed/v1/me/").json()
        assert [p["sku"] for p in body["for_you"]] == ["CUP-9"]  # what others buy, not the tea she has
        assert body["member"] == {"external_id": "cust-42", "first_name": "Ada"}
        assert (body["points"]["available"], body["points"]["pending"]) == (620, 0)
        assert [(r["name"], r["redeemable"]) for r in body["rewards"]] == [("5 EUR off", True), ("Tea set", False)]
        assert (body["next_reward"]["name"], body["next_reward"]["points_short"]) == ("Tea set", 280)
        assert body["referral_link"].endswith(f"/r/{ada.referral_code}/")
        assert body["ways_to_earn"][0]["headline"] == "1 point per EUR 1 spent"
        assert body["recent"][0]["points"] == 620

    @pytest.mark.parametrize("case", ["missing", "expired", "forged", "other_store", "too_long", "none_alg",
                                      "unknown_customer", "garbage"])
    def test_a_missing_expired_forged_or_foreign_token_is_401(self, case, tea_embed, ada, coffee_api, coffee_bar):
        key, secret = tea_embed
        now = int(time.time())
        coffee_secret = coffee_api.post("/api/v1/embed/rotate-secret/").json()["secret"]
        customer(coffee_bar, "cust-42", email="someone@example.com")
        token = {
            "missing": None,
            "expired": token_mint(secret=secret, external_id="cust-42", now=now - 7200),
            "forged": token_mint(secret="sk_live_" + "x" * 43, external_id="cust-42"),
            "other_store": token_mint(secret=coffee_secret, external_id="cust-42"),
            "too_long": jwt.encode({"sub": "cust-42", "iat": now, "exp": now + 86400}, secret, algorithm="HS256"),
            "none_alg": jwt.encode({"sub": "cust-42", "iat": now, "exp": now + 60}, None, algorithm="none"),
            "unknown_customer": token_mint(secret=secret, external_id="cust-999"),
            "garbage": "not.a.token",
        }[case]
        response = widget(key, token).get("/embed/v1/me/")
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] in ("authentication_failed", "not_authenticated")
        assert "620" not in response.content.decode()

    def test_after_a_rotation_the_previous_secret_signs_for_a_day(self, api, tea_embed, ada):
        key, old = tea_embed
        new = api.post("/api/v1/embed/rotate-secret/").json()["secret"]
        for secret in (old, new):
            assert widget(key, token_mint(secret=secret, external_id="cust-42")).get("/embed/v1/me/").status_code \
                == 200


    def test_a_paused_store_is_refused_at_once_and_served_again_when_resumed(self, tea_embed, ada, tea_shop):
        from accounts.services import partner_set_active

        key, secret = tea_embed
        shopper = widget(key, token_mint(secret=secret, external_id="cust-42"))
        assert shopper.get("/embed/v1/me/").status_code == 200  # the store is now in this process's copy
        partner_set_active(partner=tea_shop, active=False)
        refused = shopper.get("/embed/v1/me/")
        assert refused.status_code == 401 and "Unknown store" in refused.json()["error"]["message"]
        partner_set_active(partner=tea_shop, active=True)
        assert shopper.get("/embed/v1/me/").json()["points"]["available"] == 620


class TestOriginsAndCors:
    def test_a_registered_origin_gets_cors_and_another_gets_none_and_is_refused(self, tea_embed, ada):
        key, secret = tea_embed
        preflight = Client().options("/embed/v1/me/", headers={
            "Origin": SHOP, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,x-store"})
        assert preflight["Access-Control-Allow-Origin"] == SHOP
        assert "x-store" in preflight["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in preflight
        evil = Client().options("/embed/v1/me/", headers={"Origin": "https://evil.example.net",
                                                          "Access-Control-Request-Method": "GET"})
        assert "Access-Control-Allow-Origin" not in evil
        token = token_mint(secret=secret, external_id="cust-42")
        refused = widget(key, token, origin="https://evil.example.net").get("/embed/v1/me/")
        assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused
        assert Client().options("/api/v1/members/", headers={
            "Origin": SHOP, "Access-Control-Request-Method": "GET"}).get("Access-Control-Allow-Origin") is None

    def test_an_unknown_store_key_is_401(self, tea_embed):
        assert widget("pk_live_nope").get("/embed/v1/program/").status_code == 401
        assert Client().get("/embed/v1/program/").status_code == 401


class TestRedeemingFromTheLauncher:
    def test_a_redemption_spends_once_even_when_the_click_is_sent_twice(self, tea_embed, ada):
        key, secret = tea_embed
        reward = RewardFactory(name="5 EUR off", points_cost=500)
        client = widget(key, token_mint(secret=secret, external_id="cust-42"))
        first = client.post("/embed/v1/redemptions/", {"reward": reward.pk}, content_type="application/json",
                            headers={"Idempotency-Key": "click-1"})
        again = client.post("/embed/v1/redemptions/", {"reward": reward.pk}, content_type="application/json",
                            headers={"Idempotency-Key": "click-1"})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and first.json()["points"]["available"] == 120
        assert Redemption.objects.count() == 1 and Coupon.objects.get().code == first.json()["coupon"]["code"]
        poor = client.post("/embed/v1/redemptions/", {"reward": reward.pk}, content_type="application/json")
        assert poor.status_code == 409 and list(poor.json()["error"]["fields"]) == ["reward"]
        assert client.post("/embed/v1/redemptions/", {"reward": "x"}, content_type="application/json") \
            .json()["error"]["fields"] == {"reward": ["Must be a whole number."]}

    def test_a_guest_cannot_redeem(self, tea_embed, ada):
        key, _ = tea_embed
        reward = RewardFactory(points_cost=500)
        response = widget(key).post("/embed/v1/redemptions/", {"reward": reward.pk}, content_type="application/json")
        assert response.status_code == 401 and Redemption.objects.count() == 0


class TestStarsAndReviews:
    @pytest.fixture
    def reviewed(self, tea_shop, ada, staff):
        from community import services

        other = customer(tea_shop, "cust-43", email="bob@example.com", first_name="Bob", last_name="Baker")
        place_order(tea_shop, "1002", "cust-43", lines=(("TEA-1", 1, "10.00", "tea"), ("CUP-1", 1, "8.00", "cups")))
        kettle = services.product_ensure(sku="TEA-1")
        for member, rating in ((ada, 5), (other, 4)):
            review = services.review_submit(member=member, product=kettle, data=services.ReviewInput(
                rating, f"{rating} stars from {member.first_name}", "Fresh and fragrant, a lovely everyday tea."))
            services.review_approve(review_id=review.pk, moderator=staff)
        services.product_ensure(sku="CUP-1")
        return kettle

    def test_one_request_gives_the_stars_of_every_product_on_a_listing(self, tea_embed, reviewed,
                                                                        django_assert_max_num_queries):
        key, _ = tea_embed
        with django_assert_max_num_queries(3):
            body = widget(key).get("/embed/v1/stars/?sku=TEA-1&sku=CUP-1&sku=NOPE").json()["results"]
        assert body == {"TEA-1": {"count": 2, "average": "4.5"}, "CUP-1": {"count": 0, "average": None},
                        "NOPE": {"count": 0, "average": None}}
        too_many = widget(key).get("/embed/v1/stars/?" + "&".join(f"sku=S{n}" for n in range(101)))
        assert too_many.status_code == 400 and list(too_many.json()["error"]["fields"]) == ["sku"]

    def test_the_reviews_widget_gets_reviews_questions_and_what_the_shopper_may_do(self, tea_embed, reviewed):
        key, secret = tea_embed
        guest = widget(key).get("/embed/v1/products/TEA-1/reviews/?sort=highest").json()
        assert guest["summary"]["count"] == 2 and [r["rating"] for r in guest["results"]] == [5, 4]
        assert guest["viewer"]["signed_in"] is False and guest["questions"] == []
        ada = widget(key, token_mint(secret=secret, external_id="cust-42"))
        body = ada.get("/embed/v1/products/TEA-1/reviews/?sort=lowest").json()
        assert [r["rating"] for r in body["results"]] == [4, 5]
        assert (body["viewer"]["can_review"], body["viewer"]["has_reviewed"]) == (True, True)
        bobs = body["results"][0]["id"]
        assert ada.post(f"/embed/v1/reviews/{bobs}/helpful/").json()["helpful_count"] == 1
        assert ada.get("/embed/v1/products/TEA-1/reviews/").json()["viewer"]["voted"] == [bobs]
        asked = ada.post("/embed/v1/products/TEA-1/questions/", {"text": "Is it good iced?"},
                         content_type="application/json")
        assert asked.status_code == 201 and asked.json()["status"] == "pending"
        assert ada.get("/embed/v1/products/NOPE/reviews/").status_code == 404

    def test_a_buyer_writes_a_review_with_a_photo_and_a_bad_one_is_refused_by_field(self, tea_embed, reviewed,
                                                                                    tea_shop):
        key, secret = tea_embed
        customer(tea_shop, "cust-44", email="cy@example.com", first_name="Cy")
        place_order(tea_shop, "1003", "cust-44", lines=(("CUP-1", 2, "8.00", "cups"),))
        cy = widget(key, token_mint(secret=secret, external_id="cust-44"))
        refused = cy.post("/embed/v1/products/CUP-1/reviews/", {"rating": "9", "title": "Ok", "text": "short"})
        assert refused.status_code == 400
        assert sorted(refused.json()["error"]["fields"]) == ["rating"]
        not_a_picture = cy.post("/embed/v1/products/CUP-1/reviews/", {
            "rating": "4", "title": "Sturdy cups", "text": "They survived the dishwasher for months.",
            "photos": [images.renamed_text()]})
        assert not_a_picture.status_code == 400 and list(not_a_picture.json()["error"]["fields"]) == ["photos"]
        sent = cy.post("/embed/v1/products/CUP-1/reviews/", {
            "rating": "4", "title": "Sturdy cups", "text": "They survived the dishwasher for months.",
            "photos": [images.photo()]})
        assert sent.status_code == 201 and sent.json()["status"] == "pending"
        from community.models import Review

        review = Review.objects.get(title="Sturdy cups")
        assert (review.photo_count, review.verified_buyer) == (1, True)
        from community.services import community_settings_update

        community_settings_update(actor_user=None, changes={"allow_unverified_reviews": False})
        assert cy.get("/embed/v1/products/TEA-1/reviews/").json()["viewer"]["can_review"] is False
        not_bought = cy.post("/embed/v1/products/TEA-1/reviews/", {
            "rating": "4", "title": "Nice tea", "text": "I have not bought it but I like it a lot."})
        assert not_bought.status_code == 409 and list(not_bought.json()["error"]["fields"]) == ["product"]


def test_shoppers_are_rate_limited_per_store_and_address(tea_embed, settings):
    from core.rates import parse_rate

    settings.EMBED_RATE_LIMIT = parse_rate("3/min")
    key, _ = tea_embed
    answers = [widget(key).get("/embed/v1/program/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0]["RateLimit-Limit"] == "3" and int(answers[3]["Retry-After"]) >= 1


def test_the_script_is_small_cached_and_revalidated():
    first = Client().get("/embed/v1/loyalty.js")
    assert first.status_code == 200 and first["Content-Type"].startswith("text/javascript")
    assert first["Cache-Control"] == "public, max-age=3600"
    assert b'customElements.define("loyalty-launcher"' in first.content
    again = Client().get("/embed/v1/loyalty.js", headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    import gzip

    assert len(gzip.compress(first.content, 9)) < 30 * 1024


def test_a_sum_of_money_never_travels_as_a_float(tea_embed, ada):
    key, secret = tea_embed
    RewardFactory(name="5 EUR off", points_cost=500, value=Decimal("5.00"))
    body = widget(key, token_mint(secret=secret, external_id="cust-42")).get("/embed/v1/me/").json()
    assert all(isinstance(r["points_cost"], int) for r in body["rewards"])


def test_a_replayed_rotation_gives_the_same_secret_which_is_not_kept_in_the_clear(api):
    from accounts.models import IdempotencyRecord

    first = api.post("/api/v1/embed/rotate-secret/", headers={"Idempotency-Key": "rotate-1"}).json()["secret"]
    again = api.post("/api/v1/embed/rotate-secret/", headers={"Idempotency-Key": "rotate-1"})
    assert again.json()["secret"] == first and again["Idempotent-Replayed"] == "true"
    hook = api.post("/api/v1/webhooks/", {"url": "https://shop.example.com/hooks", "events": ["*"]}, format="json",
                    headers={"Idempotency-Key": "hook-1"}).json()["secret"]
    stored = str(list(IdempotencyRecord.objects.values_list("response_body", flat=True)))
    assert first not in stored and hook not in stored and "https://shop.example.com/hooks" in stored


class TestFromTheReview:
    """What a review of the embed found, each now held by a test."""

    @pytest.fixture
    def shared(self, api, tea_shop, coffee_bar, coffee_api, ada):
        """Ada is a customer of both stores, which staff marked as one store: the Coffee Bar set up
        its embed too."""
        from tests.factories import same_store

        same_store(tea_shop, coffee_bar)
        customer(coffee_bar, "cb-7", email="ada@example.com")
        coffee_api.put("/api/v1/embed/", {"origins": ["https://coffee.example.com"]}, format="json")
        secret = coffee_api.post("/api/v1/embed/rotate-secret/").json()["secret"]
        return coffee_api.get("/api/v1/embed/").json()["public_key"], secret

    def test_one_shoppers_idempotency_key_is_not_anothers_nor_the_stores(self, api, tea_embed, ada, tea_shop):
        key, secret = tea_embed
        reward = RewardFactory(name="5 EUR off", points_cost=500)
        customer(tea_shop, "cust-43", email="bob@example.com")
        place_order(tea_shop, "1002", "cust-43", lines=(("TEA-1", 1, "600.00", "tea"),))
        body = {"reward": reward.pk}
        ada_says = widget(key, token_mint(secret=secret, external_id="cust-42")).post(
            "/embed/v1/redemptions/", body, content_type="application/json", headers={"Idempotency-Key": "k-1"}).json()
        bob_says = widget(key, token_mint(secret=secret, external_id="cust-43")).post(
            "/embed/v1/redemptions/", body, content_type="application/json", headers={"Idempotency-Key": "k-1"}).json()
        assert ada_says["coupon"]["code"] != bob_says["coupon"]["code"] and Redemption.objects.count() == 2
        order = api.post("/api/v1/orders/", {"order_id": "k-order", "member": "cust-42", "currency": "EUR",
                                             "placed_at": "2026-12-01T10:00:00Z", "total": "5.00",
                                             "lines": [{"sku": "T", "quantity": 1, "unit_price": "5.00"}]},
                         format="json", headers={"Idempotency-Key": "k-1"})
        assert order.status_code == 201

    def test_another_stores_entries_keep_their_points_not_their_words(self, shared, tea_shop):
        key, secret = shared
        body = widget(key, token_mint(secret=secret, external_id="cb-7"),
                      origin="https://coffee.example.com").get("/embed/v1/me/").json()
        assert [(e["points"], e["description"]) for e in body["recent"]] == [(620, "Activity with another store")]

    def test_a_purchase_at_another_store_does_not_show_in_its_reviews_widget(self, shared, tea_embed):
        key, secret = shared
        body = widget(key, token_mint(secret=secret, external_id="cb-7"),
                      origin="https://coffee.example.com").get("/embed/v1/products/TEA-1/reviews/").json()
        assert body["viewer"]["verified_buyer"] is False
        tea_key, tea_secret = tea_embed
        assert widget(tea_key, token_mint(secret=tea_secret, external_id="cust-42")).get(
            "/embed/v1/products/TEA-1/reviews/").json()["viewer"]["verified_buyer"] is True

    def test_picked_for_you_holds_the_stores_own_products_linked_only_on_its_origins(self, api, coffee_api, tea_embed,
                                                                                     ada, tea_shop, coffee_bar):
        from recommendations.services import recommendations_compute

        key, secret = tea_embed
        customer(tea_shop, "cust-43", email="bob@example.com")
        place_order(tea_shop, "2001", "cust-43", lines=(("CUP-9", 1, "9.00", "cups"), ("POT-1", 1, "30.00", "pots")))
        customer(coffee_bar, "cb-1", email="cy@example.com")
        place_order(coffee_bar, "c-1", "cb-1", lines=(("BEAN-1", 1, "12.00", "coffee"),))
        api.post("/api/v1/products/", {"sku": "CUP-9", "name": "Cup", "url": f"{SHOP}/cup-9"}, format="json")
        coffee_api.post("/api/v1/products/", {"sku": "POT-1", "name": "Pot", "url": "https://evil.example.net/pot"},
                        format="json")
        recommendations_compute()
        picked = widget(key, token_mint(secret=secret, external_id="cust-42")).get("/embed/v1/me/").json()["for_you"]
        assert {p["sku"]: p["url"] for p in picked} == {"CUP-9": f"{SHOP}/cup-9", "POT-1": ""}

    def test_the_address_behind_a_trusted_proxy_is_the_one_counted(self, tea_embed, settings):
        from core.rates import parse_rate

        settings.EMBED_RATE_LIMIT, settings.TRUSTED_PROXY_COUNT = parse_rate("2/min"), 1
        key, _ = tea_embed
        statuses = [widget(key).get("/embed/v1/program/", headers={"X-Forwarded-For": f"203.0.113.{n % 2}"})
                    .status_code for n in range(4)]
        assert statuses == [200, 200, 200, 200]  # two shoppers, two calls each
        assert widget(key).get("/embed/v1/program/", headers={"X-Forwarded-For": "203.0.113.0"}).status_code == 429

    @pytest.mark.parametrize("claims", [{"iat": float("nan")}, {"iat": True}, {"sub": "cust-42\x00"},
                                        {"exp": 1e300}])
    def test_odd_claims_are_refused(self, tea_embed, ada, claims):
        import json as jsonlib

        key, secret = tea_embed
        now = int(time.time())
        payload = {"sub": "cust-42", "iat": now, "exp": now + 600, **claims}
        header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
        body = jwt.utils.base64url_encode(jsonlib.dumps(payload).encode())
        import hashlib
        import hmac

        signed = header + b"." + body
        token = (signed + b"." + jwt.utils.base64url_encode(hmac.new(secret.encode(), signed, hashlib.sha256)
                                                            .digest())).decode()
        assert widget(key, token).get("/embed/v1/me/").status_code == 401

    def test_bearer_is_case_insensitive(self, tea_embed, ada):
        key, secret = tea_embed
        token = token_mint(secret=secret, external_id="cust-42")
        client = Client(headers={"X-Store": key, "Authorization": f"bearer {token}"})
        assert client.get("/embed/v1/me/").status_code == 200

    def test_bad_bytes_and_too_many_parameters_are_answered_in_the_error_shape(self, tea_embed, api):
        key, _ = tea_embed
        nul = widget(key).get("/embed/v1/stars/?sku=A%00B")
        assert nul.status_code == 400 and nul.json()["error"]["code"] == "invalid"
        many = "&".join(f"x{n}=1" for n in range(1100))
        for client, path in ((widget(key), "/embed/v1/stars/?sku=A&"), (api, "/api/v1/rewards/?")):
            response = client.get(path + many)
            assert response.status_code == 400 and response.json()["error"]["code"] == "too_many_fields"

    def test_a_stores_key_used_from_another_stores_origin_gets_no_cors(self, shared, tea_embed, ada):
        key, secret = tea_embed
        answer = widget(key, token_mint(secret=secret, external_id="cust-42"),
                        origin="https://coffee.example.com").get("/embed/v1/me/")
        assert answer.status_code == 403 and "Access-Control-Allow-Origin" not in answer

    def test_origins_are_kept_as_browsers_send_them(self, api):
        origins = api.put("/api/v1/embed/", {"origins": ["https://shop.example.com:443", "https://XN--bcher-kva.example"]},
                          format="json").json()["origins"]
        assert origins == ["https://shop.example.com", "https://xn--bcher-kva.example"]
        unicode = api.put("/api/v1/embed/", {"origins": ["https://bücher.example"]}, format="json")
        assert unicode.status_code == 400 and "xn--" in unicode.json()["error"]["fields"]["origins.0"][0]

    def test_a_replay_of_a_secret_stored_before_sealing_still_answers(self, api):
        from accounts.models import IdempotencyRecord

        first = api.post("/api/v1/embed/rotate-secret/", headers={"Idempotency-Key": "old-1"})
        IdempotencyRecord.objects.filter(key="old-1").update(response_body={"secret": "sk_live_plain"})
        again = api.post("/api/v1/embed/rotate-secret/", headers={"Idempotency-Key": "old-1"})
        assert first.status_code == again.status_code == 200 and again.json() == {"secret": "sk_live_plain"}


def test_the_demo_shop_has_a_page_for_every_product_not_only_those_its_front_page_lists(tea_embed, tea_shop):
    from community.models import Product
    from storefront.demo_shop import DemoShop

    for n in range(13):
        Product.objects.create(sku=f"A-{n}", name=f"A tea {n:02}")
    Product.objects.create(sku="Z-1", name="Zebra tea")  # the 14th by name: not on the front page
    shop = DemoShop(partner=tea_shop, customer="cust-42", loyalty_url="http://127.0.0.1:1")
    status, front = shop.page("/?guest=1")
    assert status == 200 and b"Zebra tea" not in front
    status, page = shop.page("/products/Z-1/?guest=1")
    assert status == 200 and b"Zebra tea" in page and b'sku="Z-1"' in page
    assert shop.page("/products/NOPE/?guest=1")[0] == 404
