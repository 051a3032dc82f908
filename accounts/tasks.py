from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from accounts.models import IdempotencyRecord


@shared_task(name="accounts.purge_idempotency_keys")
def purge_idempotency_keys(days: int = 7) -> int:
    """Forget idempotency keys older than ``days``; safe to run any number of times."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
