"""Recommendations: "bought together" from the orders by a significance test (a planted pair comes
first, an independent pair and a merely popular companion are not related), orders and lines
refunded in full left out, "for you" from the member's history and tier without what they bought
unless people buy it again, popular products for a member with no history; the partner API (scope,
404s, the limit, each partner's own customers and orders), the portal's strip and card, the
campaign placeholder and the nightly task."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from campaigns import services as campaigns
from campaigns.models import Campaign, CampaignStatus
from community.models import Product
from community.services import product_upsert
from recommendations.models import ProductStats, RelatedProduct
from recommendations.selectors import recommendations_for_member, related_products, top_recommendation_names
from recommendations.services import recommendations_compute
from recommendations.tasks import nightly
from rewards.services.tiers import tier_set_manually
from tests.concurrency import run_concurrently
from tests.conftest import make_portal_member, partner_client
from tests.factories import customer, make_tiers, place_order, refund, same_store

pytestmark = pytest.mark.django_db


def skus(found) -> list[str]:
    return [item.sku for item in found]


def related_skus(sku: str) -> list[str]:
    return skus(related_products(product=Product.objects.get(sku=sku)))


@pytest.fixture
def planted(tea_shop):
    """40 orders by 40 customers. A is in orders 0-11 and B in orders 0-9: B always with A. X is in
    36 orders, 11 of them with A: A's most frequent companion, but no more often than chance. C is
    in the even orders and D in orders 0, 1, 4, 5, 8, ...: together in 10, exactly as often as
    chance would have it (20 x 20 / 40)."""
    for i in range(40):
        inside = [sku for sku, yes in (("A", i < 12), ("B", i < 10), ("X", i not in (11, 13, 14, 39)),
                                       ("C", i % 2 == 0), ("D", i % 4 in (0, 1))) if yes]
        customer(tea_shop, f"c{i}")
        place_order(tea_shop, f"o{i}", f"c{i}", lines=[(sku, 1, "5.00", "tea") for sku in inside or ["E"]])
    recommendations_compute()


def test_a_planted_pair_comes_first_and_an_independent_pair_is_not_called_related(planted):
    assert related_skus("A") == ["B"]  # X is with A more often (11 orders against 10), by chance alone
    assert related_skus("B") == ["A"]
    assert related_skus("C") == [] and related_skus("D") == [] and related_skus("X") == []
    pair = RelatedProduct.objects.get(product__sku="A", related__sku="B")
    # The G-test of the 2x2 table [[10, 2], [0, 28]]: scipy.stats.chi2_contingency(table,
    # correction=False, lambda_="log-likelihood") gives 34.1733 (p = 5e-9).
    assert (pair.together, round(pair.score, 4), pair.weight, pair.rank) == (10, 34.1733, 1.0, 1)
    assert related_products(product=Product.objects.get(sku="A"))[0].score == 34.17


def test_every_sku_sold_gets_a_product_named_from_its_latest_line(planted):
    assert sorted(Product.objects.values_list("sku", "name")) == [
        ("A", "A"), ("B", "B"), ("C", "C"), ("D", "D"), ("E", "E"), ("X", "X")]


def test_orders_and_lines_refunded_in_full_do_not_count(tea_shop):
    """P and Q together in 3 of 10 orders (G² 12.2, related); the refund of one order in full and of
    Q's line in another leaves them together once: not related, and not bought by those members."""
    for i in range(10):
        customer(tea_shop, f"c{i}")
        place_order(tea_shop, f"o{i}", f"c{i}", lines=[("P", 1, "5.00", "tea"), ("Q", 1, "5.00", "tea")] if i < 3
                    else [("F", 1, "5.00", "tea")])
    recommendations_compute()
    assert related_skus("P") == ["Q"]
    refund(tea_shop, "o0", refund_id="r0")
    refund(tea_shop, "o1", refund_id="r1", lines=[{"sku": "Q", "quantity": 1}])
    place_order(tea_shop, "o10", "c0", lines=[("F", 1, "5.00", "tea")])
    recommendations_compute()
    assert related_skus("P") == []
    stats = dict(ProductStats.objects.values_list("product__sku", "orders"))
    assert stats == {"P": 2, "Q": 1, "F": 8}
    # c0's only order with P and Q was refunded in full: they are not "what c0 bought".
    c0 = customer(tea_shop, "c0")
    assert skus(recommendations_for_member(member=c0)) == ["P", "Q"]  # and F, which c0 bought, left out


def test_for_you_suggests_what_goes_with_what_they_bought_and_leaves_it_out(planted, tea_shop):
    ada = customer(tea_shop, "ada")
    place_order(tea_shop, "ada-1", "ada", lines=[("A", 1, "5.00", "tea")])
    found = recommendations_for_member(member=ada, limit=3)
    assert skus(found) == ["B", "X", "C"]  # B goes with A; then what sells most; A itself is left out
    assert found[0].score > 1 > found[1].score


def test_a_member_with_no_orders_gets_what_sells_most(planted, tea_shop):
    newcomer = customer(tea_shop, "newcomer")
    assert skus(recommendations_for_member(member=newcomer)) == ["X", "C", "D", "A", "B", "E"]
    assert top_recommendation_names(member_ids=[newcomer.pk]) == {newcomer.pk: "X"}


def test_what_people_buy_again_is_suggested_again_and_what_they_do_not_is_not(tea_shop):
    """Six customers order twice: tea T both times, a kettle K the first time only."""
    now = timezone.now()
    for i in range(6):
        customer(tea_shop, f"c{i}")
        place_order(tea_shop, f"o{i}-1", f"c{i}", lines=[("T", 1, "5.00", "tea"), ("K", 1, "40.00", "kettles")],
                    placed_at=now - timedelta(days=20))
        place_order(tea_shop, f"o{i}-2", f"c{i}", lines=[("T", 1, "5.00", "tea")], placed_at=now - timedelta(days=2))
    recommendations_compute()
    stats = {sku: (again, rebought, rebuy) for sku, again, rebought, rebuy in
             ProductStats.objects.values_list("product__sku", "buyers_again", "rebought", "rebuy")}
    assert stats == {"T": (6, 6, True), "K": (6, 0, False)}
    assert skus(recommendations_for_member(member=customer(tea_shop, "c0"))) == ["T"]


def test_members_of_a_tier_are_offered_what_their_tier_buys(tea_shop, staff):
    bronze, gold = make_tiers(("Bronze", 0), ("Gold", 1000))
    until = timezone.now() + timedelta(days=30)
    for i in range(4):
        member = customer(tea_shop, f"g{i}")
        tier_set_manually(member=member, tier=gold, until=until, reason="test", actor_user=staff)
        place_order(tea_shop, f"g{i}", f"g{i}", lines=[("CAVIAR", 1, "90.00", "deli")])
    for i in range(6):
        customer(tea_shop, f"b{i}")
        place_order(tea_shop, f"b{i}", f"b{i}", lines=[("BISCUIT", 1, "2.00", "deli")])
    recommendations_compute()
    new_gold, new_bronze = customer(tea_shop, "new-gold"), customer(tea_shop, "new-bronze")
    tier_set_manually(member=new_gold, tier=gold, until=until, reason="test", actor_user=staff)
    assert skus(recommendations_for_member(member=new_gold)) == ["CAVIAR", "BISCUIT"]
    assert skus(recommendations_for_member(member=new_bronze)) == ["BISCUIT", "CAVIAR"]  # the entry tier


def test_the_nightly_task_is_scheduled_and_gives_the_same_rows_when_run_again(planted):
    assert settings.CELERY_BEAT_SCHEDULE["recommendations"]["task"] == "recommendations.nightly"
    before = list(RelatedProduct.objects.values_list("product__sku", "related__sku", "together", "score"))
    assert nightly().startswith("40 orders, 6 products, 2 pairs in ")  # what the worker runs
    assert list(RelatedProduct.objects.values_list("product__sku", "related__sku", "together", "score")) == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_take_turns_and_leave_the_rows_of_one(tea_shop):
    for i in range(10):
        customer(tea_shop, f"c{i}")
        place_order(tea_shop, f"o{i}", f"c{i}", lines=[("P", 1, "5.00", "tea"), ("Q", 1, "5.00", "tea")] if i < 3
                    else [("F", 1, "5.00", "tea")])
    results = run_concurrently(lambda i: recommendations_compute(), 3)
    assert [result.pairs for result in results] == [2, 2, 2], results
    assert sorted(RelatedProduct.objects.values_list("product__sku", "related__sku", "together")) == [
        ("P", "Q", 3), ("Q", "P", 3)]
    assert ProductStats.objects.count() == 3


# --- The partner API --------------------------------------------------------------------------------

def test_the_api_answers_bought_together_with_the_stores_own_links(planted, api):
    product_upsert(partner=api.partner, sku="B", name="Oolong", url="https://tea.example.com/oolong")
    body = api.get("/api/v1/products/A/related/").json()
    assert body == {"results": [{"sku": "B", "name": "Oolong", "url": "https://tea.example.com/oolong",
                                 "score": 34.17}]}
    assert api.get("/api/v1/products/B/related/").json() == {
        "results": [{"sku": "A", "name": "A", "url": "http://testserver/products/A/", "score": 34.17}]}
    assert api.get("/api/v1/products/C/related/").json() == {"results": []}


def test_the_api_for_a_member_leaves_out_what_they_bought_from_this_store(planted, api):
    place_order(api.partner, "c0-2", "c0", lines=[("X", 1, "5.00", "tea")])
    body = api.get("/api/v1/members/c0/recommendations/", {"limit": 2}).json()
    # c0 bought A, B, X, C and D: nothing goes with them that they did not buy; E sells least.
    assert body == {"results": [{"sku": "E", "name": "E", "url": "http://testserver/products/E/", "score": 0.003}]}
    newcomer = api.get("/api/v1/members/c39/recommendations/", {"limit": 2}).json()  # bought only E
    assert [item["sku"] for item in newcomer["results"]] == ["X", "C"]


@pytest.mark.parametrize("limit", ["0", "51", "ten", "-1", "1.5"])
def test_a_limit_out_of_bounds_is_refused_naming_it(planted, api, limit):
    for path in ("/api/v1/products/A/related/", "/api/v1/members/c0/recommendations/"):
        response = api.get(path, {"limit": limit})
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"limit": ["A whole number from 1 to 50."]}


def test_unknown_products_and_members_are_404_and_the_scope_is_members_read(planted, api, tea_shop):
    unknown = api.get("/api/v1/products/NOPE/related/")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_product"
    nobody = api.get("/api/v1/members/nobody/recommendations/")
    assert nobody.status_code == 404 and nobody.json()["error"]["fields"] == {
        "member": ["No member with external_id 'nobody'."]}
    writer = partner_client(tea_shop, scopes=["members:write"])
    for path in ("/api/v1/products/A/related/", "/api/v1/members/c0/recommendations/"):
        refused = writer.get(path)
        assert refused.status_code == 403 and "members:read" in refused.json()["error"]["message"]


def test_a_partner_sees_only_its_own_customers_and_their_orders_with_it(planted, api, coffee_api):
    assert coffee_api.get("/api/v1/members/c0/recommendations/").status_code == 404
    # One store with two partners: the member's order at the coffee bar stays the coffee bar's.
    same_store(api.partner, coffee_api.partner)
    ada = customer(api.partner, "ada", email="ada@example.com")
    customer(coffee_api.partner, "ada-at-the-bar", email="ada@example.com")
    place_order(coffee_api.partner, "bar-1", "ada-at-the-bar", lines=[("A", 1, "5.00", "tea")])
    seen_by_tea_shop = [item["sku"] for item in api.get("/api/v1/members/ada/recommendations/").json()["results"]]
    assert seen_by_tea_shop == ["X", "C", "D", "A", "B", "E"]  # what sells most, A included
    seen_by_bar = [item["sku"] for item in coffee_api.get("/api/v1/members/ada-at-the-bar/recommendations/")
                   .json()["results"]]
    assert seen_by_bar[0] == "B" and "A" not in seen_by_bar
    assert skus(recommendations_for_member(member=ada))[0] == "B"  # the member's own view: everything


def test_the_schema_describes_both_endpoints_with_their_bounded_limit(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/products/{sku}/related/", "/api/v1/members/{external_id}/recommendations/"):
        operation = schema["paths"][path]["get"]
        limit = next(p for p in operation["parameters"] if p["name"] == "limit")
        assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 50}
        assert set(operation["responses"]) == {"200", "400", "401", "403", "404"}


# --- The portal -------------------------------------------------------------------------------------

def test_the_product_page_shows_what_is_bought_together(planted, client):
    page = client.get(reverse("community:product", args=["A"])).content.decode()
    strip = page[page.index('data-testid="bought-together"'):]
    assert "Bought together" in strip and '<a href="/products/B/">B</a>' in strip
    assert 'data-testid="bought-together"' not in client.get(reverse("community:product", args=["C"])).content.decode()


def test_the_dashboard_has_a_for_you_card(planted, client, tea_shop):
    alice = make_portal_member("alice@example.com", first_name="Alice")
    customer(tea_shop, "alice", email="alice@example.com")
    place_order(tea_shop, "alice-1", "alice", lines=[("A", 1, "5.00", "tea")])
    client.force_login(alice.user)
    page = client.get(reverse("dashboard")).content.decode()
    card = page[page.index('data-testid="for-you"'):]
    card = card[:card.index("</section>")]
    assert "For you" in card
    assert [part.split("/")[0] for part in card.split('<a href="/products/')[1:]] == ["B", "X", "C", "D"]


# --- Campaigns --------------------------------------------------------------------------------------

def test_a_campaign_message_names_each_members_first_suggestion(planted, tea_shop, mailoutbox, staff):
    ada = make_portal_member("ada@example.com", first_name="Ada", consents={"offers": "email"})
    customer(tea_shop, "ada", email="ada@example.com")
    place_order(tea_shop, "ada-1", "ada", lines=[("A", 1, "5.00", "tea")])
    make_portal_member("bo@example.com", first_name="Bo", consents={"offers": "email"})
    campaign = campaigns.campaign_save(campaign=Campaign(
        name="Picks", title="{first_name}, a pick for you", body="You might like {recommended}.",
        holdout_percent=0, starts_at=timezone.now() - timedelta(days=1),
        audience={"conditions": [{"field": "points_available", "op": "gte", "value": 0}]}), actor_user=None)
    campaign = campaigns.campaign_set_status(campaign=campaign, status=CampaignStatus.RUNNING, actor_user=None)
    campaigns.campaign_run(campaign=campaign)
    bodies = {mail.to[0]: mail.body for mail in mailoutbox}
    assert "You might like B." in bodies[ada.email]  # goes with the A she bought
    assert "You might like X." in bodies["bo@example.com"]  # no orders: what sells most
    campaigns.campaign_test_send(campaign=campaign, user=staff)
    assert "You might like Jasmine pearls." in mailoutbox[-1].body and mailoutbox[-1].to == [staff.email]
