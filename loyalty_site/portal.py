"""What the member portal's dashboard shows, gathered from the apps that own each part."""

from accounts import selectors as accounts_selectors
from accounts.models import Member
from community.selectors import bought_not_reviewed
from feedback.selectors import surveys_for
from recommendations.selectors import recommendations_for_member
from rewards import selectors as rewards_selectors

FOR_YOU_ON_DASHBOARD = 4


def dashboard_context(*, member: Member) -> dict:
    active_challenges, _ = rewards_selectors.challenge_cards(member=member, include_finished=False)
    return {
        "member": member,
        "pending": rewards_selectors.pending_batches(member=member, limit=3),
        "expiring": rewards_selectors.expiring_soon(member_ids=[member.pk])[member.pk],
        "recent": list(rewards_selectors.recent_entries(member=member, limit=8)),
        "next_rewards": [item for item in rewards_selectors.catalog(member=member) if not item.blocked][:3],
        "tier": rewards_selectors.tier_progress(member=member),
        "new_badges": rewards_selectors.badges_latest(member=member, limit=4),
        "challenges": active_challenges[:3],
        "notes": list(accounts_selectors.notifications(member=member)[:5]),
        "surveys": surveys_for(member=member)[:2],
        "to_review": bought_not_reviewed(member=member, limit=3),
        "for_you": recommendations_for_member(member=member, limit=FOR_YOU_ON_DASHBOARD),
    }
