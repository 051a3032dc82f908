"""Tasks for tests with real workers: one that takes its time (to kill a worker in the middle of
it), one that notes when it ran (to count a scheduled job's runs). Only test workers load them
(``celery worker --include tests.slow_tasks``)."""

import os
import time

from celery import shared_task


@shared_task(name="tests.slow_mark")
def slow_mark(*, path: str, seconds: float) -> None:
    with open(path, "a") as out:
        out.write(f"start {os.getpid()}\n")
    time.sleep(seconds)
    with open(path, "a") as out:
        out.write(f"done {os.getpid()}\n")


@shared_task(name="tests.mark")
def mark(*, path: str) -> None:
    """A line with the time it ran: how often a scheduled job ran."""
    with open(path, "a") as out:
        out.write(f"{time.time():.3f} {os.getpid()}\n")
