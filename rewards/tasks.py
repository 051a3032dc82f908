"""Scheduled work of the points engine. Each task is safe to run twice and catches up after downtime."""

import random

from celery import shared_task
from django.db import OperationalError

from core import bulk
from rewards import services

PROGRESS_RETRIES = 5


@shared_task(name="rewards.release_pending_points")
def release_pending_points() -> int:
    return services.pending_release_due()


@shared_task(name="rewards.expire_points")
def expire_points() -> int:
    return services.points_expire_due()


@shared_task(name="rewards.award_birthdays")
def award_birthdays() -> int:
    return services.birthdays_award()


@shared_task(name="rewards.evaluate_progress", bind=True, max_retries=PROGRESS_RETRIES)
def evaluate_progress(self, member_ids: list[int], activity_types: list[str]) -> dict:
    """Tiers, badges and challenges of members who just did something.

    A batch locks its members in key order, but a transaction elsewhere that records activities
    for several members one call after another may hold them in another order: PostgreSQL then
    aborts one of the two (a deadlock). When that is this check, it runs again a moment later
    (it changes nothing twice), instead of leaving the members to the nightly pass."""
    from rewards.services.progress import progress_evaluate

    try:
        return progress_evaluate(member_ids=member_ids, activity_types=activity_types)
    except OperationalError as exc:
        if not bulk.gave_way(exc) or self.request.is_eager:  # inline, the caller decides
            raise
        raise self.retry(exc=exc, countdown=random.uniform(0.5, 1.5) * (self.request.retries + 1)) from exc


@shared_task(name="rewards.nightly_progress")
def nightly_progress() -> dict:
    """Everyone: tier reviews, warnings and upgrades, badges (years of membership), challenges."""
    from rewards.services.progress import progress_evaluate

    return progress_evaluate()


@shared_task(name="rewards.backfill_badge")
def backfill_badge(badge_id: int) -> int:
    from rewards.services.progress import badge_backfill

    return badge_backfill(badge_id=badge_id)
