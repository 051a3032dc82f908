"""``make loadtest``: a partner's mix (bench/locustfile.py) with locust against ``make cluster``, then
against one gunicorn of 4 workers on the same databases, each for ``LOADTEST_SECONDS`` (60) with
``LOADTEST_USERS`` (24) clients looping without pause. Prints requests per second, p50 and p99 per
kind of request and the errors, the replica's lag sampled every half second during each run, and
what ``verify_ledger`` says afterwards. Not part of ``make test``; needs ``make cluster`` running.
"""

import csv
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".cluster"
BIN = Path(sys.executable).parent
SECONDS = int(os.environ.get("LOADTEST_SECONDS", "60"))
USERS = int(os.environ.get("LOADTEST_USERS", "24"))
MEMBERS = 2000


def cluster_env() -> dict:
    env_file = STATE_DIR / "env"
    if not (STATE_DIR / "state.json").exists() or not env_file.exists():
        raise SystemExit("No cluster: run `make cluster` first.")
    values = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = value.strip("'")
    return values


def prepare() -> tuple[str, int]:
    """The store the load plays against: 1 point per EUR, a reward of 100 points, a partner key
    without a practical rate limit, 2,000 members with points to spend."""
    from decimal import Decimal

    from django.forms import modelform_factory

    from accounts.models import Member, Partner, Scope
    from accounts.services import api_key_create, members_ensure_for_partner, partner_create, staff_save
    from rewards.models import EarningRule, Reward, RuleKind
    from rewards.services import earning_rule_save, points_adjust, program_settings_update

    partner = Partner.objects.filter(name="Load test").first()
    if partner is None:
        program_settings_update(actor_user=None, changes={"pending_days": 0, "expiry_policy": "never",
                                                          "accepted_currencies": "EUR"})
        earning_rule_save(rule=EarningRule(name="1 per EUR", kind=RuleKind.PER_CURRENCY, points_per_unit=Decimal("1")))
        form = modelform_factory(Reward, fields=["name", "kind", "value", "currency", "points_cost"])(data={
            "name": "5 EUR off", "kind": "fixed_discount", "value": "5.00", "currency": "EUR", "points_cost": "100"})
        assert form.is_valid(), form.errors
        staff_save(form=form, actor_user=None)
        partner = partner_create(name="Load test")
    ids, _ = members_ensure_for_partner(partner=partner, rows={f"m{i}": {} for i in range(MEMBERS)})
    for member in Member.objects.filter(pk__in=ids.values(), points_available__lt=20_000):
        points_adjust(member=member, points=50_000, reason="load test: points to redeem")
    _, key = api_key_create(partner=partner, name="load test", scopes=list(Scope.values), rate_limit="1000000/min")
    return key, Reward.objects.get(name="5 EUR off").pk


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


class LagSampler(threading.Thread):
    def __init__(self, pair):
        super().__init__(daemon=True)
        self.pair, self.samples, self.stopping = pair, [], threading.Event()

    def run(self):
        while not self.stopping.wait(0.5):
            try:
                self.samples.append(self.pair.lag())
            except Exception as exc:  # noqa: BLE001  a sample lost is reported, not fatal
                self.samples.append((None, f"{exc.__class__.__name__}"))

    def summary(self) -> str:
        good = [(b, s) for b, s in self.samples if b is not None]
        if not good:
            return "no samples"
        seconds = sorted(s for _, s in good if s is not None)
        behind = sorted(b for b, _ in good)
        median = seconds[len(seconds) // 2] * 1000 if seconds else 0
        return (f"replay lag p50 {median:.1f} ms, max {max(seconds, default=0) * 1000:.1f} ms; "
                f"WAL not yet replayed p50 {behind[len(behind) // 2]:,} B, max {max(behind):,} B "
                f"({len(good)} samples)")


def run_locust(label: str, port: int, env: dict, key: str, reward: int) -> list[dict]:
    prefix = STATE_DIR / f"loadtest-{label.replace(' ', '-')}"
    command = [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "-u", str(USERS),
               "-r", str(USERS), "-t", f"{SECONDS}s", "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix),
               "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "10"]
    print(f"--- {label}: {USERS} clients for {SECONDS} s against http://127.0.0.1:{port}", flush=True)
    subprocess.run(command, cwd=ROOT, env={**env, "LOADTEST_KEY": key, "LOADTEST_REWARD": str(reward),
                                           "LOADTEST_MEMBERS": str(MEMBERS)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=SECONDS + 120)
    with open(f"{prefix}_stats.csv") as stats:
        return list(csv.DictReader(stats))


def print_table(results: dict[str, list[dict]], lags: dict[str, str]) -> None:
    print(f"\n{'target':<13} {'request':<26} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for label, rows in results.items():
        for row in rows:
            name = "all" if row["Name"] == "Aggregated" else row["Name"]
            print(f"{label:<13} {name:<26} {int(row['Request Count']):>9,} {float(row['Requests/s']):>8.1f} "
                  f"{row['50%']:>7} {row['99%']:>7} {int(row['Failure Count']):>7,}")
        print(f"{label:<13} replica: {lags[label]}")


def main() -> None:
    env = {**os.environ, **cluster_env()}
    os.environ.update(cluster_env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "loyalty_site.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from cluster.postgres import Pair

    state = json.loads((STATE_DIR / "state.json").read_text())
    name, version, primary_port, replica_port = state["pg"]
    pair = Pair(name, version, primary_port, replica_port)
    key, reward = prepare()
    load = os.popen("cat /proc/loadavg").read().split()[:3]
    print(f"--- machine: {os.cpu_count()} cores, load average {' '.join(load)} before the runs")

    single_port = state["port"] + 10
    with open(STATE_DIR / "logs" / "loadtest-single.log", "a") as log:
        single = subprocess.Popen([str(BIN / "gunicorn"), "loyalty_site.wsgi", "--workers", "4", "--bind",
                                   f"127.0.0.1:{single_port}", "--timeout", "60"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    results, lags = {}, {}
    try:
        deadline = time.monotonic() + 60
        while not healthy(single_port):
            if time.monotonic() > deadline:
                raise SystemExit("the single gunicorn did not start")
            time.sleep(0.3)
        for label, port in (("cluster", state["port"]), ("one gunicorn", single_port)):
            sampler = LagSampler(pair)
            sampler.start()
            results[label] = run_locust(label, port, env, key, reward)
            sampler.stopping.set()
            sampler.join()
            lags[label] = sampler.summary()
            pair.caught_up()
    finally:
        single.terminate()
        single.wait(timeout=30)
    print_table(results, lags)
    verify = subprocess.run([str(BIN / "python"), "manage.py", "verify_ledger"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    print(f"\nverify_ledger: {(verify.stdout + verify.stderr).strip()}")
    sys.exit(verify.returncode)


if __name__ == "__main__":
    main()
