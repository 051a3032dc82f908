"""Badges and challenges: awarded the moment their criterion is met, once per level or per challenge.

After an activity commits, ``progress_check_after_commit`` queues one task for the members it
touched; the task re-checks tiers, and the badges and challenges that kind of activity can move.
A nightly run checks everyone (years of membership, late work). Every award is keyed by a unique
constraint (member and badge level, member and challenge), so two runs at once still award once,
and a bonus is an activity with its own source key, so it is paid once.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.core.files.base import ContentFile
from django.db import connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from accounts.models import Member
from core import bulk, events
from core.errors import Conflict
from core.events import Emitted
from messaging.catalogue import wording
from messaging.services import notify
from rewards import criteria
from rewards.ledger import run_sql
from rewards.models import Badge, BadgeLevel, Challenge, ChallengeEntry, Enrollment, MemberBadge
from rewards.program import CHALLENGE_LATE, current_program, program_changed
from rewards.services.activities import ActivityInput, activities_record, set_points_sql
from rewards.services.progress_hook import progress_check_after_commit

# Bonuses per activities_record call: as many as one chunk of awards, so a chunk posts its bonuses
# with one statement per table (its entries, lots, balances and events), not five.
BONUS_BATCH = 5000
# Badge awards per transaction (on PostgreSQL one statement each: a chunk's members stay locked for
# a fraction of a second), and how many chunks a backfill writes at once.
AWARD_CHUNK = 5000
AWARD_WORKERS = 2
BONUS_TYPE = "badge_earned"


def _moved(criterion: str, activity_type: str, activity_types) -> bool:
    """Whether activities of these types can change this criterion (``None``: any may have)."""
    if activity_types is None:
        return True
    moved_by = criteria.MOVED_BY[criterion]
    return activity_type in activity_types if moved_by is None else bool(moved_by & set(activity_types))


def _erased(member_ids) -> set[int]:
    erased = Member.objects.filter(erased_at__isnull=False)
    if member_ids is not None:
        erased = erased.filter(pk__in=list(member_ids))
    return set(erased.values_list("pk", flat=True))


def badges_evaluate(*, member_ids=None, badge_ids=None, activity_types=None, now: datetime | None = None) -> int:
    """Award every badge level members now meet and do not hold. Returns how many were awarded."""
    now = now or timezone.now()
    program = current_program()
    if badge_ids is None:
        badges = program.badges  # kept with the program: read again when a badge is saved
    else:
        badges = Badge.objects.filter(is_active=True, pk__in=list(badge_ids)).prefetch_related("levels")
    badges = [b for b in badges if _moved(b.criterion, b.activity_type, activity_types)]
    if not badges:
        return 0
    wanted: list[tuple[int, BadgeLevel]] = []
    for badge in badges:
        values = criteria.values(badge.criterion, activity_type=badge.activity_type, member_ids=member_ids,
                                 currency=program.settings.currency, now=now)
        for level in badge.levels.all():
            wanted.extend((member_id, level) for member_id, value in values.items() if value >= level.threshold)
    if wanted:
        skip = _erased(member_ids)
        wanted = [(member_id, level) for member_id, level in wanted if member_id not in skip]
    return _award_badges(wanted, now=now)


def _award_badges(wanted: list[tuple[int, BadgeLevel]], *, now: datetime) -> int:
    if not wanted:
        return 0
    levels = {level.pk: level for _, level in wanted}
    chunks = _by_member(wanted)
    if len(chunks) > 1 and bulk.parallel_writers():
        # A backfill over everyone: chunks of other members on other connections at once, each in
        # its own transaction (no two share a member, so none waits for another's locks); half of
        # each chunk's time is the database's, which then works on more than one core.
        with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, AWARD_WORKERS)) as pool:
            return sum(pool.map(lambda chunk: _award_chunk_alone(chunk, levels, now), chunks))
    return sum(_award_chunk(chunk, levels, now) for chunk in chunks)


def _by_member(wanted: list[tuple[int, BadgeLevel]]) -> list[list[tuple[int, int]]]:
    """``(member id, level id)`` in chunks of about ``AWARD_CHUNK``, a member's levels all in one
    chunk: their row is locked and written once, and by one transaction."""
    chunks: list[list[tuple[int, int]]] = [[]]
    for member_id, level in sorted(wanted, key=lambda pair: (pair[0], pair[1].pk)):
        chunk = chunks[-1]
        if len(chunk) >= AWARD_CHUNK and chunk[-1][0] != member_id:
            chunk = []
            chunks.append(chunk)
        chunk.append((member_id, level.pk))
    return chunks


def _award_chunk_alone(chunk: list[tuple[int, int]], levels: dict[int, BadgeLevel], now: datetime) -> int:
    try:
        return _award_chunk(chunk, levels, now)
    finally:
        connections.close_all()  # this thread's own connection


def _award_chunk(chunk: list[tuple[int, int]], levels: dict[int, BadgeLevel], now: datetime) -> int:
    words = wording("badge")
    with transaction.atomic():
        if bulk.writes_in_one_statement():
            fresh = [(member_id, levels[level_id]) for member_id, level_id in _award_at_once(chunk, levels, now)]
        else:
            fresh = _award_one_by_one(chunk, levels, now)
        notify(notes=[words.note(member_id, "/rewards/badges/", badge=level.badge.name, level=level.name,
                                 description=level.badge.description) for member_id, level in fresh])
    return len(fresh)


def _bonus_key(level_id: int, member_id: int) -> str:
    return f"badge:{level_id}:{member_id}"


def _bonus_description(level: BadgeLevel) -> str:
    return f"Badge: {level.badge.name} ({level.name})"


def _award_one_by_one(chunk: list[tuple[int, int]], levels: dict[int, BadgeLevel], now: datetime
                      ) -> list[tuple[int, BadgeLevel]]:
    # The unique (member, level) index decides: a badge someone else just awarded is skipped.
    inserted = bulk.insert_new(MemberBadge, ("member_id", "level_id", "awarded_at"),
                               [(member_id, level_id, now) for member_id, level_id in chunk],
                               unique=("member_id", "level_id"))
    fresh = [(member_id, levels[level_id]) for member_id, level_id in inserted]
    events.emit_many("badge.awarded", [Emitted(member_id, _awarded_data(level)) for member_id, level in fresh])
    bonuses = [
        ActivityInput(member_id=member_id, type=BONUS_TYPE, source_key=_bonus_key(level.pk, member_id),
                      occurred_at=now, description=_bonus_description(level), points=level.points_bonus)
        for member_id, level in fresh if level.points_bonus
    ]
    for offset in range(0, len(bonuses), BONUS_BATCH):
        activities_record(items=bonuses[offset:offset + BONUS_BATCH])
    return fresh


def _awarded_data(level: BadgeLevel) -> dict:
    return {"badge": level.badge.name, "slug": level.badge.slug, "level": level.name}


def _award_at_once(chunk: list[tuple[int, int]], levels: dict[int, BadgeLevel], now: datetime
                   ) -> list[tuple[int, int]]:
    """``_award_one_by_one`` in one SQL statement (PostgreSQL): locks the members (in key order),
    inserts the badges the unique (member, level) index lets in, announces them, and records
    their bonuses with ``set_points_sql`` (entries, lots, balances and events with them); only
    the pairs ``(member id, level id)`` go in and come back. Returns the pairs awarded."""
    member, member_badge = Member._meta.db_table, MemberBadge._meta.db_table
    expires_at = current_program().expires_at(now)
    data = "jsonb_build_object('badge', l.badge, 'slug', l.slug, 'level', l.name)"
    announce = events.outbox_insert_sql(
        "badge.awarded", now="(SELECT now FROM p)",
        select=f"SELECT a.member_id, {data} AS data FROM awarded a JOIN levels l ON l.id = a.level_id")
    sql = f"""
WITH p AS (SELECT %s::timestamptz AS now),
levels AS (
    SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[])
           AS l (id, badge, slug, name, points, description)
),
wanted AS (SELECT * FROM unnest(%b::bigint[], %b::bigint[]) AS w (member_id, level_id)),
m AS (
    SELECT id AS member_id, points_owed AS owed FROM "{member}" WHERE id = ANY(%b::bigint[])
    ORDER BY id FOR NO KEY UPDATE
),
awarded AS (
    INSERT INTO "{member_badge}" (member_id, level_id, awarded_at)
    SELECT w.member_id, w.level_id, (SELECT now FROM p) FROM wanted w JOIN m ON m.member_id = w.member_id
    ORDER BY w.member_id, w.level_id
    ON CONFLICT (member_id, level_id) DO NOTHING RETURNING member_id, level_id
),
announced AS ({announce}),
bonuses AS (  -- source keys as _bonus_key makes them
    SELECT a.member_id, m.owed, NULL::bigint AS partner_id, '{BONUS_TYPE}' AS type,
           'badge:' || a.level_id || ':' || a.member_id AS source_key, (SELECT now FROM p) AS occurred_at,
           '{{}}'::jsonb AS properties, l.description, l.points, %s::text AS expires_at
    FROM awarded a JOIN levels l ON l.id = a.level_id JOIN m ON m.member_id = a.member_id WHERE l.points > 0
),
{set_points_sql(source="bonuses", now="(SELECT now FROM p)")}
SELECT a.member_id, a.level_id FROM awarded a"""
    level_ids = sorted({level_id for _, level_id in chunk})
    params = [now, level_ids, [levels[pk].badge.name for pk in level_ids], [levels[pk].badge.slug for pk in level_ids],
              [levels[pk].name for pk in level_ids], [levels[pk].points_bonus for pk in level_ids],
              [_bonus_description(levels[pk]) for pk in level_ids],
              [member_id for member_id, _ in chunk], [level_id for _, level_id in chunk],
              sorted({member_id for member_id, _ in chunk}),
              expires_at.isoformat() if expires_at else None]
    fresh = run_sql(sql, params)
    events.relay_after_commit()
    paid = sorted({member_id for member_id, level_id in fresh if levels[level_id].points_bonus})
    progress_check_after_commit(member_ids=paid, activity_types=[BONUS_TYPE] if paid else [])
    return fresh


def badge_backfill(*, badge_id: int) -> int:
    """Award a newly defined (or changed) badge to everyone who already qualifies."""
    return badges_evaluate(badge_ids=[badge_id])


def badge_default_image(level: BadgeLevel) -> ContentFile:
    """A clean round badge drawn with Pillow: the badge's initials on its level's colour."""
    colours = {1: (176, 110, 60), 2: (140, 150, 160), 3: (212, 168, 40), 4: (90, 110, 200)}
    fill = colours.get(level.level, (15, 118, 110))
    size = 256
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, size - 8, size - 8), fill=fill + (255,), outline=(255, 255, 255, 255), width=10)
    draw.ellipse((34, 34, size - 34, size - 34), outline=(255, 255, 255, 160), width=4)
    initials = "".join(word[0] for word in level.badge.name.split()[:2]).upper() or "?"
    try:
        font = ImageFont.load_default(size=96)
    except TypeError:  # Pillow before 10.1 has no sized default font
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), initials, font=font)
    position = ((size - (box[2] - box[0])) / 2 - box[0], (size - (box[3] - box[1])) / 2 - box[1])
    draw.text(position, initials, fill=(255, 255, 255, 255), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return ContentFile(buffer.getvalue(), name=f"{level.badge.slug}-{level.level}.png")


def badge_level_ensure_image(*, level: BadgeLevel) -> BadgeLevel:
    if not level.image:
        level.image.save(f"{level.badge.slug}-{level.level}.png", badge_default_image(level), save=True)
    return level


def badge_saved(*, badge: Badge) -> None:
    """After staff save a badge: draw missing images and backfill it in the background."""
    for level in badge.levels.all():
        badge_level_ensure_image(level=level)
    program_changed()
    from rewards.tasks import backfill_badge

    transaction.on_commit(lambda: backfill_badge.delay(badge_id=badge.pk))


# --- Challenges ------------------------------------------------------------------------------------


def challenge_join(*, member: Member, challenge: Challenge) -> ChallengeEntry:
    now = timezone.now()
    if challenge.enrollment != Enrollment.OPT_IN:
        raise Conflict(_("Everyone takes part in this challenge already."), code="automatic_challenge")
    if not (challenge.is_active and challenge.starts_at <= now < challenge.ends_at):
        raise Conflict(_("This challenge is not open."), code="challenge_closed")
    entry, _created = ChallengeEntry.objects.get_or_create(member=member, challenge=challenge,
                                                           defaults={"joined_at": now})
    return entry


def challenges_evaluate(*, member_ids=None, activity_types=None, now: datetime | None = None) -> int:
    """Mark challenges completed for members whose progress inside the challenge's dates reached
    its goal, and pay their rewards. Returns how many completions were recorded."""
    now = now or timezone.now()
    program = current_program()
    if not program.has_challenges:
        return 0
    # Work reported a little late still counts if it happened inside the challenge's dates.
    challenges = Challenge.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now - CHALLENGE_LATE)
    challenges = [c for c in challenges.select_related("reward_badge__badge")
                  if _moved(c.criterion, c.activity_type, activity_types)]
    if not challenges:
        return 0
    completed = 0
    skip = _erased(member_ids)
    for challenge in challenges:
        entries = ChallengeEntry.objects.filter(challenge=challenge)
        if member_ids is not None:
            entries = entries.filter(member_id__in=list(member_ids))
        entries = {e.member_id: e for e in entries}
        candidates = member_ids
        if challenge.enrollment == Enrollment.OPT_IN:
            candidates = [m for m in entries if m]
            if not candidates:
                continue
        values = criteria.values(challenge.criterion, activity_type=challenge.activity_type, member_ids=candidates,
                                 window=criteria.Window(challenge.starts_at, challenge.ends_at),
                                 currency=program.settings.currency, now=now)
        done = [m for m, value in values.items() if value >= challenge.threshold and m not in skip
                and not (m in entries and entries[m].completed_at)]
        if done:
            completed += _complete(challenge, done, entries, now)
    return completed


def _complete(challenge: Challenge, member_ids: list[int], entries: dict, now: datetime) -> int:
    with transaction.atomic():
        new = [m for m in member_ids if m not in entries]
        bulk.insert_new(ChallengeEntry, ("challenge_id", "member_id", "joined_at", "completed_at"),
                        [(challenge.pk, m, now, None) for m in new], unique=("member_id", "challenge_id"))
        # Completed once: only entries still open are closed, so a second run finds nothing to do.
        # In key order: the entries here, and the members the bonuses below lock a batch at a time.
        still_open = ChallengeEntry.objects.select_for_update().filter(
            challenge=challenge, member_id__in=member_ids, completed_at__isnull=True).order_by("member_id")
        closing = list(still_open.values_list("member_id", flat=True))
        ChallengeEntry.objects.filter(challenge=challenge, member_id__in=closing).update(completed_at=now)
        events.emit_many("challenge.completed", [Emitted(m, {"challenge_id": challenge.pk, "challenge": challenge.name})
                                                 for m in closing])
        if challenge.reward_points:
            items = [ActivityInput(member_id=m, type="challenge_completed", source_key=f"challenge:{challenge.pk}:{m}",
                                   occurred_at=now, description=f"Challenge: {challenge.name}",
                                   points=challenge.reward_points) for m in closing]
            for offset in range(0, len(items), BONUS_BATCH):
                activities_record(items=items[offset:offset + BONUS_BATCH])
        words = wording("challenge")
        notify(notes=[words.note(m, "/rewards/challenges/", challenge=challenge.name,
                                 description=challenge.description) for m in closing])
        if challenge.reward_badge is not None:
            _award_badges([(m, challenge.reward_badge) for m in closing], now=now)
    return len(closing)


def progress_evaluate(*, member_ids=None, activity_types=None) -> dict:
    """Tiers, badges and challenges for these members (everyone when ``None``)."""
    from rewards.services.tiers import tiers_evaluate

    run = tiers_evaluate(member_ids=member_ids)
    return {
        "tiers_up": run.upgraded, "tiers_down": run.downgraded, "tiers_renewed": run.renewed,
        "badges": badges_evaluate(member_ids=member_ids, activity_types=activity_types),
        "challenges": challenges_evaluate(member_ids=member_ids, activity_types=activity_types),
    }
