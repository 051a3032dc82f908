"""Fast writes of many rows, and every difference between the databases we run on.

This is the one module that asks which database it is talking to (``connection.vendor``); the
rest of the code calls these functions and runs the same way on PostgreSQL and on SQLite.

Django's ``bulk_create`` turns every value into a prepared expression and psycopg quotes each one;
for the five tables a batch of 1,000 orders writes, that is most of a second of Python. Here rows
are plain tuples. On PostgreSQL a few rows go in with one ``INSERT ... RETURNING id`` (one round
trip, which is what a single API call needs) and many rows with ``COPY``, their ids drawn from the
table's sequence first. On SQLite (one writer at a time: the transaction holds the write lock) ids
continue from the table's largest and the rows go in with ``executemany``.

Callers pass values already in database form: ints, strings, ``Decimal``, aware datetimes,
``None``, and JSON as text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import UTC, datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Model

COPY_FROM = 200  # rows; below this one INSERT beats the extra round trips of COPY


def json_text(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _columns(model: type[Model], fields: Sequence[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in fields]


def _unnest(model: type[Model], fields: Sequence[str], rows: Sequence[tuple]) -> tuple[str, list]:
    """``unnest(%s::type[], ...)`` and one list per column: the SQL text is the same for one row or
    a thousand, so PostgreSQL prepares it once, and psycopg has a handful of parameters to pass
    instead of one per value."""
    sql = _UNNEST_SQL.get((model, tuple(fields)))
    if sql is None:
        # Field.db_type() is slow enough to show in a single order's profile: once per table.
        types = [model._meta.get_field(name).db_type(connection) for name in fields]
        # %b: binary parameters, which psycopg dumps in C (text arrays are built in Python).
        sql = _UNNEST_SQL[(model, tuple(fields))] = "unnest(" + ", ".join(f"%b::{t}[]" for t in types) + ")"
    return sql, [list(column) for column in zip(*rows, strict=True)]


_UNNEST_SQL: dict[tuple, str] = {}


def insert(model: type[Model], fields: Sequence[str], rows: Sequence[tuple], *, ids: bool = True) -> list[int]:
    """Insert ``rows`` (values for ``fields``) and return their new ids, in order.

    With ``ids=False`` the rows carry their own primary key (or need none back): nothing is
    returned, and inside ``pipeline()`` the statement does not even wait for PostgreSQL's answer.
    """
    if not rows:
        return []
    table = model._meta.db_table
    columns = _columns(model, fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if len(rows) < COPY_FROM or _in_pipeline():
                # Rows come back from INSERT ... SELECT FROM unnest in input order (bulk_create relies on it too).
                quoted = ", ".join(f'"{column}"' for column in columns)
                source, params = _unnest(model, fields, rows)
                cursor.execute(
                    f'INSERT INTO "{table}" ({quoted}) SELECT * FROM {source}' + (" RETURNING id" if ids else ""),
                    params,
                )
                return [row[0] for row in cursor.fetchall()] if ids else []
            keys: list[int] = []
            if ids:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)]
                )
                keys = [row[0] for row in cursor.fetchall()]
                rows = [(pk, *row) for pk, row in zip(keys, rows, strict=True)]
                columns = ["id", *columns]
            quoted = ", ".join(f'"{column}"' for column in columns)
            with cursor.cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            return keys
        if not ids:
            _sqlite_insert(cursor, table, columns, list(rows))
            return []
        keys = _sqlite_ids(cursor, table, len(rows))
        _sqlite_insert(cursor, table, ["id", *columns], [(pk, *row) for pk, row in zip(keys, rows, strict=True)])
        return keys


@contextmanager
def pipeline():
    """On PostgreSQL, send the statements inside without waiting for each answer: they go out
    together when a result is read or the block ends (errors surface then). For the few rows of
    one API call; inside it ``insert`` never uses COPY, which pipeline mode cannot carry.
    Elsewhere it changes nothing."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    token = _PIPELINE.set(True)
    try:
        with connection.connection.pipeline():
            yield
    finally:
        _PIPELINE.reset(token)


_PIPELINE: ContextVar[bool] = ContextVar("bulk_pipeline", default=False)


def _in_pipeline() -> bool:
    return _PIPELINE.get()


def _sortable(key) -> tuple:
    """A key (a value or a tuple of them, some perhaps None) as something that always compares."""
    values = key if isinstance(key, tuple) else (key,)
    return tuple((value is None, "" if value is None else value) for value in values)


def insert_new(model: type[Model], fields: Sequence[str], rows: Sequence[tuple], *,
               unique: str | tuple[str, ...], any_conflict: bool = False) -> dict:
    """Insert the rows whose ``unique`` value (a field, or a tuple of fields with a unique
    constraint) is not in the table yet; return ``{unique value: id}`` for the rows inserted.
    A row that loses a race with a concurrent insert is left out instead of raising, so the
    caller's transaction stays usable (PostgreSQL waits for the other insert to commit first).
    With ``any_conflict``, a row clashing on any unique constraint is left out (PostgreSQL)."""
    if not rows:
        return {}
    uniques = (unique,) if isinstance(unique, str) else tuple(unique)
    positions = [list(fields).index(name) for name in uniques]

    def key_of(values):
        return values[positions[0]] if len(positions) == 1 else tuple(values[p] for p in positions)

    inserted: dict = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if len(rows) == 1:
                # One row (an idempotency key, one order's activity): plain VALUES, typed by the
                # columns; building typed arrays would cost more than the statement.
                sql, params = _insert_new_sql(model, tuple(fields), uniques, any_conflict, one=True), list(rows[0])
            else:
                # In key order: two transactions inserting some of the same keys then take them in
                # the same order, so one waits for the other instead of each waiting on a key the
                # other took (a deadlock, seen in CI with six batches of the same orders sent in
                # different orders).
                ordered = sorted(rows, key=lambda values: _sortable(key_of(values)))
                sql = _insert_new_sql(model, tuple(fields), uniques, any_conflict, one=False)
                params = _unnest(model, fields, ordered)[1]
            cursor.execute(sql, params)
            for pk, *key in cursor.fetchall():
                inserted[key[0] if len(key) == 1 else tuple(key)] = pk
            return inserted
        table = model._meta.db_table
        columns = _columns(model, fields)
        unique_columns = ", ".join(f'"{column}"' for column in _columns(model, uniques))
        existing = set()
        row_mark = "(" + ", ".join(["%s"] * len(positions)) + ")"
        for start in range(0, len(rows), 300):
            chunk = rows[start:start + 300]
            cursor.execute(
                f'SELECT {unique_columns} FROM "{table}" WHERE ({unique_columns}) IN '
                f"(VALUES {', '.join([row_mark] * len(chunk))})",
                [row[p] for row in chunk for p in positions],
            )
            existing.update(row[0] if len(row) == 1 else tuple(row) for row in cursor.fetchall())
        fresh, seen = [], set()
        for row in rows:
            key = key_of(row)
            if key not in existing and key not in seen:
                seen.add(key)
                fresh.append(row)
        ids = _sqlite_ids(cursor, table, len(fresh))
        _sqlite_insert(cursor, table, ["id", *columns], [(pk, *row) for pk, row in zip(ids, fresh, strict=True)])
        return {key_of(row): pk for pk, row in zip(ids, fresh, strict=True)}


@functools.cache
def _insert_new_sql(model: type[Model], fields: tuple[str, ...], uniques: tuple[str, ...], any_conflict: bool, *,
                    one: bool) -> str:
    """``insert_new``'s statement on PostgreSQL, made once per table and shape (building it showed
    in a single order's profile)."""
    quoted = ", ".join(f'"{column}"' for column in _columns(model, fields))
    unique_columns = ", ".join(f'"{column}"' for column in _columns(model, uniques))
    if one:
        source = "VALUES (" + ", ".join(["%s"] * len(fields)) + ")"
    else:
        source = f"SELECT * FROM {_unnest(model, fields, [])[0]}"
    target = "" if any_conflict else f"({unique_columns})"
    return (f'INSERT INTO "{model._meta.db_table}" ({quoted}) {source} '
            f"ON CONFLICT {target} DO NOTHING RETURNING id, {unique_columns}")


def upsert(model: type[Model], fields: Sequence[str], rows: Sequence[tuple], *, unique: str,
           update: Sequence[str]) -> None:
    """Insert ``rows`` (values for ``fields``); a row whose ``unique`` value (a field with a unique
    index, such as a one-to-one primary key) is in the table already sets ``update`` there instead.
    One ``INSERT ... SELECT FROM unnest ... ON CONFLICT DO UPDATE`` on PostgreSQL, in key order (two
    writers of some of the same rows then wait for each other instead of deadlocking); the same
    statement run per row on SQLite. Django's ``bulk_create(update_conflicts=True)`` does the same
    with a model instance and a prepared expression per value: seconds for a hundred thousand rows."""
    if not rows:
        return
    table = model._meta.db_table
    columns = _columns(model, fields)
    quoted = ", ".join(f'"{column}"' for column in columns)
    (target,) = _columns(model, (unique,))
    assignments = ", ".join(f'"{column}" = EXCLUDED."{column}"' for column in _columns(model, update))
    conflict = f'ON CONFLICT ("{target}") DO UPDATE SET {assignments}'
    with connection.cursor() as cursor:
        if _postgres():
            position = list(fields).index(unique)
            ordered = sorted(rows, key=lambda values: values[position])
            source, params = _unnest(model, fields, ordered)
            cursor.execute(f'INSERT INTO "{table}" ({quoted}) SELECT * FROM {source} {conflict}', params)
            return
        cursor.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join(["%s"] * len(columns))}) {conflict}',
                           [_sqlite_row(row) for row in rows])


def _sqlite_ids(cursor, table: str, count: int) -> list[int]:
    cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')
    first = cursor.fetchone()[0] + 1
    return list(range(first, first + count))


def _sqlite_row(row: tuple) -> tuple:
    """Timestamps as the ORM writes them on SQLite (naive UTC text), so that a value written here
    compares equal to the same value in an ORM filter."""
    return tuple(connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for v in row)


def db_values(*values) -> list:
    """Parameters for raw SQL: timestamps in the form the ORM writes them (naive UTC text on SQLite,
    where timestamps compare as text), everything else as it is."""
    return list(_sqlite_row(values)) if not _postgres() else list(values)


def _sqlite_insert(cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    quoted = ", ".join(f'"{column}"' for column in columns)
    cursor.executemany(f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join(["%s"] * len(columns))})',
                       [_sqlite_row(row) for row in rows])


# --- Reads, locks and updates that differ by database -----------------------------------------------

def _postgres() -> bool:
    return connection.vendor == "postgresql"


def any_of(column: str, values) -> tuple[str, list]:
    """SQL for "``column`` is one of ``values``" and its parameters: ``= ANY(%s)`` with one array on
    PostgreSQL (the same text for any count, so it is prepared once), ``IN (%s, ...)`` elsewhere."""
    values = list(values)
    if _postgres():
        return f"{column} = ANY(%s)", [values]
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values


def lock_clause(of: str = "") -> str:
    """``FOR NO KEY UPDATE [OF of]`` on PostgreSQL: row locks that do not conflict with the key-share
    locks of rows inserted beside them. Nothing on SQLite, where a write transaction (IMMEDIATE)
    already keeps every other writer out."""
    if not _postgres():
        return ""
    return " FOR NO KEY UPDATE" + (f" OF {of}" if of else "")


def skip_locked() -> str:
    """``FOR UPDATE SKIP LOCKED`` on PostgreSQL: rows another transaction holds are passed over, so
    workers taking jobs from one table share them. Nothing on SQLite (one writer at a time)."""
    return " FOR UPDATE SKIP LOCKED" if _postgres() else ""


def lock_table(model: type[Model]) -> None:
    """In the caller's transaction, keep every other writer of ``model``'s table, and every other
    caller of this, waiting until it ends; readers go on reading. ``LOCK TABLE ... IN EXCLUSIVE
    MODE`` on PostgreSQL; nothing on SQLite, where a write transaction already keeps every other
    writer out."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{model._meta.db_table}" IN EXCLUSIVE MODE')


# PostgreSQL's codes for a transaction it gave up so that another could go on: a deadlock, and a
# serialization failure. Trying the same work again, from the start, succeeds.
_GAVE_UP = {"40P01", "40001"}


def gave_way(exc: BaseException) -> bool:
    """Whether ``exc`` (a ``django.db.OperationalError``) says the database aborted this transaction
    in favour of a concurrent one (PostgreSQL: deadlock detected, serialization failure; SQLite:
    the database stayed locked past the timeout), so that the same work can simply be tried again."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) in _GAVE_UP:
        return True
    return "database is locked" in str(exc)


def aware(value):
    """A timestamp read by raw SQL, as an aware datetime (SQLite hands them back as UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def update(model: type[Model], fields: Sequence[str], rows: Sequence[tuple]) -> None:
    """Set ``fields`` on rows of ``model``: each row is ``(id, *values)``. One ``UPDATE ... FROM
    unnest(arrays)`` on PostgreSQL (Django's ``bulk_update`` builds a CASE per row and costs seconds
    for a thousand rows); one prepared UPDATE run per row on SQLite."""
    if not rows:
        return
    table = model._meta.db_table
    columns = _columns(model, fields)
    with connection.cursor() as cursor:
        if _postgres():
            source, params = _unnest(model, ("id", *fields), rows)
            assignments = ", ".join(f'"{c}" = v."{c}"' for c in columns)
            names = ", ".join(f'"{c}"' for c in ("id", *columns))
            cursor.execute(f'UPDATE "{table}" AS t SET {assignments} FROM {source} AS v({names}) WHERE t.id = v.id',
                           params)
            return
        assignments = ", ".join(f'"{c}" = %s' for c in columns)
        cursor.executemany(f'UPDATE "{table}" SET {assignments} WHERE id = %s',
                           [_sqlite_row((*row[1:], row[0])) for row in rows])


def commit_without_waiting(on: bool = True) -> None:
    """For work that can simply be run again, such as an import: this connection's commits no longer
    wait for the write-ahead log to reach the disk (PostgreSQL's ``synchronous_commit = off``; it
    writes it within a fraction of a second). A crash can lose the last commits, never half of one,
    and the data stays consistent. ``on=False`` makes commits wait again: the next one then waits
    for every one before it. Nothing on SQLite."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {'off' if on else 'on'}")


def leave_room_for_updates(schema_editor, table: str, percent: int) -> None:
    """For a migration: fill new pages of ``table`` only to ``percent``, so that an update of a row
    finds room for the new version on its own page (PostgreSQL's HOT update: no new entry in
    any index). For tables whose rows are rewritten often, such as the members' cached balances.
    Nothing on SQLite, which has no such setting."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'ALTER TABLE "{table}" SET (fillfactor = {int(percent)})')


@contextmanager
def big_read():
    """A transaction for one large aggregate or sort: on PostgreSQL with room to sort in memory."""
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if _postgres():
            cursor.execute("SET LOCAL work_mem = '64MB'")
        yield cursor


def read_rows(queryset) -> list[tuple]:
    """The rows of a big ``values_list`` read. On PostgreSQL straight from the driver, in binary
    (psycopg loads numbers and times in C), with room to sort: the ORM's per-row conversions would
    cost more than the query. Elsewhere through the ORM."""
    if not _postgres():
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    with big_read() as cursor:
        cursor.cursor.execute(sql, params, binary=True)
        return cursor.cursor.fetchall()


def writes_in_one_statement() -> bool:
    """Whether one statement may insert into several tables and update another (INSERT and UPDATE
    inside WITH: PostgreSQL; not SQLite)."""
    return _postgres()


def parallel_writers() -> bool:
    """Whether other processes can write beside this one now: PostgreSQL, outside a transaction
    (others cannot see an open transaction's rows, and an SQLite file has one writer)."""
    return _postgres() and not connection.in_atomic_block


# --- A row carried by a write ------------------------------------------------------------------------

class Carry:
    """A row that must be written with a request's effects or not at all (an idempotency record),
    its last values known only from the outcome: ``row(outcome)`` gives the whole row. The writer
    that makes the effects stores it with them (``carried()`` hands it over): a one-statement write
    inserts it in its statement (``statement_sql`` and ``statement``), any other at the end of its
    transaction (``store``). A write that changes nothing leaves the row to its owner. A row whose
    unique key is taken raises ``Carry.Taken``, and what was written with it is undone."""

    class Taken(Exception):
        """The carried row's unique key is taken."""

    def __init__(self, model: type[Model], fields: Sequence[str], row, *, unique: Sequence[str]):
        self.model, self.fields, self.row, self.unique = model, tuple(fields), row, tuple(unique)
        self.done = False

    def store(self, outcome) -> None:
        """Insert the row in the caller's transaction."""
        if not insert_new(self.model, self.fields, [self.row(outcome)], unique=self.unique):
            raise Carry.Taken
        self.done = True

    def statement_sql(self, *, after: str) -> str:
        """A ``WITH`` part inserting the row (the parameters: ``row(outcome)``) if the part named
        ``after`` gave any row. A taken key fails the whole statement: run it inside ``statement()``,
        and set ``done`` when ``after`` gave a row."""
        return _carry_sql(self.model, self.fields, after)

    @contextmanager
    def statement(self):
        """Around the statement that carries the row: its taken key becomes ``Carry.Taken``. Inside
        a transaction the statement gets a savepoint, so that the transaction outlives the error."""
        try:
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                yield
        except IntegrityError as exc:
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) in _unique_constraints(
                    self.model, self.unique):
                raise Carry.Taken from exc
            raise


@functools.cache
def _unique_constraints(model: type[Model], fields: tuple[str, ...]) -> set[str]:
    columns = set(_columns(model, fields))
    return {constraint.name for constraint in model._meta.constraints
            if set(_columns(model, getattr(constraint, "fields", ()))) == columns}


@functools.cache
def _carry_sql(model: type[Model], fields: tuple[str, ...], after: str) -> str:
    quoted = ", ".join(f'"{column}"' for column in _columns(model, fields))
    # Strings as text, not varchar(n): a cast would cut a long one short, an assignment refuses it.
    types = [model._meta.get_field(name).db_type(connection) for name in fields]
    typed = ", ".join("%s::" + ("text" if kind.startswith("varchar") else kind.replace("timestamp with time zone",
                                                                                        "timestamptz"))
                      for kind in types)
    return f'INSERT INTO "{model._meta.db_table}" ({quoted}) SELECT {typed} WHERE EXISTS (SELECT FROM {after})'


_CARRY: ContextVar[Carry | None] = ContextVar("carry", default=None)


@contextmanager
def carrying(carry: Carry):
    """Hand ``carry`` to the write the block makes (``carried()``)."""
    token = _CARRY.set(carry)
    try:
        yield carry
    finally:
        _CARRY.reset(token)


def carried() -> Carry | None:
    """The row the write being made must carry, if one is waiting."""
    carry = _CARRY.get()
    return None if carry is None or carry.done else carry
