"""How surveys and referrals react to events of the rest of the program (wired in ``core.events``)."""

from accounts.models import Member
from core.events import Emitted
from feedback import services


def check_referrals(*, event: str, items: list[Emitted]) -> None:
    """activities.recorded: a referred friend's order converts the referral; a refund may void it."""
    services.after_activities(member_ids=[item.member_id for item in items],
                              activity_types=sorted({kind for item in items for kind in item.data["types"]}))


def erase_member_feedback(*, event: str, items: list[Emitted]) -> None:
    """member.erased: the friends' addresses the member invited, and what they wrote in surveys."""
    for member in Member.objects.filter(pk__in=[item.member_id for item in items]):
        services.member_feedback_erase(member=member)
