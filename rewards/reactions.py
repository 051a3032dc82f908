"""How the points engine reacts to events of the rest of the program (wired in ``core.events``)."""

from django.db import transaction

from accounts.models import Member
from core.events import Emitted
from rewards.models import ActivityType
from rewards.program import current_program
from rewards.services import ActivityInput, activities_record, activity_record


def award_signup(*, event: str, items: list[Emitted]) -> None:
    """member.created: the signup bonus (through the earning rules, once per member)."""
    activities_record(items=[
        ActivityInput(member_id=item.member_id, type=ActivityType.SIGNUP, source_key=f"signup:{item.member_id}",
                      occurred_at=item.at, description="Welcome to the program")
        for item in items
    ])


def award_profile_completed(*, event: str, items: list[Emitted]) -> None:
    """member.updated from the portal: the bonus for a complete profile, once."""
    ids = [item.member_id for item in items if item.data.get("source") == "portal"]
    for member in Member.objects.filter(pk__in=ids):
        if member.first_name and member.last_name and member.birthday and member.phone:
            activity_record(member=member, type=ActivityType.PROFILE_COMPLETED, source_key=f"profile:{member.pk}",
                            description="Completed your profile")


def check_progress(*, event: str, items: list[Emitted]) -> None:
    """activities.recorded: re-check tiers, badges and challenges once the transaction commits."""
    if not current_program().tracks_progress:
        return
    from rewards.tasks import evaluate_progress

    ids = sorted({item.member_id for item in items})
    types = sorted({kind for item in items for kind in item.data["types"]})
    transaction.on_commit(lambda: evaluate_progress.delay(member_ids=ids, activity_types=types))
