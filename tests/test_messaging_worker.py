"""Messages sent by a real Celery worker reading the messages queue: what any code sends through
Django's mail API and the program's own messages arrive; kill -9 of the worker in the middle of a
burst loses none (a message may arrive twice, with the same message id, never not at all)."""

import re
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import send_mail

from messaging.models import Message, MessageStatus
from messaging.services import Note, messages_due, notify
from tests.conftest import WorkerHandle, make_portal_member, start_worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def messages_worker(tmp_path):
    handles = []

    def start(name):
        log, mail_dir = tmp_path / f"{name}.log", tmp_path / "mail"
        mail_dir.mkdir(exist_ok=True)
        process = start_worker(log, queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                               queues=f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.TASK_QUEUES['messages']}",
                               extra_env={"EMAIL_FILE_PATH": str(mail_dir), "MESSAGE_LEASE_SECONDS": "3"})
        handle = WorkerHandle(process, mail_dir, log)
        handles.append(handle)
        handle.wait_for(lambda: " ready." in handle.log(), timeout=60, what=f"{name} to start")
        return handle

    yield start
    for handle in handles:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(timeout=10)


def sent_ids(mail_dir: Path) -> list[int]:
    """The message id of every e-mail the worker wrote (one file per e-mail)."""
    return [int(found) for path in sorted(mail_dir.glob("*.log"))
            for found in re.findall(r"^X-Loyalty-Message: (\d+)$", path.read_text(errors="replace"), re.M)]


def test_a_real_worker_sends_what_was_put_in_the_outbox(messages_worker):
    worker = messages_worker("worker")
    send_mail("Worker hello", "Sent by the worker", "from@example.com", ["to@example.com"])  # any code's mail
    alice = make_portal_member("alice@example.com", first_name="Alice")
    notify(notes=[Note(alice.pk, "tier_up", "Welcome to Silver!", "You earn 1.25x now.", "/rewards/tier/")])
    raw = worker.wait_for_email(lambda text: "Worker hello" in text)
    assert "Sent by the worker" in raw
    note = worker.wait_for_email(lambda text: "Welcome to Silver!" in text)
    assert "Hello Alice," in note and "To: alice@example.com" in note and "text/html" in note
    worker.wait_for(lambda: not Message.objects.exclude(status=MessageStatus.SENT).exists(), what="both recorded")


def test_a_killed_worker_loses_no_message(messages_worker):
    burst = 300
    members = [make_portal_member(f"m{n}@example.com") for n in range(burst)]
    first = messages_worker("first")
    notify(notes=[Note(member.pk, "tier_up", f"Welcome to Silver, number {n}!") for n, member in enumerate(members)])
    first.wait_for(lambda: len(sent_ids(first.mail_dir)) >= 20, timeout=60, what="the burst to be under way")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    when_killed = len(sent_ids(first.mail_dir))
    second = messages_worker("second")
    expected = set(Message.objects.values_list("pk", flat=True))
    assert len(expected) == burst
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not expected <= set(sent_ids(first.mail_dir)):
        messages_due()  # what beat does every minute: the dead worker's claims have run out by now
        time.sleep(2)
    got = sent_ids(first.mail_dir)
    assert set(got) == expected, f"missing {len(expected - set(got))}"
    # Twice at most: what the dead worker had sent since it last recorded (every 20), and the one leaving.
    assert len(got) - len(set(got)) <= 21
    second.wait_for(lambda: not Message.objects.exclude(status=MessageStatus.SENT).exists(), what="all recorded")
    print(f"\n{burst} messages; {when_killed} sent when the worker was killed; {len(got)} e-mails in all, "
          f"{len(got) - len(set(got))} twice")


def test_the_hourly_lifecycle_job_runs_on_a_real_worker_and_its_messages_arrive(messages_worker):
    from django.utils import timezone

    from accounts.models import Member
    from messaging.tasks import lifecycle

    now = timezone.now()
    if (now.month, now.day) == (2, 29):
        pytest.skip("no 29 February a year ago")
    worker = messages_worker("worker")
    veteran = make_portal_member("vet@example.com", first_name="Vera")
    joined = now.replace(year=now.year - 1)  # a year ago today (the program's time zone is UTC here)
    Member.objects.filter(pk=veteran.pk).update(created_at=joined)
    lifecycle.delay()  # what beat sends every hour
    mail = worker.wait_for_email(lambda text: "1 year with Loyalty Loop" in text)
    assert "To: vet@example.com" in mail and "Hello Vera," in mail
    worker.wait_for(lambda: veteran.notifications.filter(kind="anniversary").exists(), what="the portal note")
