"""Reads that may come from a read replica (``DATABASE_REPLICA_URL``), chosen where they are made.

A view or a selector that can live with data a moment old (the insights pages, the leaderboards'
rankings, the reviews a shop shows on its product pages) says so: ``@replica_reads()`` on the view,
or ``with replica_reads():`` around the reads. Nothing else goes there: writes, and every read not
marked, stay on the primary, and so do reads that must see their own writes (the session and the
user behind a request, a member's own points, what a form just saved). Inside a transaction every
read stays on the primary too, even in a marked block: what is read there is about to be written.

Without ``DATABASE_REPLICA_URL`` there is no router and the marks change nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_marked: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block (or view, as a decorator) may come from the replica."""
    token = _marked.set(True)
    try:
        yield
    finally:
        _marked.reset(token)


class ReplicaRouter:
    """Django's database router: the replica for marked reads outside a transaction, else the primary."""

    def db_for_read(self, model, **hints):
        if _marked.get() and REPLICA in settings.DATABASES and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the same data, a moment apart

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA  # it follows the primary's schema
