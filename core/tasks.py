"""Handing the outbox on: ``relay_outbox`` after every commit that wrote events (and every minute,
to catch up after a crash), and the nightly clean-up."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core import selectors
from core.models import OutboxEvent
from core.services import outbox_mark_relayed

RELAY_BATCH = 1000


@shared_task(name="core.relay_outbox", acks_late=True)
def relay_outbox(max_batches: int = 100) -> int:
    """Give unrelayed events' ids, oldest first, to each consumer in ``OUTBOX_CONSUMERS`` and mark them
    relayed, in one transaction per batch. Rows are taken with SKIP LOCKED, so relays running at
    once share the work instead of doing it twice; a relay that dies leaves its batch unrelayed
    for the next one (consumers must accept an event twice: deliveries are keyed by event id)."""
    done = 0
    consumers = [import_string(path) for path in settings.OUTBOX_CONSUMERS]
    for _ in range(max_batches):
        with transaction.atomic():
            batch = selectors.outbox_unrelayed(limit=RELAY_BATCH, lock=True)
            if not batch:
                break
            for consume in consumers:
                consume(event_ids=batch)
            outbox_mark_relayed(ids=batch)
        done += len(batch)
    return done


@shared_task(name="core.purge_outbox")
def purge_outbox() -> int:
    """Forget events older than ``OUTBOX_RETENTION_DAYS`` that were relayed and that no consumer still
    needs (``OUTBOX_KEEP``: a webhook delivery not yet tried is made from its event)."""
    cutoff = timezone.now() - timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    old = OutboxEvent.objects.filter(relayed_at__isnull=False, created_at__lt=cutoff)
    for path in settings.OUTBOX_KEEP:
        old = old.exclude(pk__in=import_string(path)())
    deleted, _ = old.delete()
    return deleted
