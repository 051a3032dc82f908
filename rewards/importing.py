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
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from accounts.models import Partner
from accounts.services import members_ensure_for_partner
from loyalty_site.errors import Invalid
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
    rows: list[dict]


def _group(reader: Iterable[dict], start_line: int) -> Iterator[_PendingOrder]:
    current: _PendingOrder | None = None
    for offset, row in enumerate(reader):
        line = start_line + offset
        if current is not None and row.get("order_id") == current.rows[0].get("order_id"):
            current.rows.append(row)
            current.last_line = line
            continue
        if current is not None:
            yield current
        current = _PendingOrder(line, line, [row])
    if current is not None:
        yield current


def _placed_at(value: str) -> str:
    value = (value or "").strip()
    return f"{value}T00:00:00Z" if len(value) == 10 else value


def _payload(group: _PendingOrder) -> dict:
    head = group.rows[0]
    payload = {
        "order_id": head.get("order_id", "").strip(), "member": head.get("member", "").strip(),
        "placed_at": _placed_at(head.get("placed_at")), "currency": head.get("currency", "").strip(),
        "total": head.get("total", "").strip(),
        "lines": [],
    }
    for key in ORDER_FIELDS:
        if head.get(key):
            payload[key] = head[key].strip()
    for row in group.rows:
        quantity = (row.get("quantity") or "").strip()
        payload["lines"].append({
            "sku": (row.get("sku") or "").strip(), "name": (row.get("name") or "").strip(),
            "category": (row.get("category") or "").strip(),
            "quantity": int(quantity) if quantity.lstrip("-").isdigit() else quantity,
            "unit_price": (row.get("unit_price") or "").strip(),
        })
    return payload


def _where(group: _PendingOrder) -> str:
    if group.first_line == group.last_line:
        return f"line {group.first_line}"
    return f"lines {group.first_line}-{group.last_line}"


def _describe(fields: dict) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())


def import_orders(*, partner: Partner, lines: Iterable[str], batch_size: int = 1000, create_members: bool = True,
                  progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import the CSV text ``lines`` for ``partner``; see the module docstring for the format."""
    report = ImportReport()
    started = time.monotonic()
    reader = csv.DictReader(lines)
    missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(f"The header lacks: {', '.join(missing)}.", fields={"header": f"Missing {', '.join(missing)}"})
    accepted = current_program().settings.accepted()
    batch: list[tuple[_PendingOrder, OrderInput]] = []
    profiles: dict[str, dict] = {}

    def flush() -> None:
        if not batch:
            return
        if create_members:
            _, created = members_ensure_for_partner(partner=partner, rows=profiles)
            report.members_created += created
        results = orders_record(partner=partner, orders=[order for _, order in batch])
        for (group, _), result in zip(batch, results, strict=True):
            if result.status == "accepted":
                report.orders_accepted += 1
                report.points_awarded += result.award.points
            elif result.status == "duplicate":
                report.orders_duplicate += 1
            else:
                report.orders_rejected += 1
                problem = _describe(result.error["fields"])
                report.problems.append(f"{_where(group)}: order {result.order_id!r}: {problem}")
        batch.clear()
        profiles.clear()
        report.seconds = time.monotonic() - started
        if progress:
            progress(report)

    for group in _group(reader, start_line=2):
        report.rows += len(group.rows)
        try:
            order = parse_order(_payload(group), accepted_currencies=accepted)
        except Invalid as exc:
            report.orders_rejected += 1
            report.problems.append(f"{_where(group)}: order {group.rows[0].get('order_id', '')!r}: "
                                   f"{_describe(exc.fields)}")
            continue
        batch.append((group, order))
        if create_members and order.member not in profiles:
            head = group.rows[0]
            profiles[order.member] = {key: head[key].strip() for key in PROFILE_FIELDS if head.get(key)}
        if len(batch) >= batch_size:
            flush()
    flush()
    report.seconds = time.monotonic() - started
    return report
