"""A PostgreSQL primary and a streaming replica of it on loopback, made with Debian's own tools:
``pg_createcluster`` for each, ``pg_basebackup -R`` to start the replica from the primary. For
``make cluster`` and the replica test; each pair is dropped again by whoever made it.

Both are clusters of the newest PostgreSQL installed, named ``<name>-primary`` and
``<name>-replica`` (``pg_lsclusters`` lists them), trusting loopback connections like the
machine's own cluster does here. Needs root (the clusters belong to the ``postgres`` user).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_ROOT = Path("/usr/lib/postgresql")


def why_not() -> str | None:
    """Why a pair cannot be made on this machine, or None."""
    if shutil.which("pg_createcluster") is None or shutil.which("pg_basebackup") is None:
        return "needs Debian's postgresql-common (pg_createcluster, pg_basebackup)"
    if not any((SERVER_ROOT / v / "bin" / "postgres").exists() for v in _versions()):
        return "needs a PostgreSQL server installed (apt-get install postgresql)"
    if os.geteuid() != 0:
        return "needs root (pg_createcluster makes clusters owned by postgres)"
    return None


def _versions() -> list[str]:
    return sorted((p.name for p in SERVER_ROOT.iterdir() if p.name.isdigit()), key=int) if SERVER_ROOT.exists() else []


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


@dataclass(frozen=True)
class Pair:
    name: str
    version: str
    primary_port: int
    replica_port: int

    def url(self, database: str, *, replica: bool = False) -> str:
        port = self.replica_port if replica else self.primary_port
        return f"postgres://postgres@127.0.0.1:{port}/{database}"

    def connect(self, *, replica: bool = False, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database, replica=replica), autocommit=True, connect_timeout=5)

    def caught_up(self, timeout: float = 30) -> float:
        """Wait until the replica has replayed everything the primary wrote so far; the seconds it took."""
        started = time.monotonic()
        with self.connect() as primary, self.connect(replica=True) as replica:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            while True:
                done = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]
                if done:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"the replica did not reach {target} in {timeout} s")
                time.sleep(0.01)

    def lag(self) -> tuple[int, float | None]:
        """Bytes of WAL the replica has still to replay, and its replay lag in seconds as the
        primary sees it (None when it has nothing to measure: idle)."""
        with self.connect() as primary:
            row = primary.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
                " extract(epoch FROM replay_lag)::float FROM pg_stat_replication").fetchone()
        if row is None:
            raise RuntimeError("the replica is not streaming from the primary")
        return int(row[0] or 0), row[1]

    def pause_replay(self) -> None:
        with self.connect(replica=True) as replica:
            replica.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.connect(replica=True) as replica:
            replica.execute("SELECT pg_wal_replay_resume()")


def _wait_for(pair: Pair, *, replica: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with pair.connect(replica=replica) as conn:
                recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            if recovering == replica:
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {'replica' if replica else 'primary'} of {pair.name} did not start")
        time.sleep(0.2)


def pair_start(name: str, *, primary_port: int, replica_port: int, settings: dict[str, str] | None = None) -> Pair:
    """Make and start a primary and its streaming replica (any pair of that name left over is
    dropped first). ``settings`` go into both clusters' configuration."""
    version = _versions()[-1]
    pair = Pair(name, version, primary_port, replica_port)
    pair_stop(pair)
    wanted = {"listen_addresses": "127.0.0.1", **(settings or {})}
    conf = "".join(f"{key} = '{value}'\n" for key, value in wanted.items())
    trust = ["--", "--auth-local=trust", "--auth-host=trust", "--no-sync"]
    for role in ("primary", "replica"):
        port = replica_port if role == "replica" else primary_port
        _run("pg_createcluster", version, f"{name}-{role}", "-p", str(port), *trust)
        Path(f"/etc/postgresql/{version}/{name}-{role}/conf.d/90-loyalty.conf").write_text(conf)
    _run("pg_ctlcluster", version, f"{name}-primary", "start")
    _wait_for(pair, replica=False)
    data = Path(f"/var/lib/postgresql/{version}/{name}-replica")
    for entry in data.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    # -R: standby.signal and primary_conninfo, so it starts as a streaming replica of the primary.
    _run("runuser", "-u", "postgres", "--", "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port),
         "-U", "postgres", "-D", str(data), "-X", "stream", "-R", "-c", "fast")
    _run("pg_ctlcluster", version, f"{name}-replica", "start")
    _wait_for(pair, replica=True)
    return pair


def pair_stop(pair: Pair) -> None:
    """Stop and drop both clusters, data and all (nothing if they are not there)."""
    for role in ("replica", "primary"):
        if Path(f"/etc/postgresql/{pair.version}/{pair.name}-{role}").exists():
            _run("pg_dropcluster", "--stop", pair.version, f"{pair.name}-{role}")
