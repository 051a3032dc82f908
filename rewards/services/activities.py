"""Activities other than orders: signups, birthdays, partner events, and those other apps report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import ExternalId, Member, Partner
from core import bulk, events, l10n
from core.errors import Conflict, Invalid
from rewards import rules
from rewards.ledger import Posting, credits_sql, lock_members, run_sql
from rewards.models import (
    Activity,
    ActivityType,
    EntryKind,
    LedgerEntry,
    PointsAward,
)
from rewards.payloads import EventInput
from rewards.program import current_program, days_to_catch_up, on_this_day
from rewards.selectors import CapTracker, member_rule_ids, member_tier_ids
from rewards.services.earning import (
    ACTIVITY_FIELDS,
    AWARD_FIELDS,
    ActivityResult,
    AwardResult,
    Earning,
    award_of_recorded,
    evaluate_award,
    post_earning,
)
from rewards.services.progress_hook import progress_check_after_commit

# --- Other activities (signup, birthday, reviews, surveys, referrals, partner events) -----------------


@dataclass(frozen=True)
class ActivityInput:
    member_id: int
    type: str
    source_key: str
    occurred_at: datetime
    description: str
    partner: Partner | None = None
    properties: dict | None = None
    pending_until: datetime | None = None
    # A set amount (a badge's or a challenge's bonus) instead of what the earning rules give.
    points: int | None = None


def activities_record(*, items: list[ActivityInput]) -> list[ActivityResult]:
    """Store activities and award what the rules give for them; an activity whose ``source_key``
    was seen before is not stored or rewarded again. Set amounts spendable at once (bonuses) go in
    one SQL statement on PostgreSQL (``set_points_sql``), the same rows ``Posting`` would write."""
    if not items:
        return []
    program = current_program()
    now = timezone.now()
    if bulk.writes_in_one_statement() and all(_spendable_now(item, now) for item in items):
        return _record_set_points_at_once(items, program=program, now=now)
    with transaction.atomic():
        balances = lock_members(item.member_id for item in items)
        # The unique source key decides what is new, also against a concurrent copy.
        inserted = bulk.insert_new(Activity, ACTIVITY_FIELDS, [
            (item.member_id, item.partner.pk if item.partner else None, item.type, item.source_key, item.occurred_at,
             bulk.json_text(item.properties or {}), now)
            for item in items
        ], unique="source_key")
        results: list[ActivityResult | None] = [None] * len(items)
        known = _recorded_before(items, inserted)
        posting = Posting(balances, now=now)
        caps = CapTracker(program, balances.keys(), [item.occurred_at for item in items])
        tier_ids = member_tier_ids(balances) if program.rules_need_tiers else {}
        given = member_rule_ids(balances) if program.rules_need_members else {}
        awards: list[tuple] = []
        claimed = set()
        for index, item in enumerate(items):
            activity_id = inserted.get(item.source_key)
            if activity_id is None or item.source_key in claimed:
                results[index] = _not_new(known.get(item.source_key))
                continue
            claimed.add(item.source_key)
            if item.points is not None:
                pending = item.pending_until is not None and item.pending_until > now and item.points > 0
                earning = Earning(item.member_id, activity_id, item.occurred_at, item.description, _set_award(
                    item, expires_at=program.expires_at(item.occurred_at),
                    available_at=item.pending_until if pending else None), [])
            else:
                occasion = rules.Occasion(activity_type=item.type, at=item.occurred_at,
                                          partner_id=item.partner.pk if item.partner else None,
                                          tier_id=tier_ids.get(item.member_id),
                                          rule_ids=given.get(item.member_id, frozenset()))
                earning = evaluate_award(program=program, caps=caps, member_id=item.member_id,
                                         activity_id=activity_id, occasion=occasion, description=item.description,
                                         pending_until=item.pending_until, now=now, awards=awards)
            post_earning(posting, earning)
            results[index] = ActivityResult(None, created=True, award=earning.award, activity_id=activity_id)
        posting.flush()
        bulk.insert(PointsAward, AWARD_FIELDS, awards, ids=False)
        created = [item for item, result in zip(items, results, strict=True) if result.created]
        progress_check_after_commit(member_ids=[item.member_id for item in created],
                                    activity_types=[item.type for item in created])
    return results


def _recorded_before(items: list[ActivityInput], inserted) -> dict[str, Activity]:
    """The activities of the items whose source key was seen before: they earn nothing again."""
    keys = [item.source_key for item in items if item.source_key not in inserted]
    return {a.source_key: a for a in Activity.objects.filter(source_key__in=keys)} if keys else {}


def _not_new(activity: Activity | None) -> ActivityResult:
    return ActivityResult(activity, created=False, activity_id=activity.pk if activity else None)


def _set_award(item: ActivityInput, *, expires_at: datetime | None,
               available_at: datetime | None = None) -> AwardResult:
    """What a set amount earns, told as one rule named after the activity; pending when it becomes
    available later."""
    return AwardResult(points=item.points, rules=[{"rule_id": None, "name": item.description, "points": item.points}],
                       expires_at=expires_at if item.points > 0 else None, pending=available_at is not None,
                       available_at=available_at)


def _spendable_now(item: ActivityInput, now: datetime) -> bool:
    """A set amount (a badge's or a challenge's bonus) that is spendable at once: no rule to evaluate."""
    return item.points is not None and not (item.pending_until is not None and item.pending_until > now)


def set_points_sql(*, source: str, now: str) -> str:
    """CTEs that record an activity with a set amount spendable at once (a badge's or a
    challenge's bonus) for each row of the CTE ``source`` and post its points: the columns
    ``member_id, owed, partner_id, type, source_key, occurred_at, properties, description, points,
    expires_at`` (one row per source key; ``owed`` and ``expires_at``, as text, as ``credits_sql``
    wants them). A source key seen before, also by a concurrent statement, is turned away by its
    unique index and earns nothing; the CTE ``set_points_activities`` holds ``id, source_key,
    member_id`` of those inserted. The same rows as ``activities_record`` writes through ``Posting``.
    Precondition: the statement locked the members first (FOR NO KEY UPDATE, in key order)."""
    activity = Activity._meta.db_table
    return f"""
set_points_activities AS (
    -- In key order, as bulk.insert_new inserts: two statements sharing keys cannot deadlock.
    INSERT INTO "{activity}" (member_id, partner_id, type, source_key, occurred_at, properties, created_at)
    SELECT s.member_id, s.partner_id, s.type, s.source_key, s.occurred_at, s.properties, {now}
    FROM {source} s ORDER BY s.source_key
    ON CONFLICT (source_key) DO NOTHING RETURNING id, source_key, member_id
),
set_points_credits AS (
    SELECT s.member_id, s.owed, a.id AS activity_id, s.points, NULL::text AS available_at,
           s.expires_at, s.description, s.occurred_at AS effective_at
    FROM set_points_activities a JOIN {source} s ON s.source_key = a.source_key WHERE s.points > 0
),
{credits_sql(source="set_points_credits", now=now)}"""


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _record_set_points_at_once(items: list[ActivityInput], *, program, now: datetime) -> list[ActivityResult]:
    """``activities_record`` for set amounts spendable at once, in one SQL statement (PostgreSQL):
    locks the members (in key order), then ``set_points_sql``."""
    first: dict[str, ActivityInput] = {}
    for item in items:
        first.setdefault(item.source_key, item)
    todo = list(first.values())
    expiries: dict[datetime, datetime | None] = {}
    for item in todo:
        if item.points > 0 and item.occurred_at not in expiries:
            expiries[item.occurred_at] = program.expires_at(item.occurred_at)
    columns = list(zip(*[
        (item.member_id, item.partner.pk if item.partner else None, item.type, item.source_key, item.occurred_at,
         bulk.json_text(item.properties or {}), item.description, item.points,
         _iso(expiries.get(item.occurred_at)) if item.points > 0 else None)
        for item in todo
    ], strict=True))
    sql = f"""
WITH p AS (SELECT %s::timestamptz AS now),
v AS (
    SELECT u.member_id, u.partner_id, u.type, u.source_key, u.occurred_at, u.properties::jsonb AS properties,
           u.description, u.points, u.expires_at
    FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::timestamptz[], %b::text[], %b::text[],
                %b::bigint[], %b::text[])
         AS u (member_id, partner_id, type, source_key, occurred_at, properties, description, points, expires_at)
),
m AS (
    SELECT id AS member_id, points_owed AS owed FROM "{Member._meta.db_table}" WHERE id = ANY(%b::bigint[])
    ORDER BY id FOR NO KEY UPDATE
),
source AS (SELECT v.*, m.owed FROM v JOIN m ON m.member_id = v.member_id),
{set_points_sql(source="source", now="(SELECT now FROM p)")}
SELECT a.source_key, a.id FROM set_points_activities a"""
    params = [now, *[list(column) for column in columns], sorted({item.member_id for item in todo})]
    inserted = dict(run_sql(sql, params))
    known = _recorded_before(items, inserted)
    results, claimed = [], set()
    for item in items:
        activity_id = inserted.get(item.source_key)
        if activity_id is None or item.source_key in claimed:
            results.append(_not_new(known.get(item.source_key)))
            continue
        claimed.add(item.source_key)
        results.append(ActivityResult(None, created=True, activity_id=activity_id,
                                      award=_set_award(item, expires_at=expiries.get(item.occurred_at))))
    events.relay_after_commit()
    created = [item for item, result in zip(items, results, strict=True) if result.created]
    progress_check_after_commit(member_ids=[item.member_id for item in created],
                                activity_types=[item.type for item in created])
    return results


def activity_record(*, member: Member, type: str, source_key: str, description: str,
                    occurred_at: datetime | None = None, partner: Partner | None = None,
                    properties: dict | None = None, pending_until: datetime | None = None) -> ActivityResult:
    return activities_record(items=[ActivityInput(
        member_id=member.pk, type=type, source_key=source_key, occurred_at=occurred_at or timezone.now(),
        description=description, partner=partner, properties=properties, pending_until=pending_until,
    )])[0]


def event_record(*, partner: Partner, event: EventInput) -> ActivityResult:
    """A partner's custom event (``app_installed``...) for rules of that type to reward."""
    link = ExternalId.objects.filter(partner=partner, external_id=event.member).values("member_id").first()
    if link is None:
        raise Invalid(_("Unknown member."), code="unknown_member",
                      fields={"member": f"No member with external_id {event.member!r}."})
    source_key = f"event:{partner.pk}:{event.event_id}"
    result = activities_record(items=[ActivityInput(
        member_id=link["member_id"], type=event.type, source_key=source_key, occurred_at=event.occurred_at,
        description=event.type.replace("_", " ").capitalize(), partner=partner, properties=event.properties,
    )])[0]
    if not result.created:
        if result.activity.type != event.type or result.activity.member_id != link["member_id"]:
            raise Conflict(_("This event id was already used for a different event."), code="event_exists",
                           fields={"event_id": _("Already used for a different event.")})
        result.award = award_of_recorded(result.activity.pk, _points_of(result.activity.pk))
    result.activity_id = result.activity_id or (result.activity.pk if result.activity else None)
    return result


def activity_reverse(*, activity_id: int, description: str, reason: str = "", actor_user=None) -> int:
    """Take back every point an activity earned (an approved review that is rejected later): from
    pending points while they are still pending, otherwise from available points, the activity's
    own lot first, and what was already spent becomes points owed. Running it again reverses
    nothing more. Returns the points reversed."""
    activity = Activity.objects.filter(pk=activity_id).values("member_id").first()
    if activity is None:
        return 0
    member_id = activity["member_id"]
    with transaction.atomic():
        balances = lock_members([member_id])
        earn = LedgerEntry.objects.filter(activity_id=activity_id, kind=EntryKind.EARN).first()
        if earn is None:
            return 0
        earned = earn.available_delta + earn.pending_delta - earn.owed_delta
        already = -sum(entry.available_delta + entry.pending_delta - entry.owed_delta
                       for entry in earn.followers.filter(kind=EntryKind.REVERSE))
        points = earned - already
        if points <= 0:
            return 0
        posting = Posting(balances)
        posting.reverse_earning(member_id, points, earn=earn, description=description, reason=reason,
                                actor_user=actor_user)
        posting.flush()
        # Capped rules count what a member earned per day and month: give the room back.
        PointsAward.objects.bulk_create([
            PointsAward(activity_id=activity_id, member_id=award.member_id, rule_id=award.rule_id,
                        rule_name=award.rule_name, points=-award.points, day=award.day)
            for award in PointsAward.objects.filter(activity_id=activity_id, points__gt=0)
        ])
    return points


def _points_of(activity_id: int) -> int:
    return PointsAward.objects.filter(activity_id=activity_id).aggregate(total=Sum("points"))["total"] or 0





def _birthday_gift(points: int) -> str:
    return ngettext("%(count)s birthday point is yours. ", "%(count)s birthday points are yours. ", points) % {
        "count": l10n.number(points)}


def birthdays_award(*, today: date | None = None, batch_size: int = 1000) -> int:
    """Record a birthday activity for members whose birthday is today in the program's time zone
    (29 February birthdays count on 28 February in other years), or was in the last
    ``CATCH_UP_DAYS`` days when the scheduler was down: once per member per year, dated
    at noon of the day. Each member celebrated hears of it (a note, and a message on their
    reminders channel) with the points it earned. Returns how many were celebrated."""
    from messaging.catalogue import wording
    from messaging.services import notify

    program = current_program()
    today = today or timezone.now().astimezone(program.tz).date()
    words = wording("birthday")
    created = 0
    for day in days_to_catch_up(today):
        wanted = on_this_day("birthday", day)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=program.tz)
        # Members who were in the program on the day (someone joining after it waits for next year).
        member_ids = list(Member.objects.filter(wanted, erased_at__isnull=True,
                                                created_at__lt=noon + timedelta(hours=12))
                          .order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(member_ids), batch_size):
            part = member_ids[start:start + batch_size]
            with transaction.atomic():
                results = activities_record(items=[
                    ActivityInput(member_id=member_id, type=ActivityType.BIRTHDAY, occurred_at=noon,
                                  source_key=f"birthday:{member_id}:{day.year}", description="Happy birthday!")
                    for member_id in part])
                notify(notes=[
                    words.note(member_id, "/rewards/", gift=l10n.later(_birthday_gift, result.award.points)
                               if result.award.points else "")
                    for member_id, result in zip(part, results, strict=True) if result.created])
            created += sum(1 for result in results if result.created)
    return created
