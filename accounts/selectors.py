"""Reads about members that more than one place needs."""

from django.db import connection
from django.utils.module_loading import import_string

from accounts.models import ExternalId, Member, Notification, Partner
from core import bulk
from core.errors import NotFound

# What other apps add to the partner API's member representation: ``fn(member=, partner=) -> dict``.
MEMBER_API_SECTIONS = ["rewards.member_data.member_api_points", "rewards.member_data.member_api_progress"]
# ...and what only keys with a scope see: (scope, path).
MEMBER_API_SCOPED_SECTIONS = [("insights:read", "insights.selectors.member_api_insights")]


def partner_member_ids(partner, external_ids) -> dict[str, int]:
    """``{external id: member id}`` for the customers a partner names, without locking anyone."""
    matches, params = bulk.any_of("external_id", sorted(set(external_ids)))
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT external_id, member_id FROM "{ExternalId._meta.db_table}" '
                       f"WHERE partner_id = %s AND {matches}", [partner.pk, *params])
        return dict(cursor.fetchall())


def member_for_partner(*, partner: Partner, external_id: str, lock: bool = False) -> Member:
    """The member ``partner`` knows as ``external_id``, or ``NotFound`` naming the field."""
    members = Member.objects.select_for_update(no_key=True, of=("self",)) if lock else Member.objects
    member = members.filter(external_ids__partner=partner, external_ids__external_id=external_id).first()
    if member is None:
        raise NotFound(
            f"No member with external_id {external_id!r}.",
            code="unknown_member",
            fields={"member": f"No member with external_id {external_id!r}."},
        )
    return member


def partner_member_ids_query(partner: Partner):
    """The ids of the members a partner is linked to, as a subquery: what that partner may see."""
    return ExternalId.objects.filter(partner=partner).values("member_id")




def member_api_representation(*, member: Member, partner: Partner, external_id: str,
                              scopes=frozenset()) -> dict:
    data = {
        "external_id": external_id,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "phone": member.phone,
        "language": member.language,
        "consents": {
            "offers": member.offers_channel,
            "reminders": member.reminders_channel,
            "surveys": member.surveys_channel,
            "statements": member.statements_channel,
        },
        "referral_code": member.referral_code,
        "member_since": member.created_at.isoformat(),
        "has_portal_login": member.user_id is not None,
        "points": {"available": member.points_available, "pending": member.points_pending,
                   "owed": member.points_owed, "expiring_soon": []},
        "tier": None,
        "badges": [],
    }
    for path in MEMBER_API_SECTIONS:
        data.update(import_string(path)(member=member, partner=partner))
    for scope, path in MEMBER_API_SCOPED_SECTIONS:
        if scope in scopes:
            data.update(import_string(path)(member=member, partner=partner))
    return data


def notifications(*, member: Member):
    """A member's notifications, newest first."""
    return Notification.objects.filter(member=member).order_by("-created_at", "-id")


def unread_notifications(*, user) -> int:
    """How many notifications the member behind this login has not read (0 for anyone else)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(member__user=user, read_at__isnull=True).count()
