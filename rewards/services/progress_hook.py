"""After activities: tell the rest of the program (``activities.recorded`` in ``core.events``),
which re-checks tiers, badges and challenges and referrals."""

from core.events import Emitted, emit_many


def progress_check_after_commit(*, member_ids, activity_types) -> None:
    """Announce that these members did ``activity_types`` (an internal event: its reactions queue
    the re-check of their progress after commit and check their referrals)."""
    types = sorted(set(activity_types))
    emit_many("activities.recorded", [Emitted(member_id, {"types": types}) for member_id in sorted(set(member_ids))])
