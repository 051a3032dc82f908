"""Writes of messaging: putting messages in the outbox, sending them, unsubscribing.

Flow: a sender calls ``messages_queue`` inside its own transaction (a message exists only if the
change that asked for it does); after commit the ids go to ``messaging.send`` on the ``messages``
queue, and ``messages_due`` (beat, every minute) picks up whatever a dead worker or a stopped
broker left. ``message_send`` claims a message, holds back marketing messages in quiet hours or
over the weekly cap (checked under the member's lock, so two workers cannot both pass it),
refuses suppressed addresses, renders ``messages/<template>.html`` and hands it to the channel.
Delivery is at least once: a worker that dies after the provider took the message but before it
was recorded sends it again once its claim expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import AuditLog, Member, Notification, User
from core import bulk, events, l10n
from core.claims import unclaimed
from core.errors import Invalid
from core.events import Emitted
from messaging import catalogue, rendering, selectors, sms
from messaging.models import (
    MARKETING,
    PREFERENCE_FIELD,
    Delivery,
    LifecycleNotice,
    Message,
    MessageChannel,
    MessageKindSettings,
    MessageStatus,
    MessagingSettings,
    Purpose,
    Suppression,
)
from messaging.selectors import Recipient

RETRY_DELAYS = [60, 300, 1800, 7200, 21600]  # seconds after each failed try; then it is given up
SEND_CHUNK = 200  # messages per task: a worker claims them together...
RECORD_EVERY = 20  # ...and records what became of them this many at a time
_TOKEN_SALT = "messaging.unsubscribe"


@dataclass(frozen=True)
class Outgoing:
    """A message to put in the outbox: to a member (on the channel they chose for ``purpose``),
    or to an address (``to``: a friend invited, staff). ``key`` makes it once-only."""

    template: str
    purpose: str
    key: str
    member_id: int | None = None
    to: str = ""
    context: dict = field(default_factory=dict)
    priority: int = 50


def messaging_settings() -> MessagingSettings:
    row, _ = MessagingSettings.objects.get_or_create(pk=1)
    return row


def messaging_settings_update(*, actor_user: User | None, changes: dict) -> MessagingSettings:
    allowed = {"weekly_cap", "quiet_from", "quiet_until", "expiry_reminder_days", "expiry_reminder_min_points",
               "post_purchase_days"}
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid(_("Unknown settings."), fields={name: _("Unknown setting.") for name in unknown})
    with transaction.atomic():
        row = MessagingSettings.objects.select_for_update().get(pk=messaging_settings().pk)
        before = {name: str(getattr(row, name)) for name in changes}
        for name, value in changes.items():
            setattr(row, name, value)
        row.full_clean()
        row.save()
        AuditLog.objects.create(action="messaging.settings", actor_user=actor_user, subject="messaging_settings",
                                before=before, after={name: str(getattr(row, name)) for name in changes})
    return row


def message_kinds_ensure() -> None:
    """A settings row for every kind in the catalogue (the admin lists them), new kinds included."""
    have = set(MessageKindSettings.objects.values_list("kind", flat=True))
    missing = [MessageKindSettings(kind=key) for key in catalogue.KINDS if key not in have]
    MessageKindSettings.objects.bulk_create(missing, ignore_conflicts=True)


def message_kind_words_fields() -> list[str]:
    """The names of staff's words for every language: ``title`` and ``body`` for the program's
    language, ``title_de`` and ``body_de`` for German, and so on for each of ``LANGUAGES``."""
    names = ["title", "body"]
    for code, _name in settings.LANGUAGES:
        if code != settings.LANGUAGE_CODE:
            names += [f"title_{code}", f"body_{code}"]
    return names


def message_kind_update(*, actor_user: User | None, kind: str, changes: dict) -> MessageKindSettings:
    """Reword a kind of message, in any of the languages (``title``/``body`` for the program's,
    ``title_de``/``body_de`` for German...), or change who sends it. Words may use only the kind's
    placeholders (refused with the name otherwise); empty words go back to that language's
    defaults; only a lifecycle kind can be handed to the store or switched off. Audited."""
    found = catalogue.KINDS.get(kind)
    if found is None:
        raise Invalid(_("Unknown kind of message."), fields={"kind": f"No kind {kind!r}."})
    words = message_kind_words_fields()
    unknown = set(changes) - {*words, "delivery"}
    if unknown:
        raise Invalid(_("Unknown settings."), fields={name: _("Unknown setting.") for name in unknown})
    problems = {}
    for name in words:
        if name in changes:
            changes[name] = (changes[name] or "").strip()
            try:
                catalogue.check(found, changes[name])
            except catalogue.PlaceholderError as exc:
                problems[name] = str(exc)
    if changes.get("delivery", Delivery.SEND) != Delivery.SEND and not found.lifecycle:
        problems["delivery"] = _("Messages about a member's own doings are always sent.")
    if changes.get("delivery", Delivery.SEND) not in Delivery.values:
        problems["delivery"] = _("Choose send, store or off.")
    if problems:
        raise Invalid(_("Some words need changing."), fields=problems)
    with transaction.atomic():
        row, _created = MessageKindSettings.objects.select_for_update().get_or_create(kind=kind)

        def current(name):
            if name in ("title", "body", "delivery"):
                return getattr(row, name)
            field, code = name.split("_", 1)
            return (row.translations or {}).get(code, {}).get(field, "")

        before = {name: current(name) for name in changes}
        translations = {code: dict(found_words) for code, found_words in (row.translations or {}).items()}
        for name, value in changes.items():
            if name in ("title", "body", "delivery"):
                setattr(row, name, value)
            else:
                field, code = name.split("_", 1)
                translations.setdefault(code, {})[field] = value
        row.translations = {code: {f: v for f, v in found_words.items() if v}
                            for code, found_words in translations.items() if any(found_words.values())}
        row.save()
        AuditLog.objects.create(action="messaging.kind_changed", actor_user=actor_user, subject=f"message_kind:{kind}",
                                before=before, after={name: current(name) for name in changes})
        catalogue.wording_changed()
    return row


def message_test_send(*, kind: str, user: User, language: str | None = None) -> int:
    """Send a kind's message, with sample values, to a member of staff (their own address), in a
    language (the active one when not given)."""
    if not user.email:
        raise Invalid(_("Your account has no e-mail address."),
                      fields={"email": _("Add an address to your account.")})
    language = catalogue.language_of(language or translation.get_language())
    template, context = rendering.sample_message(kind, language)
    context = {**context, "language": language}
    with transaction.atomic():
        return messages_queue(items=[Outgoing(template=template, purpose=Purpose.TRANSACTIONAL, to=user.email,
                                              key=f"test:{kind}:{uuid.uuid4().hex}", context=context)])


# --- Into the outbox -------------------------------------------------------------------------------

def _route(item: Outgoing, member: Recipient | None) -> tuple[str, str] | None:
    """(channel, address) for a message, or None when it must not be sent at all."""
    if item.member_id is None:
        to = item.to.strip()
        if not to:
            return None
        return (MessageChannel.SMS, to) if to.startswith("+") else (MessageChannel.EMAIL, to.lower())
    if member is None:  # erased, or gone
        return None
    if item.purpose in PREFERENCE_FIELD:
        chosen = member.channels[PREFERENCE_FIELD[item.purpose]]
        if chosen == MessageChannel.SMS and member.phone:
            return MessageChannel.SMS, member.phone
        if chosen == MessageChannel.EMAIL and member.email:
            return MessageChannel.EMAIL, member.email.lower()
        return None
    return (MessageChannel.EMAIL, member.email.lower()) if member.email else None


def messages_queue(*, items: list[Outgoing], now: datetime | None = None) -> int:
    """Put messages in the outbox, in the caller's transaction; each is sent after it commits.
    A member gets a marketing message only on the channel they chose for its purpose (nothing is
    written when they chose none); a key already used writes nothing; a suppressed address is
    recorded as not sent. Returns how many messages were written."""
    if not items:
        return 0
    written = timezone.now()
    now = now or written
    members = selectors.recipients(item.member_id for item in items if item.member_id is not None)
    routed = [(item, route) for item in items if (route := _route(item, members.get(item.member_id)))]
    if not routed:
        return 0
    suppressed = selectors.suppressed(to for _, (_, to) in routed)
    rows = []
    for item, (channel, to) in routed:
        status, error = MessageStatus.QUEUED, ""
        if to in suppressed:
            status, error = MessageStatus.SKIPPED, f"The address is suppressed ({suppressed[to]})."
        # Due from when it is written (``now`` may be the time a run stands for, in history or ahead).
        rows.append((item.member_id, to, item.purpose, channel, item.template, bulk.json_text(item.context),
                     item.key[:200], item.priority, status, written, 0, "", error, now))
    inserted = bulk.insert_new(Message, ("member_id", "to", "purpose", "channel", "template", "context", "key",
                                         "priority", "status", "send_after", "attempts", "provider_id", "error",
                                         "created_at"), rows, unique="key")
    queued = {row[6] for row in rows if row[8] == MessageStatus.QUEUED}
    ids = sorted(pk for key, pk in inserted.items() if key in queued)
    _send_after_commit(ids)
    return len(inserted)


def _send_after_commit(ids: list[int]) -> None:
    from messaging.tasks import send

    for start in range(0, len(ids), SEND_CHUNK):
        chunk = ids[start:start + SEND_CHUNK]
        transaction.on_commit(lambda chunk=chunk: send.delay(message_ids=chunk))


@dataclass(frozen=True)
class Note:
    """Something to tell a member in the portal (a notification), and by message if they agreed:
    in words already written (``title``, ``body``: a campaign's), or, with ``values``, in the words
    of its kind of message (``catalogue.KINDS``), made in the member's own language when it is
    sent (``Wording.note``)."""

    member_id: int
    kind: str
    title: str = ""
    body: str = ""
    url: str = ""
    values: dict | None = None
    language: str = ""  # the language its words are in, once made


NOTIFY_CHUNK = 5000


def notify(*, notes: list[Note], purpose: str = Purpose.REMINDERS, messages: bool = True) -> int:
    """Tell members something in the portal, and as a message on the channel they chose for
    ``purpose`` (``transactional``: about their own doings, an answer to their question, a decision
    on their review, to every member with an address). A lifecycle kind staff handed to the store
    goes out as a ``campaign.message`` event instead (to the members we would have written to), and
    one they switched off as nothing but the note (``messages=False``: only the notes, for every
    kind). Returns how many notes were made."""
    if not notes:
        return 0
    now = timezone.now()
    delivery = {kind: catalogue.wording(kind).delivery for kind in {n.kind for n in notes} if kind in catalogue.KINDS}
    if not messages:
        delivery = {kind: Delivery.OFF for kind in {n.kind for n in notes}}
    # In slices: a nightly tier review can tell a hundred thousand members at once, and one
    # statement may carry at most 65,535 parameters.
    for start in range(0, len(notes), NOTIFY_CHUNK):
        part = _in_their_words(notes[start:start + NOTIFY_CHUNK])
        with transaction.atomic():
            ids = bulk.insert(Notification, ("member_id", "kind", "title", "body", "url", "created_at"),
                              [(n.member_id, n.kind, n.title, n.body, n.url, now) for n in part])
            messages_queue(now=now, items=[
                Outgoing(template="note", purpose=purpose, key=f"notification:{pk}", member_id=note.member_id,
                         context={"title": note.title, "body": note.body, "url": note.url, "kind": note.kind,
                                  **({"language": note.language} if note.language else {})},
                         priority=catalogue.KINDS[note.kind].priority if note.kind in catalogue.KINDS else 50)
                for pk, note in zip(ids, part, strict=True) if delivery.get(note.kind, Delivery.SEND) == Delivery.SEND])
            _hand_to_store([n for n in part if delivery.get(n.kind) == Delivery.STORE], purpose)
    return len(notes)


def _in_their_words(notes: list[Note]) -> list[Note]:
    """Each note of a kind of message written in its member's language (staff's words for that
    language, or its defaults), its values shown that language's way; one read of the members'
    languages and one wording per kind and language, however many notes."""
    todo = [index for index, note in enumerate(notes) if note.values is not None]
    if not todo:
        return notes
    languages = selectors.languages(notes[index].member_id for index in todo)
    language_of: dict[str | None, str] = {}  # a member's stored language -> the one its words are in
    in_language: dict[str, list[int]] = {}
    for index in todo:
        stored = languages.get(notes[index].member_id)
        if stored not in language_of:
            language_of[stored] = catalogue.language_of(stored)
        in_language.setdefault(language_of[stored], []).append(index)
    said: dict[tuple, tuple[str, str]] = {}
    written = list(notes)
    for language in sorted(in_language):
        words: dict[str, catalogue.Wording] = {}
        with translation.override(language):
            for index in in_language[language]:
                note = notes[index]
                if note.kind not in words:
                    words[note.kind] = catalogue.wording(note.kind, language)
                title, body = _said(words[note.kind], note.values, said, (note.kind, language))
                written[index] = Note(note.member_id, note.kind, title, body, note.url, language=language)
    return written


def _said(found: catalogue.Wording, values: dict, said: dict, kind: tuple[str, str]) -> tuple[str, str]:
    """A wording's title and body for these values, made once for all the notes that say the same
    (a badge's level told to a hundred thousand members at once)."""
    try:
        key = (*kind, *sorted(values.items()))
        hash(key)
    except TypeError:  # a value that cannot be a key (a list): made for this note alone
        return found.title(**values), found.body(**values)
    if key not in said:
        said[key] = found.title(**values), found.body(**values)
    return said[key]


def _hand_to_store(notes: list[Note], purpose: str) -> None:
    """``campaign.message`` for the store's own sender: the words of each note, for the members
    who would have had it from us (they chose a channel for its purpose, their address is not
    suppressed)."""
    if not notes:
        return
    members = selectors.recipients(n.member_id for n in notes)
    routed = [(n, route) for n in notes if (route := _route(Outgoing("note", purpose, "", n.member_id),
                                                            members.get(n.member_id)))]
    suppressed = selectors.suppressed(to for _, (_, to) in routed)
    events.emit_many("campaign.message", [
        Emitted(n.member_id, {"campaign": n.kind, "subject": n.title,
                              "text": n.body + (f"\n{settings.SITE_URL}{n.url}" if n.url else "")})
        for n, (_, to) in routed if to not in suppressed])


# --- Lifecycle messages -------------------------------------------------------------------------------

def expiry_reminders_send(*, now: datetime | None = None) -> int:
    """Tell members whose points expire within ``expiry_reminder_days`` (at least
    ``expiry_reminder_min_points`` of them), once per member and expiry day: a portal note, a
    reminder on their channel, and ``points.expiring`` for the store's webhooks. Safe to run twice.
    Returns how many members were told."""
    from rewards.program import current_program
    from rewards.selectors import expiring_by_member

    now = now or timezone.now()
    row = messaging_settings()
    if not row.expiry_reminder_days:
        return 0
    tz = current_program().tz
    words = catalogue.wording("points_expiring")
    found = expiring_by_member(start=now, end=now + timedelta(days=row.expiry_reminder_days),
                               min_points=row.expiry_reminder_min_points)
    told = 0
    for start in range(0, len(found), NOTIFY_CHUNK):
        part = {(member_id, first.astimezone(tz).date().isoformat()): (points, first)
                for member_id, points, first in found[start:start + NOTIFY_CHUNK]}
        with transaction.atomic():
            fresh = [(key, *part[key]) for key in _notices_new("points_expiring", list(part), now=now)]
            events.emit_many("points.expiring", [Emitted(member_id, {"points": points, "expires_at": first.isoformat()})
                                                 for (member_id, _), points, first in fresh])
            notify(notes=[words.note(member_id, "/rewards/", points=points, date=first.astimezone(tz).date())
                          for (member_id, _), points, first in fresh])
        told += len(fresh)
    return told


def _notices_new(kind: str, pairs: list[tuple[int, str]], *, now: datetime) -> list[tuple[int, str]]:
    """Record that these members are told ``kind`` about ``key``; the (member, key) pairs that had
    not been told before (the others were, by an earlier run)."""
    inserted = bulk.insert_new(LifecycleNotice, ("member_id", "kind", "key", "created_at"),
                               [(member_id, kind, key, now) for member_id, key in pairs],
                               unique=("member_id", "kind", "key"))
    return [(member_id, key) for member_id, _kind, key in inserted]


def rewards_unlocked_send(*, now: datetime | None = None) -> int:
    """Tell members once that a reward is now within their points: for each member, the dearest
    reward they can afford and were not told about (open to everyone: not tier-only, in stock, in
    its dates). Returns how many members were told."""
    now = now or timezone.now()
    words = catalogue.wording("reward_unlocked")
    told = 0
    found = selectors.affordable_rewards(now=now, told_kind="reward_unlocked")
    for start in range(0, len(found), NOTIFY_CHUNK):
        part = found[start:start + NOTIFY_CHUNK]
        names = {member_id: (reward_id, name, cost) for member_id, reward_id, name, cost in part}
        with transaction.atomic():
            fresh = _notices_new("reward_unlocked", [(m, str(r)) for m, (r, _, _) in names.items()], now=now)
            notify(notes=[words.note(member_id, "/rewards/", reward=names[member_id][1], cost=names[member_id][2])
                          for member_id, _ in fresh])
        told += len(fresh)
    return told


DIGEST_HOUR = 8  # local time from which yesterday's digest goes out
STATEMENT_HOUR = 9  # ...and the month's statement, in the first week of the next month
STATEMENT_DAYS = 7


def _members_told(kind: str, key: str, member_ids: list[int], now: datetime) -> list[int]:
    """Of these members, those not told ``kind`` for ``key`` yet (now recorded as told)."""
    return [member_id for member_id, _ in _notices_new(kind, [(m, key) for m in member_ids], now=now)]


def points_digest_send(*, now: datetime | None = None) -> int:
    """From 08:00 in the program's time zone: one message per member who earned points the day
    before, with the total and their balance (one message, however many orders). Once per member
    and day. Returns how many members were told."""
    from rewards.program import current_program
    from rewards.selectors import points_moved_by_member

    now = now or timezone.now()
    tz = current_program().tz
    local = now.astimezone(tz)
    if local.hour < DIGEST_HOUR:
        return 0
    day = local.date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    earned = {m: e for m, (e, _) in points_moved_by_member(start=start, end=start + timedelta(days=1)).items() if e > 0}
    words = catalogue.wording("points_digest")
    told = 0
    ids = sorted(earned)
    for offset in range(0, len(ids), NOTIFY_CHUNK):
        with transaction.atomic():
            fresh = _members_told("points_digest", day.isoformat(), ids[offset:offset + NOTIFY_CHUNK], now)
            balances = dict((pk, (available, pending)) for pk, available, pending in Member.objects.filter(
                pk__in=fresh).values_list("pk", "points_available", "points_pending"))
            notify(notes=[words.note(m, "/rewards/history/", points=earned[m], balance=balances[m][0],
                                     pending=balances[m][1])
                          for m in fresh if m in balances])
        told += len(fresh)
    return told


def anniversaries_send(*, today=None) -> int:
    """Members who joined on this day in an earlier year (in the program's time zone; 29 February
    counts on 28 February in other years) hear of it once a year; days missed while the scheduler
    was down are caught up for a week. Returns how many members were told."""
    from rewards.program import current_program, days_to_catch_up, on_this_day

    tz = current_program().tz
    now = timezone.now()
    today = today or now.astimezone(tz).date()
    words = catalogue.wording("anniversary")
    told = 0
    for day in days_to_catch_up(today):
        wanted = on_this_day("created_at", day)
        with timezone.override(tz):  # the month and day of joining, in the program's time zone
            joined = dict(Member.objects.filter(wanted, erased_at__isnull=True, created_at__year__lt=day.year)
                          .order_by("pk").values_list("pk", "created_at"))
        ids = sorted(joined)
        for offset in range(0, len(ids), NOTIFY_CHUNK):
            with transaction.atomic():
                fresh = _members_told("anniversary", str(day.year), ids[offset:offset + NOTIFY_CHUNK], now)
                notes = []
                for member_id in fresh:
                    since = joined[member_id].astimezone(tz)
                    years = day.year - since.year
                    notes.append(words.note(member_id, "/", years=l10n.later(_years, years),
                                            since=l10n.later(l10n.month, since.date())))
                notify(notes=notes)
            told += len(fresh)
    return told


def _years(years: int) -> str:
    return ngettext("%(count)s year", "%(count)s years", years) % {"count": years}


def _expiring(points: int, day) -> str:
    return " " + ngettext("%(count)s of them expires by %(day)s.", "%(count)s of them expire by %(day)s.",
                          points) % {"count": l10n.number(points), "day": l10n.day(day)}


def post_purchase_send(*, now: datetime | None = None) -> int:
    """``post_purchase_days`` after an order that earned points (and was not refunded), thank its
    member with the points and when they can spend them. Orders up to two days later than that
    are caught up. Once per order. Returns how many were sent."""
    from rewards.models import Order, OrderStatus
    from rewards.program import current_program

    days = messaging_settings().post_purchase_days
    if not days:
        return 0
    now = now or timezone.now()
    program = current_program()
    due = now - timedelta(days=days)
    orders = list(Order.objects.filter(placed_at__lte=due, placed_at__gt=due - timedelta(days=2), points__gt=0,
                                       status=OrderStatus.PLACED, member__erased_at__isnull=True)
                  .order_by("pk").values_list("pk", "member_id", "order_id", "points", "placed_at"))
    words = catalogue.wording("post_purchase")
    told = 0
    for offset in range(0, len(orders), NOTIFY_CHUNK):
        part = {str(pk): (member_id, order_id, points, placed) for pk, member_id, order_id, points, placed
                in orders[offset:offset + NOTIFY_CHUNK]}
        with transaction.atomic():
            fresh = _notices_new("post_purchase", [(member_id, key) for key, (member_id, *_) in part.items()], now=now)
            notes = []
            for _member, key in fresh:
                member_id, order_id, points, placed = part[key]
                available = program.available_at(placed)
                notes.append(words.note(member_id, "/rewards/history/", order=order_id, points=points,
                                        available=gettext_lazy("today") if available is None or available <= now
                                        else available.astimezone(program.tz).date()))
            notify(notes=notes)
        told += len(fresh)
    return told


def statements_send(*, now: datetime | None = None) -> int:
    """In the first week of a month, from 09:00 in the program's time zone: last month's statement
    (earned, spent, balance, what expires within 30 days) to each member who asked for one
    (``statements_channel``). Once per member and month. Returns how many were sent."""
    from accounts.models import Channel
    from rewards.program import add_months, current_program
    from rewards.selectors import expiring_by_member, points_moved_by_member

    now = now or timezone.now()
    tz = current_program().tz
    local = now.astimezone(tz)
    if local.day > STATEMENT_DAYS or (local.day == 1 and local.hour < STATEMENT_HOUR):
        return 0
    end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = add_months(end, -1)
    month, key = l10n.later(l10n.month, start.date()), f"{start:%Y-%m}"
    words = catalogue.wording("statement")
    told_already = LifecycleNotice.objects.filter(member=OuterRef("pk"), kind="statement", key=key)
    # The members still to tell: the runs after the first of the week find none and stop here.
    ids = list(Member.objects.filter(erased_at__isnull=True).exclude(statements_channel=Channel.NONE)
               .exclude(Exists(told_already)).order_by("pk").values_list("pk", flat=True))
    expiring = {m: (points, first) for m, points, first in
                expiring_by_member(start=now, end=now + timedelta(days=30), min_points=1)} if ids else {}
    told = 0
    for offset in range(0, len(ids), NOTIFY_CHUNK):
        with transaction.atomic():
            fresh = _members_told("statement", key, ids[offset:offset + NOTIFY_CHUNK], now)
            if not fresh:
                continue
            moved = points_moved_by_member(start=start, end=end, member_ids=fresh)
            balances = dict(Member.objects.filter(pk__in=fresh).values_list("pk", "points_available"))
            notes = []
            for member_id in fresh:
                earned, spent = moved.get(member_id, (0, 0))
                soon = expiring.get(member_id)
                notes.append(words.note(
                    member_id, "/rewards/history/", month=month, earned=earned, spent=spent,
                    balance=balances.get(member_id, 0),
                    expiring=l10n.later(_expiring, soon[0], soon[1].astimezone(tz).date()) if soon else ""))
            notify(notes=notes, purpose=Purpose.STATEMENTS)
        told += len(fresh)
    return told


# --- Sending -----------------------------------------------------------------------------------------

def _quiet_end(now: datetime, row: MessagingSettings, tz) -> datetime | None:
    """When quiet hours are over, if ``now`` is in them."""
    local = now.astimezone(tz)
    start, end, t = row.quiet_from, row.quiet_until, local.time()
    if start is None or end is None or start == end:
        return None
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz)


def _week_full_until(sent: list[datetime], cap: int, now: datetime) -> datetime:
    """When a member whose week is full may get the next marketing message."""
    if len(sent) >= cap:  # room again when the oldest of the week's last ``cap`` messages is a week old
        return sorted(sent)[len(sent) - cap] + timedelta(days=7, seconds=1)
    return now + timedelta(minutes=15)  # behind messages being sent, or of higher priority


def _marketing_waits(batch: list[Message], now: datetime) -> dict[int, datetime]:
    """Which marketing messages of the batch must wait, and until when: quiet hours, then the
    weekly cap per member (under the members' locks, so two workers sending to one member at once
    count each other's messages), higher priority first, with due messages outside the batch."""
    from rewards.program import current_program

    marketing = [m for m in batch if m.purpose in MARKETING and m.member_id is not None]
    if not marketing:
        return {}
    row = messaging_settings()
    quiet = _quiet_end(now, row, current_program().tz)
    if quiet is not None:
        return {m.pk: quiet for m in marketing}
    member_ids = sorted({m.member_id for m in marketing})
    list(Member.objects.select_for_update(no_key=True).filter(pk__in=member_ids).order_by("pk").values_list("pk"))
    in_batch = {m.pk for m in batch}
    sent: dict[int, list[datetime]] = {}
    busy: dict[int, int] = {}
    for member_id, status, sent_at in (Message.objects.filter(
            Q(status=MessageStatus.SENT, sent_at__gt=now - timedelta(days=7))
            | Q(status=MessageStatus.QUEUED, claimed_until__gt=now),
            member_id__in=member_ids, purpose__in=MARKETING).values_list("member_id", "status", "sent_at")):
        if status == MessageStatus.SENT:
            sent.setdefault(member_id, []).append(sent_at)
        else:
            busy[member_id] = busy.get(member_id, 0) + 1
    waiting: dict[int, list[int]] = {}  # due messages outside the batch, by member: their priorities
    for member_id, priority, pk in Message.objects.filter(
            unclaimed(now), member_id__in=member_ids, purpose__in=MARKETING, status=MessageStatus.QUEUED,
            send_after__lte=now).values_list("member_id", "priority", "pk"):
        if pk not in in_batch:
            waiting.setdefault(member_id, []).append(priority)
    waits: dict[int, datetime] = {}
    taken: dict[int, int] = {}
    for message in sorted(marketing, key=lambda m: (-m.priority, m.pk)):
        member = message.member_id
        used = len(sent.get(member, [])) + busy.get(member, 0) + taken.get(member, 0)
        ahead = sum(1 for priority in waiting.get(member, []) if priority > message.priority)
        if used + ahead < row.weekly_cap:
            taken[member] = taken.get(member, 0) + 1
        else:
            waits[message.pk] = _week_full_until(sent.get(member, []) + [now] * taken.get(member, 0),
                                                 row.weekly_cap, now)
    return waits


def _claim(message_ids: list[int], now: datetime) -> tuple[list[Message], dict[int, str]]:
    """Claim the due messages among these: those that may go now, and what became of the others."""
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        batch = list(Message.objects.select_for_update(skip_locked=True)
                     .filter(unclaimed(now), pk__in=message_ids, status=MessageStatus.QUEUED, send_after__lte=now)
                     .order_by("pk"))
        suppressed = selectors.suppressed(m.to for m in batch)
        if suppressed:
            bulk.update(Message, ("status", "error"), [
                (m.pk, MessageStatus.SKIPPED, f"The address is suppressed ({suppressed[m.to]}).")
                for m in batch if m.to in suppressed])
            outcomes.update({m.pk: "suppressed" for m in batch if m.to in suppressed})
            batch = [m for m in batch if m.to not in suppressed]
        waits = _marketing_waits(batch, now)
        if waits:
            bulk.update(Message, ("send_after",), list(waits.items()))
            outcomes.update({pk: "waiting" for pk in waits})
            batch = [m for m in batch if m.pk not in waits]
        lease = now + timedelta(seconds=settings.MESSAGE_LEASE_SECONDS)
        for message in batch:
            message.claimed_until, message.attempts = lease, message.attempts + 1
        bulk.update(Message, ("claimed_until", "attempts"), [(m.pk, m.claimed_until, m.attempts) for m in batch])
    return batch, outcomes


def messages_send(*, message_ids: list[int], now: datetime | None = None) -> dict[int, str]:
    """Send these messages, those that are due; returns what happened to each (the others: not due).
    Claimed together in one transaction; each is then handed to its channel, outside any
    transaction, and the outcomes are recorded every ``RECORD_EVERY`` messages: a worker that dies
    sends again, once its claim runs out, at most that many that had already left."""
    now = now or timezone.now()
    batch, outcomes = _claim(list(message_ids), now)
    members = {m.pk: m for m in Member.objects.filter(pk__in={m.member_id for m in batch if m.member_id})
               .only("pk", "first_name", "last_name", "language")}
    # One connection to the mail provider for the batch (SMTP: one login, not one per message).
    mail = get_connection(settings.EMAIL_DELIVERY_BACKEND) if any(
        m.channel == MessageChannel.EMAIL for m in batch) else None
    sent, failed = [], []
    try:
        if mail is not None:
            mail.open()
        for message in batch:
            try:
                sent.append((message, _deliver(message, members.get(message.member_id), mail)[:200]))
            except sms.OptedOut:
                # The provider refuses the number (its owner answered STOP): nothing more goes to it.
                suppression_add(address=message.to, reason="stop", detail="The SMS provider reports an opt-out.")
                outcomes[message.pk] = "suppressed"
            except Exception as exc:  # noqa: BLE001  any provider's failure is recorded and retried
                failed.append((message, f"{exc.__class__.__name__}: {exc}"[:300]))
            if len(sent) + len(failed) >= RECORD_EVERY:
                outcomes.update(_record(sent, failed))
                sent, failed = [], []
    finally:
        if mail is not None:
            mail.close()
    outcomes.update(_record(sent, failed))
    return {pk: outcomes.get(pk, "not due") for pk in message_ids}


def _record(sent: list[tuple[Message, str]], failed: list[tuple[Message, str]]) -> dict[int, str]:
    """Write what became of these messages: sent, or failed (to be retried later, or given up)."""
    tried = [m for m, _ in sent] + [m for m, _ in failed]
    if not tried:
        return {}
    done = timezone.now()
    outcomes = {m.pk: "sent" for m, _ in sent}
    with transaction.atomic():
        # Only while the claim is ours: if it ran out and another worker took the message, theirs counts.
        ours = set(Message.objects.filter(pk__in=[m.pk for m in tried], claimed_until=tried[0].claimed_until)
                   .values_list("pk", flat=True))
        bulk.update(Message, ("status", "sent_at", "claimed_until", "provider_id", "error"), [
            (m.pk, MessageStatus.SENT, done, None, provider_id, "") for m, provider_id in sent if m.pk in ours])
        retries = []
        for message, error in failed:
            retry = message.attempts <= len(RETRY_DELAYS)
            delay = timedelta(seconds=RETRY_DELAYS[message.attempts - 1]) if retry else timedelta()
            retries.append((message.pk, MessageStatus.QUEUED if retry else MessageStatus.FAILED, None, error,
                            done + delay))
            outcomes[message.pk] = "retry" if retry else "failed"
        bulk.update(Message, ("status", "claimed_until", "error", "send_after"),
                    [row for row in retries if row[0] in ours])
    return outcomes


def message_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send one message if it is due; returns what happened."""
    return messages_send(message_ids=[message_id], now=now)[message_id]


def _deliver(message: Message, member: Member | None, mail) -> str:
    """Hand the message to its channel; the provider's id for it."""
    unsubscribe = unsubscribe_url(member_id=message.member_id, address=message.to, purpose=message.purpose) \
        if message.purpose in MARKETING or message.purpose == Purpose.REFERRALS else ""
    rendered = rendering.render(template=message.template, context=message.context, member=member,
                                unsubscribe_url=unsubscribe,
                                preferences_url=preferences_url(member_id=member.pk) if member else "")
    if message.channel == MessageChannel.SMS:
        return sms.backend().send(to=message.to, text=rendered.sms)
    headers = {"X-Loyalty-Message": str(message.pk)}
    if unsubscribe:  # RFC 8058: mail clients offer one-click unsubscribe
        headers.update({"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    # From the program's current name, at the configured address.
    sender = formataddr((rendered.program_name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    email = EmailMultiAlternatives(subject=rendered.subject, body=rendered.text, from_email=sender, to=[message.to],
                                   headers=headers, connection=mail)
    email.attach_alternative(rendered.html, "text/html")
    email.send()
    status = getattr(email, "anymail_status", None)  # set by django-anymail's providers
    return (status.message_id or "") if status is not None else ""


def messages_due(*, now: datetime | None = None, limit: int = 20_000) -> int:
    """Queue what is due and not being sent: after quiet hours, a full week, a retry delay, or a
    worker that died with its claim."""
    from messaging.tasks import send

    now = now or timezone.now()
    ids = list(Message.objects.filter(unclaimed(now), status=MessageStatus.QUEUED, send_after__lte=now)
               .order_by("-priority", "send_after", "id").values_list("pk", flat=True)[:limit])
    for start in range(0, len(ids), SEND_CHUNK):
        send.delay(message_ids=ids[start:start + SEND_CHUNK])
    return len(ids)


# --- Unsubscribing ------------------------------------------------------------------------------------

def unsubscribe_token(*, member_id: int | None, address: str, purpose: str) -> str:
    return signing.dumps({"m": member_id, "a": "" if member_id else address, "p": purpose}, salt=_TOKEN_SALT,
                         compress=True)


def unsubscribe_url(*, member_id: int | None, address: str, purpose: str) -> str:
    token = unsubscribe_token(member_id=member_id, address=address, purpose=purpose)
    return f"{settings.SITE_URL}/messages/unsubscribe/{token}/"


# A purpose as it reads inside a sentence ("Stop points reminders from..."): its own words in each
# language (German keeps its nouns capitalised, so a lower-cased label would not do).
_PURPOSE_WORDS = {
    Purpose.TRANSACTIONAL: gettext_lazy("messages about your account"), Purpose.REMINDERS: gettext_lazy(
        "points reminders"), Purpose.OFFERS: gettext_lazy("offers and news"), Purpose.SURVEYS: gettext_lazy(
        "surveys"), Purpose.REVIEWS: gettext_lazy("review requests"), Purpose.REFERRALS: gettext_lazy(
        "invitations from a friend"), Purpose.STATEMENTS: gettext_lazy("monthly points statements"),
}


def purpose_label(purpose: str) -> str:
    """A purpose's words inside a sentence, in the active language."""
    return str(_PURPOSE_WORDS.get(purpose) or _("messages"))


def preferences_url(*, member_id: int) -> str:
    token = unsubscribe_token(member_id=member_id, address="", purpose="")
    return f"{settings.SITE_URL}/messages/preferences/{token}/"


def unsubscribe_read(token: str) -> dict:
    """What a token unsubscribes: ``{"member": Member | None, "address": str, "purpose": str}``."""
    try:
        data = signing.loads(token, salt=_TOKEN_SALT)
    except signing.BadSignature:
        raise Invalid(_("This unsubscribe link is not valid."), fields={"token": _("Not a valid link.")}) from None
    member = Member.objects.filter(pk=data.get("m"), erased_at__isnull=True).first() if data.get("m") else None
    if data.get("m") and member is None:
        raise Invalid(_("This member is no longer in the program."), fields={"token": _("Unknown member.")})
    return {"member": member, "address": data.get("a", ""), "purpose": data.get("p", "")}


def unsubscribe(*, token: str) -> str:
    """One click, no login: the member stops getting this purpose (their choice becomes "none"),
    or an address that is not a member's (a friend invited) gets nothing more. Returns what was
    stopped, in words."""
    from accounts.services import member_consents_set

    found = unsubscribe_read(token)
    member, purpose = found["member"], found["purpose"]
    if member is not None and purpose in PREFERENCE_FIELD:
        field_name = PREFERENCE_FIELD[purpose]
        member_consents_set(member=member, consents={field_name.removesuffix("_channel"): "none"},
                            source="unsubscribe")
        return purpose_label(purpose)
    address = found["address"] or (member.email if member else "")
    if address:
        suppression_add(address=address, reason="unsubscribed")
    return _("messages of any kind")


def suppression_add(*, address: str, reason: str, detail: str = "", actor_user: User | None = None) -> Suppression:
    """Send nothing more to this address: every queued message to it is not sent either."""
    address = address.strip().lower()
    if not address:
        raise Invalid(_("An address is needed."), fields={"address": _("This field is required.")})
    with transaction.atomic():
        row, created = Suppression.objects.get_or_create(address=address, defaults={"reason": reason[:20],
                                                                                      "detail": detail[:300]})
        Message.objects.filter(to=address, status=MessageStatus.QUEUED).update(
            status=MessageStatus.SKIPPED, error=f"The address is suppressed ({row.reason}).")
        if created and actor_user is not None:
            AuditLog.objects.create(action="messaging.suppressed", actor_user=actor_user,
                                    subject=f"address:{address}"[:120], reason=reason)
    return row


def suppression_remove(*, address: str, actor_user: User | None) -> int:
    """Send to this address again (its owner asked)."""
    with transaction.atomic():
        removed, _ = Suppression.objects.filter(address=address.strip().lower()).delete()
        if removed:
            AuditLog.objects.create(action="messaging.unsuppressed", actor_user=actor_user,
                                    subject=f"address:{address.strip().lower()}"[:120])
    return removed


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}


def sms_reply(*, number: str, text: str) -> str:
    """A member answered an SMS: STOP (and its synonyms) suppresses the number, START lifts a
    suppression that STOP made (not a bounce). Returns "stopped", "started" or "ignored"."""
    word = (text or "").strip().upper().rstrip(".!")
    number = (number or "").strip()
    if not number:
        return "ignored"
    if word in STOP_WORDS:
        suppression_add(address=number, reason="stop", detail="Answered STOP to an SMS.")
        return "stopped"
    if word in START_WORDS:
        with transaction.atomic():
            removed, _ = Suppression.objects.filter(address=number, reason="stop").delete()
        return "started" if removed else "ignored"
    return "ignored"


def tracking_event(*, event_type: str, recipient: str, description: str = "") -> bool:
    """A provider's report (django-anymail's tracking signal): a hard bounce, a complaint or an
    unsubscribe puts the address on the suppression list. Returns whether it did."""
    reasons = {"bounced": "bounced", "complained": "complained", "unsubscribed": "unsubscribed"}
    if event_type not in reasons or not recipient:
        return False
    suppression_add(address=recipient, reason=reasons[event_type], detail=description)
    return True
