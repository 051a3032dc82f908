"""Exactly one scheduler: two beats started at once send each scheduled job once; when the one
sending is killed, the other takes over."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import WorkerHandle, start_worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

SENT = "Scheduler: Sending due task every-second"


def start_beat(log_path: Path) -> subprocess.Popen:
    """A real ``celery beat`` on the test database, with the project's scheduler; it looks at the
    lock (and the schedule) every second instead of every 5."""
    import os

    database_url = settings.DATABASE_URL.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DATABASE_URL=database_url, CONN_MAX_AGE="0")
    celery = Path(sys.executable).with_name("celery")
    with open(log_path, "a") as log:
        return subprocess.Popen([str(celery), "-A", "loyalty_site", "beat", "--loglevel=INFO", "--max-interval=1"],
                                cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def sent_at(log: Path) -> list[float]:
    """When a beat sent the job, from its log ("[2026-12-05 10:00:00,123: INFO/MainProcess] ...")."""
    from datetime import datetime

    return [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            for line in log.read_text().splitlines() if SENT in line]


def marks(path: Path) -> list[float]:
    return [float(line.split()[0]) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_beats_send_each_job_once_and_the_second_takes_over_when_the_first_dies(tmp_path, own_queues):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    ran = tmp_path / "ran.txt"
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="every-second", task="tests.mark", interval=every_second,
                                kwargs=json.dumps({"path": str(ran)}))
    worker = WorkerHandle(start_worker(tmp_path / "worker.log", queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                                       include="tests.slow_tasks"), tmp_path, tmp_path / "worker.log")
    beats = {}
    try:
        worker.wait_for(lambda: " ready." in worker.log(), timeout=60, what="the worker to start")
        for name in ("first", "second"):
            beats[name] = start_beat(tmp_path / f"{name}.log")
        worker.wait_for(lambda: len(marks(ran)) >= 1, timeout=60, what="the job to run once")
        # Half a second off the beat's ticks: a kill or a stop on a tick can fall between a send's
        # log line and the send itself (seen once: 13 logged, 12 run), and the waits below start
        # right after a tick.
        time.sleep(8.5)
        logs = {name: (tmp_path / f"{name}.log").read_text() for name in beats}
        senders = [name for name, log in logs.items() if SENT in log]
        waiting = [name for name, log in logs.items() if "another beat holds the lock" in log]
        assert len(senders) == 1 and len(waiting) == 1 and senders != waiting
        leader, standby = senders[0], waiting[0]
        sent = sent_at(tmp_path / f"{leader}.log")
        span = sent[-1] - sent[0]
        print(f"\ntwo beats: the every-second job sent {len(sent)} times in {span:.1f} s by the {leader} beat; "
              f"the {standby} beat waiting")
        assert span >= 6
        assert len(sent) <= span + 2  # twice as many if both beats sent it

        # The sending beat dies without a word; the other takes over within seconds.
        beats[leader].send_signal(signal.SIGKILL)
        beats[leader].wait(timeout=10)
        killed_at = time.time()
        standby_log = tmp_path / f"{standby}.log"
        worker.wait_for(lambda: SENT in standby_log.read_text(), timeout=30, what="the other beat to take over")
        time.sleep(4.5)
        # Stopped before counting: a beat still running sends while the count is read.
        beats[standby].terminate()
        beats[standby].wait(timeout=10)
        sent, taken = sent_at(tmp_path / f"{leader}.log"), sent_at(standby_log)
        gap = taken[0] - killed_at
        print(f"after the kill: the {standby} beat sent its first {gap:.1f} s later, then {len(taken)} in "
              f"{taken[-1] - taken[0]:.1f} s")
        assert "holds the lock and sends" in standby_log.read_text()
        assert gap < 10
        assert len(taken) <= taken[-1] - taken[0] + 2
        # Each sent once, and run once (the worker may be a little behind on a busy machine).
        total = len(sent) + len(taken)
        worker.wait_for(lambda: len(marks(ran)) >= total, timeout=30, what="the worker to run what was sent")
        time.sleep(1)
        print(f"sent {total} times by the two beats, run {len(marks(ran))} times")
        assert len(marks(ran)) == total
    finally:
        for process in [*beats.values(), worker.process]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
