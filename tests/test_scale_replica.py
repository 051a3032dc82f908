"""A read replica for the reads that may be a moment old, tried against a real one: a PostgreSQL
primary and a streaming replica made for this test (``cluster/postgres.py``: pg_createcluster and
pg_basebackup), a web server configured with both, and the state written on the primary by a process
of its own. With the replica's replay paused, the insights page, the leaderboard and the reviews a
shop shows still show the old state while the partner API's member reads already show the new one;
once it resumes they catch up."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from cluster.postgres import pair_start, pair_stop, why_not
from tests.test_scale_caches import free_port

pytestmark = [pytest.mark.replica, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pair(tmp_path):
    """A primary and its replica, with this run's schema (dumped from the test database)."""
    reason = why_not()
    if reason:
        pytest.fail(reason) if os.environ.get("REQUIRE_REPLICA") == "1" else pytest.skip(reason)
    made = pair_start(f"ll_test_{os.getpid()}", primary_port=free_port(), replica_port=free_port(),
                      settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    try:
        with made.connect() as primary:
            primary.execute("CREATE DATABASE loyalty")
        test_db = connection.settings_dict
        dump = subprocess.run(["pg_dump", "-h", test_db["HOST"] or "127.0.0.1", "-p", str(test_db["PORT"] or 5432),
                               "-U", test_db["USER"] or "postgres", "--no-owner", test_db["NAME"]],
                              capture_output=True, check=True)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", made.url("loyalty")], input=dump.stdout,
                       capture_output=True, check=True)
        made.caught_up()
        yield made
    finally:
        pair_stop(made)


def shared_cache_url() -> str:
    cache_settings = settings.CACHES["default"]
    if not cache_settings["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs a shared cache (CACHE_URL=redis://...): the leaderboards are kept there")
    return cache_settings["LOCATION"]


def environment(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CELERY_BROKER_URL")}
    return {**env, **values}


def world(step: str, env: dict) -> dict:
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                             f"from tests.replica_world import {step}; {step}()"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def get(port: int, path: str, **headers) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_pages_that_may_be_a_moment_old_read_the_replica_and_catch_up_when_it_does(pair, tmp_path):
    cache_url = shared_cache_url()
    writer = environment(DATABASE_URL=pair.url("loyalty"), CACHE_URL=cache_url, EMAIL_FILE_PATH=str(tmp_path))
    made = world("build", writer)
    port = free_port()
    server_env = {**writer, "DATABASE_REPLICA_URL": pair.url("loyalty", replica=True)}
    with open(tmp_path / "gunicorn.log", "w") as log:
        server = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "loyalty_site.wsgi",
                                   "--workers", "1", "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=server_env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while get_or_none(port) != 200:
            assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        api = {"Authorization": f"Api-Key {made['key']}"}
        staff = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={made['session']}"}

        def seen() -> dict:
            cache.clear()  # the leaderboards' rankings are kept a minute in the shared cache
            fragment = get(port, "/embed/v1/products/TEA-1/reviews.html")[1]
            status, reviews = get(port, "/api/v1/products/TEA-1/reviews/", **api)
            assert status == 200, reviews
            community = get(port, "/community/")[1]
            status, insights = get(port, "/insights/", **staff)
            assert status == 200, insights
            return {"fragment": "Second cup" in fragment, "api reviews": json.loads(reviews)["count"],
                    "leaderboard": "Bob the tea lover" in community, "insights": "<small>as of" in insights,
                    "ada": "Ada the tea lover" in community and "Lovely tea" in fragment}

        pair.caught_up()
        assert seen() == {"fragment": False, "api reviews": 1, "leaderboard": False, "insights": False, "ada": True}

        pair.pause_replay()
        world("change", writer)
        unreplayed, _ = pair.lag()
        # The partner's read of a member is on the primary: Bob and his points are there at once.
        status, bob = get(port, "/api/v1/members/bob/", **api)
        assert status == 200 and json.loads(bob)["points"]["available"] == 80
        assert seen() == {"fragment": False, "api reviews": 1, "leaderboard": False, "insights": False, "ada": True}

        pair.resume_replay()
        resumed = time.monotonic()
        took = pair.caught_up()
        after = seen()
        print(f"\nreplica paused: {unreplayed:,} bytes of WAL behind; resumed, caught up in {took * 1000:.0f} ms, "
              f"pages current {time.monotonic() - resumed:.2f} s after resuming")
        assert unreplayed > 0
        assert after == {"fragment": True, "api reviews": 2, "leaderboard": True, "insights": True, "ada": True}
    finally:
        server.terminate()
        server.wait(timeout=10)


def get_or_none(port: int) -> int | None:
    try:
        return get(port, "/healthz")[0]
    except OSError:
        return None
