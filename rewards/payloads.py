"""Checking what partners send: orders, refunds, events, adjustments.

Plain functions rather than DRF serializers: a batch of 1,000 orders is checked in a few
milliseconds this way, against a good part of a second through nested serializers. Each returns
a frozen dataclass or raises ``Invalid`` whose ``fields`` name every bad value by its dotted path
(``lines.1.quantity``). The DRF serializers in ``apis.py`` describe the same shapes for OpenAPI.

Totals: an order's ``total`` must equal the sum of its lines plus ``shipping`` and ``tax`` minus
``discount``, to within one minor unit of the currency per line (0.01 EUR per line), which
absorbs the per-line rounding that shop systems do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import Invalid
from core.text import IDENTIFIER_RULE, MAX_INTEGER_ID, MONEY, is_identifier
from rewards.currencies import MINOR_UNITS, quantum
from rewards.models import ActivityType

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,49}$"
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_LINES = 500
MAX_FUTURE = timedelta(minutes=10)


@dataclass(frozen=True)
class LineInput:
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class OrderInput:
    order_id: str
    member: str
    placed_at: datetime
    currency: str
    total: Decimal
    shipping: Decimal
    tax: Decimal
    discount: Decimal
    lines: tuple[LineInput, ...]

    @property
    def merchandise(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    def content_hash(self) -> str:
        canonical = [self.member, self.placed_at.isoformat(), self.currency, str(self.total), str(self.shipping),
                     str(self.tax), str(self.discount),
                     [[li.sku, li.name, li.category, li.quantity, str(li.unit_price)] for li in self.lines]]
        return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


@dataclass(frozen=True)
class RefundLineInput:
    sku: str
    quantity: int


@dataclass(frozen=True)
class RefundInput:
    refund_id: str
    amount: Decimal | None
    lines: tuple[RefundLineInput, ...]

    def content_hash(self) -> str:
        canonical = [str(self.amount), [[line.sku, line.quantity] for line in self.lines]]
        return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


@dataclass(frozen=True)
class EventInput:
    event_id: str
    type: str
    member: str
    occurred_at: datetime
    properties: dict


class _Errors:
    def __init__(self):
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def raise_if_any(self, message: str = "Some fields are invalid.") -> None:
        if self.fields:
            raise Invalid(message, fields=self.fields)


def _require_object(data, what: str) -> dict:
    if not isinstance(data, dict):
        raise Invalid(f"Expected a JSON object for the {what}.", fields={"non_field_errors": "Expected a JSON object."})
    return data


def _identifier(data: dict, key: str, errors: _Errors, *, path: str | None = None, required: bool = True) -> str:
    path = path or key
    value = data.get(key)
    if value is None or value == "":
        if required:
            errors.add(path, "This field is required.")
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INTEGER_ID:
        value = str(value)  # a numeric id sent as a JSON number: read as its digits
    if not is_identifier(value):
        errors.add(path, f"Must be {IDENTIFIER_RULE}.")
        return ""
    return value


def _text(data: dict, key: str, errors: _Errors, *, path: str, max_length: int) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(path, "Must be a string.")
        return ""
    if len(value) > max_length:
        errors.add(path, f"At most {max_length} characters.")
        return ""
    return value.strip()


def _money(data: dict, key: str, errors: _Errors, *, path: str, currency: str | None, required: bool = True,
           positive: bool = False) -> Decimal:
    value = data.get(key)
    if value is None or value == "":
        if required:
            errors.add(path, "This field is required.")
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, str | int | float) or (
            isinstance(value, str) and not MONEY.match(value)):
        errors.add(path, 'Must be a decimal string such as "12.50".')
        return Decimal(0)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors.add(path, 'Must be a decimal string such as "12.50".')
        return Decimal(0)
    if not amount.is_finite():
        errors.add(path, "Must be a finite amount.")
        return Decimal(0)
    if amount < 0 or (positive and amount == 0):
        errors.add(path, "Must be greater than zero." if positive else "Must not be negative.")
        return Decimal(0)
    if amount > Decimal("99999999999.999"):
        errors.add(path, "Too large.")
        return Decimal(0)
    if currency in MINOR_UNITS and amount != amount.quantize(quantum(currency)):
        errors.add(path, f"{currency} has {MINOR_UNITS[currency]} decimal places.")
        return Decimal(0)
    return amount


def _quantity(data: dict, key: str, errors: _Errors, *, path: str) -> int:
    value = data.get(key)
    if value is None:
        errors.add(path, "This field is required.")
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "Must be a whole number.")
        return 0
    if value < 1:
        errors.add(path, "Must be at least 1.")
        return 0
    if value > 100_000:
        errors.add(path, "At most 100000.")
        return 0
    return value


def _moment(data: dict, key: str, errors: _Errors, *, path: str, now: datetime) -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        errors.add(path, "This field is required.")
        return None
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but impossible: minute 99, 30 February
        moment = None
    if moment is None:
        errors.add(path, "Must be an ISO 8601 date and time such as 2026-05-01T10:00:00Z.")
        return None
    if timezone.is_naive(moment):
        errors.add(path, "Include a time zone offset, such as Z or +02:00.")
        return None
    if moment > now + MAX_FUTURE:
        errors.add(path, "Must not be in the future.")
        return None
    if moment.year < 1990:
        errors.add(path, "Must be after 1990.")
        return None
    return moment


def parse_order(data, *, accepted_currencies: list[str], now: datetime | None = None) -> OrderInput:
    """Check one order; raise ``Invalid`` naming every bad field."""
    now = now or timezone.now()
    data = _require_object(data, "order")
    errors = _Errors()
    order_id = _identifier(data, "order_id", errors)
    member = _identifier(data, "member", errors)
    placed_at = _moment(data, "placed_at", errors, path="placed_at", now=now)
    currency = data.get("currency")
    if not isinstance(currency, str) or currency.upper() not in MINOR_UNITS:
        errors.add("currency", "Unknown currency; use an ISO 4217 code such as EUR.")
        currency = None
    else:
        currency = currency.upper()
        if currency not in accepted_currencies:
            errors.add("currency", f"This program accepts {', '.join(accepted_currencies)}.")
    total = _money(data, "total", errors, path="total", currency=currency)
    shipping = _money(data, "shipping", errors, path="shipping", currency=currency, required=False)
    tax = _money(data, "tax", errors, path="tax", currency=currency, required=False)
    discount = _money(data, "discount", errors, path="discount", currency=currency, required=False)

    raw_lines = data.get("lines")
    lines: list[LineInput] = []
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.add("lines", "At least one line is required.")
    elif len(raw_lines) > MAX_LINES:
        errors.add("lines", f"At most {MAX_LINES} lines.")
    else:
        for index, raw in enumerate(raw_lines):
            path = f"lines.{index}"
            if not isinstance(raw, dict):
                errors.add(path, "Expected a JSON object.")
                continue
            sku = _identifier(raw, "sku", errors, path=f"{path}.sku")
            name = _text(raw, "name", errors, path=f"{path}.name", max_length=255)
            category = _text(raw, "category", errors, path=f"{path}.category", max_length=100)
            quantity = _quantity(raw, "quantity", errors, path=f"{path}.quantity")
            unit_price = _money(raw, "unit_price", errors, path=f"{path}.unit_price", currency=currency)
            lines.append(LineInput(sku, name, category, quantity, unit_price))
    errors.raise_if_any()

    merchandise = sum((line.amount for line in lines), Decimal(0))
    if discount > merchandise:
        errors.add("discount", "Must not exceed the sum of the lines.")
    expected = merchandise + shipping + tax - discount
    tolerance = quantum(currency) * len(lines)
    if abs(total - expected) > tolerance:
        errors.add(
            "total",
            f"Does not match the lines: lines + shipping + tax - discount = {expected}; "
            f"allowed difference {tolerance}.",
        )
    errors.raise_if_any()
    return OrderInput(order_id, member, placed_at, currency, total, shipping, tax, discount, tuple(lines))


def parse_refund(data) -> RefundInput:
    data = _require_object(data, "refund")
    errors = _Errors()
    refund_id = _identifier(data, "refund_id", errors)
    amount = None
    if data.get("amount") not in (None, ""):
        amount = _money(data, "amount", errors, path="amount", currency=None, positive=True)
    lines: list[RefundLineInput] = []
    raw_lines = data.get("lines")
    if raw_lines not in (None, []):
        if not isinstance(raw_lines, list):
            errors.add("lines", "Expected a list.")
        else:
            for index, raw in enumerate(raw_lines):
                if not isinstance(raw, dict):
                    errors.add(f"lines.{index}", "Expected a JSON object.")
                    continue
                sku = _identifier(raw, "sku", errors, path=f"lines.{index}.sku")
                quantity = _quantity(raw, "quantity", errors, path=f"lines.{index}.quantity")
                lines.append(RefundLineInput(sku, quantity))
    if amount is not None and lines:
        errors.add("amount", "Send an amount or lines, not both.")
    errors.raise_if_any()
    return RefundInput(refund_id, amount, tuple(lines))


def parse_event(data, *, now: datetime | None = None) -> EventInput:
    now = now or timezone.now()
    data = _require_object(data, "event")
    errors = _Errors()
    event_id = _identifier(data, "event_id", errors)
    member = _identifier(data, "member", errors)
    event_type = data.get("type")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        errors.add("type", "Must be lower-case letters, digits and underscores, starting with a letter.")
    elif event_type in ActivityType.values:
        errors.add("type", f"'{event_type}' is a built-in activity; use its own endpoint.")
    occurred_at = _moment(data, "occurred_at", errors, path="occurred_at", now=now)
    properties = data.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors.add("properties", "Expected a JSON object.")
    elif len(json.dumps(properties)) > 10_000:
        errors.add("properties", "At most 10,000 characters of JSON.")
    errors.raise_if_any()
    return EventInput(event_id, event_type, member, occurred_at, properties)


def parse_adjustment(data) -> tuple[int, str]:
    data = _require_object(data, "adjustment")
    errors = _Errors()
    points = data.get("points")
    if isinstance(points, bool) or not isinstance(points, int):
        errors.add("points", "Must be a whole number of points (negative to debit).")
    elif points == 0:
        errors.add("points", "Must not be zero.")
    elif abs(points) > 10_000_000:
        errors.add("points", "At most 10,000,000 points at once.")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        errors.add("reason", "A reason is required.")
    elif len(reason) > 500:
        errors.add("reason", "At most 500 characters.")
    errors.raise_if_any()
    return points, reason.strip()
