"""Queueing the re-check of tiers, badges and challenges after an activity (see ``progress``)."""

from django.db import transaction

from rewards.program import current_program


def progress_check_after_commit(*, member_ids, activity_types) -> None:
    """Queue the re-check of tiers, badges and challenges for these members, once the current
    transaction commits. Nothing is queued when the program has none of them."""
    if not member_ids or not current_program().tracks_progress:
        return
    from rewards.tasks import evaluate_progress

    ids, types = sorted(set(member_ids)), sorted(set(activity_types))
    transaction.on_commit(lambda: evaluate_progress.delay(member_ids=ids, activity_types=types))
