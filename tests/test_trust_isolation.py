"""Partners see their own customers: the Tea Shop's member is invisible to the Coffee Bar, unless
staff marked both as one store. Personas: ``api`` is the Tea Shop's key, ``coffee_api`` the Coffee Bar's."""

import json

import pytest

from accounts.models import AuditLog, ExternalId, Member, Partner
from accounts.services import members_ensure_for_partner
from rewards.models import Coupon
from rewards.services import points_adjust
from tests.factories import RewardFactory, RuleFactory, customer, order_payload, same_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tea_shop):
    RuleFactory(name="1 per EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com", first_name="Ada", last_name="Lovelace",
                    phone="+441234567890")


def post(client, path, payload):
    return client.post(path, payload, format="json")


def test_another_stores_customer_email_is_409_and_reveals_nothing(ada, coffee_api):
    response = post(coffee_api, "/api/v1/members/", {"external_id": "b-evil", "email": "ADA@example.com"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("email_taken", ["email"])
    text = json.dumps(response.json())
    for secret in ("Ada", "Lovelace", "+441234567890", "cust-42", ada.referral_code):
        assert secret not in text
    assert not ExternalId.objects.filter(partner=coffee_api.partner).exists()
    assert coffee_api.get("/api/v1/members/b-evil/").status_code == 404
    # Nothing was renamed either.
    ada.refresh_from_db()
    assert ada.first_name == "Ada"


def test_an_own_customer_cannot_be_moved_onto_another_stores_email(ada, coffee_api):
    post(coffee_api, "/api/v1/members/", {"external_id": "cb-1", "email": "grace@example.com"})
    response = post(coffee_api, "/api/v1/members/", {"external_id": "cb-1", "email": "ada@example.com"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "email_taken")


def test_a_portal_member_is_still_linked_by_email(alice, coffee_api):
    response = post(coffee_api, "/api/v1/members/", {"external_id": "cb-7", "email": "alice@example.com"})
    assert response.status_code == 200
    assert ExternalId.objects.get(partner=coffee_api.partner).member_id == alice.pk


def test_staff_marking_two_partners_one_store_lets_them_share_and_is_audited(ada, coffee_api, admin_client):
    tea, coffee = Partner.objects.get(name="Tea Shop"), coffee_api.partner
    response = admin_client.post(f"/admin/accounts/partner/{coffee.pk}/change/", {
        "name": coffee.name, "is_active": "on", "shares_members": [str(tea.pk)],
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "1",
    })
    assert response.status_code == 302, response.content[:2000]
    assert set(tea.shares_members.all()) == {coffee}  # both ways
    audit = AuditLog.objects.get(action="partner.sharing_changed")
    assert (audit.before, audit.after) == ({"shares_members": []}, {"shares_members": ["Tea Shop"]})
    shared = post(coffee_api, "/api/v1/members/", {"external_id": "cb-1", "email": "ada@example.com"})
    assert (shared.status_code, shared.json()["first_name"]) == (200, "Ada")


def test_a_coupon_of_another_stores_customer_is_unknown_and_stays_unused(ada, api, coffee_api):
    points_adjust(member=ada, points=600, reason="goodwill")
    reward = RewardFactory(points_cost=500)
    code = post(api, "/api/v1/redemptions/", {"member": "cust-42", "reward": reward.pk}).json()["coupon"]["code"]
    assert coffee_api.get(f"/api/v1/coupons/{code}/").status_code == 404
    used = post(coffee_api, f"/api/v1/coupons/{code}/use/", {"order_id": "x"})
    assert (used.status_code, used.json()["error"]["code"]) == (404, "unknown_coupon")
    assert Coupon.objects.get(code=code).used_at is None
    assert api.get(f"/api/v1/coupons/{code}/").json()["status"] == "active"


def test_another_stores_orders_cannot_be_refunded(ada, api, coffee_api):
    assert post(api, "/api/v1/orders/", order_payload("1001", "cust-42")).status_code == 201
    response = post(coffee_api, "/api/v1/orders/1001/refunds/", {"refund_id": "r-1"})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_order")
    assert post(api, "/api/v1/orders/1001/refunds/", {"refund_id": "r-1"}).status_code == 201


def test_a_shared_member_shows_another_stores_entries_as_points_and_kind_only(ada, api, coffee_api, tea_shop):
    same_store(tea_shop, coffee_api.partner)
    post(coffee_api, "/api/v1/members/", {"external_id": "cb-1", "email": "ada@example.com"})
    post(api, "/api/v1/orders/", order_payload("T-1", "cust-42", lines=(("TEA-1", 3, "10.00", "tea"),)))
    post(coffee_api, "/api/v1/orders/", order_payload("C-1", "cb-1", lines=(("COF-1", 1, "7.00", "coffee"),)))
    entries = coffee_api.get("/api/v1/members/cb-1/ledger/").json()["results"]
    by_points = {e["points"]: e for e in entries}
    assert by_points[7]["own"] is True and "C-1" in by_points[7]["description"]
    assert by_points[30]["own"] is False
    assert (by_points[30]["kind"], by_points[30]["description"]) == ("earn", "Activity with another store")
    assert "T-1" not in json.dumps(entries)
    mine = api.get("/api/v1/members/cust-42/ledger/").json()["results"]
    assert {e["points"]: e["own"] for e in mine} == {30: True, 7: False}


def test_an_import_does_not_link_another_stores_customer_by_email(ada, coffee_bar):
    ids, created = members_ensure_for_partner(partner=coffee_bar, rows={"cb-9": {"email": "ada@example.com"}})
    assert created == 1
    assert ids["cb-9"] != ada.pk
    assert Member.objects.get(pk=ids["cb-9"]).email == ""
    assert Member.objects.get(pk=ada.pk).email == "ada@example.com"
