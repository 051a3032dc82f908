"""Real concurrent connections on PostgreSQL: nothing lost, nothing doubled, nothing below zero."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Member
from rewards.models import Coupon, LedgerEntry, Order, Redemption
from rewards.selectors import ledger_discrepancies
from rewards.services import pending_release_due, points_adjust
from tests.concurrency import run_concurrently
from tests.factories import RewardFactory, RuleFactory, customer, order_payload, refund, set_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ada(tea_shop):
    set_program(pending_days=14, expiry_policy="never", accepted_currencies="EUR")
    RuleFactory(name="1 per EUR")
    return customer(tea_shop, "cust-42", email="ada@example.com")


def client_for(api) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api.raw_key}")
    return client


def test_twenty_redemptions_at_once_get_exactly_what_the_balance_pays_for(api, ada):
    reward = RewardFactory(points_cost=100)
    points_adjust(member=ada, points=500, reason="enough for five")
    responses = run_concurrently(
        lambda i: client_for(api).post("/api/v1/redemptions/", {"member": "cust-42", "reward": reward.pk},
                                       format="json"),
        20,
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 5 + [409] * 15
    assert all(r.json()["error"]["code"] == "insufficient_points" for r in responses if r.status_code == 409)
    assert Coupon.objects.count() == 5 and Redemption.objects.count() == 5
    ada.refresh_from_db()
    assert ada.points_available == 0
    assert list(ledger_discrepancies()) == []


def test_twenty_posts_of_one_order_with_one_key_record_one_order_and_one_award(api, ada):
    payload = order_payload("1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),))
    responses = run_concurrently(
        lambda i: client_for(api).post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="order-1001"),
        20,
    )
    assert [r.status_code for r in responses] == [201] * 20
    assert {r.json()["points"] for r in responses} == {25}
    assert sum(1 for r in responses if r.get("Idempotent-Replayed") == "true") == 19
    assert Order.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="earn").count() == 1
    ada.refresh_from_db()
    assert ada.points_pending == 25


@pytest.mark.parametrize("pending_days", [14, 0], ids=["one statement", "general path"])
def test_twenty_different_orders_sent_at_once_with_one_key_record_only_one(api, ada, pending_days):
    """The key's record is written with the order (in its one statement when the points wait, at the
    end of its transaction when they are available at once): the request that takes the key keeps
    its order, the others are refused and leave nothing behind."""
    from accounts.models import IdempotencyRecord

    set_program(pending_days=pending_days, expiry_policy="never", accepted_currencies="EUR")
    responses = run_concurrently(
        lambda i: client_for(api).post("/api/v1/orders/", order_payload(f"o-{i}", "cust-42"), format="json",
                                       HTTP_IDEMPOTENCY_KEY="one-key"),
        20,
    )
    assert sorted(r.status_code for r in responses) == [201] + [422] * 19
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 422} == {"idempotency_key_reused"}
    winner = next(r.json()["order_id"] for r in responses if r.status_code == 201)
    assert list(Order.objects.values_list("order_id", flat=True)) == [winner]
    assert IdempotencyRecord.objects.get().response_body["order_id"] == winner
    ada.refresh_from_db()
    assert ada.points_pending + ada.points_available == 10
    assert list(ledger_discrepancies()) == []


def test_a_key_costs_a_single_order_no_statement_of_its_own(api, ada):
    """On PostgreSQL a new order with pending points is one statement, and its key's record rides in it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api.post("/api/v1/orders/", order_payload("p-0", "cust-42"), format="json")  # the process's caches filled
    with CaptureQueriesContext(connection) as plain:
        assert api.post("/api/v1/orders/", order_payload("p-1", "cust-42"), format="json").status_code == 201
    payload = order_payload("p-2", "cust-42")
    with CaptureQueriesContext(connection) as keyed:
        first = api.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == 201
    assert len(keyed.captured_queries) == len(plain.captured_queries) == 1
    again = api.post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert (again.status_code, again["Idempotent-Replayed"], again.json()) == (201, "true", first.json())


def test_twenty_posts_of_one_order_without_a_key_still_count_it_once(api, ada):
    payload = order_payload("1001", "cust-42")
    responses = run_concurrently(lambda i: client_for(api).post("/api/v1/orders/", payload, format="json"), 20)
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert LedgerEntry.objects.filter(kind="earn").count() == 1


def test_one_call_after_another_on_one_connection_each_gets_its_answer(api, ada):
    """Outside any test transaction, as a web process runs: new orders, a repeat, an unknown
    customer and a conflicting copy, one after another on the same database connection."""
    sent = [order_payload(f"s{i}", "cust-42") for i in range(13)]
    statuses = [api.post("/api/v1/orders/", payload, format="json").status_code for payload in sent[:12]]
    renamed = {**sent[4], "lines": [{**sent[4]["lines"][0], "name": "Another name"}]}
    for payload in (sent[3], order_payload("s99", "nobody"), renamed, sent[12]):
        statuses.append(api.post("/api/v1/orders/", payload, format="json").status_code)
    assert statuses == [201] * 12 + [200, 400, 409, 201]
    ada.refresh_from_db()
    assert ada.points_pending == 13 * 10
    assert list(ledger_discrepancies()) == []


def test_one_coupon_used_at_two_checkouts_at_once_succeeds_once(api, ada):
    from rewards.services import reward_redeem

    points_adjust(member=ada, points=100, reason="x")
    code = reward_redeem(member=ada, reward=RewardFactory(points_cost=100)).coupon.code
    responses = run_concurrently(
        lambda i: client_for(api).post(f"/api/v1/coupons/{code}/use/", {"order_id": f"o-{i}"}, format="json"), 12
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 11
    assert Coupon.objects.get().used_order_id.startswith("o-")


def test_overlapping_batches_for_many_members_neither_deadlock_nor_double_count(api, tea_shop, ada):
    for i in range(30):
        customer(tea_shop, f"m{i}", email=f"m{i}@example.com")
    placed = timezone.now() - timedelta(minutes=5)
    orders = [order_payload(f"o{i}", f"m{i % 30}", placed_at=placed) for i in range(120)]

    def send(i):
        # Each client sends the same orders in its own order: the worst case for lock ordering.
        mine = orders[i * 17 % 120:] + orders[: i * 17 % 120]
        return client_for(api).post("/api/v1/orders/batch/", {"orders": mine}, format="json")

    responses = run_concurrently(send, 6)
    assert [r.status_code for r in responses] == [200] * 6
    assert sum(r.json()["accepted"] for r in responses) == 120
    assert sum(r.json()["duplicates"] for r in responses) == 600
    assert Order.objects.count() == 120
    assert sum(Member.objects.values_list("points_pending", flat=True)) == 1200
    assert list(ledger_discrepancies()) == []


def test_refunds_racing_the_release_task_keep_the_books_balanced(tea_shop, ada):
    for i in range(20):
        from tests.factories import place_order

        place_order(tea_shop, f"o{i}", "cust-42", placed_at=timezone.now() - timedelta(days=14, minutes=-1))

    def act(i):
        if i % 2:
            return pending_release_due(now=timezone.now() + timedelta(minutes=5))
        return refund(tea_shop, f"o{i}", refund_id="r")

    results = run_concurrently(act, 20)
    assert not [r for r in results if isinstance(r, Exception)], results
    ada.refresh_from_db()
    assert (ada.points_available, ada.points_pending, ada.points_owed) == (100, 0, 0)
    assert list(ledger_discrepancies()) == []


def test_back_dated_events_sent_at_once_never_beat_the_monthly_cap(tea_shop, ada, api):
    from rewards.models import RuleKind

    RuleFactory(name="Install bonus", kind=RuleKind.FIXED, points_per_unit=None, points=150,
                activity_type="app_installed", cap_per_month=150)
    days = ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-01", "2026-11-02", "2026-11-01"]
    clients = [client_for(api) for _ in days]
    results = run_concurrently(lambda i: clients[i].post("/api/v1/events/", {
        "event_id": f"e-{i}", "type": "app_installed", "member": "cust-42",
        "occurred_at": f"{days[i]}T10:00:00Z"}, format="json"), len(days))
    assert sorted(r.status_code for r in results) == [201] * 6
    earned = {days[i]: 0 for i in range(len(days))}
    for i, response in enumerate(results):
        earned[days[i]] += response.json()["points"]
    assert earned["2026-10-31"] == 150  # October has its own cap
    assert earned["2026-11-01"] + earned["2026-11-02"] == 150
    ada.refresh_from_db()
    assert ada.points_available + ada.points_pending == 300
    assert list(ledger_discrepancies()) == []


def test_two_inserts_of_the_same_activities_in_opposite_orders_do_not_deadlock(ada):
    # What the batch endpoint does under the hood: each of two transactions inserts the same 3,000
    # activities, one front to back and one back to front. Each key is inserted once, and neither
    # transaction dies on a deadlock (rows are taken in key order whatever order they came in).
    from django.db import transaction

    from core import bulk
    from rewards.models import Activity
    from rewards.services.earning import ACTIVITY_FIELDS

    now = timezone.now()
    rows = [(ada.pk, None, "order", f"order:x:{i:05}", now, "{}", now) for i in range(3000)]

    def insert(i):
        with transaction.atomic():
            return bulk.insert_new(Activity, ACTIVITY_FIELDS, rows if i % 2 else rows[::-1], unique="source_key")

    results = run_concurrently(insert, 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(list(results[0]) + list(results[1])) == [row[3] for row in rows]
    assert Activity.objects.filter(source_key__startswith="order:x:").count() == 3000


def test_four_backfills_of_a_badge_at_once_award_and_pay_each_level_once(tea_shop, ada):
    # A badge saved twice in a row queues two backfills, and the nightly run may meet them: each
    # level is awarded once, its bonus paid once, a debt repaid once, the books balanced.
    from accounts.models import Notification
    from rewards.models import MemberBadge
    from rewards.services import activity_record
    from rewards.services.progress import badge_backfill
    from tests.factories import make_badge

    members = [ada] + [customer(tea_shop, f"cust-{n}", email=f"c{n}@example.com") for n in range(30)]
    for member in members:
        for number in range(2):
            activity_record(member=member, type="review_approved", source_key=f"review:{member.pk}:{number}",
                            description="Review approved")
    badge = make_badge("Reviewer", "activity_count", ("Bronze", 1, 50), ("Silver", 2, 70),
                       activity_type="review_approved")

    results = run_concurrently(lambda i: badge_backfill(badge_id=badge.pk), 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 2 * len(members)
    assert MemberBadge.objects.count() == 2 * len(members)
    assert Notification.objects.filter(kind="badge").count() == 2 * len(members)
    assert LedgerEntry.objects.filter(activity__type="badge_earned").count() == 2 * len(members)
    ada.refresh_from_db()
    assert ada.points_available == 120
    assert list(ledger_discrepancies()) == []


@pytest.mark.celery_worker
def test_a_progress_check_that_loses_a_deadlock_runs_again_and_awards_the_badge(tea_shop, ada, celery_worker):
    # A transaction elsewhere holds Bob, then wants Ada; the worker's progress check of both took
    # Ada (key order) and waits for Bob. PostgreSQL aborts the check (it has waited longest); the
    # check runs again a moment later, and both members get their badge and its bonus.
    import threading

    from django.db import connection, connections, transaction

    from loyalty_site.celery import tasks_inline
    from rewards.ledger import lock_members
    from rewards.models import MemberBadge
    from rewards.services import activity_record
    from rewards.tasks import evaluate_progress
    from tests.factories import make_badge

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser'), current_database()")
        superuser, database = cursor.fetchone()
    if superuser != "on":
        pytest.skip("setting deadlock_timeout needs a superuser")
    bob = customer(tea_shop, "cust-43", email="bob@example.com")
    with tasks_inline():  # their checks done here, before the badge exists: the worker gets only ours
        for member in (ada, bob):
            activity_record(member=member, type="review_approved", source_key=f"review:{member.pk}",
                            description="Review approved")
    make_badge("Reviewer", "activity_count", ("Bronze", 1, 50), activity_type="review_approved")
    first, second = sorted([ada.pk, bob.pk])
    holding = threading.Event()
    other: list = []

    def the_other_transaction():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL deadlock_timeout = '60s'")  # so the check is the one to go
                lock_members([second])
                holding.set()
                _wait_for_a_backend_waiting_on_a_lock()
                lock_members([first])
            other.append("committed")
        except Exception as exc:  # noqa: BLE001  the assertion below shows it
            other.append(exc)
        finally:
            connections.close_all()

    # PostgreSQL looks for a deadlock once, when a lock has been waited for deadlock_timeout: the
    # worker's (new) connections wait 3 s, time enough for the other transaction to close the
    # circle even on a busy machine.
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" SET deadlock_timeout = \'3s\'')
    try:
        thread = threading.Thread(target=the_other_transaction)
        thread.start()
        assert holding.wait(timeout=30)
        task = evaluate_progress.delay([ada.pk, bob.pk], ["review_approved"])
        thread.join(timeout=90)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" RESET deadlock_timeout')
    assert other == ["committed"]
    celery_worker.wait_for(lambda: MemberBadge.objects.filter(member__in=[ada, bob]).count() == 2,
                           timeout=60, what="both badges after the deadlock")
    assert re.search(rf"{task.id}\] retry: .*deadlock detected", celery_worker.log())
    for member in (ada, bob):
        member.refresh_from_db()
        assert member.points_available == 50
    assert list(ledger_discrepancies()) == []


def _wait_for_a_backend_waiting_on_a_lock(timeout: float = 30) -> None:
    """On this connection, until another connection to this database waits for a row lock that a
    ``FOR NO KEY UPDATE`` asked for."""
    import time

    from django.db import connection

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction sees one snapshot otherwise
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
                           "AND query ILIKE '%%FOR NO KEY UPDATE%%'")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("nobody waited for a lock")
