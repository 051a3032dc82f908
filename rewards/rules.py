"""How earning rules turn an activity into points.

Rules are rows (``EarningRule``); each kind is a small class here. For one activity:

1. **Selection.** A rule matches when it is active, for this activity type, within its dates (the
   activity's time), for this partner (if it names partners), and, for orders, in the order's
   currency and at or above its minimum order value. Matching rules are taken in priority order
   (highest first, then oldest). Base rules (per-currency and fixed) and multipliers are two
   separate lists: in each, a rule that does *not* stack stops the lower-priority rules of its list.
2. **Base points.** A per-currency rule gives ``points_per_unit`` x the value of each matching
   order line (the line's price x quantity, less its share of the order discount, less anything
   refunded). A fixed rule gives its points once per activity.
3. **Multipliers** multiply the base points of the lines they match (a multiplier limited to
   categories or SKUs leaves fixed points alone); several multipliers multiply together.
4. **Rounding** happens once per base rule, on the sum over lines, with that rule's rounding. Each
   multiplier is credited with what it added: the rounded total after it minus the rounded total
   before it, so the parts always add up to the whole.
5. **Caps** limit what one rule gives one member per day and per month (program time zone).

A refund re-runs steps 2 to 4 with the rules *as they were selected on the order's day* (kept on
the order) on the order's remaining value; a rule gives at most what it gave before. The points to
reverse are the difference, so refunding an order bit by bit reverses exactly what it earned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.utils.dateparse import parse_datetime

BASE_KINDS = ("per_currency", "fixed")


@dataclass(frozen=True)
class RuleSpec:
    id: int | None
    name: str
    kind: str
    activity_type: str
    points: int | None = None
    points_per_unit: Decimal | None = None
    currency: str = ""
    rounding: str = "down"
    multiplier: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_order_value: Decimal | None = None
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    partner_ids: tuple[int, ...] = ()
    tier_ids: tuple[int, ...] = ()
    cap_per_day: int | None = None
    cap_per_month: int | None = None
    priority: int = 100
    stacks: bool = True
    members_only: bool = False  # only for members given the rule (RuleMember: a campaign's offer)

    @property
    def family(self) -> str:
        return "base" if self.kind in BASE_KINDS else "multiplier"

    @property
    def has_line_filter(self) -> bool:
        return bool(self.categories or self.skus)

    def line_matches(self, line: LineValue) -> bool:
        if self.categories and line.category not in self.categories:
            return False
        return not (self.skus and line.sku not in self.skus)

    def to_json(self) -> dict:
        return dict(_spec_json(self))

    def _to_json(self) -> dict:
        data = asdict(self)
        for key in ("points_per_unit", "multiplier", "min_order_value"):
            data[key] = None if data[key] is None else str(data[key])
        for key in ("starts_at", "ends_at"):
            data[key] = None if data[key] is None else data[key].isoformat()
        for key in ("categories", "skus", "partner_ids", "tier_ids"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: dict) -> RuleSpec:
        data = dict(data)
        for key in ("points_per_unit", "multiplier", "min_order_value"):
            data[key] = None if data.get(key) is None else Decimal(data[key])
        for key in ("starts_at", "ends_at"):
            data[key] = None if data.get(key) is None else parse_datetime(data[key])
        for key in ("categories", "skus", "partner_ids", "tier_ids"):
            data[key] = tuple(data.get(key) or ())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@lru_cache(maxsize=512)
def _spec_json(spec: RuleSpec) -> dict:
    # Specs are immutable and shared by every order a batch evaluates: serialise each once.
    return spec._to_json()


@lru_cache(maxsize=512)
def spec_json_text(spec: RuleSpec) -> str:
    return json.dumps(_spec_json(spec), separators=(",", ":"))


def applied_json_text(results: list[RulePoints]) -> str:
    """``[{"rule": spec, "points": n}, ...]`` as JSON text, as kept on an order for its refunds."""
    return "[" + ",".join(f'{{"rule":{spec_json_text(r.spec)},"points":{r.points}}}' for r in results) + "]"


@dataclass(frozen=True)
class LineValue:
    sku: str
    category: str
    value: Decimal


@dataclass
class Occasion:
    """What the rules look at: one activity, with its order lines when it is an order."""

    activity_type: str
    at: datetime
    partner_id: int | None = None
    tier_id: int | None = None
    rule_ids: frozenset[int] = frozenset()  # the members-only rules the member was given
    currency: str | None = None
    lines: list[LineValue] = field(default_factory=list)

    @property
    def order_value(self) -> Decimal:
        return sum((line.value for line in self.lines), Decimal(0))


@dataclass
class RulePoints:
    spec: RuleSpec
    points: int


# --- One small class per kind --------------------------------------------------------------------

class PerCurrency:
    def matches(self, spec: RuleSpec, occasion: Occasion) -> bool:
        return occasion.currency == spec.currency

    def base_values(self, spec: RuleSpec, occasion: Occasion) -> list[tuple[LineValue | None, Decimal]]:
        rate = spec.points_per_unit or Decimal(0)
        return [(line, line.value * rate) for line in occasion.lines if spec.line_matches(line)]


class Fixed:
    def matches(self, spec: RuleSpec, occasion: Occasion) -> bool:
        return True

    def base_values(self, spec: RuleSpec, occasion: Occasion) -> list[tuple[LineValue | None, Decimal]]:
        return [(None, Decimal(spec.points or 0))]


class Multiplier:
    def matches(self, spec: RuleSpec, occasion: Occasion) -> bool:
        return not spec.has_line_filter or any(spec.line_matches(line) for line in occasion.lines)

    def factor(self, spec: RuleSpec, line: LineValue | None) -> Decimal:
        if spec.has_line_filter and (line is None or not spec.line_matches(line)):
            return Decimal(1)
        return spec.multiplier or Decimal(1)


KINDS = {"per_currency": PerCurrency(), "fixed": Fixed(), "multiplier": Multiplier()}


def round_points(value: Decimal, rounding: str) -> int:
    mode = ROUND_HALF_UP if rounding == "nearest" else ROUND_DOWN
    return int(value.quantize(Decimal(1), rounding=mode))


def _matches(spec: RuleSpec, occasion: Occasion) -> bool:
    if spec.activity_type != occasion.activity_type:
        return False
    if spec.starts_at and occasion.at < spec.starts_at:
        return False
    if spec.ends_at and occasion.at >= spec.ends_at:
        return False
    if spec.partner_ids and occasion.partner_id not in spec.partner_ids:
        return False
    if spec.tier_ids and occasion.tier_id not in spec.tier_ids:
        return False
    if spec.members_only and spec.id not in occasion.rule_ids:
        return False
    if not _value_qualifies(spec, occasion):
        return False
    return KINDS[spec.kind].matches(spec, occasion)


def _value_qualifies(spec: RuleSpec, occasion: Occasion) -> bool:
    return spec.min_order_value is None or occasion.order_value >= spec.min_order_value


_ORDERED: dict[int, tuple] = {}


def _ordered(specs) -> tuple[list[RuleSpec], list[RuleSpec]]:
    """Base rules and multipliers, each by priority: sorted once per program (``specs`` is the
    program's tuple, kept in the cache so that its id is not reused), not once per order."""
    found = _ORDERED.get(id(specs))
    if found is None or found[0] is not specs:
        if len(_ORDERED) > 8:
            _ORDERED.clear()
        found = _ORDERED[id(specs)] = (specs, *(
            sorted((s for s in specs if s.family == family), key=lambda s: (-s.priority, s.id or 0))
            for family in ("base", "multiplier")
        ))
    return found[1], found[2]


def select(specs: tuple[RuleSpec, ...], occasion: Occasion) -> list[RuleSpec]:
    """The rules that apply to this occasion, after priorities and stacking."""
    chosen: list[RuleSpec] = []
    for ordered in _ordered(specs):
        for spec in ordered:
            if _matches(spec, occasion):
                chosen.append(spec)
                if not spec.stacks:
                    break
    return chosen


def evaluate(selected: list[RuleSpec], occasion: Occasion) -> list[RulePoints]:
    """Points per rule for rules already selected; a rule whose minimum value is no longer met gives 0."""
    live = [s for s in selected if _value_qualifies(s, occasion)]
    bases = [s for s in live if s.family == "base"]
    multipliers = [s for s in live if s.family == "multiplier"]
    # Keyed by identity: hashing a frozen dataclass hashes every field, and this runs per order.
    totals: dict[int, int] = {id(s): 0 for s in selected}
    for base in bases:
        parts = KINDS[base.kind].base_values(base, occasion)
        previous = round_points(sum((value for _, value in parts), Decimal(0)), base.rounding)
        totals[id(base)] += previous
        factors = [Decimal(1)] * len(parts)
        for multiplier in multipliers:
            factors = [
                f * KINDS["multiplier"].factor(multiplier, line) for f, (line, _) in zip(factors, parts, strict=True)
            ]
            current = round_points(
                sum((value * f for f, (_, value) in zip(factors, parts, strict=True)), Decimal(0)), base.rounding
            )
            totals[id(multiplier)] += current - previous
            previous = current
    return [RulePoints(spec, totals[id(spec)]) for spec in selected]


def apply_caps(results: list[RulePoints], *, used_today: dict, used_this_month: dict) -> list[RulePoints]:
    """Limit each capped rule to what is left of its daily and monthly cap for this member."""
    capped = []
    for result in results:
        points, spec = result.points, result.spec
        if spec.cap_per_day is not None:
            points = min(points, max(0, spec.cap_per_day - used_today.get(spec.id, 0)))
        if spec.cap_per_month is not None:
            points = min(points, max(0, spec.cap_per_month - used_this_month.get(spec.id, 0)))
        capped.append(RulePoints(spec, max(points, 0)))
    return capped


def reevaluate(applied: list[dict], occasion: Occasion) -> list[RulePoints]:
    """Points per rule on the order's remaining value, with the rules kept from the order's day,
    never more than each rule gave at first (``applied`` holds ``{"rule": spec json, "points": n}``)."""
    specs = [RuleSpec.from_json(item["rule"]) for item in applied]
    before = [item["points"] for item in applied]
    fresh = evaluate(specs, occasion)
    return [RulePoints(r.spec, min(r.points, cap)) for r, cap in zip(fresh, before, strict=True)]


def conflicts(spec: RuleSpec, others: list[RuleSpec]) -> list[str]:
    """Why ``spec`` contradicts an active rule: two rules whose order would be a coin toss."""
    problems = []
    for other in others:
        if other.id == spec.id or other.family != spec.family or other.activity_type != spec.activity_type:
            continue
        if other.priority != spec.priority or (spec.stacks and other.stacks):
            continue
        if not _overlap(spec, other):
            continue
        if spec.partner_ids and other.partner_ids and not set(spec.partner_ids) & set(other.partner_ids):
            continue
        if spec.tier_ids and other.tier_ids and not set(spec.tier_ids) & set(other.tier_ids):
            continue
        problems.append(
            f"'{other.name}' has the same priority ({spec.priority}) and dates that overlap, and one of the two "
            "does not stack, so which one applies would be arbitrary. Give them different priorities."
        )
    return problems


def _overlap(a: RuleSpec, b: RuleSpec) -> bool:
    """Whether the date windows [starts_at, ends_at) meet; a missing end is open."""
    start = max((t for t in (a.starts_at, b.starts_at) if t), default=None)
    end = min((t for t in (a.ends_at, b.ends_at) if t), default=None)
    return start is None or end is None or start < end


def explain(specs: list[RuleSpec], occasion: Occasion) -> list[tuple[RuleSpec, str | None]]:
    """For staff: each rule for this activity type and why it does not apply (None when it does)."""
    chosen = select(specs, occasion)
    out = []
    for spec in sorted(specs, key=lambda s: (s.family, -s.priority, s.id or 0)):
        if spec.activity_type != occasion.activity_type:
            continue
        if spec in chosen:
            out.append((spec, None))
        elif spec.starts_at and occasion.at < spec.starts_at or spec.ends_at and occasion.at >= spec.ends_at:
            out.append((spec, "outside its dates"))
        elif spec.partner_ids and occasion.partner_id not in spec.partner_ids:
            out.append((spec, "limited to other partners"))
        elif spec.tier_ids and occasion.tier_id not in spec.tier_ids:
            out.append((spec, "limited to other tiers"))
        elif spec.members_only and spec.id not in occasion.rule_ids:
            out.append((spec, "only for the members a campaign gave it to"))
        elif not _value_qualifies(spec, occasion):
            out.append((spec, f"order value below {spec.min_order_value}"))
        elif not KINDS[spec.kind].matches(spec, occasion):
            out.append((spec, "no matching currency or lines"))
        else:
            out.append((spec, "stopped by a higher-priority rule that does not stack"))
    return out


def order_line_values(order, lines) -> list[LineValue]:
    """Each line's merchandise value for earning: price x quantity, less its share of the order's
    discount and less what was refunded on it (``order`` has ``discount``; each line ``unit_price``,
    ``quantity``, ``sku``, ``category`` and perhaps ``refunded_value``)."""
    merchandise = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    keep = (merchandise - order.discount) / merchandise if merchandise else Decimal(0)
    values = []
    for line in lines:
        value = line.unit_price * line.quantity * keep - getattr(line, "refunded_value", Decimal(0))
        values.append(LineValue(sku=line.sku, category=line.category, value=max(value, Decimal(0))))
    return values
