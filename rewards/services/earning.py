"""What an activity earns: rule evaluation with caps, and crediting the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rewards import rules
from rewards.ledger import Posting
from rewards.models import (
    Activity,
    EntryKind,
    LedgerEntry,
    PointsAward,
)
from rewards.program import Program
from rewards.selectors import CapTracker

# --- Results ---------------------------------------------------------------------------------------


@dataclass
class AwardResult:
    """What one activity earned."""

    points: int = 0
    pending: bool = False
    available_at: datetime | None = None
    expires_at: datetime | None = None
    rules: list[dict] = field(default_factory=list)


@dataclass
class OrderResult:
    order_id: str
    member: str
    status: str  # accepted, duplicate or rejected
    award: AwardResult = field(default_factory=AwardResult)
    error: dict | None = None
    member_id: int | None = None


@dataclass
class ActivityResult:
    activity: Activity | None  # the stored activity, when it was there before
    created: bool
    award: AwardResult = field(default_factory=AwardResult)
    activity_id: int | None = None


# --- Rule evaluation shared by orders and other activities -------------------------------------------




def _evaluate(program: Program, occasion: rules.Occasion, caps: CapTracker, member_id: int) -> list[rules.RulePoints]:
    selected = rules.select(program.specs, occasion)
    results = rules.evaluate(selected, occasion)
    if caps.capped:
        today, month = caps.used(member_id, program.local_date(occasion.at))
        results = rules.apply_caps(results, used_today=today, used_this_month=month)
    return results


AWARD_FIELDS = ("activity_id", "member_id", "rule_id", "rule_name", "points", "day")


@dataclass
class Earning:
    """What one activity earns, worked out before any member is locked."""

    member_id: int
    activity_id: int
    at: datetime
    description: str
    award: AwardResult
    results: list[rules.RulePoints]


def evaluate_award(*, program: Program, caps: CapTracker, member_id: int, activity_id: int,
                    occasion: rules.Occasion, description: str, pending_until: datetime | None,
                    now: datetime, awards: list[tuple]) -> Earning:
    """Evaluate the rules for one activity. Appends the per-rule awards to ``awards`` as rows of
    ``AWARD_FIELDS``; the points are credited by ``post_earning``."""
    results = _evaluate(program, occasion, caps, member_id)
    day = program.local_date(occasion.at)
    total = 0
    for result in results:
        if result.points:
            awards.append((activity_id, member_id, result.spec.id, result.spec.name, result.points, day))
            caps.add(member_id, result.spec.id, day, result.points)
            total += result.points
    award = AwardResult(points=total, rules=[
        {"rule_id": r.spec.id, "name": r.spec.name, "points": r.points} for r in results if r.points
    ])
    if total > 0:
        award.expires_at = program.expires_at(occasion.at)
        if pending_until is not None and pending_until > now:
            award.pending, award.available_at = True, pending_until
    return Earning(member_id, activity_id, occasion.at, description, award, results)


def post_earning(posting: Posting, earning: Earning) -> None:
    """Credit what an activity earned: pending until its date, or available now."""
    award = earning.award
    if award.points <= 0:
        return
    # The inactivity clock counts earning and spending, not visits that earn nothing.
    posting.touch_activity(earning.member_id, earning.at)
    common = {"activity_id": earning.activity_id, "description": earning.description,
              "expires_at": award.expires_at, "effective_at": earning.at}
    if award.pending:
        posting.credit_pending(earning.member_id, award.points, available_at=award.available_at, **common)
    else:
        posting.credit_available(earning.member_id, award.points, kind=EntryKind.EARN, **common)


def award_of_recorded(activity_id: int, points: int, rules_given: list[dict] | None = None) -> AwardResult:
    """The award an already recorded activity earned, for answering a duplicate. Orders keep their
    breakdown in ``rules_applied``; other activities in their ``PointsAward`` rows."""
    entry = LedgerEntry.objects.filter(activity_id=activity_id, kind=EntryKind.EARN).first()
    if rules_given is None:
        rules_given = [
            {"rule_id": a.rule_id, "name": a.rule_name, "points": a.points}
            for a in PointsAward.objects.filter(activity_id=activity_id, points__gt=0).order_by("id")
        ]
    award = AwardResult(points=points, rules=rules_given)
    if entry is not None:
        award.pending = entry.pending_delta > 0 and not entry.followers.filter(kind=EntryKind.RELEASE).exists()
        award.available_at, award.expires_at = entry.available_at, entry.expires_at
    return award

ACTIVITY_FIELDS = ("member_id", "partner_id", "type", "source_key", "occurred_at", "properties", "created_at")
