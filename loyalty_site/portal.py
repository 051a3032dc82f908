"""What the member portal's dashboard shows, gathered from the apps that own each part."""

from accounts.models import Member
from rewards import selectors as rewards_selectors

# Apps add cards to the dashboard: ``fn(member) -> dict`` merged into the template context.
DASHBOARD_SECTIONS: list = []


def dashboard_context(*, member: Member) -> dict:
    context = {
        "member": member,
        "pending": rewards_selectors.pending_batches(member=member, limit=3),
        "expiring": rewards_selectors.expiring_soon(member_ids=[member.pk])[member.pk],
        "recent": list(rewards_selectors.recent_entries(member=member, limit=8)),
        "next_rewards": [item for item in rewards_selectors.catalog(member=member) if not item.blocked][:3],
    }
    for section in DASHBOARD_SECTIONS:
        context.update(section(member))
    return context
