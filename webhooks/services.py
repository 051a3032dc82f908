"""Writes of webhooks: partners' endpoints, fanning the outbox out to them, and recording each try.

Flow: a change writes its event to the outbox (``core.events``); ``core.tasks.relay_outbox`` hands
the new events to ``deliveries_create``, which makes one delivery per subscribed endpoint of each
partner linked to the event's member (their own ``external_id`` in the body), and queues the first
try after commit. ``delivery_attempt`` sends one try; failures are retried after
``WEBHOOK_RETRY_DELAYS`` (``deliveries_due`` picks them up), 410 disables the endpoint at once, and
an endpoint failing for ``WEBHOOK_DISABLE_AFTER_DAYS`` is disabled and staff are told.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import AuditLog, Partner, User
from core import bulk
from core.claims import unclaimed
from core.errors import Invalid
from core.events import CATALOGUE, new_event_id
from core.models import OutboxEvent
from messaging.models import Purpose
from messaging.services import Outgoing, messages_queue
from webhooks import selectors
from webhooks.keys import secret_decrypt, secret_encrypt, secret_new
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.sending import post, url_check

PUBLIC_EVENTS = sorted(name for name, event in CATALOGUE.items() if event.public)
# Internal keys of an event's data that never leave: whose activity it was is told as own/not own.
_INTERNAL = {"activity_id", "actor_partner_id", "partner_id", "external_ids", "source"}
_POINTS_PRIVATE = {"description", "reason"}
ROTATION_OVERLAP = timedelta(hours=24)
# A worker goes on with an endpoint's next due try for this long, then hands the chain to a new task.
CHAIN_SECONDS = 2.0


def _events_clean(events) -> list[str]:
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise Invalid("events must be a non-empty list of event types, or [\"*\"].",
                      fields={"events": "A non-empty list of event types, or [\"*\"]."})
    unknown = sorted(set(events) - {*PUBLIC_EVENTS, "*"})
    if unknown:
        raise Invalid(f"Unknown event types: {', '.join(unknown)}.",
                      fields={"events": f"Unknown: {', '.join(unknown)}. Known: {', '.join(PUBLIC_EVENTS)}."})
    return ["*"] if "*" in events else sorted(set(events))


def endpoint_create(*, partner: Partner, url: str, events: list[str], description: str = "") -> tuple[
        WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once, stored encrypted)."""
    url, events = url_check(url), _events_clean(events)
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(partner=partner, url=url, events=events,
                                                  description=description[:200],
                                                  secret_encrypted=secret_encrypt(secret))
        AuditLog.objects.create(action="webhook.created", actor_partner=partner, subject=f"webhook:{endpoint.pk}",
                                after={"url": url, "events": events})
    return endpoint, secret


def endpoint_update(*, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    """Change an endpoint's url, events, description or active flag; re-activating clears the reason."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = {key: getattr(endpoint, key) for key in changes}
        if "url" in changes:
            endpoint.url = url_check(changes["url"])
        if "events" in changes:
            endpoint.events = _events_clean(changes["events"])
        if "description" in changes:
            endpoint.description = changes["description"][:200]
        if "active" in changes:
            endpoint.active = bool(changes["active"])
            if endpoint.active:
                endpoint.disabled_reason, endpoint.failing_since = "", None
        endpoint.save()
        AuditLog.objects.create(action="webhook.changed", actor_partner=endpoint.partner,
                                subject=f"webhook:{endpoint.pk}", before=before,
                                after={key: getattr(endpoint, key) for key in changes})
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        AuditLog.objects.create(action="webhook.deleted", actor_partner=endpoint.partner,
                                subject=f"webhook:{endpoint.pk}", before={"url": endpoint.url})
        endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> str:
    """A new secret; the old one keeps signing beside it for 24 hours (two signatures per delivery)."""
    now = now or timezone.now()
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_until = now + ROTATION_OVERLAP
        endpoint.secret_encrypted = secret_encrypt(secret)
        endpoint.save(update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_until"])
        AuditLog.objects.create(action="webhook.secret_rotated", actor_partner=endpoint.partner,
                                subject=f"webhook:{endpoint.pk}")
    return secret


def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``ping`` to the endpoint now."""
    now = timezone.now()
    event_id = new_event_id()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=event_id, type="ping", next_attempt_at=now,
            payload={"id": event_id, "type": "ping", "created_at": now.isoformat(), "data": {}})
        _queue_after_commit([delivery.pk])
    return delivery


def _queue_now(*, delivery_ids: list[int] = (), endpoint_ids: list[int] = ()) -> None:
    """Queue tries: of these deliveries, and of each endpoint's next due one (once per id given)."""
    from webhooks.tasks import deliver

    for delivery_id in delivery_ids:
        deliver.delay(delivery_id=delivery_id)
    for endpoint_id in endpoint_ids:
        deliver.delay(endpoint_id=endpoint_id)


def _queue_after_commit(delivery_ids: list[int] = (), *, endpoint_ids: list[int] = ()) -> None:
    for delivery_id in delivery_ids:
        transaction.on_commit(lambda delivery_id=delivery_id: _queue_now(delivery_ids=[delivery_id]))
    for endpoint_id in endpoint_ids:
        transaction.on_commit(lambda endpoint_id=endpoint_id: _queue_now(endpoint_ids=[endpoint_id]))


# --- Fan-out --------------------------------------------------------------------------------------

def _payload(event: OutboxEvent, *, partner_id: int, external_id: str, own: bool) -> dict:
    data = {key: value for key, value in event.data.items() if key not in _INTERNAL}
    if event.type.startswith("points.") and not own:
        for key in _POINTS_PRIVATE & set(data):
            data[key] = "Activity with another store" if key == "description" else ""
    if event.type.startswith("points."):
        data["own"] = own
    return {"id": event.event_id, "type": event.type, "created_at": event.created_at.isoformat(),
            "data": {"member": external_id, **data}}


def deliveries_create(*, events: list, endpoints: list[WebhookEndpoint] | None = None) -> int:
    """The outbox consumer: one delivery per endpoint that wants each event and whose partner knows
    its member (of ``endpoints``, or every active one). ``events`` are ``OutboxEvent`` rows or the
    relay's ``core.selectors.OutboxRow``. Safe to run twice (one delivery per endpoint and event id)."""
    endpoints = list(WebhookEndpoint.objects.filter(active=True)) if endpoints is None else endpoints
    if not endpoints or not events:
        return 0
    by_partner: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_partner.setdefault(endpoint.partner_id, []).append(endpoint)
    links = selectors.partner_links(member_ids={e.member_id for e in events if e.member_id},
                                    partner_ids=list(by_partner))
    activity_partner = selectors.activity_partners(
        activity_ids={e.data["activity_id"] for e in events if e.data.get("activity_id")})
    now = timezone.now()
    rows = []
    for event in events:
        known = links.get(event.member_id, {})
        if event.type == "member.erased":  # the ids were forgotten with the member: the event carried them
            known = {int(p): x for p, x in event.data.get("external_ids", {}).items() if int(p) in by_partner}
        source = activity_partner.get(event.data.get("activity_id")) or event.data.get("actor_partner_id") \
            or event.data.get("partner_id")
        for partner_id, external_id in known.items():
            for endpoint in by_partner.get(partner_id, []):
                if endpoint.wants(event.type):
                    payload = _payload(event, partner_id=partner_id, external_id=external_id,
                                       own=source in (None, partner_id))
                    rows.append((endpoint.pk, event.event_id, event.type, bulk.json_text(payload),
                                 DeliveryStatus.PENDING, 0, now, now))
    if not rows:
        return 0
    inserted = bulk.insert_new(WebhookDelivery, ("endpoint_id", "event_id", "type", "payload", "status", "attempts",
                                                 "next_attempt_at", "created_at"), rows,
                               unique=("endpoint_id", "event_id"))
    # At most WEBHOOK_ENDPOINT_CONCURRENCY tries per endpoint start now; each, when done, starts the
    # endpoint's next due one. A slow or dead endpoint so holds at most that many workers.
    limit = _limit() or len(inserted)
    first: dict[int, list[int]] = {}
    for (endpoint_id, _event_id), delivery_id in sorted(inserted.items(), key=lambda item: item[1]):
        if len(first.setdefault(endpoint_id, [])) < limit:
            first[endpoint_id].append(delivery_id)
    _queue_after_commit(sorted(pk for ids in first.values() for pk in ids))
    return len(inserted)


def replay(*, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every event since ``since`` (same event ids) that this endpoint wants; no other
    endpoint is touched."""
    events = OutboxEvent.objects.filter(created_at__gte=since).order_by("id")
    if "*" not in endpoint.events:
        events = events.filter(type__in=endpoint.events)
    events = list(events[:100_000])
    with transaction.atomic():
        created = deliveries_create(events=events, endpoints=[endpoint])
        again = list(WebhookDelivery.objects.filter(endpoint=endpoint, event_id__in=[e.event_id for e in events])
                     .exclude(status=DeliveryStatus.PENDING).values_list("pk", flat=True))
        WebhookDelivery.objects.filter(pk__in=again).update(status=DeliveryStatus.PENDING,
                                                             next_attempt_at=timezone.now())
        _queue_after_commit(again)
    return created + len(again)


# --- Sending ----------------------------------------------------------------------------------------

def signature_headers(*, endpoint: WebhookEndpoint, event_id: str, body: str, now: datetime) -> dict[str, str]:
    signatures = [Webhook(secret_decrypt(endpoint.secret_encrypted)).sign(event_id, now, body)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        signatures.append(Webhook(secret_decrypt(endpoint.previous_secret_encrypted)).sign(event_id, now, body))
    return {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": " ".join(signatures)}


def _delay(attempts: int, retry_after: int | None) -> timedelta | None:
    delays = settings.WEBHOOK_RETRY_DELAYS
    if attempts > len(delays):
        return None
    seconds = delays[attempts - 1] * random.uniform(0.9, 1.1)  # jitter: retries of many spread out
    return timedelta(seconds=max(seconds, retry_after or 0))


def _limit() -> int | None:
    """Tries to one endpoint at once. Run eagerly, in-process, there are no workers to hold: no limit."""
    return None if settings.CELERY_TASK_ALWAYS_EAGER else settings.WEBHOOK_ENDPOINT_CONCURRENCY


def _claim(*, delivery_id: int | None, endpoint_id: int | None, now: datetime) -> WebhookDelivery | str:
    """Claim a due try: this delivery, or the endpoint's next due one, if fewer than the endpoint's
    limit are being sent. Claims on one endpoint take turns (its row is locked for the claim only)."""
    with transaction.atomic():
        if endpoint_id is None:
            endpoint_id = WebhookDelivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True).first()
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None:
            return "not due"
        if not endpoint.active:
            return "endpoint disabled"
        limit = _limit()
        if limit is not None and WebhookDelivery.objects.filter(endpoint=endpoint, claimed_until__gt=now).count() \
                >= limit:
            return "busy"  # the tries in flight, when done, take the next due one: this one included
        due = WebhookDelivery.objects.filter(unclaimed(now), endpoint=endpoint, status=DeliveryStatus.PENDING,
                                             next_attempt_at__lte=now)
        if delivery_id is not None:
            due = due.filter(pk=delivery_id)
        delivery = due.select_for_update(skip_locked=True).order_by("next_attempt_at", "id").first()
        if delivery is None:
            return "not due"
        delivery.claimed_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=delivery.claimed_until)
    delivery.endpoint = endpoint
    return delivery


def delivery_attempt(*, delivery_id: int | None = None, endpoint_id: int | None = None,
                     seconds: float = 0) -> str:
    """Send a try, if it is due: of this delivery, or the endpoint's next due one; returns what
    happened to it.

    The try is claimed first, so two workers never send it at once and an endpoint has at most
    ``WEBHOOK_ENDPOINT_CONCURRENCY`` in flight; the HTTP call runs outside any transaction; a
    worker that dies mid-call leaves the claim to expire and the try to be made again, with the
    same ``webhook-id``. A finished try goes on with the endpoint's next due one (for up to
    ``seconds``, then in a new task, so other endpoints' tries get their turn): each of the
    endpoint's chains keeps going while there is work, each on a try of its own.
    """
    if not settings.WEBHOOKS_SEND:
        return "sending off"
    started = time.monotonic()
    outcome, more = _attempt(delivery_id=delivery_id, endpoint_id=endpoint_id)
    while more and time.monotonic() - started < seconds:
        _, more = _attempt(delivery_id=None, endpoint_id=more)
    if more:
        _queue_after_commit(endpoint_ids=[more])
    return outcome


def _attempt(*, delivery_id: int | None, endpoint_id: int | None) -> tuple[str, int | None]:
    """One try; and the endpoint's id if it has more due that its chain should go on with."""
    now = timezone.now()
    delivery = _claim(delivery_id=delivery_id, endpoint_id=endpoint_id, now=now)
    if isinstance(delivery, str):
        return delivery, None
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"))
    headers = signature_headers(endpoint=endpoint, event_id=delivery.event_id, body=body, now=now)
    answer = post(endpoint.url, body.encode(), headers)
    ok = answer.status_code is not None and 200 <= answer.status_code < 300
    done = timezone.now()
    with transaction.atomic():
        attempts = delivery.attempts + 1
        retry = None if ok or answer.status_code == 410 else _delay(attempts, answer.retry_after)
        fields = {"attempts": attempts, "claimed_until": None}
        if ok:
            fields.update(status=DeliveryStatus.SUCCEEDED, delivered_at=done, next_attempt_at=None)
        elif retry is None:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=done + retry)
        # Only while the claim is ours: if it ran out and another worker took the try, theirs counts.
        WebhookDelivery.objects.filter(pk=delivery.pk, claimed_until=delivery.claimed_until).update(**fields)
        WebhookAttempt.objects.create(delivery=delivery, endpoint=endpoint, at=now, status_code=answer.status_code,
                                      duration_ms=answer.duration_ms, error=answer.error[:300],
                                      next_retry_at=fields.get("next_attempt_at"))
        _endpoint_health(endpoint=endpoint, ok=ok, gone=answer.status_code == 410, now=done)
        more = _limit() is not None and WebhookDelivery.objects.filter(
            unclaimed(done), endpoint=endpoint, status=DeliveryStatus.PENDING, next_attempt_at__lte=done).exists()
    return ("delivered" if ok else ("retry" if retry else "gave up")), (endpoint.pk if more else None)


def _endpoint_health(*, endpoint: WebhookEndpoint, ok: bool, gone: bool, now: datetime) -> None:
    if ok:
        if endpoint.failing_since:  # one conditional UPDATE, no lock: successes are the common case
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
        return
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    reason = ""
    if gone:
        reason = "The endpoint answered 410 Gone."
    else:
        endpoint.failing_since = endpoint.failing_since or now
        if now - endpoint.failing_since >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
            reason = f"Every delivery failed for {settings.WEBHOOK_DISABLE_AFTER_DAYS} days."
    if reason and endpoint.active:
        endpoint.active, endpoint.disabled_reason = False, reason
        AuditLog.objects.create(action="webhook.disabled", actor_partner=None, subject=f"webhook:{endpoint.pk}",
                                reason=reason)
        staff = list(User.objects.filter(is_staff=True, is_active=True).exclude(email="")
                     .values_list("email", flat=True))
        messages_queue(now=now, items=[Outgoing(
            template="webhook_disabled", purpose=Purpose.TRANSACTIONAL, to=email,
            key=f"webhook_disabled:{endpoint.pk}:{now.isoformat()}:{email}",
            context={"partner": str(endpoint.partner), "url": endpoint.url, "reason": reason,
                     "endpoint_id": endpoint.pk}) for email in staff])
    endpoint.save(update_fields=["active", "disabled_reason", "failing_since"])


def deliveries_due(*, now: datetime | None = None, per_endpoint: int | None = None) -> int:
    """Start tries that are due and that no chain is sending (their worker died, or their retry time
    came): up to the endpoint's free places (``WEBHOOK_ENDPOINT_CONCURRENCY`` less the tries in
    flight), so one slow endpoint's backlog never crowds out the others."""
    now = now or timezone.now()
    per_endpoint = per_endpoint or settings.WEBHOOK_ENDPOINT_CONCURRENCY
    due = dict(WebhookDelivery.objects.filter(unclaimed(now), endpoint__active=True, status=DeliveryStatus.PENDING,
                                              next_attempt_at__lte=now)
               .values("endpoint_id").annotate(n=Count("id")).values_list("endpoint_id", "n"))
    in_flight = dict(WebhookDelivery.objects.filter(endpoint_id__in=list(due), claimed_until__gt=now)
                     .values("endpoint_id").annotate(n=Count("id")).values_list("endpoint_id", "n"))
    starts = [endpoint_id for endpoint_id, n in sorted(due.items())
              for _ in range(max(0, min(n, per_endpoint - in_flight.get(endpoint_id, 0))))]
    _queue_now(endpoint_ids=starts)
    return len(starts)


def deliveries_retry(*, delivery_ids: list[int]) -> int:
    """Staff: send these deliveries again now, with their own event ids."""
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now())
        _queue_after_commit(delivery_ids)
    return updated
