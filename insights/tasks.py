"""Scheduled work of insights. Safe to run twice: a snapshot of a day replaces that day's."""

from celery import shared_task
from django.utils import timezone

from insights import services
from insights.models import SnapshotRun


@shared_task(name="insights.nightly_snapshot")
def nightly_snapshot() -> str:
    return str(services.snapshot_compute().day)


@shared_task(name="insights.compute_snapshot")
def compute_snapshot(run_id: int) -> str:
    run = SnapshotRun.objects.get(pk=run_id)
    try:
        return str(services.snapshot_compute(day=run.day, run=run).day)
    except Exception as exc:
        SnapshotRun.objects.filter(pk=run_id).update(error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        raise
