"""`make fuzz`: Schemathesis with every check against the partner API, on a throwaway database.

Starts gunicorn on 127.0.0.1 with a fresh SQLite database holding one partner (a key with every
scope) and a little data for the paths to find, runs ``schemathesis run`` bounded by
``FUZZ_MAX_EXAMPLES`` per operation (and ``FUZZ_MAX_SECONDS`` in all, a safety stop), prints its summary and the
counts, and exits non-zero on any failure (a server error, a response that breaks its schema, a
request the API answers against its schema). Configuration: schemathesis.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
MAX_SECONDS = int(os.environ.get("FUZZ_MAX_SECONDS", "900"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict) -> str:
    """Migrate, and make the partner, its key and a member, a reward and a product to find."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "import django; django.setup()\n"
        "from decimal import Decimal\n"
        "from accounts.models import Scope\n"
        "from accounts.services import api_key_create, member_upsert_for_partner, partner_create\n"
        "from community.services import product_upsert\n"
        "from rewards.models import Reward\n"
        "partner = partner_create(name='Fuzz Store')\n"
        "_, key = api_key_create(partner=partner, name='fuzz', scopes=list(Scope.values), rate_limit='1000000/min')\n"
        "member_upsert_for_partner(partner=partner, external_id='0', data={'email': 'zero@example.com'})\n"
        "product_upsert(partner=partner, sku='0', name='Zero')\n"
        "Reward.objects.create(name='5 off', kind='fixed_discount', value=Decimal('5'), currency='EUR',\n"
        "                      points_cost=1)\n"
        "print(key)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True,
                            text=True)
    return result.stdout.strip().splitlines()[-1]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="loyalty-fuzz-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env.update(DATABASE_URL=f"sqlite:///{workdir / 'fuzz.sqlite3'}", MEDIA_ROOT=str(workdir / "media"),
               PRIVATE_MEDIA_ROOT=str(workdir / "private"), LOG_LEVEL="ERROR", WEBHOOKS_SEND="0",
               DJANGO_SETTINGS_MODULE="loyalty_site.settings")
    key = prepare(env)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    # No request-line limit: the fuzzer's long queries must reach Django, whose answer is what is tested.
    log = open(workdir / "server.log", "w")  # noqa: SIM115  the server writes to it until it stops
    server = subprocess.Popen([str(gunicorn), "loyalty_site.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                               "--log-level", "warning", "--limit-request-line", "0"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        schemathesis = Path(sys.executable).with_name("schemathesis")
        command = [str(schemathesis), "run", f"http://127.0.0.1:{port}/api/schema/", "--checks", "all",
                   "--max-examples", str(MAX_EXAMPLES), "--workers", "2",
                   "--wait-for-schema", "30", "--no-color", "--seed", os.environ.get("FUZZ_SEED", "20261202"),
                   "-H", f"Authorization: Api-Key {key}"]
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=MAX_SECONDS)
        took = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    output = result.stdout + result.stderr
    start = output.find("=== FAILURES") if result.returncode != 0 else -1
    if start < 0:
        start = output.find("=== SUMMARY")
    print(output[start:] if start >= 0 else output[-6000:])
    server_log = (workdir / "server.log").read_text(errors="replace")
    server_errors = server_log.count("Traceback")
    if server_errors:
        print("--- server log (tracebacks) ---")
        print(server_log[-8000:])
    cases = re.search(r"(\d[\d,]*) generated", output)
    operations = re.search(r"Tested: (\d+)", output)
    print(f"fuzz: {operations.group(1) if operations else '?'} operations, {cases.group(1) if cases else '?'} cases "
          f"in {took:.0f} s; exit {result.returncode}; tracebacks in the server log: {server_errors}")
    shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(result.returncode or (1 if server_errors else 0))


if __name__ == "__main__":
    main()
