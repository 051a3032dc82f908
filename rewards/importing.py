"""Backfilling order history from CSV, streaming: memory stays flat whatever the file size.

One row per order line, with a header. Required columns: ``order_id``, ``member`` (the partner's
customer id), ``placed_at`` (ISO 8601 with offset; a bare date means midnight UTC), ``currency``,
``total``, ``sku``, ``quantity``, ``unit_price``. Optional: ``name``, ``category``, ``shipping``,
``tax``, ``discount`` (order-level, read from the order's first row), ``email``, ``first_name``,
``last_name`` (used when the customer is new). The rows of one order must be next to each other.

Each order goes through the same checks and the same engine as the API: a bad order is reported
with the line numbers of its rows and skipped, the good ones are kept, and an order already
imported is recognised and not counted again, so the import can be re-run after fixing the file.
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
import queue
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import OperationalError

from accounts.models import Partner
from accounts.services import members_ensure_for_partner
from core import bulk
from core.errors import Invalid
from rewards.payloads import OrderInput, parse_order
from rewards.program import current_program
from rewards.services import orders_record

REQUIRED = ("order_id", "member", "placed_at", "currency", "total", "sku", "quantity", "unit_price")
ORDER_FIELDS = ("shipping", "tax", "discount")
PROFILE_FIELDS = ("email", "first_name", "last_name")


@dataclass
class ImportReport:
    rows: int = 0
    orders_accepted: int = 0
    orders_duplicate: int = 0
    orders_rejected: int = 0
    members_created: int = 0
    points_awarded: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class _PendingOrder:
    first_line: int
    last_line: int
    rows: list[list[str]]  # as the csv module reads them: a list of strings per row, no dict per row
    key: str = ""  # the order id the rows share


class _Columns:
    """Where each named column is in a row (the header's order); a column the file lacks, or a
    short row, reads as empty, as csv.DictReader would have it."""

    def __init__(self, header: list[str]):
        self.position = {name: index for index, name in enumerate(header)}

    def get(self, row: list[str], name: str) -> str:
        index = self.position.get(name)
        return row[index] if index is not None and index < len(row) else ""


def _group(reader: Iterable[list[str]], columns: _Columns, start_line: int) -> Iterator[_PendingOrder]:
    current: _PendingOrder | None = None
    order_id = columns.position["order_id"]
    offset = 0
    for row in reader:
        if not row:
            continue  # a blank line, skipped as csv.DictReader skips it
        line = start_line + offset
        offset += 1
        key = row[order_id] if order_id < len(row) else ""
        if current is not None and key == current.key:
            current.rows.append(row)
            current.last_line = line
            continue
        if current is not None:
            yield current
        current = _PendingOrder(line, line, [row], key)
    if current is not None:
        yield current


def _placed_at(value: str) -> str:
    value = value.strip()
    return f"{value}T00:00:00Z" if len(value) == 10 else value


def _payload(group: _PendingOrder, columns: _Columns) -> dict:
    get, head = columns.get, group.rows[0]
    payload = {
        "order_id": get(head, "order_id").strip(), "member": get(head, "member").strip(),
        "placed_at": _placed_at(get(head, "placed_at")), "currency": get(head, "currency").strip(),
        "total": get(head, "total").strip(),
        "lines": [],
    }
    for key in ORDER_FIELDS:
        if value := get(head, key):
            payload[key] = value.strip()
    for row in group.rows:
        quantity = get(row, "quantity").strip()
        payload["lines"].append({
            "sku": get(row, "sku").strip(), "name": get(row, "name").strip(),
            "category": get(row, "category").strip(),
            "quantity": int(quantity) if quantity.lstrip("-").isdigit() else quantity,
            "unit_price": get(row, "unit_price").strip(),
        })
    return payload


def _where(group: _PendingOrder) -> str:
    if group.first_line == group.last_line:
        return f"line {group.first_line}"
    return f"lines {group.first_line}-{group.last_line}"


def _describe(fields: dict) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())


class _Writer:
    """Turns row groups into checked orders and records them in batches; counts what happened."""

    def __init__(self, *, partner: Partner, columns: _Columns, batch_size: int, create_members: bool):
        self.partner, self.columns = partner, columns
        self.batch_size, self.create_members = batch_size, create_members
        self.accepted_currencies = current_program().settings.accepted()
        self.report = ImportReport()
        self.batch: list[tuple[_PendingOrder, OrderInput]] = []
        self.profiles: dict[str, dict] = {}

    def add(self, group: _PendingOrder) -> bool:
        """Take one order's rows; True when a batch was written."""
        self.report.rows += len(group.rows)
        try:
            order = parse_order(_payload(group, self.columns), accepted_currencies=self.accepted_currencies)
        except Invalid as exc:
            self.report.orders_rejected += 1
            self.report.problems.append(
                f"{_where(group)}: order {self.columns.get(group.rows[0], 'order_id')!r}: {_describe(exc.fields)}"
            )
            return False
        self.batch.append((group, order))
        if self.create_members and order.member not in self.profiles:
            head, get = group.rows[0], self.columns.get
            self.profiles[order.member] = {key: get(head, key).strip() for key in PROFILE_FIELDS if get(head, key)}
        if len(self.batch) >= self.batch_size:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        if not self.batch:
            return
        report = self.report
        member_ids = None
        if self.create_members:
            for attempt in range(3):
                try:
                    member_ids, created = members_ensure_for_partner(partner=self.partner, rows=self.profiles)
                    break
                except OperationalError as exc:
                    # Two workers whose new customers share an email can still meet head on;
                    # PostgreSQL picks one to fail, and it simply tries again.
                    if not bulk.gave_way(exc) or attempt == 2:
                        raise
            report.members_created += created
        results = orders_record(partner=self.partner, orders=[order for _, order in self.batch],
                                member_ids=member_ids)
        for (group, _), result in zip(self.batch, results, strict=True):
            if result.status == "accepted":
                report.orders_accepted += 1
                report.points_awarded += result.award.points
            elif result.status == "duplicate":
                report.orders_duplicate += 1
            else:
                report.orders_rejected += 1
                problem = _describe(result.error["fields"])
                report.problems.append(f"{_where(group)}: order {result.order_id!r}: {problem}")
        self.batch.clear()
        self.profiles.clear()


def import_orders(*, partner: Partner, lines: Iterable[str], batch_size: int = 1000, create_members: bool = True,
                  workers: int = 1, progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import the CSV text ``lines`` for ``partner``; see the module docstring for the format.

    With ``workers`` above 1 (PostgreSQL), this process reads and groups the rows and that many
    worker processes check and record them. Each customer's orders always go to the same worker,
    so workers never wait on each other's locks or create the same member twice.
    """
    started = time.monotonic()
    reader = csv.reader(lines)
    header = next((row for row in reader if row), [])
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise Invalid(f"The header lacks: {', '.join(missing)}.", fields={"header": f"Missing {', '.join(missing)}"})
    columns = _Columns(header)
    groups = _group(reader, columns, start_line=2)
    if not bulk.parallel_writers():
        workers = 1
    if workers > 1:
        report = _import_parallel(partner=partner, columns=columns, groups=groups, batch_size=batch_size,
                                  create_members=create_members, workers=workers, progress=progress, started=started)
    else:
        writer = _Writer(partner=partner, columns=columns, batch_size=batch_size, create_members=create_members)
        for group in groups:
            if writer.add(group) and progress:
                writer.report.seconds = time.monotonic() - started
                progress(writer.report)
        writer.flush()
        report = writer.report
    report.problems.sort(key=_first_line)
    report.seconds = time.monotonic() - started
    return report


def _first_line(problem: str) -> int:
    return int(problem.split(" ", 2)[1].split("-")[0].rstrip(":"))


# --- several processes ---------------------------------------------------------------------------

_CHUNK = 250  # orders per message to a worker: big enough to amortise pickling, small for flat memory


def _import_parallel(*, partner, columns, groups, batch_size, create_members, workers, progress, started
                     ) -> ImportReport:
    from django.db import connections

    connections.close_all()  # the workers must not share this process's database connection
    # The workers share this process's memory until they write to it; the collector would write to
    # every object it tracks (a copy of most of the heap in each worker). Frozen objects it leaves be.
    gc.freeze()
    context = multiprocessing.get_context("fork")
    inboxes = [context.Queue(maxsize=4) for _ in range(workers)]
    outbox = context.Queue()
    processes = [
        context.Process(target=_worker, args=(partner.pk, columns, inbox, outbox, batch_size, create_members),
                        daemon=True)
        for inbox in inboxes
    ]
    for process in processes:
        process.start()
    total = ImportReport()
    buffers: list[list] = [[] for _ in range(workers)]

    def collect(block: bool) -> int:
        finished = 0
        while True:
            try:
                kind, part = outbox.get(block=block, timeout=1 if block else None)
            except queue.Empty:
                return finished
            _merge(total, part)
            finished += kind == "done"
            if progress:
                total.seconds = time.monotonic() - started
                progress(total)
            if block:
                return finished

    def send(slot: int, item) -> None:
        while True:
            try:
                inboxes[slot].put(item, timeout=1)
                return
            except queue.Full:
                if not processes[slot].is_alive():
                    raise RuntimeError(f"import worker {slot} stopped (exit code {processes[slot].exitcode})") from None
                collect(block=False)

    try:
        for group in groups:
            member = columns.get(group.rows[0], "member").strip()
            slot = zlib.crc32(member.encode()) % workers
            buffers[slot].append((group.first_line, group.last_line, group.rows))
            if len(buffers[slot]) >= _CHUNK:
                send(slot, buffers[slot])
                buffers[slot] = []
                collect(block=False)
        for slot in range(workers):
            if buffers[slot]:
                send(slot, buffers[slot])
            send(slot, None)
    except BaseException:
        for process in processes:
            process.terminate()
        for inbox in inboxes:
            inbox.cancel_join_thread()  # or exiting would wait to deliver to a worker that is gone
        raise
    done = 0
    while done < workers:
        done += collect(block=True)
        if done < workers and not any(process.is_alive() for process in processes) and outbox.empty():
            break  # a worker died without reporting: its exit code is checked below
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"an import worker failed (exit code {process.exitcode})")
    return total


def _worker(partner_id, columns, inbox, outbox, batch_size, create_members) -> None:
    from django.db import connections

    connections.close_all()
    partner = Partner.objects.get(pk=partner_id)
    writer = _Writer(partner=partner, columns=columns, batch_size=batch_size, create_members=create_members)
    sent = ImportReport()

    def report_progress(kind: str) -> None:
        part = _difference(writer.report, sent)
        _merge(sent, part)
        outbox.put((kind, part))

    # Safe to run again, so no commit waits for the disk but the last: it waits for all before it.
    bulk.commit_without_waiting()
    try:
        while (chunk := inbox.get()) is not None:
            for first, last, rows in chunk:
                if writer.add(_PendingOrder(first, last, rows)):
                    report_progress("progress")
        bulk.commit_without_waiting(on=False)
        writer.flush()
    finally:
        report_progress("done")
        connections.close_all()


def _merge(total: ImportReport, part: ImportReport) -> None:
    for name in ("rows", "orders_accepted", "orders_duplicate", "orders_rejected", "members_created",
                 "points_awarded"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.problems.extend(part.problems)


def _difference(now: ImportReport, before: ImportReport) -> ImportReport:
    part = ImportReport()
    for name in ("rows", "orders_accepted", "orders_duplicate", "orders_rejected", "members_created",
                 "points_awarded"):
        setattr(part, name, getattr(now, name) - getattr(before, name))
    part.problems = now.problems[len(before.problems):]
    return part
