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
    """Batch ingest with no endpoint, then with an endpoint for every points.earned and a worker
    relaying and delivering to a loopback receiver beside the server, on the same machine: what the
    outbox and its deliveries cost the ingest. 20,000 orders each way, in batches of 1,000."""
    import json
    import os
    import random
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from django.conf import settings

    from accounts.models import Partner
    from tests.receiver import Receiver
    from webhooks import services

    root = Path(__file__).resolve().parent.parent

    def ingest(tag: str) -> float:
        rng = random.Random(7)
        placed = datetime.now(UTC) - timedelta(days=2)
        batches = [("/api/v1/orders/batch/", json.dumps({"orders": [order(f"W{tag}{b}-{i}", rng, placed)
                                                                      for i in range(1000)]}).encode(), {})
                   for b in range(20)]
        elapsed, results = drive("POST", [batches[0::2], batches[1::2]], key)
        assert all(status == 200 for _, status in results), {status for _, status in results}
        return 20_000 / elapsed

    from core.tasks import relay_outbox
    from loyalty_site.celery import app

    off = ingest("off")
    relay_outbox()  # what was written so far is handed on before the endpoint exists
    with app.connection_for_write() as conn:  # earlier runs' tasks for databases that are gone
        for queue in ("celery", "webhooks"):
            conn.default_channel.queue_purge(queue)
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    receiver = Receiver()
    services.endpoint_create(partner=Partner.objects.get(name="Bench Store"), url=receiver.url,
                             events=["points.earned"])
    env = {**os.environ, "WEBHOOKS_ALLOW_PRIVATE": "1", "LOG_LEVEL": "WARNING"}
    celery = Path(sys.executable).with_name("celery")

    def with_worker(tag: str, nice: int) -> tuple[float, int, float]:
        """Ingest with a worker relaying and delivering beside the server (at ``nice``), then 20 s
        more: orders/s, deliveries during the ingest, deliveries/s after it."""
        from django.db import connection

        from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

        with connection.cursor() as cursor:  # the other run's backlog (tens of thousands: no ORM cascade)
            pending = f"SELECT id FROM {WebhookDelivery._meta.db_table} WHERE status = %s"
            cursor.execute(f"DELETE FROM {WebhookAttempt._meta.db_table} WHERE delivery_id IN ({pending})",
                           [DeliveryStatus.PENDING])
            cursor.execute(f"DELETE FROM {WebhookDelivery._meta.db_table} WHERE id IN ({pending})",
                           [DeliveryStatus.PENDING])
        with app.connection_for_write() as conn:
            for queue in ("celery", "webhooks"):
                conn.default_channel.queue_purge(queue)
        worker = subprocess.Popen(["nice", "-n", str(nice), str(celery), "-A", "loyalty_site", "worker",
                                   "-Q", "celery,webhooks", "--concurrency", "2", "--loglevel", "WARNING",
                                   "--without-gossip", "--without-mingle"],
                                  cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)  # the worker is up before the clock starts
            before = len(receiver.requests)
            rate = ingest(tag)
            during = len(receiver.requests) - before
            time.sleep(20)
            after = (len(receiver.requests) - before - during) / 20
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        return rate, during, after

    try:
        same = with_worker("same", 0)
        niced = with_worker("nice", 19)
    finally:
        receiver.stop()
    for label, (on, during, after) in (("at the same priority", same), ("at nice 19", niced)):
        rows.append(Row(f"Batch ingest, 20,000 orders: no endpoint vs an endpoint for every points.earned, a worker "
                        f"relaying and delivering beside the server {label}",
                        f"{off:,.0f} vs {on:,.0f} orders/s ({on / off:.2f}); {during:,} delivered during it, "
                        f"{after:,.0f}/s in the 20 s after", ">= 0.85", on / off >= 0.85))
