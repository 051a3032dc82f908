"""GDPR requests for members who never logged in: through the partner API and as staff actions,
audited; the books stay balanced and the personal data is gone."""

import json

import pytest

from accounts.models import AuditLog, ExternalId, Member
from rewards.models import LedgerEntry
from rewards.selectors import ledger_discrepancies
from rewards.services import points_adjust
from tests.conftest import partner_client
from tests.factories import RuleFactory, customer, order_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tea_shop):
    RuleFactory(name="1 per EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com", first_name="Ada", last_name="Lovelace",
                    phone="+441234567890", birthday="1990-12-10")


def test_a_partner_exports_everything_about_its_customer_and_it_is_audited(api, ada):
    api.post("/api/v1/orders/", order_payload("1001", "cust-42"), format="json")
    response = api.get("/api/v1/members/cust-42/export/")
    assert response.status_code == 200
    data = response.json()
    assert data["profile"]["email"] == "ada@example.com"
    assert data["profile"]["birthday"] == "1990-12-10"
    assert data["partner_ids"] == [{"partner": "Tea Shop", "external_id": "cust-42"}]
    assert "1001" in json.dumps(data)
    audit = AuditLog.objects.get(action="member.exported")
    assert (audit.member_id, audit.actor_partner.name) == (ada.pk, "Tea Shop")


def test_another_partner_cannot_export_or_erase_the_member(ada, coffee_api):
    assert coffee_api.get("/api/v1/members/cust-42/export/").status_code == 404
    assert coffee_api.post("/api/v1/members/cust-42/erase/", {}, format="json").status_code == 404
    assert Member.objects.get(pk=ada.pk).email == "ada@example.com"


def test_a_partner_erases_its_customer_the_books_stay_and_the_id_is_gone(api, ada):
    api.post("/api/v1/orders/", order_payload("1001", "cust-42"), format="json")
    points_adjust(member=ada, points=40, reason="goodwill")
    entries = LedgerEntry.objects.filter(member=ada).count()
    response = api.post("/api/v1/members/cust-42/erase/", {"reason": "ticket 77"}, format="json")
    assert response.status_code == 200
    assert response.json()["erased"] is True
    ada.refresh_from_db()
    assert (ada.email, ada.first_name, ada.last_name, ada.phone, ada.birthday) == ("", "", "", "", None)
    assert ada.erased_at is not None
    assert not ExternalId.objects.filter(member=ada).exists()
    assert LedgerEntry.objects.filter(member=ada).count() == entries
    assert (ada.points_available + ada.points_pending) == 50
    assert list(ledger_discrepancies()) == []
    audit = AuditLog.objects.get(action="member.erased")
    assert (audit.actor_partner.name, audit.reason) == ("Tea Shop", "ticket 77")
    assert api.get("/api/v1/members/cust-42/").status_code == 404


def test_the_keys_scopes_decide(tea_shop, ada):
    from accounts.models import Scope

    reader = partner_client(tea_shop, scopes=[Scope.MEMBERS_READ])
    assert reader.get("/api/v1/members/cust-42/export/").status_code == 200
    assert reader.post("/api/v1/members/cust-42/erase/", {}, format="json").status_code == 403


def test_staff_export_and_erase_from_the_admin_with_an_audit_row(ada, admin_client):
    page = admin_client.get(f"/admin/accounts/member/{ada.pk}/change/")
    assert b"Export data (JSON)" in page.content and b"Erase personal data" in page.content
    download = admin_client.get(f"/admin/accounts/member/{ada.pk}/export/")
    assert download.status_code == 200
    assert json.loads(download.content)["profile"]["last_name"] == "Lovelace"
    assert AuditLog.objects.get(action="member.exported").actor_user.email == "admin@example.com"
    refused = admin_client.post(f"/admin/accounts/member/{ada.pk}/erase/", {"reason": ""})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    done = admin_client.post(f"/admin/accounts/member/{ada.pk}/erase/", {"reason": "email from the customer"})
    assert done.status_code == 302
    ada.refresh_from_db()
    assert ada.erased_at is not None and ada.email == ""
    assert AuditLog.objects.get(action="member.erased").reason == "email from the customer"
