"""Exactly one scheduler: django-celery-beat's database scheduler behind a lock.

Start a beat on every machine that may need one; the one holding the lock sends the due tasks,
the others wait and try the lock every ``max_interval`` seconds (5 by default, ``celery beat
--max-interval``). On PostgreSQL the lock is a session advisory lock held on a connection of its
own, which the server releases the moment the beat's process stops or dies (its connection
closes; TCP keepalives notice a machine that vanished), and a waiting beat takes over, reading
every job's last run from the database. The connection must reach PostgreSQL itself: a pooler in
transaction mode (pgbouncer) does not keep session locks. On SQLite (one machine) the lock is a
file lock beside the database.

Each job's last run is written the moment it is sent (``CELERY_BEAT_SYNC_EVERY = 1``), so the
beat that takes over knows it. A beat killed between sending a job and writing that may have the
job sent once more by the next one: every task is safe to run twice.
"""

import contextlib
import fcntl
import logging
import os
import time

import psycopg
from django.conf import settings
from django.db import connections
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# Any 64-bit number of our own; advisory locks are per database, so each database has its beat.
LOCK_KEY = 0x4C4F59414C5459  # "LOYALTY"


class PostgresLock:
    def __init__(self):
        self.conn: psycopg.Connection | None = None

    def take(self) -> bool:
        if self.conn is None or self.conn.closed:
            params = connections["default"].get_connection_params()
            basic = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
            self.conn = psycopg.connect(**basic, autocommit=True, application_name="loyalty beat lock",
                                        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        return bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0])

    def held(self) -> bool:
        """Whether the lock's connection is still there (if it is, so is the lock)."""
        try:
            self.conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None


class FileLock:
    def __init__(self, path: str):
        self.path, self.fd = path, None

    def take(self) -> bool:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def held(self) -> bool:
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def beat_lock() -> PostgresLock | FileLock:
    if settings.IS_POSTGRES:
        return PostgresLock()
    return FileLock(f"{settings.DATABASES['default']['NAME']}.beat.lock")


class LockedDatabaseScheduler(DatabaseScheduler):
    """The database scheduler, sending only while this beat holds the lock."""

    def __init__(self, *args, **kwargs):
        self._lock = beat_lock()
        self._leading = False
        self._waiting_told = False
        self._checked_at = 0.0
        super().__init__(*args, **kwargs)

    def _lead(self) -> bool:
        """Take the lock if it is free; when this beat takes it, forget what it knew of the
        schedule, so every job's last run is read again (another beat may have sent it since)."""
        if self._leading:
            return True
        try:
            self._leading = self._lock.take()
        except psycopg.Error as exc:
            logger.error("beat: cannot reach the database for the lock (%s); trying again", exc)
            self._lock.release()
            return False
        if self._leading:
            logger.info("beat: this beat holds the lock and sends the due tasks")
            self._checked_at = time.monotonic()
            self._initial_read = True
            self._heap = None
        elif not self._waiting_told:
            logger.info("beat: another beat holds the lock; waiting to take over")
            self._waiting_told = True
        return self._leading

    def setup_schedule(self):
        # Called when the scheduler starts: only the beat that leads writes the settings' jobs.
        if self._lead():
            super().setup_schedule()

    def tick(self, *args, **kwargs):
        if self._leading and time.monotonic() - self._checked_at >= self.max_interval:
            self._checked_at = time.monotonic()
            if not self._lock.held():
                logger.error("beat: lost the lock with its database connection; sending nothing until it is back")
                self._leading = False
                self._waiting_told = False
        if not self._leading:
            if not self._lead():
                return self.max_interval
            super().setup_schedule()
        return super().tick(*args, **kwargs)

    def close(self):
        try:
            super().close()
        finally:
            self._lock.release()
