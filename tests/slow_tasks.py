"""A task that takes its time, for tests that kill a worker in the middle of one. Only test
workers load it (``celery worker --include tests.slow_tasks``)."""

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
