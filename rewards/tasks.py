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


@shared_task(name="rewards.evaluate_progress")
def evaluate_progress(member_ids: list[int], activity_types: list[str]) -> dict:
    """Tiers, badges and challenges of members who just did something."""
    from rewards.services.progress import progress_evaluate

    return progress_evaluate(member_ids=member_ids, activity_types=activity_types)


@shared_task(name="rewards.nightly_progress")
def nightly_progress() -> dict:
    """Everyone: tier reviews, warnings and upgrades, badges (years of membership), challenges."""
    from rewards.services.progress import progress_evaluate

    return progress_evaluate()


@shared_task(name="rewards.backfill_badge")
def backfill_badge(badge_id: int) -> int:
    from rewards.services.progress import badge_backfill

    return badge_backfill(badge_id=badge_id)
