"""Whatever the bytes, a partner gets a 4xx in the error shape naming the field, never a 500; every
write honours Idempotency-Key; the portal refuses odd input next to the field."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import ExternalId, Member
from community.models import Product
from tests.factories import SurveyFactory, SurveyQuestionFactory, customer, make_tiers

pytestmark = pytest.mark.django_db


def send(api, method, path, body: bytes, **headers):
    return getattr(api, method)(path, data=body, content_type="application/json", **headers)


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return response.json()["error"]


@pytest.mark.parametrize("path", [
    "/api/v1/members/a%00b/", "/api/v1/members/a%00b/ledger/", "/api/v1/coupons/X%00Y/",
    "/api/v1/products/TEA%001/reviews/", "/api/v1/rewards/?member=a%00b", "/api/v1/members/x/ledger/?kind=e%00",
])
def test_nul_in_a_path_or_query_is_400_in_the_error_shape(api, path):
    response = api.get(path)
    assert response.status_code == 400
    assert error_of(response)["message"] == "NUL characters are not allowed in a request."


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/orders/", {"order_id": "nul\u0000x", "member": "m", "placed_at": "2026-05-01T10:00:00Z",
                         "currency": "EUR", "total": "1.00", "lines": []}, "order_id"),
    ("/api/v1/events/", {"event_id": "e-1", "type": "app_installed", "member": "m",
                         "properties": {"note": "a\u0000b"}}, "properties.note"),
    ("/api/v1/events/", {"event_id": "e-1", "type": "app_installed", "member": "m",
                         "properties": {"k\u0000": 1}}, "properties"),
    ("/api/v1/members/", {"external_id": "c-1", "first_name": "A\u0000"}, "first_name"),
    ("/api/v1/orders/batch/", {"orders": [{"order_id": "1"}, {"lines": [{"sku": "\u0000"}]}]}, "orders.1.lines.0.sku"),
])
def test_nul_in_json_is_400_naming_the_field(api, path, body, field):
    response = send(api, "post", path, json.dumps(body).encode())
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]
    assert not Member.objects.exists()


def test_json_nested_5000_deep_is_400_not_a_crash(api):
    body = b'{"orders": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = send(api, "post", "/api/v1/orders/batch/", body)
    assert (response.status_code, error_of(response)["code"]) == (400, "too_deep")


def test_json_33_deep_is_refused_and_32_deep_is_parsed(api):
    def nested(depth):  # an object, then lists: `depth` levels in all
        return ('{"properties": {"x": ' + "[" * (depth - 2) + "]" * (depth - 2) + "}}").encode()

    deep = send(api, "post", "/api/v1/events/", nested(33))
    assert (deep.status_code, error_of(deep)["code"]) == (400, "too_deep")
    ok = send(api, "post", "/api/v1/events/", nested(32))
    assert ok.status_code == 400 and error_of(ok)["code"] == "invalid"  # parsed; then fields are missing
    assert "event_id" in error_of(ok)["fields"]


def test_brackets_inside_strings_do_not_count_as_depth(api):
    body = json.dumps({"external_id": "c-1", "first_name": "[" * 40}).encode()
    response = send(api, "post", "/api/v1/members/", body)
    assert response.status_code == 201
    assert response.json()["first_name"] == "[" * 40


def test_invalid_utf8_is_400_malformed_json(api):
    response = send(api, "post", "/api/v1/members/", b'{"external_id": "\xff\xfe"}')
    assert (response.status_code, error_of(response)["code"]) == (400, "malformed_json")


def test_nan_is_not_json(api):
    response = send(api, "post", "/api/v1/members/", b'{"external_id": NaN}')
    assert (response.status_code, error_of(response)["code"]) == (400, "malformed_json")


def test_a_body_over_the_limit_is_413_in_json(api):
    body = json.dumps({"orders": [], "pad": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}).encode()
    response = send(api, "post", "/api/v1/orders/batch/", body)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert list(error_of(response)["fields"]) == ["body"]


def test_a_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page(api):
    response = Client(enforce_csrf_checks=True).post("/api/v1/nothing-here/", data=b"{}",
                                                     content_type="application/json")
    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")


def test_the_api_answers_json_to_calls_that_accept_it_and_406_to_those_that_do_not(api):
    for accept in ("", "*/*", "application/json", "application/json; q=0.9, text/html; q=0.8"):
        response = api.get("/api/v1/rewards/", **({"HTTP_ACCEPT": accept} if accept else {}))
        assert (response.status_code, response["Content-Type"]) == (200, "application/json"), accept
    refused = api.get("/api/v1/rewards/", HTTP_ACCEPT="application/xml")
    assert refused.status_code == 406 and error_of(refused)["code"] == "not_acceptable"
    assert api.get("/api/v1/rewards/?format=xml").status_code == 404  # no such format: DRF's own answer


def test_pages_carry_the_content_security_policy_and_the_partner_apis_json_does_not(api, alice_client):
    # A policy tells a browser what a page may load and run: the API's answers are no page.
    for response in (api.get("/api/v1/rewards/"), send(api, "post", "/api/v1/orders/", b"{}")):
        assert response["Content-Type"].startswith("application/json")
        assert "Content-Security-Policy" not in response
        assert response["X-Content-Type-Options"] == "nosniff"  # the rest of the security headers stay
    for response in (alice_client.get("/dashboard/"), Client().get("/api/docs/"), Client().get("/healthz")):
        assert "script-src 'self'" in response["Content-Security-Policy"], response.request["PATH_INFO"]


@pytest.mark.parametrize("external_id", ["ada\u200b", "\u202eada", "a\u2066b", "ada\u00ad"])
def test_invisible_characters_in_an_external_id_are_refused(api, external_id):
    response = api.post("/api/v1/members/", {"external_id": external_id}, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["external_id"]
    assert not ExternalId.objects.exists()


def test_invisible_characters_in_an_order_id_are_refused(api, tea_shop):
    customer(tea_shop, "cust-42")
    body = {"order_id": "10\u200b01", "member": "cust-42", "placed_at": "2026-05-01T10:00:00Z",
            "currency": "EUR", "total": "10.00", "lines": [{"sku": "T", "quantity": 1, "unit_price": "10.00"}]}
    response = api.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 400
    assert "order_id" in error_of(response)["fields"]


class TestIdempotencyOnEveryWrite:
    def test_a_member_upsert_replays_and_refuses_another_body(self, api):
        first = api.post("/api/v1/members/", {"external_id": "c-1", "first_name": "Ada"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="k-1")
        again = api.post("/api/v1/members/", {"external_id": "c-1", "first_name": "Ada"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="k-1")
        assert (first.status_code, again.status_code) == (201, 201)
        assert again["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        other = api.post("/api/v1/members/", {"external_id": "c-1", "first_name": "Eve"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="k-1")
        assert (other.status_code, error_of(other)["code"]) == (422, "idempotency_key_reused")
        assert Member.objects.get().first_name == "Ada"

    def test_a_product_upsert_replays_and_refuses_another_body(self, api):
        body = {"sku": "TEA-1", "name": "Green tea"}
        first = api.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
        again = api.post("/api/v1/products/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
        assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
        other = api.post("/api/v1/products/", {**body, "name": "Black tea"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="p-1")
        assert other.status_code == 422
        assert Product.objects.get(sku="TEA-1").name == "Green tea"

    def test_the_schema_lists_the_header_on_every_write(self, client):
        schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
        writes = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()
                  if method in ("post", "put", "patch", "delete")]
        assert len(writes) == 18
        missing = [f"{method.upper()} {path}" for path, method, op in writes
                   if "Idempotency-Key" not in [p["name"] for p in op.get("parameters", [])]]
        assert missing == []


def _survey(**fields):
    from django.utils import timezone


    survey = SurveyFactory(name="How was it?", opens_at=timezone.now() - timedelta(days=1), **fields)
    question = SurveyQuestionFactory(survey=survey, position=1, kind="nps",
                                             text="Would you recommend us?")
    return survey, question


def test_a_survey_round_that_is_not_a_number_is_refused_next_to_the_form(alice_client, alice):
    survey, question = _survey()
    response = alice_client.post(f"/surveys/{survey.pk}/", {"round": "abc", f"q{question.pk}": "9", "finish": "1"})
    assert response.status_code == 200
    assert b"This survey form is out of date" in response.content


def test_a_survey_for_other_members_says_so_instead_of_showing_its_form(alice_client, alice):
    _, gold = make_tiers(("Bronze", 0), ("Gold", 1000))
    survey, _ = _survey(audience="tier", tier=gold)
    response = alice_client.get(f"/surveys/{survey.pk}/")
    assert response.status_code == 403
    assert b"This survey is for other members" in response.content
    assert b"Would you recommend us?" not in response.content


def test_nul_in_a_portal_form_is_400_not_a_crash(alice_client):
    response = alice_client.post("/me/profile/", {"first_name": "A\x00", "last_name": "B"})
    assert response.status_code == 400


def test_a_short_secret_key_is_refused_in_production(tmp_path):
    env = {"DEBUG": "0", "SECRET_KEY": "short-but-not-empty", "ALLOWED_HOSTS": "x.example.com", "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True,
                            cwd=settings.BASE_DIR, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_an_impossible_time_is_400_naming_the_field(api, tea_shop):
    customer(tea_shop, "cust-42")
    response = api.post("/api/v1/events/", {"event_id": "e-1", "type": "app_installed", "member": "cust-42",
                                            "occurred_at": "2024-01-01T12:99:00Z"}, format="json")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["occurred_at"]


def test_refused_bodies_are_not_quoted_into_the_log(api, caplog):
    import logging

    secret = "card-4111111111111111"
    bodies = [b'{"external_id": "' + secret.encode() + b'", ', b'{"external_id": "' + secret.encode() + b'\\u0000"}',
              b'{"x": "' + secret.encode() + b'", "y": ' + b"[" * 100 + b"]" * 100 + b"}"]
    with caplog.at_level(logging.DEBUG):
        for body in bodies:
            assert send(api, "post", "/api/v1/members/", body).status_code == 400
    assert secret not in caplog.text
