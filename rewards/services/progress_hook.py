"""Queueing the re-check of tiers, badges and challenges after an activity (see ``progress``)."""

from django.db import transaction

from rewards.program import current_program

# Other apps that react to what members did: fn(member_ids=, activity_types=), called where the
# activities were recorded (the feedback app: a referred friend's order or refund).
ACTIVITY_HOOKS: list = []


def progress_check_after_commit(*, member_ids, activity_types) -> None:
    """Queue the re-check of tiers, badges and challenges for these members, once the current
    transaction commits. Nothing is queued when the program has none of them."""
    if member_ids:
        for hook in ACTIVITY_HOOKS:
            hook(member_ids=member_ids, activity_types=activity_types)
    if not member_ids or not current_program().tracks_progress:
        return
    from rewards.tasks import evaluate_progress

    ids, types = sorted(set(member_ids)), sorted(set(activity_types))
    transaction.on_commit(lambda: evaluate_progress.delay(member_ids=ids, activity_types=types))
