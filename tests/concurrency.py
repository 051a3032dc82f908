"""Run a function from many threads at once, each on its own database connection."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


def run_concurrently(fn, count: int) -> list:
    """Call ``fn(i)`` for i in range(count), all released together; return results or exceptions."""
    barrier = threading.Barrier(count)

    def call(i):
        try:
            barrier.wait(timeout=30)
            return fn(i)
        except Exception as exc:  # noqa: BLE001  the caller inspects what each call did
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))
