"""Webhook deliveries per second: 100 endpoints on a loopback receiver, 10 events each (1,000
signed deliveries), sent by 8 concurrent workers through the real delivery service. The reference
is the same 1,000 POSTs sent straight to the receiver by 8 threads, without the service."""

from __future__ import annotations

import http.client
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

ENDPOINTS, EVENTS, WORKERS = 100, 10, 8


def bench_webhooks(rows: list, Row) -> None:
    from django.conf import settings
    from django.db import connections, transaction

    from accounts.services import members_ensure_for_partner, partner_create
    from core.models import OutboxEvent
    from loyalty_site.celery import app
    from tests.receiver import Receiver
    from webhooks import services
    from webhooks.models import WebhookDelivery

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    throwaway = f"bench-hooks-{uuid.uuid4().hex[:8]}"
    app.conf.task_routes = {"webhooks.deliver": {"queue": throwaway}}
    receiver = Receiver()
    try:
        partner = partner_create(name=f"Hooks {uuid.uuid4().hex[:6]}")
        for _ in range(ENDPOINTS):
            services.endpoint_create(partner=partner, url=receiver.url, events=["member.created"])
        ids, _ = members_ensure_for_partner(partner=partner, rows={f"h{n}": {} for n in range(EVENTS)})
        events = list(OutboxEvent.objects.filter(type="member.created", member_id__in=ids.values()))
        with transaction.atomic():
            services.deliveries_create(events=events)
        todo = list(WebhookDelivery.objects.filter(endpoint__partner=partner).values_list("pk", flat=True))

        def attempt(delivery_id):
            try:
                return services.delivery_attempt(delivery_id=delivery_id)
            finally:
                connections.close_all()

        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            outcomes = list(pool.map(attempt, todo))
        seconds = time.perf_counter() - started
        port = int(receiver.url.split(":")[2].split("/")[0])

        def raw(_):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/hooks", body=b"{}", headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()

        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(raw, range(len(todo))))
        reference = time.perf_counter() - started
    finally:
        receiver.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(throwaway)
    from collections import Counter

    print("webhook bench outcomes:", dict(Counter(outcomes)))
    delivered = outcomes.count("delivered")
    rate = delivered / seconds
    rows.append(Row(f"Webhook deliveries, {ENDPOINTS} endpoints x {EVENTS} events, {WORKERS} workers, loopback",
                    f"{rate:,.0f} deliveries/s ({delivered} of {len(todo)}); {seconds / reference:.1f}x the time of "
                    f"bare POSTs ({len(todo) / reference:,.0f}/s)", ">= 100/s", delivered == len(todo) and rate >= 100))
