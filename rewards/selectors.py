"""Reads of the points engine: what the portal, the API and the admin show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Member, Notification
from rewards import criteria
from rewards.models import (
    Badge,
    BadgeLevel,
    Challenge,
    ChallengeEntry,
    Coupon,
    EntryKind,
    LedgerEntry,
    MemberBadge,
    MemberTier,
    PointsLot,
    Redemption,
    Reward,
)
from rewards.program import current_program
from rewards.services import reward_check


@dataclass
class PendingBatch:
    points: int
    available_at: datetime


@dataclass
class ExpiringBatch:
    points: int
    expires_at: datetime


def pending_batches(*, member: Member, limit: int = 5) -> list[PendingBatch]:
    """Pending points grouped by the moment they become available, soonest first."""
    rows = (
        LedgerEntry.objects.filter(member=member, kind=EntryKind.EARN, pending_delta__gt=0)
        .exclude(followers__kind=EntryKind.RELEASE)
        .annotate(reversed=Coalesce(Sum("followers__pending_delta", filter=Q(followers__kind=EntryKind.REVERSE)), 0))
        .values_list("available_at", "pending_delta", "reversed")
        .order_by("available_at")
    )
    batches: dict[datetime, int] = {}
    for available_at, pending, reversed_ in rows:
        if pending + reversed_ > 0:
            batches[available_at] = batches.get(available_at, 0) + pending + reversed_
    return [PendingBatch(points, at) for at, points in list(batches.items())[:limit]]


def expiring_soon(*, member_ids, now: datetime | None = None) -> dict[int, list[ExpiringBatch]]:
    """Available points that expire within the program's 'soon' window, by member, soonest first."""
    now = now or timezone.now()
    horizon = now + timedelta(days=current_program().settings.expiring_soon_days)
    rows = (
        PointsLot.objects.filter(member_id__in=member_ids, remaining__gt=0, expires_at__gt=now,
                                 expires_at__lte=horizon)
        .values("member_id", "expires_at").annotate(points=Sum("remaining")).order_by("member_id", "expires_at")
    )
    out: dict[int, list[ExpiringBatch]] = {member_id: [] for member_id in member_ids}
    for row in rows:
        out[row["member_id"]].append(ExpiringBatch(row["points"], row["expires_at"]))
    return out


def recent_entries(*, member: Member, limit: int = 8):
    return LedgerEntry.objects.filter(member=member).order_by("-effective_at", "-id")[:limit]


def history(*, member: Member, kind: str | None = None):
    """A member's ledger, newest first by when it happened (an imported order sits at its own date)."""
    entries = LedgerEntry.objects.filter(member=member).order_by("-effective_at", "-id")
    if kind:
        entries = entries.filter(kind=kind)
    return entries


@dataclass
class CatalogItem:
    reward: Reward
    affordable: bool
    points_short: int
    blocked: str | None
    redeemed: int

    @property
    def redeemable(self) -> bool:
        return self.affordable and self.blocked is None

    @property
    def progress_percent(self) -> int:
        cost = self.reward.points_cost
        return 100 if self.affordable else int(100 * (cost - self.points_short) / cost)


def catalog(*, member: Member | None, now: datetime | None = None) -> list[CatalogItem]:
    """The rewards on offer now, with what this member can afford and what holds the rest back."""
    now = now or timezone.now()
    # Rewards not open yet are listed too when a tier may see them early.
    rewards = list(
        Reward.objects.filter(is_active=True)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now) | Q(early_access_from__isnull=False),
                Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .prefetch_related("tiers", "early_access_tiers")
        .order_by("points_cost", "id")
    )
    tier_id = None
    if member is not None and current_program().tiers:
        from rewards.services.tiers import member_tier_ids

        tier_id = member_tier_ids([member.pk])[member.pk]
    counts: dict[int, int] = {}
    if member is not None:
        counts = dict(
            Redemption.objects.filter(member=member).values_list("reward_id").annotate(n=Count("id")).order_by()
        )
    available = member.points_available if member is not None else 0
    items = []
    for reward in rewards:
        if member is None and reward.valid_from and reward.valid_from > now:
            continue  # early access is for members of some tiers; the public list shows what is open
        blocked = reward_check(reward=reward, member=member, tier_id=tier_id, now=now) if member else None
        redeemed = counts.get(reward.pk, 0)
        if blocked is None and reward.per_member_limit is not None and redeemed >= reward.per_member_limit:
            blocked = f"You have redeemed this {redeemed} times, the most allowed."
        short = max(0, reward.points_cost - available)
        items.append(CatalogItem(reward, short == 0, short, blocked, redeemed))
    return items


def redeemable_rewards(*, member: Member) -> list[Reward]:
    return [item.reward for item in catalog(member=member) if item.redeemable]


def coupons(*, member: Member):
    return Coupon.objects.filter(member=member).select_related("reward").order_by("-created_at", "-id")


def ledger_discrepancies():
    """Members whose cached balances differ from the sums of their ledger entries or lots."""
    def total(field: str):
        return Coalesce(
            Subquery(
                LedgerEntry.objects.filter(member=OuterRef("pk")).order_by().values("member")
                .annotate(s=Sum(field)).values("s"),
                output_field=IntegerField(),
            ),
            Value(0),
        )

    lots = Coalesce(
        Subquery(
            PointsLot.objects.filter(member=OuterRef("pk"), remaining__gt=0).order_by().values("member")
            .annotate(s=Sum("remaining")).values("s"),
            output_field=IntegerField(),
        ),
        Value(0),
    )
    return (
        Member.objects.annotate(ledger_available=total("available_delta"), ledger_pending=total("pending_delta"),
                                ledger_owed=total("owed_delta"), lots_remaining=lots)
        .filter(
            ~Q(points_available=F("ledger_available")) | ~Q(points_pending=F("ledger_pending"))
            | ~Q(points_owed=F("ledger_owed")) | ~Q(points_available=F("lots_remaining"))
        )
        .values("pk", "points_available", "ledger_available", "lots_remaining", "points_pending", "ledger_pending",
                "points_owed", "ledger_owed")
        .order_by("pk")
    )


def order_preview(*, partner, member, currency: str, placed_at, discount, lines) -> dict:
    """What an order would earn now, rule by rule, without recording anything (staff preview)."""
    from types import SimpleNamespace

    from rewards import rules
    from rewards.payloads import LineInput
    from rewards.services import CapTracker, order_line_values

    program = current_program()
    inputs = [LineInput(sku, "", category, quantity, price) for sku, category, quantity, price in lines]
    occasion = rules.Occasion(activity_type="order", at=placed_at, partner_id=partner.pk if partner else None,
                              currency=currency, lines=order_line_values(SimpleNamespace(discount=discount), inputs))
    specs = list(program.specs)
    results = rules.evaluate(rules.select(specs, occasion), occasion)
    if member is not None:
        caps = CapTracker(program, [member.pk], [placed_at])
        today, month = caps.used(member.pk, program.local_date(placed_at))
        results = rules.apply_caps(results, used_today=today, used_this_month=month)
    earned = {r.spec.id: r.points for r in results}
    return {
        "merchandise": sum((line.amount for line in inputs), 0),
        "total": sum(earned.values()),
        "rules": [
            {"spec": spec, "points": earned.get(spec.id), "why_not": why}
            for spec, why in rules.explain(specs, occasion)
        ],
        "available_at": program.available_at(placed_at),
        "expires_at": program.expires_at(placed_at),
    }


# --- Tiers, badges, challenges ---------------------------------------------------------------------


@dataclass
class TierProgress:
    tier: object | None
    next_tier: object | None
    tiers: list
    measure: Decimal
    window_start: datetime
    to_next: Decimal | None
    to_next_text: str
    period_end: datetime | None
    keep_text: str
    manual_until: datetime | None
    percent: int


def tier_progress(*, member: Member, now: datetime | None = None) -> TierProgress | None:
    """Where a member stands, in plain words: their tier, what the next one takes, what keeps this one."""
    from rewards.services import tiers as tier_rules

    program = current_program()
    if not program.tiers:
        return None
    now = now or timezone.now()
    status = MemberTier.objects.filter(member=member).select_related("tier").first()
    measure = tier_rules.measures(program, member_ids=[member.pk], end=now).get(member.pk, Decimal(0))
    current = next((t for t in program.tiers if status and t.pk == status.tier_id), program.base_tier)
    rank = current.rank if current else -1
    next_tier = next((t for t in program.tiers if t.rank > rank), None)
    window = tier_rules.window_ending(program, now)
    to_next, to_next_text = None, ""
    if next_tier is not None:
        to_next = max(next_tier.threshold - measure, Decimal(0))
        counted = tier_rules.describe_measure(program, to_next)
        if program.settings.tier_window == "calendar_year":
            year_end = datetime(window.start.year + 1, 1, 1, tzinfo=program.tz) - timedelta(days=1)
            to_next_text = f"{counted} more to reach {next_tier.name}, by {year_end:%d %b %Y}."
        else:
            to_next_text = (f"{counted} more to reach {next_tier.name}; what you earned since "
                            f"{timezone.localtime(window.start, program.tz):%d %b %Y} counts.")
    keep_text = ""
    if status and current:
        until = timezone.localtime(status.period_end, program.tz)
        if status.manual_until and status.manual_until > now:
            keep_text = f"You are {current.name} until at least {timezone.localtime(status.manual_until):%d %b %Y}."
        elif measure >= current.threshold:
            keep_text = f"You have done enough to keep {current.name} after {until:%d %b %Y}."
        else:
            needed = tier_rules.describe_measure(program, current.threshold - measure)
            keep_text = f"{current.name} is yours until {until:%d %b %Y}. To keep it after that: {needed} more."
    low = current.threshold if current else Decimal(0)
    high = next_tier.threshold if next_tier else None
    percent = 100 if high is None else int(100 * max(Decimal(0), min(measure - low, high - low)) / (high - low or 1))
    return TierProgress(tier=current, next_tier=next_tier, tiers=list(program.tiers), measure=measure,
                        window_start=window.start, to_next=to_next, to_next_text=to_next_text,
                        period_end=status.period_end if status else None, keep_text=keep_text,
                        manual_until=status.manual_until if status else None, percent=percent)


@dataclass
class BadgeCard:
    badge: Badge
    levels: list
    earned: list  # (level, awarded_at)
    level_states: list  # (level, awarded_at or None), every level in order
    next_level: BadgeLevel | None
    value: Decimal
    to_go: str
    percent: int


def badge_cards(*, member: Member, now: datetime | None = None) -> list[BadgeCard]:
    """Every active badge with what the member earned and what the next level takes."""
    now = now or timezone.now()
    program = current_program()
    badges = list(Badge.objects.filter(is_active=True).prefetch_related("levels"))
    held = dict(MemberBadge.objects.filter(member=member).values_list("level_id", "awarded_at"))
    pairs = {(b.criterion, b.activity_type) for b in badges}
    found = criteria.values_for_member(member.pk, pairs, currency=program.settings.currency, now=now)
    cards = []
    for badge in badges:
        levels = list(badge.levels.all())
        value = found.get((badge.criterion, badge.activity_type), Decimal(0))
        earned = [(level, held[level.pk]) for level in levels if level.pk in held]
        next_level = next((level for level in levels if level.pk not in held), None)
        to_go, percent = "", 100
        if next_level is not None:
            needed = max(next_level.threshold - value, Decimal(0))
            to_go = criteria.to_go(badge.criterion, activity_type=badge.activity_type, needed=needed,
                                   currency=program.settings.currency) if needed else "on its way"
            percent = int(100 * min(value, next_level.threshold) / (next_level.threshold or 1))
        states = [(level, held.get(level.pk)) for level in levels]
        cards.append(BadgeCard(badge, levels, earned, states, next_level, value, to_go, percent))
    return cards


@dataclass
class ChallengeCard:
    challenge: Challenge
    value: Decimal
    percent: int
    joined: bool
    completed_at: datetime | None
    time_left: timedelta | None


def challenge_cards(*, member: Member, now: datetime | None = None, include_finished: bool = True
                    ) -> tuple[list[ChallengeCard], list[ChallengeCard]]:
    """Active challenges with the member's progress and time left; and those they finished."""
    now = now or timezone.now()
    program = current_program()
    active = list(Challenge.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now))
    entries = {e.challenge_id: e for e in ChallengeEntry.objects.filter(member=member).select_related("challenge")}
    cards = []
    for challenge in active:
        entry = entries.get(challenge.pk)
        value = criteria.values(challenge.criterion, activity_type=challenge.activity_type, member_ids=[member.pk],
                                window=criteria.Window(challenge.starts_at, challenge.ends_at),
                                currency=program.settings.currency, now=now).get(member.pk, Decimal(0))
        cards.append(ChallengeCard(
            challenge, value, int(100 * min(value, challenge.threshold) / (challenge.threshold or 1)),
            joined=entry is not None or challenge.enrollment == "automatic",
            completed_at=entry.completed_at if entry else None, time_left=challenge.ends_at - now,
        ))
    finished = [] if not include_finished else [
        ChallengeCard(e.challenge, e.challenge.threshold, 100, True, e.completed_at, None)
        for e in entries.values() if e.completed_at is not None and e.challenge.ends_at <= now
    ]
    return cards, finished


def notifications(*, member: Member, limit: int = 5):
    return Notification.objects.filter(member=member).order_by("-created_at", "-id")[:limit]
