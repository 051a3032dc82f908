"""Writes of webhooks: partners' endpoints, fanning the outbox out to them, and recording each try.

Flow: a change writes its event to the outbox (``core.events``); ``core.tasks.relay_outbox`` hands
the new events to ``deliveries_create``, which pairs each with every subscribed endpoint of each
partner linked to the event's member (keeping their own ``external_id`` for it), in one SQL
statement, and queues the first tries after commit; a delivery's body is made at its first try and
kept as sent. ``delivery_attempt`` sends one try; failures are retried after
``WEBHOOK_RETRY_DELAYS`` (``deliveries_due`` picks them up), 410 disables the endpoint at once, and
an endpoint failing for ``WEBHOOK_DISABLE_AFTER_DAYS`` is disabled and staff are told.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import AuditLog, ExternalId, Partner, User
from core import bulk
from core.claims import unclaimed
from core.errors import Invalid
from core.events import CATALOGUE, new_event_id
from core.models import OutboxEvent
from messaging.models import Purpose
from messaging.services import Outgoing, messages_queue
from webhooks import selectors
from webhooks.keys import secret_decrypt, secret_encrypt, secret_new
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSubscription
from webhooks.sending import Answer, post, url_check

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


def _subscriptions_set(endpoint: WebhookEndpoint) -> None:
    WebhookSubscription.objects.filter(endpoint=endpoint).delete()
    WebhookSubscription.objects.bulk_create([WebhookSubscription(endpoint=endpoint, type=kind)
                                             for kind in endpoint.events])


def endpoint_create(*, partner: Partner, url: str, events: list[str], description: str = "") -> tuple[
        WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once, stored encrypted)."""
    url, events = url_check(url), _events_clean(events)
    secret = secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(partner=partner, url=url, events=events,
                                                  description=description[:200],
                                                  secret_encrypted=secret_encrypt(secret))
        _subscriptions_set(endpoint)
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
            _subscriptions_set(endpoint)
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

def _payload(event, *, partner_id: int, external_id: str, own: bool) -> dict:
    data = {key: value for key, value in event.data.items() if key not in _INTERNAL}
    if event.type.startswith("points.") and not own:
        for key in _POINTS_PRIVATE & set(data):
            data[key] = "Activity with another store" if key == "description" else ""
    if event.type.startswith("points."):
        data["own"] = own
    return {"id": event.event_id, "type": event.type, "created_at": event.created_at.isoformat(),
            "data": {"member": external_id, **data}}


def _body_of(delivery: WebhookDelivery) -> dict | None:
    """The body of a delivery: made once from its event, for the endpoint's partner (their own id
    for the member; another store's activity told without its words), then kept as sent. None when
    the event is no longer kept (``OUTBOX_RETENTION_DAYS``: an endpoint re-enabled after a month)."""
    if delivery.payload is not None:
        return delivery.payload
    event = None if delivery.outbox_event_id is None else next(iter(OutboxEvent.objects.raw(
        f'SELECT * FROM "{OutboxEvent._meta.db_table}" WHERE id = %s', [delivery.outbox_event_id])), None)
    if event is None:
        return None
    partner_id = delivery.endpoint.partner_id
    activity_id = event.data.get("activity_id")
    source = (selectors.activity_partners(activity_ids={activity_id}).get(activity_id) if activity_id else None) \
        or event.data.get("actor_partner_id") or event.data.get("partner_id")
    return _payload(event, partner_id=partner_id, external_id=delivery.external_id, own=source in (None, partner_id))


def deliveries_create(*, event_ids: list[int], endpoint_ids: list[int] | None = None) -> int:
    """The outbox consumer: pair each event with every endpoint (of ``endpoint_ids``, or every
    active one) that wants its type and whose partner knows its member, keeping that partner's
    ``external_id``. One INSERT ... SELECT for the whole batch: pairing costs the program next to
    nothing per event; the body is made at the first try (``_body_of``). Safe to run twice (one
    delivery per endpoint and event id)."""
    if not event_ids:
        return 0
    now = timezone.now()
    delivery, event, link = WebhookDelivery._meta.db_table, OutboxEvent._meta.db_table, ExternalId._meta.db_table
    endpoint, subscription = WebhookEndpoint._meta.db_table, WebhookSubscription._meta.db_table
    events_match, event_params = bulk.any_of("o.id", event_ids)
    if endpoint_ids is None:
        endpoints_match, endpoint_params = "w.active", []
    else:
        endpoints_match, endpoint_params = bulk.any_of("w.id", endpoint_ids)
    with connection.cursor() as cursor:
        # In key order, as bulk.insert_new inserts: a relay and a replay at once cannot deadlock.
        cursor.execute(
            f'INSERT INTO "{delivery}" (endpoint_id, event_id, type, outbox_event_id, external_id, status, attempts, '
            f"next_attempt_at, created_at) "
            f"SELECT w.id, o.event_id, o.type, o.id, x.external_id, %s, 0, %s, %s "
            f'FROM "{event}" o JOIN "{link}" x ON x.member_id = o.member_id '
            f'JOIN "{endpoint}" w ON w.partner_id = x.partner_id '
            f'JOIN "{subscription}" s ON s.endpoint_id = w.id AND s.type IN (o.type, %s) '
            f"WHERE {events_match} AND {endpoints_match} ORDER BY w.id, o.event_id "
            f"ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id, endpoint_id",
            [DeliveryStatus.PENDING, now, now, "*", *event_params, *endpoint_params])
        inserted = cursor.fetchall()
    # An erased member's ids are forgotten in the transaction that erased them: the event carries them.
    with connection.cursor() as cursor:  # the ORM would spend longer building a thousand-id IN than it runs
        cursor.execute(f'SELECT o.id FROM "{event}" o WHERE {events_match} AND o.type = %s',
                       [*event_params, "member.erased"])
        erased_ids = [pk for (pk,) in cursor.fetchall()]
    if erased_ids:
        erased = list(OutboxEvent.objects.filter(pk__in=erased_ids))
        endpoints = WebhookEndpoint.objects.filter(active=True) if endpoint_ids is None else \
            WebhookEndpoint.objects.filter(pk__in=endpoint_ids)
        by_partner: dict[int, list[WebhookEndpoint]] = {}
        for found in endpoints:
            by_partner.setdefault(found.partner_id, []).append(found)
        rows = [(found.pk, e.event_id, e.type, e.pk, external_id, DeliveryStatus.PENDING, 0, now, now)
                for e in erased for partner_id, external_id in e.data.get("external_ids", {}).items()
                for found in by_partner.get(int(partner_id), ()) if found.wants(e.type)]
        made = bulk.insert_new(WebhookDelivery, ("endpoint_id", "event_id", "type", "outbox_event_id", "external_id",
                                                 "status", "attempts", "next_attempt_at", "created_at"), rows,
                               unique=("endpoint_id", "event_id"))
        inserted += [(pk, endpoint_id) for (endpoint_id, _), pk in made.items()]
    # At most WEBHOOK_ENDPOINT_CONCURRENCY tries per endpoint start now; each, when done, starts the
    # endpoint's next due one. A slow or dead endpoint so holds at most that many workers.
    limit = _limit() or len(inserted)
    first: dict[int, list[int]] = {}
    for delivery_id, endpoint_id in sorted(inserted):
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
    found = list(events.values_list("pk", "event_id")[:100_000])
    with transaction.atomic():
        created = deliveries_create(event_ids=[pk for pk, _ in found], endpoint_ids=[endpoint.pk])
        again = list(WebhookDelivery.objects.filter(endpoint=endpoint, event_id__in=[e for _, e in found])
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


_DELIVERIES, _ENDPOINTS = WebhookDelivery._meta.db_table, WebhookEndpoint._meta.db_table
_ATTEMPTS = WebhookAttempt._meta.db_table
# Due and no worker holds it (``core.claims.unclaimed``), in SQL: a try is claimed and recorded by a
# handful of plain statements (the ORM took longer to build them than PostgreSQL to run them).
_DUE = "status = %s AND next_attempt_at <= %s AND (claimed_until IS NULL OR claimed_until <= %s)"


def _claim(*, delivery_id: int | None, endpoint_id: int | None, now: datetime) -> WebhookDelivery | str:
    """Claim a due try: this delivery, or the endpoint's next due one, if fewer than the endpoint's
    limit are being sent. Claims on one endpoint take turns (its row is locked for the claim only)."""
    until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    limit = _limit()
    with transaction.atomic():
        # The endpoint's row, locked; the claim below is a statement of its own, so its count of the
        # tries in flight sees every claim committed while this one waited for the lock.
        endpoint = next(iter(WebhookEndpoint.objects.raw(
            f'SELECT * FROM "{_ENDPOINTS}" WHERE id = COALESCE(%s, (SELECT endpoint_id FROM "{_DELIVERIES}" '
            f"WHERE id = %s)){bulk.lock_clause()}", [endpoint_id, delivery_id])), None)
        if endpoint is None:
            return "not due"
        if not endpoint.active:
            return "endpoint disabled"
        only = "" if delivery_id is None else " AND id = %s"
        room = "" if limit is None else \
            f' AND (SELECT COUNT(*) FROM "{_DELIVERIES}" WHERE endpoint_id = %s AND claimed_until > %s) < %s'
        params = [until, endpoint.pk, DeliveryStatus.PENDING, now, now, *([delivery_id] if only else []),
                  *([endpoint.pk, now, limit] if room else [])]
        delivery = next(iter(WebhookDelivery.objects.raw(
            f'UPDATE "{_DELIVERIES}" SET claimed_until = %s WHERE id = (SELECT id FROM "{_DELIVERIES}" '
            f"WHERE endpoint_id = %s AND {_DUE}{only} ORDER BY next_attempt_at, id LIMIT 1{bulk.skip_locked()})"
            f"{room} RETURNING *", bulk.db_values(*params))), None)
        if delivery is None:
            if room and WebhookDelivery.objects.filter(endpoint=endpoint, claimed_until__gt=now).count() >= limit:
                return "busy"  # the tries in flight, when done, take the next due one: this one included
            return "not due"
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
    payload = _body_of(delivery)
    if payload is None:
        answer = Answer(None, 0, f"The event is no longer kept (OUTBOX_RETENTION_DAYS = "
                                 f"{settings.OUTBOX_RETENTION_DAYS}).")
    else:
        body = json.dumps(payload, separators=(",", ":"))
        headers = signature_headers(endpoint=endpoint, event_id=delivery.event_id, body=body, now=now)
        answer = post(endpoint.url, body.encode(), headers)
    ok = answer.status_code is not None and 200 <= answer.status_code < 300
    done = timezone.now()
    attempts = delivery.attempts + 1
    retry = None if ok or answer.status_code == 410 or payload is None else _delay(attempts, answer.retry_after)
    if ok:
        status, next_attempt_at = DeliveryStatus.SUCCEEDED, None
    elif retry is None:
        status, next_attempt_at = DeliveryStatus.FAILED, None
    else:
        status, next_attempt_at = DeliveryStatus.PENDING, done + retry
    more = False
    with transaction.atomic():
        with bulk.pipeline(), connection.cursor() as cursor:  # one round trip on PostgreSQL
            # Only while the claim is ours: if it ran out and another worker took the try, theirs counts.
            cursor.execute(
                f'UPDATE "{_DELIVERIES}" SET attempts = %s, claimed_until = NULL, payload = %s, status = %s, '
                f"delivered_at = %s, next_attempt_at = %s WHERE id = %s AND claimed_until = %s",
                bulk.db_values(attempts, None if payload is None else bulk.json_text(payload), status,
                               done if ok else None, next_attempt_at, delivery.pk, delivery.claimed_until))
            cursor.execute(
                f'INSERT INTO "{_ATTEMPTS}" (delivery_id, endpoint_id, at, status_code, duration_ms, error, '
                f"next_retry_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                bulk.db_values(delivery.pk, endpoint.pk, now, answer.status_code, answer.duration_ms,
                               answer.error[:300], next_attempt_at))
            if _limit() is not None:
                cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{_DELIVERIES}" WHERE endpoint_id = %s AND {_DUE})',
                               bulk.db_values(endpoint.pk, DeliveryStatus.PENDING, done, done))
                more = bool(cursor.fetchone()[0])
        if payload is not None:  # a try that never left says nothing of the endpoint's health
            _endpoint_health(endpoint=endpoint, ok=ok, gone=answer.status_code == 410, now=done)
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
