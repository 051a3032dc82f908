"""Tiers. A member moves up the moment their measure reaches a higher tier; down only when their
tier's period has ended and the grace period has passed, and then by at most
``tier_max_drop`` steps (one unless staff say otherwise).

The measure (``ProgramSettings.tier_measure``) is points earned (refunds take theirs back; spending
does not count against it), spend less refunds, or orders that were not fully refunded, over a
window: the last N months, or the calendar year. A tier reached is held for one period (N months
from reaching it, or until the end of the calendar year); at its review the measure over the
window ending at the period's end decides whether it is kept (and the period renewed), or lowered.
Staff may set a tier by hand until a date; until then it is not lowered.

Everything here works on many members at once: measures come from one aggregate query per window,
decisions are made in memory, and the changes are written with one statement per table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditLog, Member, User
from core import bulk, events, l10n
from core.errors import Invalid
from core.events import Emitted
from messaging.catalogue import wording
from messaging.services import Note, notify
from rewards.models import (
    MemberTier,
    Tier,
    TierCause,
    TierChange,
)
from rewards.program import Program, current_program, program_changed
from rewards.selectors import describe_measure, measure_str, measures, period_end_after


@dataclass
class TierRun:
    upgraded: int = 0
    renewed: int = 0
    downgraded: int = 0
    warned: int = 0
    changes: list[TierChange] = field(default_factory=list)








def _review_due(status: MemberTier, program: Program) -> datetime:
    if status.manual_until is not None and status.manual_until >= status.period_end:
        return status.manual_until  # a tier set by hand is reviewed on its end date, without grace
    return status.period_end + timedelta(days=program.settings.tier_grace_days)


def tiers_evaluate(*, member_ids=None, now: datetime | None = None) -> TierRun:
    """Bring members' tiers up to date: upgrades, reviews that are due, downgrade warnings.

    ``member_ids=None`` evaluates everyone (the nightly run). Running it again at once changes
    nothing. Safe to run concurrently with orders: measures are read, and tiers written, in one
    short transaction per run.
    """
    program = current_program()
    run = TierRun()
    if not program.tiers:
        return run
    now = now or timezone.now()
    by_id = {tier.pk: tier for tier in program.tiers}
    now_measures = measures(program, member_ids=member_ids, end=now)
    statuses = MemberTier.objects.all()
    if member_ids is not None:
        statuses = statuses.filter(member_id__in=list(member_ids))
    statuses = {status.member_id: status for status in statuses}

    due: dict[datetime, list[int]] = defaultdict(list)
    for member_id, status in statuses.items():
        if _review_due(status, program) <= now:
            due[status.period_end].append(member_id)
    review_measures: dict[int, Decimal] = {}
    for period_end, ids in due.items():
        found = measures(program, member_ids=ids, end=period_end)
        review_measures.update({member_id: found.get(member_id, Decimal(0)) for member_id in ids})

    base = program.base_tier
    words = {kind: wording(kind) for kind in ("tier_up", "tier_down", "tier_warning")}  # once, not per member
    changed: list[MemberTier] = []
    notes: list[Note] = []
    warnings: list[Emitted] = []
    for member_id in set(statuses) | set(now_measures):
        measure = now_measures.get(member_id, Decimal(0))
        status = statuses.get(member_id)
        current = by_id[status.tier_id] if status else base
        decision = tier_decide(program=program, current=current, status=status, measure=measure,
                               review_measure=review_measures.get(member_id), now=now)
        if decision.kind == "none":
            continue
        status = status or MemberTier(member_id=member_id)
        status.period_end, status.warned_for = decision.period_end, decision.warned_for
        if decision.kind in ("renew", "downgrade") and status.manual_until is not None and status.manual_until <= now:
            status.manual_until = None
        changed.append(status)
        if decision.kind == "upgrade":
            status.tier, status.since = decision.tier, now
            run.upgraded += 1
            run.changes.append(TierChange(member_id=member_id, from_tier=current, to_tier=decision.tier,
                                          cause=TierCause.QUALIFIED, measure=measure, created_at=now))
            notes.append(words["tier_up"].note(member_id, "/rewards/tier/", tier=decision.tier.name))
        elif decision.kind == "renew":
            run.renewed += 1
            run.changes.append(TierChange(member_id=member_id, from_tier=current, to_tier=current,
                                          cause=TierCause.RENEWED, measure=review_measures[member_id],
                                          created_at=now))
        elif decision.kind == "downgrade":
            status.tier, status.since = decision.tier, now
            run.downgraded += 1
            run.changes.append(TierChange(member_id=member_id, from_tier=current, to_tier=decision.tier,
                                          cause=TierCause.DOWNGRADED, measure=review_measures[member_id],
                                          created_at=now))
            notes.append(words["tier_down"].note(member_id, "/rewards/tier/", tier=decision.tier.name,
                                                   previous=current.name))
        else:  # warn
            run.warned += 1
            keep_by = timezone.localtime(status.period_end, program.tz)
            notes.append(words["tier_warning"].note(member_id, "/rewards/tier/", tier=current.name,
                                                      date=l10n.later(l10n.short_day, keep_by.date()),
                                                      needed=l10n.later(describe_measure, program, decision.needed)))
            warnings.append(Emitted(member_id, {"tier": current.name, "period_end": status.period_end.isoformat(),
                                                "needed": measure_str(program, decision.needed)}))
    _write(changed, run.changes, warnings)
    notify(notes=notes)
    return run


@dataclass(frozen=True)
class TierDecision:
    """What happens to one member's tier now. ``kind``: upgrade, renew, downgrade, warn or none."""

    kind: str
    tier: Tier | None = None
    period_end: datetime | None = None
    warned_for: datetime | None = None
    needed: Decimal | None = None


def tier_decide(*, program: Program, current: Tier | None, status: MemberTier | None, measure: Decimal,
                review_measure: Decimal | None, now: datetime) -> TierDecision:
    """The rule of tiers, for one member, without touching the database.

    Up at once when the measure reaches a higher tier (a new period starts). At a review (the
    period ended and the grace days passed; ``review_measure`` is the measure over the window
    ending at the period's end): kept if it still qualifies (the period renewed), otherwise down
    to what it qualifies for, but at most ``tier_max_drop`` steps. Before a review, within
    ``tier_warning_days`` of the period's end, one warning per period to a member who would not
    keep their tier, unless staff set it by hand.
    """
    reached = program.tier_for(measure)
    if reached is not None and (current is None or reached.rank > current.rank):
        return TierDecision("upgrade", tier=reached, period_end=period_end_after(program, now))
    if review_measure is not None and status is not None:
        kept = program.tier_for(review_measure)
        end = status.period_end
        while end + timedelta(days=program.settings.tier_grace_days) <= now:
            end = period_end_after(program, end)  # catch up on periods missed while nobody looked
        if kept is not None and kept.rank >= current.rank:
            return TierDecision("renew", tier=current, period_end=end)
        lowest = max(kept.rank if kept else -1, current.rank - program.settings.tier_max_drop)
        new = next((t for t in program.tiers if t.rank == lowest), None) or (kept or program.tiers[0])
        return TierDecision("downgrade", tier=new, period_end=end)
    if status is not None and status.manual_until is None and status.warned_for != status.period_end:
        warn_from = status.period_end - timedelta(days=program.settings.tier_warning_days)
        if warn_from <= now and measure < current.threshold:
            return TierDecision("warn", tier=current, period_end=status.period_end, warned_for=status.period_end,
                                needed=current.threshold - measure)
    return TierDecision("none")


_STATUS_FIELDS = ("member_id", "tier_id", "since", "period_end", "manual_until", "warned_for")
_CHANGE_FIELDS = ("member_id", "from_tier_id", "to_tier_id", "cause", "measure", "reason", "actor_user_id",
                  "created_at")


def _write(statuses: list[MemberTier], changes: list[TierChange], warnings: list[Emitted] = ()) -> None:
    # Plain rows through core.bulk: a first run moves most members, and the ORM's bulk_create
    # spent more time preparing each value than PostgreSQL spent writing them.
    with transaction.atomic():
        bulk.upsert(MemberTier, _STATUS_FIELDS, [tuple(getattr(status, name) for name in _STATUS_FIELDS)
                                                 for status in statuses],
                    unique="member_id", update=_STATUS_FIELDS[1:])
        if changes:
            bulk.insert(TierChange, _CHANGE_FIELDS, [
                (c.member_id, c.from_tier_id, c.to_tier_id, c.cause, None if c.measure is None else Decimal(c.measure),
                 c.reason, c.actor_user_id, c.created_at) for c in changes], ids=False)
            tiers = {tier.pk: tier.name for tier in Tier.objects.all()}
            events.emit_many("tier.changed", [Emitted(change.member_id, {
                "from": tiers.get(change.from_tier_id), "to": tiers.get(change.to_tier_id), "cause": change.cause})
                for change in changes if change.from_tier_id != change.to_tier_id])
        events.emit_many("tier.downgrade_warning", warnings)






def tier_set_manually(*, member: Member, tier: Tier, until: datetime, reason: str, actor_user: User) -> MemberTier:
    """Staff put a member in a tier until a date (then the normal review applies). Audited."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("A reason is required."), fields={"reason": _("A reason is required.")})
    now = timezone.now()
    if until <= now:
        raise Invalid(_("The end date must be in the future."), fields={"until": _("Must be in the future.")})
    with transaction.atomic():
        status = MemberTier.objects.select_for_update().filter(member=member).first()
        program = current_program()
        before = status.tier if status else program.base_tier
        status = status or MemberTier(member=member)
        status.tier, status.since, status.manual_until = tier, now, until
        status.period_end, status.warned_for = until, None
        status.save()
        TierChange.objects.create(member=member, from_tier=before, to_tier=tier, cause=TierCause.MANUAL,
                                  reason=reason, actor_user=actor_user, created_at=now)
        events.emit("tier.changed", member_id=member.pk, data={
            "from": before.name if before else None, "to": tier.name, "cause": TierCause.MANUAL})
        AuditLog.objects.create(action="tier.set_manually", member=member, actor_user=actor_user,
                                subject=f"member:{member.pk}", before={"tier": str(before) if before else None},
                                after={"tier": tier.name, "until": until.isoformat()}, reason=reason)
    notify(notes=[wording("tier_manual").note(member.pk, "/rewards/tier/", tier=tier.name,
                                              date=l10n.later(l10n.short_day,
                                                              timezone.localtime(until, program.tz).date()))])
    return status


@dataclass
class ThresholdPlan:
    up: int
    down: int
    moves: dict[int, tuple[int | None, int]]  # member -> (from tier id, to tier id)
    measures: dict[int, Decimal]


def tier_thresholds_plan(*, thresholds: dict[int, Decimal], now: datetime | None = None) -> ThresholdPlan:
    """Dry run: who would move up and down if the tiers had these thresholds today."""
    program = current_program()
    now = now or timezone.now()
    if any(value < 0 for value in thresholds.values()):
        raise Invalid(_("Thresholds cannot be negative."), fields={"thresholds": _("Cannot be negative.")})
    tiers = sorted(program.tiers, key=lambda t: t.rank)
    new_thresholds = {t.pk: thresholds.get(t.pk, t.threshold) for t in tiers}
    ordered = [new_thresholds[t.pk] for t in tiers]
    if ordered != sorted(ordered):
        raise Invalid(_("A higher tier needs a threshold at least as high as the one below it."),
                      fields={"thresholds": _("Must not decrease from one tier to the next.")})
    now_measures = measures(program, member_ids=None, end=now)
    statuses = {s.member_id: s for s in MemberTier.objects.all()}
    base = next((t for t in tiers if new_thresholds[t.pk] == 0), None)
    moves, up, down = {}, 0, 0
    for member_id in set(statuses) | set(now_measures):
        measure = now_measures.get(member_id, Decimal(0))
        status = statuses.get(member_id)
        current = next((t for t in tiers if status and t.pk == status.tier_id), base)
        reached = None
        for tier in tiers:
            if measure >= new_thresholds[tier.pk]:
                reached = tier
        if reached is None:
            continue
        if current is None or reached.rank > current.rank:
            moves[member_id] = (current.pk if current else None, reached.pk)
            up += 1
        elif reached.rank < current.rank and not (status and status.manual_until and status.manual_until > now):
            target = max(reached.rank, current.rank - program.settings.tier_max_drop)
            moves[member_id] = (current.pk, next(t.pk for t in tiers if t.rank == target))
            down += 1
    return ThresholdPlan(up=up, down=down, moves=moves, measures=now_measures)


def tier_thresholds_apply(*, thresholds: dict[int, Decimal], actor_user: User, reason: str = "") -> ThresholdPlan:
    """Change thresholds and move members accordingly, as one audited step."""
    plan = tier_thresholds_plan(thresholds=thresholds)
    program = current_program()
    now = timezone.now()
    by_id = {tier.pk: tier for tier in program.tiers}
    with transaction.atomic():
        before = {t.name: str(t.threshold) for t in program.tiers}
        for tier_id, value in thresholds.items():
            Tier.objects.filter(pk=tier_id).update(threshold=value)
        statuses = {s.member_id: s for s in MemberTier.objects.filter(member_id__in=list(plan.moves))}
        changed, changes = [], []
        for member_id, (from_id, to_id) in plan.moves.items():
            status = statuses.get(member_id) or MemberTier(member_id=member_id, period_end=now)
            status.tier, status.since = by_id[to_id], now
            status.period_end, status.warned_for = period_end_after(program, now), None
            changed.append(status)
            changes.append(TierChange(member_id=member_id, from_tier=by_id.get(from_id), to_tier=by_id[to_id],
                                      cause=TierCause.THRESHOLDS, measure=plan.measures.get(member_id, 0),
                                      reason=reason, actor_user=actor_user, created_at=now))
        _write(changed, changes)
        AuditLog.objects.create(action="tier.thresholds_changed", actor_user=actor_user, subject="tiers",
                                before=before, after={by_id[k].name: str(v) for k, v in thresholds.items()},
                                reason=f"{reason} ({plan.up} up, {plan.down} down)".strip())
        program_changed()
    return plan






def tier_save(*, tier: Tier, actor_user: User | None = None) -> Tier:
    """Create or rename a tier (its threshold, once members hold tiers, changes through
    ``tier_thresholds_apply``). Every process sees it from its next request or task on."""
    with transaction.atomic():
        created = tier.pk is None
        tier.full_clean()
        tier.save()
        AuditLog.objects.create(action="tier.created" if created else "tier.saved", actor_user=actor_user,
                                subject=f"tier:{tier.pk}",
                                after={"name": tier.name, "rank": tier.rank, "threshold": str(tier.threshold)})
        program_changed()
    return tier
