"""What each process keeps in memory of things that rarely change (the program's settings and rules,
the words of messages, API keys), and how every process learns that one changed.

A change gives the thing a new version in the shared cache (``CACHE_URL``: Redis as soon as more
than one process serves) once its transaction commits. A process reads the versions of everything
it keeps with one round trip, at the start of each task, at the start of a request unless a request
before it read them less than ``REQUEST_VERSIONS_MAX_AGE`` (0.1 s) ago, and at least every second in
anything else that runs long (a command); it loads a thing again only when its version moved. So
every process on every machine sees a change within 0.1 s of its commit (the process that made it,
at once): a revoked key is refused everywhere within 0.1 s, and nothing is read again while nothing
changes. A web process busy with 100 API calls a second reads the versions 10 times, not 100 (the
round trip was 4% of a single order's Python, measured).

Versions are random tokens, not counters: a cache that lost a key (restarted, evicted) reads as a
version nobody holds, so every process loads again, and a new token never equals an old one.
"""

import threading
import time
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")

# Outside requests and tasks (commands, the shell), versions are read again after this long.
VERSIONS_MAX_AGE = 1.0
# A request reads them again at its start when they were read longer ago than this.
REQUEST_VERSIONS_MAX_AGE = 0.1

_keys: list[str] = []
_copies: list["ProcessCopy"] = []
_followers: dict[str, list["ProcessCopy"]] = {}
_local = threading.local()
_UNREAD = object()


def _versions() -> dict:
    snapshot = getattr(_local, "snapshot", None)
    now = time.monotonic()
    if snapshot is None or now - snapshot[0] > VERSIONS_MAX_AGE:
        snapshot = (now, cache.get_many(_keys))
        _local.snapshot = snapshot
    return snapshot[1]


def forget_all() -> None:
    """Every copy is loaded again at its next use, and versions read again (tests start each from
    their own database)."""
    for copy in _copies:
        copy.forget()
    _local.snapshot = None


def read_versions_again(**_) -> None:
    """At the start of each task (a signal receiver, see ``core.apps``)."""
    _local.snapshot = None


def read_versions_at_request_start(**_) -> None:
    """At the start of each request (a signal receiver): read them again unless they are fresh."""
    snapshot = getattr(_local, "snapshot", None)
    if snapshot is not None and time.monotonic() - snapshot[0] > REQUEST_VERSIONS_MAX_AGE:
        _local.snapshot = None


class ProcessCopy(Generic[T]):
    """One thing a process keeps, made by ``load()``, valid while its version stays the same."""

    def __init__(self, name: str, load: Callable[[], T], *, follows: tuple[str, ...] = ()):
        """``follows``: the names of other copies whose change makes this one stale too (a copy
        holding partners follows ``api-keys``, which moves when a partner is paused)."""
        self.key = f"process-copy:{name}"
        self.keys = (self.key, *(f"process-copy:{other}" for other in follows))
        self.load = load
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version = _UNREAD
        _keys.extend(key for key in self.keys if key not in _keys)
        _copies.append(self)
        for key in self.keys[1:]:
            _followers.setdefault(key, []).append(self)

    def get(self) -> T:
        versions = _versions()
        version = tuple(versions.get(key) for key in self.keys)
        with self._lock:
            if self._version is _UNREAD or self._version != version:
                # The version read before loading: a change committed meanwhile is loaded again later.
                self._value, self._version = self.load(), version
            return self._value

    def forget(self) -> None:
        """This process loads it again at its next use."""
        with self._lock:
            self._version = _UNREAD
            self._value = None

    def changed(self) -> None:
        """After a change to what this copy holds: this process loads it again now (the change is
        visible to its own transaction), every other within 0.1 s once the change is committed.
        Nothing is bumped for a change rolled back."""
        self._forget_here()
        transaction.on_commit(self._bump)

    def _forget_here(self) -> None:
        self.forget()
        for follower in _followers.get(self.key, ()):
            follower.forget()

    def _bump(self) -> None:
        self._forget_here()
        cache.set(self.key, uuid.uuid4().hex, timeout=None)
        _local.snapshot = None
