"""Webhook deliveries per second: 100 endpoints on a loopback receiver, 10 events each (1,000
signed deliveries), sent by a real Celery worker with 8 threads, from the moment the deliveries are
made to the last one recorded as delivered. The reference is the same 1,000 POSTs sent straight to
the receiver by 8 threads, without the service."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ENDPOINTS, EVENTS, WORKERS = 100, 10, 8


def bench_webhooks(rows: list, Row) -> None:
    from django.conf import settings
    from django.db import transaction

    from accounts.services import members_ensure_for_partner, partner_create
    from core.models import OutboxEvent
    from loyalty_site.celery import app
    from tests.receiver import Receiver
    from webhooks import services
    from webhooks.models import DeliveryStatus, WebhookDelivery

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    throwaway = f"bench-hooks-{uuid.uuid4().hex[:8]}"
    app.conf.task_routes = {"webhooks.deliver": {"queue": throwaway}}
    app.amqp.flush_routes()  # Celery builds its router once per process
    app.amqp.__dict__.pop("router", None)
    receiver = Receiver()
    celery = Path(sys.executable).with_name("celery")
    worker = subprocess.Popen(
        [str(celery), "-A", "loyalty_site", "worker", "-Q", throwaway, "--pool", "threads", "--concurrency",
         str(WORKERS), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "WEBHOOKS_ALLOW_PRIVATE": "1", "WEBHOOKS_QUEUE": throwaway, "LOG_LEVEL": "WARNING"})
    try:
        partner = partner_create(name=f"Hooks {uuid.uuid4().hex[:6]}")
        for _ in range(ENDPOINTS):
            services.endpoint_create(partner=partner, url=receiver.url, events=["member.created"])
        ids, _ = members_ensure_for_partner(partner=partner, rows={f"h{n}": {} for n in range(EVENTS)})
        events = list(OutboxEvent.objects.filter(type="member.created", member_id__in=ids.values()))
        time.sleep(4)  # the worker is up before the clock starts
        pending = WebhookDelivery.objects.filter(endpoint__partner=partner, status=DeliveryStatus.PENDING)
        started = time.perf_counter()
        with transaction.atomic():  # the first tries are queued when this commits
            made = services.deliveries_create(event_ids=[e.pk for e in events])
        deadline = started + 120
        while pending.exists() and time.perf_counter() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        delivered = WebhookDelivery.objects.filter(endpoint__partner=partner, status=DeliveryStatus.SUCCEEDED).count()
        port = int(receiver.url.split(":")[2].split("/")[0])

        def raw(_):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/hooks", body=b"{}", headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()

        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(raw, range(made)))
        reference = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        receiver.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(throwaway)
    rate = delivered / seconds
    rows.append(Row(f"Webhook deliveries, {ENDPOINTS} endpoints x {EVENTS} events, a worker of {WORKERS} threads, "
                    "loopback", f"{rate:,.0f} deliveries/s ({delivered} of {made}); {seconds / reference:.1f}x the "
                    f"time of bare POSTs ({made / reference:,.0f}/s)", ">= 100/s", delivered == made and rate >= 100))


def bench_ingest_with_webhooks(key: str, rows: list, Row, drive, order) -> None:
    """What webhooks cost the ingest: batch ingest (20,000 orders in batches of 1,000, 2 clients) with
    a Celery worker beside the server on the same 2 cores relaying the outbox, with no endpoint
    (every order's points.earned is written and relayed: the outbox alone) and with an endpoint for
    every points.earned (the relay pairs each event with it) but sending off (``WEBHOOKS_SEND=0``:
    what turning webhooks on costs the ingest), twice each in turns, then sending too, at the same
    priority and at nice 19 (the deliveries' own HTTP work competes for the same cores: in
    production they run on a ``webhooks`` worker of their own, elsewhere)."""
    import json
    import os
    import random
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    from accounts.models import Partner
    from core.tasks import relay_outbox
    from loyalty_site.celery import app
    from tests.receiver import Receiver
    from webhooks import services
    from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

    root = Path(__file__).resolve().parent.parent
    queues = sorted(set(settings.TASK_QUEUES.values()))
    celery = Path(sys.executable).with_name("celery")

    def ingest(tag: str) -> float:
        rng = random.Random(7)
        placed = datetime.now(UTC) - timedelta(days=2)
        batches = [("/api/v1/orders/batch/", json.dumps({"orders": [order(f"W{tag}{b}-{i}", rng, placed)
                                                                      for i in range(1000)]}).encode(), {})
                   for b in range(20)]
        elapsed, results = drive("POST", [batches[0::2], batches[1::2]], key)
        assert all(status == 200 for _, status in results), {status for _, status in results}
        return 20_000 / elapsed

    def clear() -> None:
        relay_outbox()  # what earlier parts wrote is handed on before the clock starts
        with connection.cursor() as cursor:  # the last run's backlog (tens of thousands: no ORM cascade)
            pending = f"SELECT id FROM {WebhookDelivery._meta.db_table} WHERE status = %s"
            cursor.execute(f"DELETE FROM {WebhookAttempt._meta.db_table} WHERE delivery_id IN ({pending})",
                           [DeliveryStatus.PENDING])
            cursor.execute(f"DELETE FROM {WebhookDelivery._meta.db_table} WHERE id IN ({pending})",
                           [DeliveryStatus.PENDING])
        with app.connection_for_write() as conn:
            for queue in queues:
                conn.default_channel.queue_purge(queue)

    def with_worker(tag: str, *, nice: int = 0, send: bool = True) -> tuple[float, int]:
        """Ingest with a worker relaying (and delivering, if ``send``) beside the server: orders/s and
        the deliveries made during the ingest."""
        clear()
        env = {**os.environ, "WEBHOOKS_ALLOW_PRIVATE": "1", "LOG_LEVEL": "WARNING",
               "WEBHOOKS_SEND": "1" if send else "0"}
        worker = subprocess.Popen(["nice", "-n", str(nice), str(celery), "-A", "loyalty_site", "worker",
                                   "-Q", ",".join(queues), "--concurrency", "2", "--loglevel", "WARNING",
                                   "--without-gossip", "--without-mingle"],
                                  cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)  # the worker is up before the clock starts
            before = len(receiver.requests)
            rate = ingest(tag)
            return rate, len(receiver.requests) - before
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    receiver = Receiver()
    try:
        # The outbox alone and with the endpoint on take turns (alone, on, on, alone), each side's
        # times summed: with one run of each, always in that order, the ratio moved between 0.84 and
        # 0.92 over unchanged code (2026-12-06), the machine's drift.
        endpoint, _ = services.endpoint_create(partner=Partner.objects.get(name="Bench Store"), url=receiver.url,
                                               events=["points.earned"])
        seconds = {False: 0.0, True: 0.0}
        for turn, on in enumerate((False, True, True, False)):
            endpoint = services.endpoint_update(endpoint=endpoint, changes={"active": on})
            rate, _ = with_worker(f"{'p' if on else 'o'}{turn}", send=False)
            seconds[on] += 20_000 / rate
        outbox_only, paired = 40_000 / seconds[False], 40_000 / seconds[True]
        services.endpoint_update(endpoint=endpoint, changes={"active": True})
        sending, sent = with_worker("s")
        niced, sent_niced = with_worker("n", nice=19)
    finally:
        receiver.stop()
    rows.append(Row("Batch ingest, 20,000 orders, a worker relaying beside the server: no endpoint (the outbox alone) "
                    "vs an endpoint for every points.earned, deliveries paired but not sent (webhooks on), "
                    "twice each in turns",
                    f"{outbox_only:,.0f} vs {paired:,.0f} orders/s ({paired / outbox_only:.2f})", ">= 0.85",
                    paired / outbox_only >= 0.85))
    for label, (rate, sent_now) in (("at the same priority", (sending, sent)), ("at nice 19", (niced, sent_niced))):
        rows.append(Row(f"...and sending them from the same 2 cores, the worker {label}",
                        f"{rate:,.0f} orders/s ({rate / outbox_only:.2f}); {sent_now:,} delivered during it"))
