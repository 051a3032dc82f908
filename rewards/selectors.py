"""Reads of the points engine: what the portal, the API and the admin show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Member
from rewards.models import Coupon, EntryKind, LedgerEntry, PointsLot, Redemption, Reward
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
    rewards = list(
        Reward.objects.filter(is_active=True)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now), Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .order_by("points_cost", "id")
    )
    counts: dict[int, int] = {}
    if member is not None:
        counts = dict(
            Redemption.objects.filter(member=member).values_list("reward_id").annotate(n=Count("id")).order_by()
        )
    available = member.points_available if member is not None else 0
    items = []
    for reward in rewards:
        blocked = reward_check(reward=reward, member=member, now=now) if member is not None else None
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
