"""Queues by kind of work: every task and every scheduled job goes to the queue of its kind, and
with real workers a webhooks queue stuck on a slow partner endpoint does not delay the points
engine's work. Progress checks of one process are gathered into one task."""

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tests.conftest import WorkerHandle, start_worker
from tests.factories import RuleFactory, customer, make_tiers, place_order, set_program
from tests.receiver import Receiver


def _routed_queue(app, task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_every_task_and_every_scheduled_job_goes_to_the_queue_of_its_kind():
    from loyalty_site.celery import app

    app.loader.import_default_modules()
    ours = sorted(name for name in app.tasks if not name.startswith(("celery.", "tests.")))
    assert [name for name in ours if name not in settings.TASK_KINDS] == []
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled <= set(settings.TASK_KINDS)
    kinds = {task: settings.TASK_KINDS[task] for task in (
        "rewards.release_pending_points", "rewards.evaluate_progress", "messaging.send", "campaigns.run_due",
        "webhooks.deliver", "core.relay_outbox", "insights.nightly_snapshot", "rewards.nightly_progress",
        "accounts.purge_idempotency_keys")}
    assert kinds == {
        "rewards.release_pending_points": "ledger", "rewards.evaluate_progress": "ledger",
        "messaging.send": "messages", "campaigns.run_due": "messages",
        "webhooks.deliver": "webhooks", "core.relay_outbox": "webhooks",
        "insights.nightly_snapshot": "analytics", "rewards.nightly_progress": "analytics",
        "accounts.purge_idempotency_keys": "default",
    }
    # What Celery itself decides when a task is queued by name, as beat does.
    for task in ("rewards.release_pending_points", "webhooks.deliver_due", "insights.nightly_snapshot",
                 "messaging.send_due", "core.purge_outbox"):
        assert _routed_queue(app, task) == settings.TASK_QUEUES[settings.TASK_KINDS[task]]
    assert _routed_queue(app, "tests.slow_mark") == settings.TASK_QUEUES["default"]
    assert sorted(settings.TASK_QUEUES) == ["analytics", "default", "ledger", "messages", "webhooks"]


@pytest.fixture
def pools(tmp_path, settings, own_queues):
    """Real workers, one pool per kind of work as docs/deploy.md runs them, each stopped at the end."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    handles = []

    def start(name: str, kinds: tuple[str, ...], **env):
        log = tmp_path / f"{name}.log"
        queues = ",".join(settings.TASK_QUEUES[kind] for kind in kinds)
        handle = WorkerHandle(start_worker(log, queue=settings.TASK_QUEUES["default"], queues=queues,
                                           extra_env={"WEBHOOKS_ALLOW_PRIVATE": "1", **env}), tmp_path, log)
        handles.append(handle)
        handle.wait_for(lambda: " ready." in handle.log(), timeout=60, what=f"the {name} worker to start")
        return handle

    yield start
    for handle in handles:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(timeout=10)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_webhooks_queue_stuck_on_a_slow_endpoint_does_not_delay_releasing_pending_points(pools, tea_shop):
    from rewards.tasks import release_pending_points
    from webhooks.services import endpoint_create

    # A partner endpoint that takes 20 s to answer each delivery (the worker gives up after 8 s):
    # with 6 deliveries due, the webhooks pool is busy for most of a minute.
    receiver = Receiver(delay=20)
    receiver.server.block_on_close = False  # stopping it does not wait for the slow answers
    try:
        set_program(pending_days=14, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
        RuleFactory(name="1 per EUR")
        endpoint_create(partner=tea_shop, url=receiver.url, events=["member.created"])
        hooks = pools("webhooks", ("webhooks",), WEBHOOK_TIMEOUT_SECONDS="8")
        pools("ledger", ("ledger", "default"))
        ada = customer(tea_shop, "cust-42", email="ada@example.com")
        for n in range(5):
            customer(tea_shop, f"cust-{n}")
        # Placed 14 days ago less 3 s: pending now, due to become available in 3 s.
        place_order(tea_shop, "1001", "cust-42", lines=(("TEA-1", 2, "12.50", "tea"),),
                    placed_at=timezone.now() - timedelta(days=14) + timedelta(seconds=3))
        ada.refresh_from_db()
        assert (ada.points_available, ada.points_pending) == (0, 25)
        hooks.wait_for(lambda: "webhooks.deliver[" in hooks.log(), timeout=30,
                       what="a delivery to be under way")
        time.sleep(3.5)

        queued_at = time.monotonic()
        release_pending_points.delay()  # what beat sends every 15 minutes, routed by its name

        def released():
            ada.refresh_from_db()
            return ada.points_available == 25

        hooks.wait_for(released, timeout=20, what="the pending points to be released")
        took = time.monotonic() - queued_at
        delivered = len(receiver.requests)
        print(f"\npending points released {took:.2f} s after the task was queued; "
              f"{delivered} of 6 deliveries answered by then (each takes 20 s)")
        assert (ada.points_available, ada.points_pending) == (25, 0)
        assert delivered == 0  # the webhooks pool was still stuck on its first delivery
        assert took < 5
    finally:
        receiver.stop()


def test_progress_checks_of_a_process_are_gathered_for_a_quarter_second_then_sent_as_one(settings):
    from rewards.reactions import ProgressChecks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent = []
    checks = ProgressChecks(lambda members, types: sent.append((members, types)), wait=0.25, most=4)
    checks.add({3, 1}, {"order"})
    checks.add({2}, {"review"})  # moments later: the same task
    assert sent == []
    time.sleep(0.4)
    assert sent == [([1, 2, 3], ["order", "review"])]
    checks.add({5, 6, 7, 8}, {"order"})  # as many as it holds at most: sent at once
    assert sent[1:] == [([5, 6, 7, 8], ["order"])]
    checks.add({9}, {"order"})
    checks.flush()  # what the process does when it exits
    checks.flush()
    assert sent[2:] == [([9], ["order"])]
    time.sleep(0.4)
    assert len(sent) == 3  # the timer of the last batch found nothing left to send


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_orders_moments_apart_move_their_members_up_through_one_task(pools, tea_shop):
    from rewards.models import MemberTier

    set_program(pending_days=0, expiry_policy="never", time_zone="UTC", accepted_currencies="EUR")
    RuleFactory(name="1 per EUR")
    make_tiers(("Bronze", 0), ("Silver", 20))
    ledger = pools("ledger", ("ledger", "default"))
    members = [customer(tea_shop, f"cust-{n}") for n in range(3)]
    sent_at = time.monotonic()
    for n in range(3):
        place_order(tea_shop, f"100{n}", f"cust-{n}", lines=(("TEA-1", 1, "25.00", "tea"),))

    def silver():
        return MemberTier.objects.filter(member__in=members, tier__name="Silver").count() == 3

    ledger.wait_for(silver, timeout=20, what="the three members to reach Silver")
    print(f"\nthree orders' members moved up {time.monotonic() - sent_at:.2f} s after the first order")
    # The worker logs the task's success just after its commit: wait for the line, then count.
    ledger.wait_for(lambda: re.search(r"rewards\.evaluate_progress\[[^\]]+\] succeeded", ledger.log()), timeout=10,
                    what="the task's success in the log")
    assert len(re.findall(r"rewards\.evaluate_progress\[[^\]]+\] received", ledger.log())) == 1  # one task
