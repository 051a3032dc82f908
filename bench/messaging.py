"""Messages: a reminder to 100,000 members put in the outbox (notifications and message rows, in
one transaction, as the nightly jobs do); the same reminder in each member's own language (half of
them German: the kind's words per language, values formatted each language's way), against the
first as its reference; and one worker sending 10,000 of them to Django's memory mail backend,
against a reference that renders and sends the same 10,000 without the outbox, in one process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

SEND = 10_000


def _in_their_languages(member_ids: list[int]) -> tuple[float, float]:
    """Seconds to tell every member that points expire: in English words made by the caller, as the
    code wrote them before languages (the reference), then in each member's own language (half of
    them German), the words made in ``notify``."""
    from datetime import date

    from django.db import transaction

    from accounts.models import Member
    from messaging import catalogue
    from messaging.models import Message, Purpose
    from messaging.services import Note, notify

    words = catalogue.wording("points_expiring", "en")
    Member.objects.filter(pk__in=member_ids[::2]).update(language="de")  # the reference ignores it
    # Twice each, in turns (reference, worded, worded, reference), the times summed: this machine's
    # speed drifts by a fifth within minutes, and with one run of each, always in the same order,
    # the ratio went 1.12x to 1.38x over the same code.
    seconds = reference = 0.0
    for worded in (False, True, True, False):
        Message.objects.all().delete()
        started = time.perf_counter()
        with transaction.atomic():
            if worded:
                notify(notes=[words.note(pk, "/rewards/", points=1250, date=date(2027, 3, 3)) for pk in member_ids],
                       purpose=Purpose.REMINDERS)
            else:
                notify(notes=[Note(pk, "points_expiring", words.title(points=f"{1250:,}",
                                                                      date=f"{date(2027, 3, 3):%-d %B %Y}"),
                                   words.body(), "/rewards/") for pk in member_ids], purpose=Purpose.REMINDERS)
        if worded:
            seconds += time.perf_counter() - started
        else:
            reference += time.perf_counter() - started
    Member.objects.exclude(language="").update(language="")
    Message.objects.all().delete()
    return seconds / 2, reference / 2


def bench_messaging(rows: list, Row, ensure_members) -> None:
    from django.db import transaction

    from loyalty_site.celery import app
    from messaging import rendering
    from messaging.models import Message, MessageStatus, Purpose
    from messaging.services import Note, notify

    member_ids = ensure_members(100_000)
    throwaway = f"bench-messages-{uuid.uuid4().hex[:8]}"
    app.conf.task_routes = {"messaging.send": {"queue": throwaway}}
    app.amqp.flush_routes()  # Celery builds its router once per process
    app.amqp.__dict__.pop("router", None)
    Message.objects.all().delete()
    try:
        started = time.perf_counter()
        with transaction.atomic():
            notify(notes=[Note(pk, "reminder", "You are 50 points from a reward", "Order once more to get it.",
                               "/rewards/") for pk in member_ids], purpose=Purpose.REMINDERS)
        seconds = time.perf_counter() - started
        queued = Message.objects.filter(status=MessageStatus.QUEUED).count()
        rows.append(Row(f"A reminder to {len(member_ids):,} members: notifications and messages written, sends "
                        "queued", f"{seconds:.1f} s ({queued:,} messages: members with an e-mail)", "< 10 s",
                        seconds < 10))

        # One worker sends SEND of them; the rest are cancelled so it stops there.
        keep = list(Message.objects.order_by("id").values_list("pk", flat=True)[:SEND])
        Message.objects.filter(status=MessageStatus.QUEUED).exclude(pk__in=keep).update(status=MessageStatus.SKIPPED)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(throwaway)
        from messaging.services import messages_due

        root = Path(__file__).resolve().parent.parent
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "loyalty_site", "worker", "-Q", throwaway,
             "--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MESSAGES_QUEUE": throwaway, "LOG_LEVEL": "WARNING",
                 "EMAIL_DELIVERY_BACKEND": "django.core.mail.backends.locmem.EmailBackend"})
        try:
            time.sleep(4)  # up before the clock starts
            started = time.perf_counter()
            messages_due()
            pending = Message.objects.filter(status=MessageStatus.QUEUED)
            deadline = started + 300
            while pending.exists() and time.perf_counter() < deadline:
                time.sleep(0.1)
            sent_seconds = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        sent = Message.objects.filter(status=MessageStatus.SENT).count()

        from django.core.mail import get_connection
        from django.core.mail.message import EmailMultiAlternatives

        connection = get_connection("django.core.mail.backends.locmem.EmailBackend")
        context = {"title": "You are 50 points from a reward", "body": "Order once more to get it.", "url": "/rewards/"}
        started = time.perf_counter()
        for _ in range(SEND):
            made = rendering.render(template="note", context=context, unsubscribe_url="https://x/u/")
            mail = EmailMultiAlternatives(made.subject, made.text, to=["bench@example.com"], connection=connection)
            mail.attach_alternative(made.html, "text/html")
            mail.send()
        reference = time.perf_counter() - started
        worded, english = _in_their_languages(member_ids)
        rows.append(Row(f"Points expiring, {len(member_ids):,} members, in each member's language (half German) vs "
                        "in English words made by the caller (the code before languages)",
                        f"{worded:.1f} s vs {english:.1f} s: {worded / english:.2f}x", "<= 1.25x",
                        worded <= 1.25 * english))
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(throwaway)
    rate = sent / sent_seconds
    rows.append(Row(f"One worker (solo pool) sending {SEND:,} messages to the memory mail backend",
                    f"{rate:,.0f} messages/s ({sent:,} sent); {sent_seconds / reference:.1f}x the time of rendering "
                    f"and sending them in one process ({SEND / reference:,.0f}/s)", "all sent", sent == SEND))
