"""How far past its limit a key gets when four web processes count it at once.

Four gunicorn workers share one Redis; eight clients send 1,200 calls with one key whose limit is
300 an hour, as fast as they can. The limit is exact if 300 calls pass and 900 get 429. The
reference is the same burst with a key of the default limit (none refused), for the time it takes.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_RATELIMIT_PORT", "8766"))
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
CALLS, CLIENTS, LIMIT = 1200, 8, 300


def _call(key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        conn.request("GET", "/api/v1/rewards/", headers={"Authorization": f"Api-Key {key}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _burst(key: str) -> tuple[list[int], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(_call, [key] * CALLS))
    return statuses, time.perf_counter() - started


def bench_ratelimit(rows: list, Row) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-ratelimit-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", CACHE_URL=REDIS, LOG_LEVEL="ERROR",
               DEBUG="1", DJANGO_SETTINGS_MODULE="loyalty_site.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "import django; django.setup()\n"
        "from django.core.cache import cache; cache.clear()\n"
        "from accounts.services import api_key_create, partner_create\n"
        "p = partner_create(name='Limits')\n"
        f"print(api_key_create(partner=p, name='limited', scopes=['rewards:read'], rate_limit='{LIMIT}/hour')[1])\n"
        "print(api_key_create(partner=p, name='default', scopes=['rewards:read'], rate_limit='1000000/hour')[1])\n"
    )
    limited, free = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                                   capture_output=True, text=True).stdout.split()[-2:]
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "loyalty_site.wsgi", "--workers", "4", "--bind", f"127.0.0.1:{PORT}",
                               "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                _call(free)
                break
            except OSError:
                time.sleep(0.2)
        # The hour's window must not end during the burst (calls on both sides of it are two windows).
        if time.time() % 3600 > 3600 - 60:
            time.sleep(3600 - time.time() % 3600 + 1)
        reference, reference_seconds = _burst(free)
        statuses, seconds = _burst(limited)
    finally:
        server.terminate()
        server.wait(timeout=30)
    passed, refused = statuses.count(200), statuses.count(429)
    overshoot = passed - LIMIT
    rows.append(Row(f"Rate limit {LIMIT}/hour, {CALLS:,} calls from {CLIENTS} clients to 4 web processes: passed / 429",
                    f"{passed} / {refused} (overshoot {overshoot}); other statuses {CALLS - passed - refused}",
                    "overshoot 0", overshoot == 0 and passed + refused == CALLS))
    rows.append(Row("...the same burst: time, limited key vs a key under its limit (reference)",
                    f"{seconds:.2f} s vs {reference_seconds:.2f} s ({seconds / reference_seconds:.2f}x; "
                    f"reference {reference.count(200)} passed)", "", None))


if __name__ == "__main__":
    from bench.run import Row, print_table

    table: list = []
    bench_ratelimit(table, Row)
    print_table(table)
