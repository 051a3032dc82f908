"""Webhook deliveries with real workers: kill -9 of the worker in the middle of a burst loses no
event (anything the receiver gets twice comes with the same webhook-id), and a burst to one
endpoint keeps as many tries in flight as its limit allows, never more."""

import signal
import time

import pytest

from accounts.services import members_ensure_for_partner, partner_create
from core.models import OutboxEvent
from core.tasks import relay_outbox
from tests.conftest import WorkerHandle, start_worker
from tests.receiver import Receiver
from webhooks.models import WebhookDelivery
from webhooks.services import deliveries_due, endpoint_create

pytestmark = [pytest.mark.django_db(transaction=True)]

BURST = 150


@pytest.fixture
def workers(tmp_path, settings, own_queues):
    """Start real workers on queues of this test's own (their tasks and the webhook tries), each
    stopped at the end."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    handles = []

    def start(name, *, threads=0, **env):
        log = tmp_path / f"{name}.log"
        env = {"CELERY_VISIBILITY_TIMEOUT": "10", "WEBHOOKS_ALLOW_PRIVATE": "1", **env}
        consumed = f"{own_queues['default']},{own_queues['webhooks']}"
        handle = WorkerHandle(start_worker(log, queue=own_queues["default"], queues=consumed, extra_env=env,
                                           threads=threads), tmp_path, log)
        handles.append(handle)
        handle.wait_for(lambda: " ready." in handle.log(), timeout=60, what=f"{name} to start")
        return handle

    yield start
    for handle in handles:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(timeout=10)


@pytest.mark.celery_worker
def test_a_killed_worker_loses_no_delivery(workers):
    receiver = Receiver(delay=0.02)
    # Retries a second apart: a try that fails under load (the machine is busy) is made again within
    # the deadline; this test is about what a crash loses, not about the retry schedule.
    env = {"WEBHOOK_LEASE_SECONDS": "5", "WEBHOOK_RETRY_DELAYS": "1,1,1,1,1,1,1,1"}

    def worker(name):
        return workers(name, **env)

    try:
        partner = partner_create(name="Tea Shop")
        endpoint_create(partner=partner, url=receiver.url, events=["member.created"])
        first = worker("first")
        for start in range(0, BURST, 30):
            members_ensure_for_partner(partner=partner, rows={f"c{n}": {} for n in range(start, start + 30)})
        first.wait_for(lambda: len(receiver.requests) >= 20, timeout=60, what="the burst to be under way")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        got_when_killed = len(receiver.requests)
        worker("second")
        expected = set(OutboxEvent.objects.filter(type="member.created").values_list("event_id", flat=True))
        assert len(expected) == BURST
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            received = {headers["webhook-id"] for headers, _ in receiver.requests}
            if expected <= received:
                break
            # What beat does: relay events whose relay task died with the worker (every 60 s), and
            # make tries whose worker died due again (every 15 s). Under load the kill can land
            # before the last relay ran (seen with the suite on two processes: 130 of 150 never relayed).
            relay_outbox()
            deliveries_due()
            time.sleep(2)
        received_ids = [headers["webhook-id"] for headers, _ in receiver.requests]
        missing = WebhookDelivery.objects.exclude(event_id__in=set(received_ids)).values_list(
            "status", "attempts", "next_attempt_at")
        assert set(received_ids) == expected, f"missing {len(expected - set(received_ids))}: {list(missing)}"
        print(f"\n{BURST} events; {got_when_killed} received when the worker was killed; "
              f"{len(received_ids)} requests in all, {len(received_ids) - len(set(received_ids))} repeats")
    finally:
        receiver.stop()


@pytest.mark.celery_worker
def test_a_burst_to_one_endpoint_keeps_its_limit_of_tries_in_flight(workers):
    """Each finished try starts the endpoint's next one. The chains must each take a try of their
    own: when they all picked the same next one, three of four ended and a burst crawled at one
    try at a time (seen: 6-12 deliveries a second after a burst, instead of 4 at once)."""
    receiver = Receiver(delay=0.1)
    burst, limit = 80, 4
    try:
        partner = partner_create(name="Tea Shop")
        endpoint_create(partner=partner, url=receiver.url, events=["member.created"])
        worker = workers("threads", threads=2 * limit, WEBHOOK_ENDPOINT_CONCURRENCY=str(limit))
        for start in range(0, burst, 20):
            members_ensure_for_partner(partner=partner, rows={f"c{n}": {} for n in range(start, start + 20)})
        worker.wait_for(lambda: len({h["webhook-id"] for h, _ in receiver.requests}) >= burst, timeout=90,
                        what=f"{burst} deliveries")
        most, average = receiver.most_at_once(), receiver.average_at_once()
        print(f"\n{burst} deliveries to one endpoint, limit {limit}: at most {most} at once, {average:.1f} on average")
        assert most <= limit  # the worker had twice as many threads: the limit held them back
        # Collapsed chains ran 0.8 at a time; several alive run 3.4 here when the machine is quiet,
        # 2.2 with the whole suite beside it on two cores.
        assert average >= 1.5, f"the tries ran {average:.1f} at a time on average: the chains collapsed to one"
    finally:
        receiver.stop()


@pytest.mark.postgres
def test_tries_to_one_endpoint_at_once_keep_to_its_limit_and_do_not_skip_each_other(settings):
    from core.tasks import relay_outbox
    from tests.concurrency import run_concurrently
    from webhooks.models import WebhookDelivery
    from webhooks.services import delivery_attempt

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.OUTBOX_RELAY_ON_COMMIT = False
    settings.CELERY_TASK_ALWAYS_EAGER = False  # with workers to protect, whatever the broker
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 3
    receiver = Receiver(delay=1.0)  # long enough that every claim is made while the first tries are out
    try:
        partner = partner_create(name="Tea Shop")
        endpoint_create(partner=partner, url=receiver.url, events=["member.created"])
        members_ensure_for_partner(partner=partner, rows={f"c{n}": {} for n in range(8)})
        relay_outbox()
        ids = list(WebhookDelivery.objects.order_by("id").values_list("pk", flat=True))
        assert len(ids) == 8
        outcomes = run_concurrently(lambda i: delivery_attempt(delivery_id=ids[i]), 8)
        assert sorted(outcomes) == ["busy"] * 5 + ["delivered"] * 3
        assert len(receiver.requests) == 3 and receiver.most_at_once() == 3
        # With room for all, tries at once to one endpoint all go: none skips another.
        settings.WEBHOOK_ENDPOINT_CONCURRENCY = 5
        outcomes = run_concurrently(lambda i: delivery_attempt(endpoint_id=partner.webhook_endpoints.get().pk), 5)
        assert outcomes == ["delivered"] * 5
        assert {h["webhook-id"] for h, _ in receiver.requests} == set(
            WebhookDelivery.objects.values_list("event_id", flat=True))
    finally:
        receiver.stop()
