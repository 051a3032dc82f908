"""What the points engine tells about a member: in their data download (``accounts.services.EXPORT_SECTIONS``)
and in the partner API's member representation (``accounts.selectors.MEMBER_API_SECTIONS``)."""

from accounts.models import Member, Partner
from rewards.models import MemberBadge
from rewards.program import current_program
from rewards.selectors import expiring_soon, history, measure_str, tier_progress


def member_export_points(member: Member) -> dict:
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


def member_export_progress(member: Member) -> dict:
    """The member's tier history, badges and challenges, for their data download."""
    return {
        "tier_history": [
            {"at": c.created_at.isoformat(), "from": c.from_tier.name if c.from_tier else None,
             "to": c.to_tier.name if c.to_tier else None, "cause": c.cause, "reason": c.reason}
            for c in member.tier_changes.select_related("from_tier", "to_tier").order_by("created_at", "id")
        ],
        "badges": [
            {"badge": held.level.badge.name, "level": held.level.name, "awarded_at": held.awarded_at.isoformat()}
            for held in member.badges.select_related("level__badge").order_by("awarded_at", "id")
        ],
        "challenges": [
            {"challenge": entry.challenge.name, "joined_at": entry.joined_at.isoformat(),
             "completed_at": entry.completed_at.isoformat() if entry.completed_at else None}
            for entry in member.challenge_entries.select_related("challenge").order_by("joined_at", "id")
        ],
    }


def member_api_progress(*, member: Member, partner: Partner) -> dict:
    """Tier (with progress in plain words) and badges, for the partner API's member representation."""
    progress = tier_progress(member=member)
    program = current_program()
    tier = None
    if progress is not None and progress.tier is not None:
        tier = {
            "name": progress.tier.name, "rank": progress.tier.rank,
            "period_end": progress.period_end.isoformat() if progress.period_end else None,
            "measure": measure_str(program, progress.measure),
            "next": ({"name": progress.next_tier.name, "needed": measure_str(program, progress.to_next)}
                     if progress.next_tier else None),
            "progress": progress.to_next_text, "keep": progress.keep_text,
        }
    badges = [
        {"badge": held.level.badge.name, "slug": held.level.badge.slug, "level": held.level.name,
         "awarded_at": held.awarded_at.isoformat()}
        for held in MemberBadge.objects.filter(member=member).select_related("level__badge").order_by("awarded_at")
    ]
    return {"tier": tier, "badges": badges}


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
