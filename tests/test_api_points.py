"""The partner API of the points engine, through the real request cycle."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog, Scope
from rewards.models import Activity, LedgerEntry, Order, OrderLine
from rewards.services import points_adjust
from tests.conftest import partner_client
from tests.factories import RewardFactory, RuleFactory, customer, order_payload, set_program

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=14, expiry_policy="rolling", expiry_months=12, accepted_currencies="EUR,GBP")
    RuleFactory(name="1 per EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com")


def post(api, path, payload, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(path, payload, format="json", **headers)


class TestOrders:
    def test_an_order_answers_with_its_points_rules_and_pending_state(self, api, ada):
        response = post(api, "/api/v1/orders/", order_payload("1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),)))
        assert response.status_code == 201
        body = response.json()
        assert (body["order_id"], body["member"], body["status"], body["points"], body["pending"]) == (
            "1001", "cust-42", "accepted", 25, True)
        assert body["rules"] == [{"rule_id": body["rules"][0]["rule_id"], "name": "1 per EUR", "points": 25}]
        assert body["available_at"] is not None
        member = api.get("/api/v1/members/cust-42/").json()
        assert member["points"]["pending"] == 25

    def test_a_replay_with_the_same_key_returns_the_first_answer(self, api, ada):
        payload = order_payload("1001", "cust-42")
        first = post(api, "/api/v1/orders/", payload, key="k-1")
        again = post(api, "/api/v1/orders/", payload, key="k-1")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert Order.objects.count() == 1

    def test_a_retried_redemption_replays_the_coupon_even_when_the_points_are_gone(self, api, ada):
        from rewards.services import points_adjust
        from tests.factories import RewardFactory

        points_adjust(member=ada, points=600, reason="goodwill")
        reward = RewardFactory(name="5 EUR off", points_cost=500)
        body = {"member": "cust-42", "reward": reward.pk}
        first = post(api, "/api/v1/redemptions/", body, key="r-1")
        again = post(api, "/api/v1/redemptions/", body, key="r-1")  # 100 points left: a new one would be 409
        assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
        assert again.json() == first.json()
        plain = post(api, "/api/v1/redemptions/", body)
        assert plain.status_code == 409 and api.get("/api/v1/members/cust-42/").json()["points"]["available"] == 100

    def test_the_same_key_with_another_body_is_422(self, api, ada):
        post(api, "/api/v1/orders/", order_payload("1001", "cust-42"), key="k-1")
        response = post(api, "/api/v1/orders/", order_payload("1002", "cust-42"), key="k-1")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert Order.objects.count() == 1

    def test_an_order_sent_again_under_a_new_key_is_a_duplicate_and_that_answer_replays(self, api, ada):
        payload = order_payload("1001", "cust-42")
        post(api, "/api/v1/orders/", payload, key="k-1")
        again = post(api, "/api/v1/orders/", payload, key="k-2")
        replayed = post(api, "/api/v1/orders/", payload, key="k-2")
        assert (again.status_code, again.json()["status"], again.json()["points"]) == (200, "duplicate", 10)
        assert (replayed.status_code, replayed["Idempotent-Replayed"]) == (200, "true")
        assert replayed.json() == again.json()
        assert post(api, "/api/v1/orders/", order_payload("1002", "cust-42"), key="k-2").status_code == 422
        assert LedgerEntry.objects.filter(kind="earn").count() == 1

    def test_the_same_order_without_a_key_is_a_200_duplicate_and_counted_once(self, api, ada):
        payload = order_payload("1001", "cust-42")
        post(api, "/api/v1/orders/", payload)
        again = post(api, "/api/v1/orders/", payload)
        assert (again.status_code, again.json()["status"], again.json()["points"]) == (200, "duplicate", 10)
        assert LedgerEntry.objects.filter(kind="earn").count() == 1

    def test_the_same_order_id_with_other_content_is_409(self, api, ada):
        post(api, "/api/v1/orders/", order_payload("1001", "cust-42"))
        response = post(api, "/api/v1/orders/", order_payload("1001", "cust-42", lines=(("X", 9, "1.00", "x"),)))
        assert response.status_code == 409
        assert response.json()["error"]["fields"] == {
            "order_id": ["Already recorded with different content; send a refund to change it."]}

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"member": "nobody"}, "member"),
            ({"currency": "ZZZ"}, "currency"),
            ({"currency": "USD"}, "currency"),
            ({"total": "99.00"}, "total"),
            ({"total": "ten"}, "total"),
            ({"placed_at": "2026-05-01T10:00:00"}, "placed_at"),
            ({"placed_at": "yesterday"}, "placed_at"),
            ({"lines": []}, "lines"),
            ({"lines": [{"sku": "A", "quantity": -1, "unit_price": "1.00"}]}, "lines.0.quantity"),
            ({"lines": [{"sku": "A", "quantity": 1.5, "unit_price": "1.00"}]}, "lines.0.quantity"),
            ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]}, "lines.0.unit_price"),
            ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "1.001"}]}, "lines.0.unit_price"),
            ({"lines": [{"quantity": 1, "unit_price": "1.00"}]}, "lines.0.sku"),
            ({"order_id": ""}, "order_id"),
            ({"order_id": "a/b"}, "order_id"),
            ({"discount": "50.00"}, "discount"),
        ],
    )
    def test_bad_orders_are_400_naming_the_field_and_write_nothing(self, api, ada, change, field):
        payload = {**order_payload("1001", "cust-42"), **change}
        response = post(api, "/api/v1/orders/", payload)
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["fields"], response.json()
        assert not Order.objects.exists()
        assert not Activity.objects.filter(type="order").exists()

    def test_malformed_json_is_400_and_writes_nothing(self, api, ada):
        response = api.post("/api/v1/orders/", '{"order_id": "1001", "lines": [', content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_json"

    def test_a_key_without_activities_write_gets_403(self, tea_shop, ada):
        reader = partner_client(tea_shop, scopes=[Scope.MEMBERS_READ])
        assert post(reader, "/api/v1/orders/", order_payload("1001", "cust-42")).status_code == 403


class TestBatch:
    def test_each_order_is_reported_on_its_own_in_the_order_sent(self, api, ada):
        placed = timezone.now() - timedelta(minutes=5)
        orders = [
            order_payload("1", "cust-42", placed_at=placed),
            {**order_payload("2", "cust-42"), "lines": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]},
            order_payload("3", "stranger"),
            order_payload("1", "cust-42", placed_at=placed),
            "not an order",
            order_payload("4", "cust-42", lines=(("B", 1, "30.00", "b"),)),
        ]
        response = post(api, "/api/v1/orders/batch/", {"orders": orders})
        assert response.status_code == 200
        body = response.json()
        assert [r["status"] for r in body["results"]] == [
            "accepted", "rejected", "rejected", "duplicate", "rejected", "accepted"]
        assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 3)
        assert "lines.0.quantity" in body["results"][1]["error"]["fields"]
        assert body["results"][2]["error"]["fields"] == {"member": ["No member with external_id 'stranger'."]}
        assert body["results"][3]["points"] == 10
        assert set(Order.objects.values_list("order_id", flat=True)) == {"1", "4"}
        assert OrderLine.objects.count() == 2

    def test_more_than_a_thousand_orders_is_refused(self, api, ada):
        response = post(api, "/api/v1/orders/batch/", {"orders": [{}] * 1001})
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"orders": ["At most 1000."]}

    def test_a_batch_without_orders_is_refused(self, api, ada):
        assert post(api, "/api/v1/orders/batch/", {"orders": []}).status_code == 400
        assert post(api, "/api/v1/orders/batch/", [1, 2]).status_code == 400


class TestRefunds:
    def test_partial_refund_by_lines_reverses_those_points(self, api, ada):
        post(api, "/api/v1/orders/", order_payload("1001", "cust-42", lines=(("TEA-1", 4, "10.00", "tea"),)))
        one_tea = {"refund_id": "r-1", "lines": [{"sku": "TEA-1", "quantity": 1}]}
        response = post(api, "/api/v1/orders/1001/refunds/", one_tea)
        assert response.status_code == 201
        assert response.json() == {
            "refund_id": "r-1", "order_id": "1001", "status": "accepted", "amount": "10.00", "currency": "EUR",
            "points_reversed": 10, "order_points": 30, "order_status": "partially_refunded",
        }
        again = post(api, "/api/v1/orders/1001/refunds/", one_tea)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        assert api.get("/api/v1/members/cust-42/").json()["points"]["pending"] == 30

    def test_refund_of_an_unknown_order_is_404(self, api, ada):
        response = post(api, "/api/v1/orders/nope/refunds/", {"refund_id": "r-1"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_order"

    def test_refunding_more_than_is_left_is_400_naming_the_field(self, api, ada):
        post(api, "/api/v1/orders/", order_payload("1001", "cust-42"))
        response = post(api, "/api/v1/orders/1001/refunds/", {"refund_id": "r-1", "amount": "10.01"})
        assert response.status_code == 400
        assert "amount" in response.json()["error"]["fields"]
        both = post(api, "/api/v1/orders/1001/refunds/",
                    {"refund_id": "r-1", "amount": "1.00", "lines": [{"sku": "TEA-1", "quantity": 1}]})
        assert both.status_code == 400
        assert "amount" in both.json()["error"]["fields"]


class TestEvents:
    def test_a_custom_event_earns_through_its_rule_once(self, api, ada):
        RuleFactory(name="App bonus", kind="fixed", points_per_unit=None, points=200, activity_type="app_installed")
        event = {"event_id": "e-1", "type": "app_installed", "member": "cust-42",
                 "occurred_at": timezone.now().isoformat(), "properties": {"platform": "ios"}}
        first = post(api, "/api/v1/events/", event)
        assert (first.status_code, first.json()["points"], first.json()["status"]) == (201, 200, "accepted")
        again = post(api, "/api/v1/events/", event)
        assert (again.status_code, again.json()["status"], again.json()["points"]) == (200, "duplicate", 200)
        assert api.get("/api/v1/members/cust-42/").json()["points"]["available"] == 200

    @pytest.mark.parametrize(
        ("change", "field"),
        [({"type": "order"}, "type"), ({"type": "App Installed"}, "type"), ({"member": "nobody"}, "member"),
         ({"properties": [1]}, "properties"), ({"occurred_at": None}, "occurred_at")],
    )
    def test_bad_events_are_400_naming_the_field(self, api, ada, change, field):
        event = {"event_id": "e-1", "type": "app_installed", "member": "cust-42",
                 "occurred_at": timezone.now().isoformat(), **change}
        response = post(api, "/api/v1/events/", event)
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]


class TestAdjustments:
    def test_a_goodwill_credit_is_applied_and_audited_as_the_partner(self, tea_shop, api, ada):
        response = post(api, "/api/v1/members/cust-42/adjustments/", {"points": 40, "reason": "late parcel"})
        assert response.status_code == 201
        assert response.json()["balance"] == {"available": 40, "pending": 0, "owed": 0}
        log = AuditLog.objects.get(action="points.adjusted")
        assert (log.actor_partner, log.reason) == (tea_shop, "late parcel")

    def test_a_debit_larger_than_the_balance_is_409(self, api, ada):
        response = post(api, "/api/v1/members/cust-42/adjustments/", {"points": -40, "reason": "duplicate credit"})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "insufficient_points"

    @pytest.mark.parametrize("payload", [{"points": 10}, {"points": 10, "reason": ""}, {"points": "10", "reason": "x"},
                                         {"points": 0, "reason": "x"}])
    def test_a_reason_and_whole_points_are_required(self, api, ada, payload):
        response = post(api, "/api/v1/members/cust-42/adjustments/", payload)
        assert response.status_code == 400
        assert set(response.json()["error"]["fields"]) <= {"points", "reason"}

    def test_adjusting_needs_the_points_adjust_scope(self, tea_shop, ada):
        writer = partner_client(tea_shop, scopes=[Scope.ACTIVITIES_WRITE, Scope.MEMBERS_WRITE])
        response = post(writer, "/api/v1/members/cust-42/adjustments/", {"points": 10, "reason": "x"})
        assert response.status_code == 403
        assert "points:adjust" in response.json()["error"]["message"]


class TestLedgerAndRewards:
    def test_the_ledger_is_paginated_newest_first_and_filterable(self, api, ada):
        for i in range(3):
            post(api, "/api/v1/orders/", order_payload(f"o{i}", "cust-42"))
        points_adjust(member=ada, points=5, reason="goodwill")
        page = api.get("/api/v1/members/cust-42/ledger/", {"page_size": 2}).json()
        assert page["count"] == 4
        assert [e["kind"] for e in page["results"]] == ["adjust", "earn"]
        assert page["next"] is not None
        earns = api.get("/api/v1/members/cust-42/ledger/", {"kind": "earn"}).json()
        assert earns["count"] == 3 and all(e["pending_delta"] == 10 for e in earns["results"])
        assert api.get("/api/v1/members/cust-42/ledger/", {"kind": "bogus"}).status_code == 400

    def test_ledger_queries_stay_constant_as_entries_grow(self, api, ada, django_assert_max_num_queries):
        points_adjust(member=ada, points=5, reason="one")
        with django_assert_max_num_queries(6):
            api.get("/api/v1/members/cust-42/ledger/")
        for i in range(60):
            points_adjust(member=ada, points=1, reason=f"r{i}")
        with django_assert_max_num_queries(6):
            assert len(api.get("/api/v1/members/cust-42/ledger/").json()["results"]) == 50

    def test_rewards_for_a_member_lists_only_what_they_can_redeem_now(self, api, ada):
        cheap, dear = RewardFactory(name="Cheap", points_cost=50), RewardFactory(name="Dear", points_cost=5000)
        points_adjust(member=ada, points=100, reason="x")
        everything = api.get("/api/v1/rewards/").json()["results"]
        assert [r["name"] for r in everything] == ["Cheap", "Dear"]
        assert everything[0]["value"] == "5.00" and everything[0]["points_cost"] == 50
        mine = api.get("/api/v1/rewards/", {"member": "cust-42"}).json()["results"]
        assert [r["id"] for r in mine] == [cheap.pk]
        assert dear.pk not in [r["id"] for r in mine]

    def test_redeem_then_check_and_use_the_coupon_once(self, api, ada):
        reward = RewardFactory(points_cost=50)
        points_adjust(member=ada, points=120, reason="x")
        response = post(api, "/api/v1/redemptions/", {"member": "cust-42", "reward": reward.pk})
        assert response.status_code == 201
        body = response.json()
        assert body["balance"]["available"] == 70
        code = body["coupon"]["code"]
        check = api.get(f"/api/v1/coupons/{code}/").json()
        assert (check["status"], check["member"], check["reward"]["id"]) == ("active", "cust-42", reward.pk)
        used = post(api, f"/api/v1/coupons/{code}/use/", {"order_id": "2001"})
        assert (used.status_code, used.json()["status"], used.json()["used_order_id"]) == (200, "used", "2001")
        again = post(api, f"/api/v1/coupons/{code}/use/", {})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "coupon_used")
        assert api.get("/api/v1/coupons/NOPE-NOPE-NOPE/").status_code == 404

    def test_redeeming_without_enough_points_is_409_and_unknown_reward_is_400(self, api, ada):
        reward = RewardFactory(points_cost=50)
        response = post(api, "/api/v1/redemptions/", {"member": "cust-42", "reward": reward.pk})
        assert (response.status_code, response.json()["error"]["code"]) == (409, "insufficient_points")
        unknown = post(api, "/api/v1/redemptions/", {"member": "cust-42", "reward": 999999})
        assert (unknown.status_code, list(unknown.json()["error"]["fields"])) == (400, ["reward"])
        stranger = post(api, "/api/v1/redemptions/", {"member": "nobody", "reward": reward.pk})
        assert (stranger.status_code, list(stranger.json()["error"]["fields"])) == (400, ["member"])

    def test_member_shows_points_expiring_soon(self, api, ada):
        set_program(pending_days=0, expiry_months=1, expiring_soon_days=30)
        post(api, "/api/v1/orders/", order_payload("1", "cust-42", placed_at=timezone.now() - timedelta(days=10)))
        points = api.get("/api/v1/members/cust-42/").json()["points"]
        assert points["available"] == 10
        assert [b["points"] for b in points["expiring_soon"]] == [10]
