"""``make cluster`` / ``make cluster-stop``: the production layout of docs/deploy.md, on loopback.

    python -m cluster start    # HAProxy -> two gunicorn servers (4 workers each), two Celery
                               # workers on RabbitMQ, one beat, PostgreSQL primary + replica
    python -m cluster stop     # ends them all and drops the two PostgreSQL clusters

Everything it starts is recorded in ``.cluster/state.json`` (and only that is stopped); logs are in
``.cluster/logs/``; ``. .cluster/env`` gives a shell the cluster's settings (``manage.py`` then works
on the cluster's database). Debian's haproxy, rabbitmq-server, redis-server and postgresql are
installed with apt-get when missing, and RabbitMQ and Redis started when they do not answer.

Where each runs comes from the environment: ``CLUSTER_PORT`` (the load balancer, 8100; the web
servers take the next two ports), ``CLUSTER_PG_PORT`` (the primary, 5440; the replica the next),
``CLUSTER_BROKER_URL`` (``amqp://guest:guest@127.0.0.1:5672/loyalty_cluster``, its virtual host
made if missing), ``CLUSTER_CACHE_URL`` (``redis://127.0.0.1:6379/3``).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from cluster.postgres import Pair, pair_start, pair_stop, why_not

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".cluster"
STATE = STATE_DIR / "state.json"
BIN = Path(sys.executable).parent
PG_NAME = "ll_cluster"
WEB_WORKERS = 4
# The two Celery workers: the points engine's work and the long passes; everything that leaves
# the building (messages, webhooks), which mostly waits on the network, in threads.
WORKERS = {
    "worker-points": (["default", "ledger", "analytics"], ["--concurrency", "2"]),
    "worker-outbound": (["messages", "webhooks"], ["--pool", "threads", "--concurrency", "8"]),
}


def answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def apt_install(*packages: str) -> None:
    print(f"--- installing Debian's {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True, check=True)


def wait_until(check, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up in {timeout:.0f} s (see {STATE_DIR / 'logs'})")
        time.sleep(0.3)


def ensure_services(broker_url: str, cache_url: str) -> None:
    missing = [pkg for pkg, binary in (("haproxy", "haproxy"), ("rabbitmq-server", "rabbitmq-server"),
                                       ("redis-server", "redis-server"), ("postgresql", "pg_createcluster"))
               if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists()]
    if missing:
        apt_install(*missing)
    reason = why_not()
    if reason:
        raise SystemExit(f"cannot make the PostgreSQL primary and replica: {reason}")
    cache = urlparse(cache_url)
    if not answers(cache.port or 6379):
        print("--- starting Redis")
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(cache.port or 6379),
                        "--save", "", "--appendonly", "no"], check=True)
    broker = urlparse(broker_url)
    if not answers(broker.port or 5672):
        print("--- starting RabbitMQ")
        subprocess.run(["rabbitmq-server", "-detached"], check=True)
    wait_until(lambda: answers(broker.port or 5672) and answers(cache.port or 6379), "RabbitMQ and Redis")
    vhost = broker.path.lstrip("/") or "/"
    if vhost != "/" and shutil.which("rabbitmqctl"):
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True)
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, broker.username or "guest", ".*", ".*", ".*"],
                       capture_output=True, check=True)


def haproxy_config(port: int, web_ports: list[int]) -> str:
    servers = "\n".join(f"  server web{n} 127.0.0.1:{p} check" for n, p in enumerate(web_ports, start=1))
    return f"""# Written by `make cluster`; docs/deploy.md explains each line.
global
  maxconn 4096

defaults
  mode http
  # The client's address for the servers' rate limits (TRUSTED_PROXY_COUNT=1 on them).
  option forwardfor
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive

frontend loyalty
  bind 127.0.0.1:{port}
  default_backend web

backend web
  balance leastconn
  # A server answering /healthz with anything but 200 (database or broker down) gets no traffic.
  option httpchk
  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
  http-check expect status 200
  default-server inter 2s fall 2 rise 2
{servers}
"""


def spawn(name: str, command: list[str], env: dict) -> int:
    log = open(STATE_DIR / "logs" / f"{name}.log", "a")  # noqa: SIM115  the child keeps it
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return process.pid


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def start() -> None:
    if STATE.exists() and any(alive(pid) for pid in json.loads(STATE.read_text())["pids"].values()):
        raise SystemExit("A cluster is running already (make cluster-stop ends it).")
    port = int(os.environ.get("CLUSTER_PORT", "8100"))
    pg_port = int(os.environ.get("CLUSTER_PG_PORT", "5440"))
    broker_url = os.environ.get("CLUSTER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/loyalty_cluster")
    cache_url = os.environ.get("CLUSTER_CACHE_URL", "redis://127.0.0.1:6379/3")
    web_ports = [port + 1, port + 2]
    ensure_services(broker_url, cache_url)
    (STATE_DIR / "logs").mkdir(parents=True, exist_ok=True)

    print(f"--- PostgreSQL: a primary on {pg_port} and its streaming replica on {pg_port + 1}")
    pair = pair_start(PG_NAME, primary_port=pg_port, replica_port=pg_port + 1,
                      settings={"max_connections": "200", "shared_buffers": "256MB", "synchronous_commit": "on"})
    with pair.connect() as primary:
        primary.execute("CREATE DATABASE loyalty")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLUSTER_", "DJANGO_"))},
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SITE_URL": f"http://127.0.0.1:{port}",
        "TRUSTED_PROXY_COUNT": "1",
        "DATABASE_URL": pair.url("loyalty"), "DATABASE_REPLICA_URL": pair.url("loyalty", replica=True),
        "CELERY_BROKER_URL": broker_url, "CACHE_URL": cache_url, "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": str(STATE_DIR / "static"), "MEDIA_ROOT": str(STATE_DIR / "media"),
        "PRIVATE_MEDIA_ROOT": str(STATE_DIR / "private-media"), "EMAIL_FILE_PATH": str(STATE_DIR / "mail"),
    }
    for variable in ("CELERY_QUEUE", "LEDGER_QUEUE", "MESSAGES_QUEUE", "WEBHOOKS_QUEUE", "ANALYTICS_QUEUE"):
        env.pop(variable, None)
    names = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SITE_URL",
             "TRUSTED_PROXY_COUNT",
             "DATABASE_URL", "DATABASE_REPLICA_URL", "CELERY_BROKER_URL", "CACHE_URL", "STATIC_ROOT", "MEDIA_ROOT",
             "PRIVATE_MEDIA_ROOT", "EMAIL_FILE_PATH")
    (STATE_DIR / "env").write_text("".join(f"export {name}='{env[name]}'\n" for name in names))
    print("--- migrate, collectstatic")
    manage = [str(BIN / "python"), "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    pids: dict[str, int] = {}
    state = {"pids": pids, "port": port, "web_ports": web_ports, "pg": [PG_NAME, pair.version, pg_port, pg_port + 1],
             "broker": broker_url, "cache": cache_url}

    def save() -> None:
        STATE.write_text(json.dumps(state, indent=2))

    save()
    for n, web_port in enumerate(web_ports, start=1):
        pids[f"web{n}"] = spawn(f"web{n}", [str(BIN / "gunicorn"), "loyalty_site.wsgi", "--workers", str(WEB_WORKERS),
                                            "--bind", f"127.0.0.1:{web_port}", "--timeout", "60",
                                            "--graceful-timeout", "30"], env)
    for name, (kinds, options) in WORKERS.items():
        pids[name] = spawn(name, [str(BIN / "celery"), "-A", "loyalty_site", "worker", "-Q", ",".join(kinds),
                                  *options, "--hostname", f"{name}@%h", "--loglevel", "INFO"], env)
    pids["beat"] = spawn("beat", [str(BIN / "celery"), "-A", "loyalty_site", "beat", "--loglevel", "INFO",
                                  "--schedule", str(STATE_DIR / "beat-schedule")], env)
    (STATE_DIR / "haproxy.cfg").write_text(haproxy_config(port, web_ports))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    pids["haproxy"] = spawn("haproxy", [haproxy, "-db", "-f", str(STATE_DIR / "haproxy.cfg")], env)
    save()
    for web_port in web_ports:
        wait_until(lambda p=web_port: healthy(p), f"gunicorn on {web_port}")
    wait_until(lambda: healthy(port), "HAProxy")
    for name in WORKERS:
        wait_until(lambda n=name: " ready." in (STATE_DIR / "logs" / f"{n}.log").read_text(), name)
    wait_until(lambda: "holds the lock" in (STATE_DIR / "logs" / "beat.log").read_text(), "beat")
    print_layout(state, pair)


def print_layout(state: dict, pair: Pair) -> None:
    pids, port = state["pids"], state["port"]
    rows = [
        ("load balancer", "HAProxy", f"http://127.0.0.1:{port}", "leastconn over web1, web2; GET /healthz every 2 s"),
        *[(f"web{n}", f"gunicorn, {WEB_WORKERS} workers", f"http://127.0.0.1:{p}", f"pid {pids[f'web{n}']}")
          for n, p in enumerate(state["web_ports"], start=1)],
        *[(name, "Celery worker", "queues " + ",".join(kinds), f"pid {pids[name]}, {' '.join(options)}")
          for name, (kinds, options) in WORKERS.items()],
        ("beat", "Celery beat", "one scheduler (PostgreSQL advisory lock)", f"pid {pids['beat']}"),
        ("primary", f"PostgreSQL {pair.version}", pair.url("loyalty"), f"cluster {pair.name}-primary"),
        ("replica", f"PostgreSQL {pair.version}", pair.url("loyalty", replica=True),
         f"cluster {pair.name}-replica, streaming"),
        ("broker", "RabbitMQ", state["broker"], ""),
        ("cache", "Redis", state["cache"], "rate limits, versions of what each process keeps"),
    ]
    print(f"\nLoyalty Loop on loopback: {len(rows)} parts (make cluster-stop ends them)\n")
    for name, what, where, note in rows:
        print(f"  {name:<16} {what:<22} {where:<48} {note}")
    print(f"\n  logs: {STATE_DIR / 'logs'}/   settings: . {STATE_DIR / 'env'}   "
          f"a partner key: . .cluster/env && .venv/bin/python manage.py partner_create 'Shop' --scopes all")


def stop() -> None:
    if not STATE.exists():
        print("No cluster recorded in .cluster/state.json.")
        return
    state = json.loads(STATE.read_text())
    pids = state["pids"]
    for name in ("haproxy", "web1", "web2", "beat", *WORKERS):
        if name in pids and alive(pids[name]):
            os.kill(pids[name], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.3)
    for name, pid in pids.items():
        if alive(pid):
            print(f"{name} (pid {pid}) did not stop in 30 s: killed")
            os.killpg(pid, signal.SIGKILL)
    name, version, primary_port, replica_port = state["pg"]
    pair_stop(Pair(name, version, primary_port, replica_port))
    STATE.unlink()
    print(f"Stopped: {', '.join(pids)}, and the PostgreSQL primary and replica.")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    {"start": start, "stop": stop}.get(command, lambda: sys.exit("usage: python -m cluster start|stop"))()
