"""A worker killed in the middle of a task (kill -9) loses nothing: another worker runs it."""

import signal
import time
import uuid

import pytest

from tests.conftest import WorkerHandle, delete_queues, start_worker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def test_a_task_of_a_killed_worker_is_finished_by_another_within_a_minute(tmp_path):
    from tests.slow_tasks import slow_mark

    queue = f"crash-{uuid.uuid4().hex[:8]}"
    marks = tmp_path / "marks.txt"
    # A short visibility timeout for the test; production's default is 300 s (CELERY_VISIBILITY_TIMEOUT).
    env = {"CELERY_VISIBILITY_TIMEOUT": "15"}
    first = WorkerHandle(start_worker(tmp_path / "first.log", queue=queue, extra_env=env,
                                      include="tests.slow_tasks"), tmp_path, tmp_path / "first.log")
    second = None
    try:
        first.wait_for(lambda: " ready." in first.log(), timeout=60, what="the first worker to start")
        slow_mark.apply_async(kwargs={"path": str(marks), "seconds": 4}, queue=queue)
        first.wait_for(lambda: marks.exists() and "start" in marks.read_text(), timeout=30, what="the task to start")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        killed_at = time.monotonic()
        assert "done" not in marks.read_text()

        second = WorkerHandle(start_worker(tmp_path / "second.log", queue=queue, extra_env=env,
                                           include="tests.slow_tasks"), tmp_path, tmp_path / "second.log")
        second.wait_for(lambda: "done" in marks.read_text(), timeout=60, what="another worker to finish the task")
        took = time.monotonic() - killed_at
        lines = marks.read_text().split()
        starts = [pid for word, pid in zip(lines[::2], lines[1::2], strict=True) if word == "start"]
        dones = [pid for word, pid in zip(lines[::2], lines[1::2], strict=True) if word == "done"]
        assert len(starts) == 2 and starts[0] == str(first.process.pid)
        assert dones == [str(second.process.pid)]
        assert took < 60
    finally:
        for handle in (first, second):
            if handle is not None and handle.process.poll() is None:
                handle.process.kill()
                handle.process.wait(timeout=10)
        delete_queues(queue)
