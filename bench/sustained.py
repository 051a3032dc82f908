"""Sustained load (issue 18): keyed single-order POSTs from wrk (Debian's ``wrk``, a closed loop of
``SUSTAINED_CONNECTIONS`` connections) for ``SUSTAINED_SECONDS`` against the bench's gunicorn, with
a Celery worker (2 processes, every queue) and beat running beside it on the same cores. Prints
requests per second, p50 / p99, errors, and how long the worker needs after the load to empty its
queues: the tiers, badges and outbox relays of those orders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SECONDS = int(os.environ.get("SUSTAINED_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("SUSTAINED_CONNECTIONS", "8"))
WARM_UP_SECONDS = 10
DRAIN_SECONDS = 120

# Runs in wrk's LuaJIT, one state per thread: each request a new order of one to three lines for one
# of the bench's customers, under an Idempotency-Key of its own (as the API docs tell partners).
SCRIPT = r"""
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local key, prefix, placed, members
local count = 0
local categories = {"tea", "coffee", "cups", "gifts"}

function init(args)
  key, prefix, placed, members = args[1], args[2], args[3], tonumber(args[4])
  math.randomseed(1000 + id)
end

function request()
  count = count + 1
  local order_id = prefix .. "-" .. id .. "-" .. count
  local lines, total = {}, 0
  for i = 1, math.random(1, 3) do
    local quantity, cents = math.random(1, 3), math.random(200, 4000)
    total = total + quantity * cents
    lines[i] = string.format('{"sku":"SKU-%d","name":"Item","category":"%s","quantity":%d,"unit_price":"%d.%02d"}',
      math.random(1, 500), categories[math.random(1, #categories)], quantity, math.floor(cents / 100), cents % 100)
  end
  local body = string.format(
    '{"order_id":"%s","member":"c%d","placed_at":"%s","currency":"EUR","total":"%d.%02d","lines":[%s]}',
    order_id, math.random(0, members - 1), placed, math.floor(total / 100), total % 100, table.concat(lines, ","))
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Api-Key " .. key,
                   ["Idempotency-Key"] = order_id}
  return wrk.format("POST", "/api/v1/orders/", headers, body)
end
"""
# Both scripts end with this: one line of JSON that the bench reads.
DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "p50": %.1f, "p90": %.1f, "p99": %.1f, "max": %.1f, ' ..
    '"socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _wrk(script: Path, path: str, *, port: int, seconds: int, args: tuple = ()) -> dict:
    done = subprocess.run(
        ["wrk", "--threads", "2", "--connections", str(CONNECTIONS), "--duration", f"{seconds}s", "--timeout", "10s",
         "--script", str(script), f"http://127.0.0.1:{port}{path}", "--", *args],
        capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def bench_sustained(key: str, rows: list, Row, *, port: int, env: dict, root: Path, members: int,
                    web_workers: int) -> None:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from core.models import OutboxEvent
    from loyalty_site.celery import app, tasks_waiting

    if shutil.which("wrk") is None:
        from cluster.__main__ import apt_install  # as `make cluster` installs its Debian packages

        try:
            apt_install("wrk")
        except (OSError, subprocess.CalledProcessError) as error:
            rows.append(Row("Sustained single orders with a worker and beat", f"wrk could not be installed: {error}",
                            "apt-get install wrk", False))
            return
    load = os.getloadavg()[0]
    queues = sorted(set(settings.TASK_QUEUES.values()))
    # The parts before ran without a worker: their tasks wait in the queues and their events in the
    # outbox (no endpoint exists yet; a million and more after the import). Cleared, so that the
    # worker here works on this load only: relaying them through ``relay_outbox`` would take minutes.
    with app.connection_for_write() as conn:
        for queue in queues:
            conn.default_channel.queue_purge(queue)
    OutboxEvent.objects.filter(relayed_at__isnull=True).update(relayed_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {OutboxEvent._meta.db_table}")
    connection.close()

    logs = Path(tempfile.mkdtemp(prefix="loyalty-sustained-"))
    script, health = logs / "order.lua", logs / "health.lua"
    script.write_text(SCRIPT + DONE)
    health.write_text(DONE)
    # The reference, from the same connections before the worker starts (with it up, the warm-up's
    # tasks took a varying share of the cores: 423 and 628 req/s in two runs).
    reference = _wrk(health, "/healthz", port=port, seconds=WARM_UP_SECONDS)
    celery = str(Path(sys.executable).with_name("celery"))
    worker = subprocess.Popen(
        [celery, "-A", "loyalty_site", "worker", "-Q", ",".join(queues), "--concurrency", "2",
         "--hostname", "sustained@%h", "--loglevel", "INFO"],
        cwd=root, env=env, stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT)
    beat = subprocess.Popen(
        [celery, "-A", "loyalty_site", "beat", "--loglevel", "INFO"],
        cwd=root, env=env, stdout=(logs / "beat.log").open("w"), stderr=subprocess.STDOUT)
    placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    try:
        deadline = time.monotonic() + 60
        while "ready." not in (logs / "worker.log").read_text():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the Celery worker did not start: {(logs / 'worker.log').read_text()[-2000:]}")
            time.sleep(0.5)
        _wrk(script, "/", port=port, seconds=WARM_UP_SECONDS, args=(key, "W", placed, str(members)))
        result = _wrk(script, "/", port=port, seconds=SECONDS, args=(key, "L", placed, str(members)))
        queued = tasks_waiting(queues)
        ended = time.monotonic()
        while tasks_waiting(queues) and time.monotonic() - ended < DRAIN_SECONDS:
            time.sleep(0.5)
        drained = time.monotonic() - ended
        left = tasks_waiting(queues)
    finally:
        for process in (beat, worker):
            process.terminate()
        for process in (beat, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    rps = result["requests"] / result["seconds"]
    health_rps = reference["requests"] / reference["seconds"]
    errors = result["socket_errors"] + result["status_errors"]
    rows.append(Row(f"Sustained single orders with a key, wrk {CONNECTIONS} connections for {SECONDS} s, gunicorn x "
                    f"{web_workers} + a Celery worker (2 processes) + beat on the same cores (load average "
                    f"{load:.1f} before): throughput; GET /healthz from wrk for {WARM_UP_SECONDS} s before the "
                    "worker started",
                    f"{rps:,.0f} req/s ({result['requests']:,} orders); {health_rps:,.0f} req/s "
                    f"({rps / health_rps:.2f})",
                    ">= 300 req/s (issue 18)", rps >= 300))
    rows.append(Row("...p50 / p90 / p99 / max latency; errors",
                    f"{result['p50'] / 1000:.1f} / {result['p90'] / 1000:.1f} / {result['p99'] / 1000:.1f} / "
                    f"{result['max'] / 1000:.0f} ms; {errors}", "p99 < 200 ms, no errors",
                    result["p99"] < 200_000 and errors == 0))
    rows.append(Row("...tasks waiting in the queues when the load ended (tiers and badges, outbox relays); the "
                    "worker had taken them all after",
                    f"{queued:,}; {drained:.1f} s" + (f" ({left:,} still waiting)" if left else ""), "< 60 s",
                    not left and drained < 60))
