"""Scheduled work of the points engine. Each task is safe to run twice and catches up after downtime."""

from celery import shared_task

from rewards import services


@shared_task(name="rewards.release_pending_points")
def release_pending_points() -> int:
    return services.pending_release_due()


@shared_task(name="rewards.expire_points")
def expire_points() -> int:
    return services.points_expire_due()


@shared_task(name="rewards.award_birthdays")
def award_birthdays() -> int:
    return services.birthdays_award()
