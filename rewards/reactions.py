"""How the points engine reacts to events of the rest of the program (wired in ``core.events``)."""

import atexit
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from accounts.models import Member
from core.events import Emitted
from rewards.models import ActivityType
from rewards.program import current_program
from rewards.services import ActivityInput, activities_record, activity_record


def award_signup(*, event: str, items: list[Emitted]) -> None:
    """member.created: the signup bonus (through the earning rules, once per member)."""
    activities_record(items=[
        ActivityInput(member_id=item.member_id, type=ActivityType.SIGNUP, source_key=f"signup:{item.member_id}",
                      occurred_at=item.at, description="Welcome to the program")
        for item in items
    ])


def award_profile_completed(*, event: str, items: list[Emitted]) -> None:
    """member.updated from the portal: the bonus for a complete profile, once."""
    ids = [item.member_id for item in items if item.data.get("source") == "portal"]
    for member in Member.objects.filter(pk__in=ids):
        if member.first_name and member.last_name and member.birthday and member.phone:
            activity_record(member=member, type=ActivityType.PROFILE_COMPLETED, source_key=f"profile:{member.pk}",
                            description="Completed your profile")


def check_progress(*, event: str, items: list[Emitted]) -> None:
    """activities.recorded: re-check tiers, badges and challenges once the transaction commits."""
    if not current_program().tracks_progress:
        return
    ids = {item.member_id for item in items}
    types = {kind for item in items for kind in item.data["types"]}
    transaction.on_commit(lambda: progress_checks.add(ids, types))


def _send_progress_check(member_ids: list[int], activity_types: list[str]) -> None:
    from rewards.tasks import evaluate_progress

    evaluate_progress.delay(member_ids=member_ids, activity_types=activity_types)


class ProgressChecks:
    """The members whose progress to re-check, gathered in each process for ``wait`` seconds, then
    sent as one ``evaluate_progress`` task: a web process taking 100 orders a second sends one
    task a second, not 100 (sending one cost 1.1 ms of a single order's 2.8 ms of Python in a store
    with tiers and badges, measured). The worker's side gains too: a check costs about 30 ms a task
    and 0.4 ms a member (two tiers' measures and two badges over 199,475 members: 2.0 ms a member in
    tasks of 25, 0.9 in tasks of 100, 0.6 in tasks of 400, 2026-12-06). After a minute of 204 orders
    a second (``make bench``, its sustained part, worker and server on the same 2 cores) 1,370 tasks
    were waiting, which took the worker 59.5 s, when this waited a quarter second; 563 and 12.6 s at
    a second. At ``most`` members it sends at once; at the end of each task (``rewards.apps``) and
    when the process exits, it sends what it holds. A process killed outright loses at most
    ``wait`` seconds of checks, as one killed between a commit and its task always could: the
    nightly pass (``nightly_progress``) checks everyone. With eager tasks (the embedded default,
    tests) it sends at once."""

    def __init__(self, send: Callable[[list[int], list[str]], None], *, wait: float = 1.0, most: int = 5000):
        self.send, self.wait, self.most = send, wait, most
        self._lock = threading.Lock()
        self._members: set[int] = set()
        self._types: set[str] = set()
        self._timer: threading.Timer | None = None

    def add(self, member_ids, activity_types) -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            self.send(sorted(member_ids), sorted(activity_types))
            return
        with self._lock:
            self._members.update(member_ids)
            self._types.update(activity_types)
            full = len(self._members) >= self.most
            if self._timer is None and not full:
                self._timer = threading.Timer(self.wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            members, types = sorted(self._members), sorted(self._types)
            self._members, self._types = set(), set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if members:
            self.send(members, types)


progress_checks = ProgressChecks(_send_progress_check)
atexit.register(progress_checks.flush)
