"""Reads of the community page: leaderboards and spotlights. Only public profiles appear."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Sum, Window
from django.db.models.functions import Rank
from django.utils import timezone

from accounts.models import Member
from community.models import PublicProfile, Spotlight
from rewards import criteria
from rewards.models import Challenge, EntryKind, LedgerEntry, MemberTier
from rewards.program import current_program

EARNED = Sum(F("available_delta") + F("pending_delta") - F("owed_delta"))


@dataclass
class Row:
    rank: int
    member_id: int
    name: str
    avatar: str
    tier: str
    value: Decimal


@dataclass
class Leaderboard:
    title: str
    rows: list[Row]
    me: Row | None
    me_public: bool


def _earned(since: datetime | None):
    entries = LedgerEntry.objects.filter(kind__in=[EntryKind.EARN, EntryKind.REVERSE])
    return entries if since is None else entries.filter(effective_at__gte=since)


def _rows(found: list[tuple[int, int, Decimal]]) -> list[Row]:
    """(rank, member, value) rows with each member's public name, avatar and tier, in two queries."""
    ids = [member_id for _, member_id, _ in found]
    profiles = {p.member_id: p for p in PublicProfile.objects.filter(member_id__in=ids)}
    tiers = dict(MemberTier.objects.filter(member_id__in=ids).values_list("member_id", "tier__name"))
    base = current_program().base_tier
    rows = []
    for rank, member_id, value in found:
        profile = profiles.get(member_id)
        rows.append(Row(rank, member_id, str(profile) if profile else "You", profile.avatar.url
                        if profile and profile.avatar else "", tiers.get(member_id, base.name if base else ""),
                        value))
    return rows


def points_leaderboard(*, title: str, since: datetime | None, member: Member | None, limit: int = 10) -> Leaderboard:
    """Points earned since ``since`` (all time when None), ranked in the database among public
    profiles; the member's own rank as well, even outside the top list or when not public (then:
    where they would stand)."""
    public = _earned(since).filter(member__public_profile__is_public=True)
    top = (
        public.values("member_id").annotate(points=EARNED).filter(points__gt=0)
        .annotate(rank=Window(Rank(), order_by=F("points").desc())).order_by("rank", "member_id")[:limit]
    )
    rows = _rows([(row["rank"], row["member_id"], row["points"]) for row in top])
    me, me_public = None, False
    if member is not None:
        me_public = PublicProfile.objects.filter(member=member, is_public=True).exists()
        mine = _earned(since).filter(member=member).aggregate(points=EARNED)["points"] or 0
        if mine > 0:
            ahead = (public.exclude(member=member).values("member_id").annotate(points=EARNED)
                     .filter(points__gt=mine).count())
            me = Row(ahead + 1, member.pk, "You", "", "", Decimal(mine))
    return Leaderboard(title, rows, me, me_public)


def challenge_leaderboards(*, member: Member | None, limit: int = 10, now: datetime | None = None) -> list[Leaderboard]:
    """For each running challenge, the public members furthest along."""
    now = now or timezone.now()
    program = current_program()
    boards = []
    public_ids = list(PublicProfile.objects.filter(is_public=True).values_list("member_id", flat=True))
    public = set(public_ids)
    for challenge in Challenge.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now):
        ids = public_ids + ([member.pk] if member is not None and member.pk not in public_ids else [])
        values = criteria.values(challenge.criterion, activity_type=challenge.activity_type, member_ids=ids,
                                 window=criteria.Window(challenge.starts_at, challenge.ends_at),
                                 currency=program.settings.currency, now=now)
        ranked = sorted(((v, m) for m, v in values.items() if v > 0 and m in public), key=lambda x: (-x[0], x[1]))
        found, rank, previous = [], 0, None
        for position, (value, member_id) in enumerate(ranked, start=1):
            rank = rank if value == previous else position
            previous = value
            found.append((rank, member_id, value))
        me = None
        if member is not None and values.get(member.pk, 0) > 0:
            mine = values[member.pk]
            me = Row(1 + sum(1 for v, m in ranked if v > mine and m != member.pk), member.pk, "You", "", "", mine)
        boards.append(Leaderboard(challenge.name, _rows(found[:limit]), me, member is not None and member.pk in public))
    return boards


def spotlights(*, now: datetime | None = None):
    now = now or timezone.now()
    return (
        Spotlight.objects.filter(member__public_profile__is_public=True, starts_at__lte=now)
        .exclude(ends_at__lte=now).select_related("member__public_profile")[:3]
    )


def public_member(*, member_id: int):
    """A member's public page data, or None when their profile is not public."""
    profile = PublicProfile.objects.filter(member_id=member_id, is_public=True).select_related("member").first()
    if profile is None or profile.member.erased_at is not None:
        return None
    return profile
