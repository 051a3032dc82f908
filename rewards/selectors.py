"""Reads of the points engine: what the portal, the API and the admin show."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, IntegerField, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from accounts.models import Member
from core import l10n
from rewards import criteria, rules
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
    Order,
    OrderStatus,
    PointsAward,
    PointsLot,
    Redemption,
    Reward,
    RuleMember,
    TierMeasure,
    TierWindow,
)
from rewards.program import Program, add_months, current_program


def reward_check(*, reward: Reward, member: Member, tier_id: int | None, now: datetime | None = None) -> str | None:
    """Why ``member`` (in tier ``tier_id``) cannot redeem ``reward`` now (None when they can),
    without the balance. Reads the reward's tiers: prefetch ``tiers`` and ``early_access_tiers``."""
    now = now or timezone.now()
    if not reward.is_active:
        return _("This reward is not offered any more.")
    only = list(reward.tiers.all())
    if only and tier_id not in {tier.pk for tier in only}:
        return _("For %(tiers)s members.") % {"tiers": l10n.and_list(tier.name for tier in only)}
    if reward.valid_from and now < reward.valid_from:
        early = {tier.pk for tier in reward.early_access_tiers.all()}
        if tier_id in early and reward.early_access_from and reward.early_access_from <= now:
            return None if not (reward.stock is not None and reward.stock <= 0) else _("Out of stock.")
        if tier_id in early and reward.early_access_from:
            return _("Early access for you from %(day)s.") % {"day": l10n.short_day(reward.early_access_from)}
        return _("Available from %(day)s.") % {"day": l10n.short_day(reward.valid_from)}
    if reward.valid_to and now >= reward.valid_to:
        return _("This reward has ended.")
    if reward.stock is not None and reward.stock <= 0:
        return _("Out of stock.")
    return None


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


def expiring_by_member(*, start: datetime, end: datetime, min_points: int) -> list[tuple[int, int, datetime]]:
    """(member, points, first expiry) for members with at least ``min_points`` available points
    expiring in (start, end]: one grouped query over the open lots."""
    return list(PointsLot.objects.filter(remaining__gt=0, expires_at__gt=start, expires_at__lte=end,
                                         member__erased_at__isnull=True)
                .values("member_id").annotate(points=Sum("remaining"), first=Min("expires_at"))
                .filter(points__gte=min_points).order_by("member_id").values_list("member_id", "points", "first"))


def points_moved_by_member(*, start: datetime, end: datetime, member_ids=None) -> dict[int, tuple[int, int]]:
    """(points earned, points spent) per member, for entries recorded in [start, end) that happened
    at most two days before they were recorded (an order placed at 23:58 and sent at 00:01 counts;
    an import of last year's orders, recorded today, is not news)."""
    entries = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end,
                                         effective_at__gte=F("created_at") - timedelta(days=2),
                                         member__erased_at__isnull=True, kind__in=[EntryKind.EARN, EntryKind.REDEEM])
    if member_ids is not None:
        entries = entries.filter(member_id__in=list(member_ids))
    rows = (entries.values("member_id")
            .annotate(earned=Coalesce(Sum(F("available_delta") + F("pending_delta"), filter=Q(kind=EntryKind.EARN)), 0),
                      spent=Coalesce(Sum(-F("available_delta"), filter=Q(kind=EntryKind.REDEEM)), 0))
            .order_by("member_id").values_list("member_id", "earned", "spent"))
    return {member_id: (earned, spent) for member_id, earned, spent in rows}


def recent_entries(*, member: Member, limit: int = 8, partner=None):
    """A member's latest entries; with ``partner``, each carries ``source_partner_id`` for
    ``told_to_partner``."""
    entries = LedgerEntry.objects.filter(member=member)
    if partner is not None:
        entries = with_source_partner(entries)
    return entries.order_by("-effective_at", "-id")[:limit]


ANOTHER_STORE = "Activity with another store"


def with_source_partner(entries):
    """Ledger entries with ``source_partner_id``: the store whose activity or adjustment each was
    (None for the program's own)."""
    return entries.annotate(source_partner_id=Coalesce("activity__partner_id", "actor_partner_id"))


def told_to_partner(entry, partner_id: int) -> tuple[bool, str, str]:
    """``(own, description, reason)`` of an entry as one store may see it: of a member two stores
    share, the other store's entries keep their points and kind, not their words (an order id, a
    reason for a goodwill credit)."""
    own = entry.source_partner_id in (None, partner_id)
    return own, (entry.description if own else ANOTHER_STORE), (entry.reason if own else "")


def history(*, member: Member, kind: str | None = None):
    """A member's ledger, newest first by when it happened (an imported order sits at its own date).
    Each entry carries the entry it releases or takes back (``related_entry``) and, for pending
    points, how many were taken back before they became available (``pending_taken_back``)."""
    taken_back = (LedgerEntry.objects.filter(related_entry=OuterRef("pk"), kind=EntryKind.REVERSE)
                  .values("related_entry").annotate(total=Sum(F("pending_delta") * -1)).values("total"))
    entries = (LedgerEntry.objects.filter(member=member).select_related("related_entry")
               .annotate(pending_taken_back=Coalesce(Subquery(taken_back, output_field=IntegerField()), 0))
               .annotate(pending_left=F("pending_delta") - F("pending_taken_back"))
               .order_by("-effective_at", "-id"))
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
            blocked = ngettext("You have redeemed this %(count)s time, the most allowed.",
                               "You have redeemed this %(count)s times, the most allowed.", redeemed) % {
                "count": redeemed}
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

    from rewards.payloads import LineInput

    program = current_program()
    inputs = [LineInput(sku, "", category, quantity, price) for sku, category, quantity, price in lines]
    values = rules.order_line_values(SimpleNamespace(discount=discount), inputs)
    # The member's tier counts, as it does when the order arrives (a Gold multiplier applies to Gold).
    tier_id = member_tier_ids([member.pk])[member.pk] if member is not None and program.rules_need_tiers else None
    given = member_rule_ids([member.pk]).get(member.pk, frozenset()) if member is not None else frozenset()
    occasion = rules.Occasion(activity_type="order", at=placed_at, partner_id=partner.pk if partner else None,
                              currency=currency, lines=values, tier_id=tier_id, rule_ids=given)
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
    thresholds: dict  # tier id -> what it takes, in words ("1,700 points")


def tier_progress(*, member: Member, now: datetime | None = None) -> TierProgress | None:
    """Where a member stands, in plain words: their tier, what the next one takes, what keeps this one."""
    program = current_program()
    if not program.tiers:
        return None
    now = now or timezone.now()
    status = MemberTier.objects.filter(member=member).select_related("tier").first()
    measure = measures(program, member_ids=[member.pk], end=now).get(member.pk, Decimal(0))
    current = next((t for t in program.tiers if status and t.pk == status.tier_id), program.base_tier)
    rank = current.rank if current else -1
    next_tier = next((t for t in program.tiers if t.rank > rank), None)
    window = window_ending(program, now)
    to_next, to_next_text = None, ""
    if next_tier is not None:
        to_next = max(next_tier.threshold - measure, Decimal(0))
        counted = describe_measure(program, to_next)
        if program.settings.tier_window == "calendar_year":
            year_end = datetime(window.start.year + 1, 1, 1, tzinfo=program.tz) - timedelta(days=1)
            to_next_text = _("%(counted)s more to reach %(tier)s, by %(day)s.") % {
                "counted": counted, "tier": next_tier.name, "day": l10n.short_day(year_end.date())}
        else:
            to_next_text = _("%(counted)s more to reach %(tier)s; what you earned since %(day)s counts.") % {
                "counted": counted, "tier": next_tier.name,
                "day": l10n.short_day(timezone.localtime(window.start, program.tz).date())}
    keep_text = ""
    if status and current:
        until = timezone.localtime(status.period_end, program.tz)
        if status.manual_until and status.manual_until > now:
            keep_text = _("You are %(tier)s until at least %(day)s.") % {
                "tier": current.name, "day": l10n.short_day(status.manual_until)}
        elif measure >= current.threshold:
            keep_text = _("You have done enough to keep %(tier)s after %(day)s.") % {
                "tier": current.name, "day": l10n.short_day(until.date())}
        else:
            needed = describe_measure(program, current.threshold - measure)
            keep_text = _("%(tier)s is yours until %(day)s. To keep it after that: %(needed)s more.") % {
                "tier": current.name, "day": l10n.short_day(until.date()), "needed": needed}
    low = current.threshold if current else Decimal(0)
    high = next_tier.threshold if next_tier else None
    percent = 100 if high is None else int(100 * max(Decimal(0), min(measure - low, high - low)) / (high - low or 1))
    thresholds = {t.pk: _("From %(measure)s") % {"measure": describe_measure(program, t.threshold)} if t.threshold
                  else _("Where everyone starts") for t in program.tiers}
    return TierProgress(tier=current, next_tier=next_tier, tiers=list(program.tiers), measure=measure,
                        thresholds=thresholds,
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
                                   currency=program.settings.currency) if needed else _("on its way")
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


def window_ending(program: Program, end: datetime) -> criteria.Window:
    """The measuring window that ends at ``end``."""
    if program.settings.tier_window == TierWindow.CALENDAR_YEAR:
        local = (end - timedelta(microseconds=1)).astimezone(program.tz)
        return criteria.Window(datetime(local.year, 1, 1, tzinfo=program.tz), end)
    return criteria.Window(add_months(end, -program.settings.tier_window_months), end)


def period_end_after(program: Program, start: datetime) -> datetime:
    """How long a tier reached (or renewed) at ``start`` is held."""
    if program.settings.tier_window == TierWindow.CALENDAR_YEAR:
        local = start.astimezone(program.tz)
        return datetime(local.year + 1, 1, 1, tzinfo=program.tz)
    return add_months(start, program.settings.tier_window_months)


def measures(program: Program, *, member_ids, end: datetime) -> dict[int, Decimal]:
    """Each member's qualifying measure over the window ending at ``end`` (0 when absent)."""
    window = window_ending(program, end)
    measure = program.settings.tier_measure
    if measure == TierMeasure.POINTS:
        rows = LedgerEntry.objects.filter(kind__in=[EntryKind.EARN, EntryKind.REVERSE],
                                          effective_at__gte=window.start, effective_at__lt=window.end)
        if member_ids is not None:
            rows = rows.filter(member_id__in=list(member_ids))
        # What was earned: spendable, pending and what went to repay owed points; reversals count back.
        total = Sum(F("available_delta") + F("pending_delta") - F("owed_delta"))
        return {m: Decimal(v) for m, v in rows.values_list("member_id").annotate(v=total).order_by()}
    if measure == TierMeasure.SPEND:
        return criteria.values(criteria.Criterion.SPEND, member_ids=member_ids, window=window,
                               currency=program.settings.currency, now=end)
    rows = Order.objects.exclude(status=OrderStatus.REFUNDED).filter(placed_at__gte=window.start,
                                                                     placed_at__lt=window.end)
    if member_ids is not None:
        rows = rows.filter(member_id__in=list(member_ids))
    return {m: Decimal(n) for m, n in rows.values_list("member_id").annotate(n=Count("pk")).order_by()}


def measure_str(program: Program, amount: Decimal) -> str:
    """A measure as data: whole points or orders, money with two decimals."""
    if program.settings.tier_measure == TierMeasure.SPEND:
        return str(amount.quantize(Decimal("0.01")))
    return str(int(amount.to_integral_value(rounding="ROUND_CEILING")))


def describe_measure(program: Program, amount: Decimal) -> str:
    """A tier's measure in words, in the reader's language: "1,700 points", "300.00 EUR in orders", "3 orders"."""
    measure = program.settings.tier_measure
    if measure == TierMeasure.POINTS:
        return l10n.points(amount.to_integral_value(rounding="ROUND_CEILING"))
    if measure == TierMeasure.SPEND:
        return _("%(amount)s in orders") % {"amount": l10n.money(amount, program.settings.currency)}
    count = int(amount.to_integral_value(rounding="ROUND_CEILING"))
    return ngettext("%(count)s order", "%(count)s orders", count) % {"count": l10n.number(count)}


def member_tier_ids(member_ids) -> dict[int, int | None]:
    """Each member's tier id (the entry tier for members without a tier row)."""
    program = current_program()
    base = program.base_tier.pk if program.base_tier else None
    found = dict(MemberTier.objects.filter(member_id__in=list(member_ids)).values_list("member_id", "tier_id"))
    return {member_id: found.get(member_id, base) for member_id in member_ids}


def member_rule_ids(member_ids) -> dict[int, frozenset[int]]:
    """The members-only earning rules each member was given (empty when no rule is members-only)."""
    program = current_program()
    wanted = [spec.id for spec in program.specs if spec.members_only]
    if not wanted:
        return {}
    found: dict[int, set[int]] = defaultdict(set)
    for member_id, rule_id in RuleMember.objects.filter(member_id__in=list(member_ids), rule_id__in=wanted) \
            .values_list("member_id", "rule_id"):
        found[member_id].add(rule_id)
    return {member_id: frozenset(rules) for member_id, rules in found.items()}


def partner_tier_ids(partner, external_ids) -> dict[str, int | None]:
    """The tier id of each customer a partner names (the entry tier without a tier row)."""
    program = current_program()
    base = program.base_tier.pk if program.base_tier else None
    rows = (
        Member.objects.filter(external_ids__partner=partner, external_ids__external_id__in=list(external_ids))
        .values_list("external_ids__external_id", "tier_status__tier_id")
    )
    return {external_id: tier_id or base for external_id, tier_id in rows}


class CapTracker:
    """Points each capped rule already gave each member on a day and in a month (program time zone)."""

    def __init__(self, program: Program, member_ids, moments: list[datetime]):
        self.program = program
        self.capped = [s.id for s in program.specs if s.cap_per_day is not None or s.cap_per_month is not None]
        self.by_day: dict[tuple[int, int, date], int] = defaultdict(int)
        if not self.capped or not moments:
            return
        days = [program.local_date(m) for m in moments]
        # Whole months, both ends: an activity dated the 1st that arrives after one dated the 2nd
        # must count the 2nd against the month's cap (arrival order is not the order of days).
        last = max(days).replace(day=1)
        after_last_month = (last + timedelta(days=32)).replace(day=1)
        rows = (
            PointsAward.objects.filter(member_id__in=set(member_ids), rule_id__in=self.capped,
                                       day__gte=min(days).replace(day=1), day__lt=after_last_month)
            .values_list("member_id", "rule_id", "day").annotate(total=Sum("points"))
        )
        for member_id, rule_id, day, total in rows:
            self.by_day[(member_id, rule_id, day)] += total

    def used(self, member_id: int, day: date) -> tuple[dict, dict]:
        today, month = {}, {}
        for (m, rule_id, d), total in self.by_day.items():
            if m != member_id:
                continue
            if d == day:
                today[rule_id] = today.get(rule_id, 0) + total
            if (d.year, d.month) == (day.year, day.month):
                month[rule_id] = month.get(rule_id, 0) + total
        return today, month

    def add(self, member_id: int, rule_id: int | None, day: date, points: int) -> None:
        if rule_id in self.capped:
            self.by_day[(member_id, rule_id, day)] += points


def badges_latest(*, member: Member, limit: int = 4) -> list[MemberBadge]:
    """The member's most recently earned badges, each once, at the highest level held (levels
    awarded in one evaluation share a timestamp, so the latest rows alone could show Bronze where
    Silver is held, and crowd another badge out)."""
    rows = list(MemberBadge.objects.filter(member=member).select_related("level__badge")
                .order_by("-level__level", "-awarded_at"))
    best: dict[int, MemberBadge] = {}
    latest: dict[int, datetime] = {}
    for row in rows:
        badge_id = row.level.badge_id
        best.setdefault(badge_id, row)
        latest[badge_id] = max(latest.get(badge_id, row.awarded_at), row.awarded_at)
    ordered = sorted(best.values(), key=lambda row: (latest[row.level.badge_id], -row.level.badge_id), reverse=True)
    return ordered[:limit]


# --- Ways to earn ----------------------------------------------------------------------------------

_EARN_FOR = {
    "order": gettext_lazy("on every order"), "signup": gettext_lazy("for joining"),
    "profile_completed": gettext_lazy("for completing your profile"), "birthday": gettext_lazy("on your birthday"),
    "review_approved": gettext_lazy("for each review we publish"),
    "review_photo": gettext_lazy("for each published review with photos"),
    "helpful_vote_received": gettext_lazy("each time a member finds your review helpful"),
    "survey_completed": gettext_lazy("for each survey you answer"),
    "referral": gettext_lazy("for each friend you refer who places an order"), "refund": "",
}


@dataclass(frozen=True)
class WayToEarn:
    headline: str  # "1 point per EUR 1 spent"
    conditions: list[str]  # "on tea", "Gold members", "up to 150 a month", "until 31 Dec 2026"


def ways_to_earn(*, now=None) -> list[WayToEarn]:
    """Every active earning rule open to members, in plain words, made from the rules the engine
    pays by (so the page cannot say something the engine does not do): base rules first, then
    multipliers; campaign-only rules and rules whose dates are over are left out."""
    from accounts.models import Partner

    program = current_program()
    now = now or timezone.now()
    tiers = {tier.pk: tier.name for tier in program.tiers}
    partner_names = dict(Partner.objects.filter(pk__in={p for s in program.specs for p in s.partner_ids})
                         .values_list("pk", "name")) if any(s.partner_ids for s in program.specs) else {}
    tz = program.tz
    ways = []
    for spec in sorted(program.specs, key=lambda s: (s.family != "base", s.activity_type != "order", -s.priority,
                                                     s.id or 0)):
        if spec.members_only or (spec.ends_at and spec.ends_at <= now):
            continue
        what = _EARN_FOR.get(spec.activity_type) or _("for %(activity)s") % {
            "activity": spec.activity_type.replace("_", " ")}
        if (spec.kind == "per_currency" and not spec.points_per_unit) or (spec.kind == "multiplier"
                                                                          and not spec.multiplier):
            continue  # pays nothing: nothing to tell
        if spec.kind == "per_currency":
            per = spec.points_per_unit.normalize()
            headline = ngettext("%(points)s point per %(currency)s 1 spent",
                                "%(points)s points per %(currency)s 1 spent", 1 if per == 1 else 2) % {
                "points": l10n.decimal(per, places=None), "currency": spec.currency}
        elif spec.kind == "fixed":
            if not spec.points:
                continue
            headline = pgettext("ways to earn", "%(points)s %(what)s") % {"points": l10n.points(spec.points),
                                                                          "what": what}
        else:
            headline = _("%(factor)sx points %(what)s") % {"factor": l10n.decimal(spec.multiplier.normalize(),
                                                                                   places=None), "what": what}
        headline = headline.strip()
        conditions = []
        if spec.categories:
            conditions.append(_("on %(things)s") % {"things": ", ".join(spec.categories)})
        if spec.skus:
            conditions.append(_("on %(things)s") % {"things": ", ".join(spec.skus)})
        if spec.min_order_value:
            conditions.append(_("on orders of %(money)s or more") % {
                "money": l10n.money(spec.min_order_value, spec.currency)})
        if spec.tier_ids:
            conditions.append(_("%(tiers)s members") % {
                "tiers": l10n.and_list(tiers[t] for t in spec.tier_ids if tiers.get(t))})
        if spec.partner_ids:
            conditions.append(_("at %(stores)s") % {"stores": ", ".join(partner_names.get(p, "")
                                                                        for p in spec.partner_ids)})
        if spec.cap_per_day:
            conditions.append(_("up to %(points)s a day") % {"points": l10n.points(spec.cap_per_day)})
        if spec.cap_per_month:
            conditions.append(_("up to %(points)s a month") % {"points": l10n.points(spec.cap_per_month)})
        if spec.starts_at and spec.starts_at > now:
            conditions.append(_("from %(day)s") % {"day": l10n.short_day(spec.starts_at.astimezone(tz).date())})
        if spec.ends_at:
            conditions.append(_("until %(day)s") % {
                "day": l10n.short_day((spec.ends_at - timedelta(seconds=1)).astimezone(tz).date())})
        ways.append(WayToEarn(headline, conditions))
    return ways
