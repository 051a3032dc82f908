"""How the points engine reacts to the rest of the program (registered in ``RewardsConfig.ready``)."""

from accounts.models import Member, Partner
from rewards.models import ActivityType
from rewards.selectors import expiring_soon, history
from rewards.services import ActivityInput, activities_record, activity_record


def on_members_created(*, members: list[Member]) -> None:
    activities_record(items=[
        ActivityInput(member_id=member.pk, type=ActivityType.SIGNUP, source_key=f"signup:{member.pk}",
                      occurred_at=member.created_at, description="Welcome to the program")
        for member in members
    ])


def on_profile_updated(*, member: Member) -> None:
    if member.first_name and member.last_name and member.birthday and member.phone:
        activity_record(member=member, type=ActivityType.PROFILE_COMPLETED, source_key=f"profile:{member.pk}",
                        description="Completed your profile")


def export_points(member: Member) -> dict:
    return {
        "available": member.points_available,
        "pending": member.points_pending,
        "owed": member.points_owed,
        "ledger": [
            {"at": e.created_at.isoformat(), "kind": e.kind, "points": e.points, "description": e.description}
            for e in history(member=member)
        ],
        "orders": [
            {"order_id": o.order_id, "placed_at": o.placed_at.isoformat(), "currency": o.currency,
             "total": str(o.total), "points": o.points, "status": o.status}
            for o in member.orders.order_by("placed_at")
        ],
        "coupons": [
            {"code": c.code, "reward": c.reward.name, "expires_at": c.expires_at.isoformat(),
             "used_at": c.used_at.isoformat() if c.used_at else None}
            for c in member.coupons.select_related("reward")
        ],
    }


def member_api_points(*, member: Member, partner: Partner) -> dict:
    soon = expiring_soon(member_ids=[member.pk])[member.pk]
    return {
        "points": {
            "available": member.points_available,
            "pending": member.points_pending,
            "owed": member.points_owed,
            "expiring_soon": [{"points": b.points, "expires_at": b.expires_at.isoformat()} for b in soon],
        }
    }
