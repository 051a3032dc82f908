import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, ExternalId, Member, Scope
from accounts.services import api_key_revoke, hash_api_key, member_upsert_for_partner
from tests.conftest import partner_client
from tests.factories import same_store

ADA = {
    "external_id": "cust-42", "email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace",
    "birthday": "1990-12-10", "phone": "+441234567890",
}


@pytest.mark.django_db
class TestAuthentication:
    def test_missing_key_is_401_with_a_challenge(self, tea_shop):
        response = APIClient().get("/api/v1/members/cust-42/")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Api-Key realm="api"'
        assert response.json()["error"]["code"] == "not_authenticated"

    def test_unknown_key_is_401(self, tea_shop):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Api-Key ll_not-a-real-key")
        response = client.get("/api/v1/members/cust-42/")
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "authentication_failed", "message": "Unknown API key.", "fields": {}
        }

    def test_revoked_key_is_401(self, api):
        api.post("/api/v1/members/", ADA, format="json")
        key = ApiKey.objects.get(key_hash=hash_api_key(api.raw_key))
        api_key_revoke(api_key=key)
        response = api.get("/api/v1/members/cust-42/")
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "This API key has been revoked."

    def test_a_paused_partners_keys_are_401(self, api, tea_shop):
        from accounts.services import partner_set_active

        assert api.get("/api/v1/members/nobody/").status_code == 404
        partner_set_active(partner=tea_shop, active=False)
        response = api.get("/api/v1/members/nobody/")
        assert (response.status_code, response.json()["error"]["message"]) == (401, "This partner is paused.")

    def test_key_without_the_scope_is_403_naming_the_scope(self, tea_shop):
        reader = partner_client(tea_shop, scopes=[Scope.MEMBERS_READ])
        response = reader.post("/api/v1/members/", ADA, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This API key lacks the 'members:write' scope."
        assert not Member.objects.exists()

    def test_malformed_authorization_header_is_401(self, tea_shop):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Api-Key two parts")
        assert client.get("/api/v1/members/cust-42/").status_code == 401

    def test_only_the_hash_of_a_key_is_stored(self, api):
        key = ApiKey.objects.get(partner=api.partner)
        assert key.key_hash == hash_api_key(api.raw_key)
        assert api.raw_key not in str(ApiKey.objects.values().get(pk=key.pk))
        assert api.raw_key.startswith(key.prefix)


@pytest.mark.django_db
class TestMemberUpsert:
    def test_create_returns_201_with_the_member(self, api):
        response = api.post("/api/v1/members/", ADA, format="json")
        assert response.status_code == 201
        body = response.json()
        assert body["external_id"] == "cust-42"
        assert body["email"] == "ada@example.com"
        assert body["birthday"] == "1990-12-10"
        assert body["points"] == {"available": 0, "pending": 0, "owed": 0, "expiring_soon": []}
        assert body["referral_code"].startswith("ADA-")
        assert body["has_portal_login"] is False

    def test_second_post_updates_only_the_fields_sent(self, api):
        api.post("/api/v1/members/", ADA, format="json")
        response = api.post("/api/v1/members/", {"external_id": "cust-42", "last_name": "King"}, format="json")
        assert response.status_code == 200
        assert response.json()["last_name"] == "King"
        assert response.json()["first_name"] == "Ada"
        assert Member.objects.count() == 1

    def test_get_returns_what_was_stored(self, api):
        api.post("/api/v1/members/", {**ADA, "consents": {"offers": "email"}}, format="json")
        body = api.get("/api/v1/members/cust-42/").json()
        assert body["first_name"] == "Ada"
        assert body["consents"] == {"offers": "email", "reminders": "email", "surveys": "none", "statements": "none"}

    def test_unknown_external_id_is_404(self, api):
        response = api.get("/api/v1/members/nobody/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_member"

    def test_a_partner_cannot_read_another_partners_member(self, api, coffee_api):
        api.post("/api/v1/members/", ADA, format="json")
        assert coffee_api.get("/api/v1/members/cust-42/").status_code == 404

    def test_member_signed_up_in_the_portal_is_linked_by_email(self, api, alice):
        response = api.post("/api/v1/members/", {"external_id": "c-7", "email": "ALICE@example.com"}, format="json")
        assert response.status_code == 200
        assert response.json()["has_portal_login"] is True
        assert Member.objects.count() == 1
        assert ExternalId.objects.get(external_id="c-7").member_id == alice.pk

    def test_two_partners_of_one_store_with_one_email_share_one_member(self, api, coffee_api):
        same_store(api.partner, coffee_api.partner)
        api.post("/api/v1/members/", ADA, format="json")
        payload = {"external_id": "CB-1", "email": "ada@example.com"}
        response = coffee_api.post("/api/v1/members/", payload, format="json")
        assert response.status_code == 200
        assert Member.objects.count() == 1
        assert response.json()["first_name"] == "Ada"

    def test_email_of_another_member_is_409_naming_email(self, api):
        api.post("/api/v1/members/", ADA, format="json")
        api.post("/api/v1/members/", {"external_id": "cust-43", "email": "grace@example.com"}, format="json")
        response = api.post("/api/v1/members/", {"external_id": "cust-43", "email": "ada@example.com"}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "email_taken"
        assert "email" in response.json()["error"]["fields"]
        assert Member.objects.get(email="grace@example.com")

    def test_same_member_under_a_second_external_id_is_409(self, api):
        api.post("/api/v1/members/", ADA, format="json")
        response = api.post("/api/v1/members/", {"external_id": "other", "email": "ada@example.com"}, format="json")
        assert response.status_code == 409
        assert ExternalId.objects.count() == 1


@pytest.mark.django_db
class TestBadInput:
    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"email": "ada@example.com"}, "external_id"),
            ({"external_id": "a/b"}, "external_id"),
            ({"external_id": "has space"}, "external_id"),
            ({"external_id": "x", "email": "not-an-email"}, "email"),
            ({"external_id": "x", "birthday": "10/12/1990"}, "birthday"),
            ({"external_id": "x", "birthday": 19901210}, "birthday"),
            ({"external_id": "x", "birthday": "2999-01-01"}, "birthday"),
            ({"external_id": "x", "phone": "12"}, "phone"),
            ({"external_id": "x", "consents": {"offers": "pigeon"}}, "consents.offers"),
            ({"external_id": "x", "consents": "yes"}, "consents.non_field_errors"),
            ({"external_id": ["x"]}, "external_id"),
            ({"external_id": "x", "first_name": "A" * 101}, "first_name"),
        ],
    )
    def test_invalid_fields_are_400_naming_the_field(self, api, payload, field):
        response = api.post("/api/v1/members/", payload, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert field in error["fields"], error
        assert not Member.objects.exists()

    def test_malformed_json_is_400(self, api):
        response = api.post("/api/v1/members/", '{"external_id": "x",', content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_json"

    def test_a_json_list_instead_of_an_object_is_400(self, api):
        response = api.post("/api/v1/members/", [1, 2], format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"

    def test_form_encoded_body_is_415(self, api):
        response = api.post("/api/v1/members/", "external_id=x", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "unsupported_media_type"

    def test_unknown_api_path_is_a_json_404(self, api):
        response = api.get("/api/v1/nothing-here/")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_wrong_method_is_405(self, api):
        response = api.delete("/api/v1/members/cust-42/")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_partner_created_member_keeps_its_id_through_upserts(tea_shop):
    first, created = member_upsert_for_partner(partner=tea_shop, external_id="k", data={"first_name": "Kay"})
    second, created_again = member_upsert_for_partner(partner=tea_shop, external_id="k", data={"first_name": "Kai"})
    assert (created, created_again) == (True, False)
    assert first.pk == second.pk
    assert Member.objects.get().first_name == "Kai"


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/members/" in doc["paths"]
    assert "/api/v1/members/{external_id}/" in doc["paths"]
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()


@pytest.mark.django_db
def test_bulk_created_members_get_distinct_referral_codes(tea_shop):
    from accounts.services import members_ensure_for_partner

    ids, created = members_ensure_for_partner(partner=tea_shop, rows={f"c{i}": {} for i in range(3000)})
    assert created == 3000
    codes = list(Member.objects.values_list("referral_code", flat=True))
    assert len(codes) == len(set(codes)) == 3000


def test_codes_are_drawn_evenly_from_the_alphabet():
    """Referral and coupon codes come from one read of the system's randomness, a byte per
    character: taken modulo 31 as they come, the first 8 characters would turn up 12.5% more often
    (256 = 8 x 31 + 8). 620,000 characters: each expected 20,000 times, 139 either way by chance."""
    from collections import Counter

    from accounts.services import CODE_ALPHABET, random_codes

    codes = random_codes(31 * 2000, 10)
    assert len(codes) == 62_000 and {len(code) for code in codes} == {10}
    counts = Counter("".join(codes))
    assert set(counts) == set(CODE_ALPHABET)
    assert all(19_000 < count < 21_000 for count in counts.values()), counts
    assert len(set(codes)) == len(codes)  # 31^10 possible: a repeat would mean the draws repeat
