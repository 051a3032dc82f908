"""The metrics, computed in the database: one grouped pass over the orders per period, window
functions for the RFM quintiles, one pass over the orders for the cohort table. Definitions:
docs/metrics.md.

"A purchase" is an order in the program's currency that was not refunded in full; its value is
its total less what was refunded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Aggregate,
    BigIntegerField,
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Rank, Round, TruncMonth

from accounts.models import Member
from community.models import ModerationStatus, Review
from core import bulk
from feedback.models import ResponseStatus, SurveyResponse
from rewards.models import EntryKind, LedgerEntry, Order, OrderStatus

VALUE = ExpressionWrapper(F("total") - F("refunded_amount"), output_field=DecimalField(max_digits=18, decimal_places=3))
# The value in thousandths (money has three decimal places) as a whole number, exact: summed over a
# million orders, bigints cost a quarter less than numerics. Rounded because SQLite holds decimals
# as floats.
THOUSANDTHS = Cast(Round(VALUE * 1000), BigIntegerField())
CENT = Decimal("0.01")


def purchases(*, currency: str, end: datetime, start: datetime | None = None):
    orders = Order.objects.filter(currency=currency, placed_at__lt=end).exclude(status=OrderStatus.REFUNDED)
    return orders if start is None else orders.filter(placed_at__gte=start)


def _pct(part, whole) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _money(value) -> str | None:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)) if value is not None else None


def period(*, currency: str, start: datetime, end: datetime, before_start: datetime, point_value: Decimal) -> dict:
    """Every overview figure for [start, end); ``before_start`` opens the previous period of the
    same length, against which retention is measured."""
    # One pass over both periods' orders, grouped by member, instead of one query per figure.
    now = Q(placed_at__gte=start)
    totals = (purchases(currency=currency, start=before_start, end=end).values("member_id")
              .annotate(bought=Count("pk", filter=now), value=Sum(VALUE, filter=now), earlier=Count("pk", filter=~now))
              .aggregate(orders=Sum("bought"), revenue=Sum("value"), active=Count("member_id", filter=Q(bought__gt=0)),
                         repeaters=Count("member_id", filter=Q(bought__gte=2)),
                         before=Count("member_id", filter=Q(earlier__gt=0)),
                         retained=Count("member_id", filter=Q(earlier__gt=0, bought__gt=0))))
    orders, active = totals["orders"] or 0, totals["active"]
    revenue = totals["revenue"] or Decimal(0)
    repeaters, before_count, retained = totals["repeaters"], totals["before"], totals["retained"]
    retention = _pct(retained, before_count)
    churn = round(100 - retention, 1) if retention is not None else None
    aov = revenue / orders if orders else None
    frequency = orders / active if active else None
    # From the unrounded churn (rounded only for display): at 1% churn, 0.05 points of rounding
    # would move the lifespan, and the CLV, by 5%.
    churned = Decimal(before_count - retained) / Decimal(before_count) if before_count else None
    lifespan = 1 / churned if churned else None  # in periods: 1 / churn rate
    clv = aov * Decimal(frequency) * lifespan if aov is not None and frequency and lifespan else None
    members = Member.objects.filter(created_at__lt=end)
    member_count = members.count()
    entries = LedgerEntry.objects.filter(effective_at__gte=start, effective_at__lt=end)
    flows = entries.aggregate(
        issued=Sum(F("available_delta") + F("pending_delta") - F("owed_delta"),
                   filter=Q(kind__in=[EntryKind.EARN, EntryKind.REVERSE])),
        redeemed=Sum("available_delta", filter=Q(kind=EntryKind.REDEEM)),
        expired=Sum("available_delta", filter=Q(kind=EntryKind.EXPIRE)),
        earners=Count("member_id", distinct=True, filter=Q(kind=EntryKind.EARN)),
        redeemers=Count("member_id", distinct=True, filter=Q(kind=EntryKind.REDEEM)),
    )
    ever = LedgerEntry.objects.filter(effective_at__lt=end).aggregate(
        issued=Sum(F("available_delta") + F("pending_delta") - F("owed_delta"),
                   filter=Q(kind__in=[EntryKind.EARN, EntryKind.REVERSE])),
        expired=Sum("available_delta", filter=Q(kind=EntryKind.EXPIRE)))
    nps = SurveyResponse.objects.filter(status=ResponseStatus.COMPLETED, nps__isnull=False, completed_at__gte=start,
                                        completed_at__lt=end).aggregate(
        n=Count("pk"), promoters=Count("pk", filter=Q(nps__gte=9)), detractors=Count("pk", filter=Q(nps__lte=6)))
    return {
        "start": start.isoformat(), "end": end.isoformat(),
        "active_members": active,
        "new_members": members.filter(created_at__gte=start).count(),
        "members": member_count,
        "retention_rate": retention, "churn_rate": churn,
        "repeat_purchase_rate": _pct(repeaters, active),
        "orders": orders, "revenue": _money(revenue),
        "average_order_value": _money(aov),
        "purchase_frequency": round(frequency, 3) if frequency is not None else None,
        "lifespan_periods": round(float(lifespan), 2) if lifespan is not None else None,
        "historic_clv": _money(clv),
        "earned_share": _pct(flows["earners"], member_count), "redeemed_share": _pct(flows["redeemers"], member_count),
        "points_issued": int(flows["issued"] or 0), "points_redeemed": -int(flows["redeemed"] or 0),
        "points_expired": -int(flows["expired"] or 0),
        "breakage_rate": _pct(-int(ever["expired"] or 0), int(ever["issued"] or 0)),
        "nps": round(100 * (nps["promoters"] - nps["detractors"]) / nps["n"]) if nps["n"] else None,
        "nps_responses": nps["n"],
        "point_value": str(point_value),
    }


def liability(*, point_value: Decimal) -> dict:
    """Outstanding points (available and pending, less owed) now, and their value."""
    row = Member.objects.aggregate(available=Sum("points_available"), pending=Sum("points_pending"),
                                   owed=Sum("points_owed"))
    outstanding = (row["available"] or 0) + (row["pending"] or 0) - (row["owed"] or 0)
    return {"outstanding_points": int(outstanding), "liability": _money(Decimal(outstanding) * point_value)}


def month_unfinished(end: datetime, tz) -> bool:
    """Whether ``end`` falls inside a month (its figures so far are not the month's)."""
    local = end.astimezone(tz)
    return (local.day, local.hour, local.minute, local.second, local.microsecond) != (1, 0, 0, 0, 0)


def last_months(*, end: datetime, tz, count: int) -> tuple[int, list[datetime]]:
    """The number of the first of the ``count`` calendar months up to ``end`` (the month it falls
    in the last), and each one's first local instant."""
    current = month_number(end - timedelta(microseconds=1), tz)
    first = current - count + 1
    return first, [datetime(n // 12, n % 12 + 1, 1, tzinfo=tz) for n in range(first, current + 1)]


def monthly(*, currency: str, end: datetime, tz, months: int = 12) -> list[dict]:
    """Revenue, orders and active members per calendar month, the last ``months`` up to ``end``;
    the month ``end`` falls in is marked ``partial``."""
    first, starts = last_months(end=end, tz=tz, count=months)
    current = first + months - 1
    found = {_month_of(row["month"]): row for row in purchases(currency=currency, start=starts[0], end=end)
             .annotate(month=TruncMonth("placed_at", tzinfo=tz)).values("month")
             .annotate(orders=Count("pk"), revenue=Sum(VALUE), active=Count("member_id", distinct=True)).order_by()}
    out = []
    for number in range(first, current + 1):
        row = found.get(number, {})
        out.append({"month": f"{number // 12}-{number % 12 + 1:02d}", "orders": row.get("orders", 0),
                    "revenue": _money(row.get("revenue") or 0), "active_members": row.get("active", 0),
                    "partial": number == current and month_unfinished(end, tz)})
    return out


# --- Cohorts ---------------------------------------------------------------------------------------

COHORTS = 12  # the page shows the cohorts of the last twelve months


class _MonthsBought(Aggregate):
    """The months a member bought in, as bits of a whole number: bit k for the k-th of the cohort
    months (``last_months``), bit 0 for any month before them. One expression inside the RFM
    pass, so the cohorts cost no pass over the orders of their own."""
    function = "BIT_OR"
    template = "%(function)s(CAST(1 AS bigint) << %(expressions)s)"
    output_field = BigIntegerField()

    def __init__(self, starts: list[datetime]):
        # Newest month first: most orders are recent, and the first true WHEN ends the CASE.
        number = Case(*[When(placed_at__gte=start, then=Value(k)) for k, start in reversed(list(enumerate(starts, 1)))],
                      default=Value(0), output_field=IntegerField())
        super().__init__(number)

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite has no BIT_OR: the distinct powers of two, summed, are the same bits.
        return self.as_sql(compiler, connection, function="SUM", template="%(function)s(DISTINCT 1 << %(expressions)s)",
                           **extra)


def cohort_counts(rows: list[RfmRow], *, end: datetime, tz) -> list[tuple[int, int, int]]:
    """(cohort month, months after, members who bought that month) for the cohorts of the last
    ``COHORTS`` months: members grouped by the month (as year * 12 + month - 1) of their first
    purchase, from the months each bought in (``RfmRow.months``). Members who bought before those
    months belong to older cohorts and are left out; members with the same months count once per
    pattern (at most 2 ** 12 of them), not once each."""
    first, _ = last_months(end=end, tz=tz, count=COHORTS)
    patterns = Counter(row.months for row in rows if not row.months & 1)
    counts: Counter[tuple[int, int]] = Counter()
    for bits, members in patterns.items():
        bought = [k for k in range(1, COHORTS + 1) if bits >> k & 1]
        for k in bought:
            counts[(first + bought[0] - 1, k - bought[0])] += members
    return sorted((c, k, n) for (c, k), n in counts.items())


def _month_of(first_instant) -> int:
    """The month number of a month's first local instant as the ORM gives it (its text begins
    "YYYY-MM" on either database)."""
    text = str(first_instant)
    return int(text[:4]) * 12 + int(text[5:7]) - 1


def month_number(at: datetime, tz) -> int:
    local = at.astimezone(tz)
    return local.year * 12 + local.month - 1


def cohort_table(counts: list[tuple[int, int, int]], *, current: int, last: int = COHORTS,
                 partial: bool = False) -> dict:
    """The heatmap: the last ``last`` cohorts up to month ``current``, each with its size and the
    share of it buying in month 0, 1, 2, ... after its first purchase (month 0 is always 100%).
    ``partial``: month ``current`` is not over (every row's last share is so far)."""
    found = {(c, k): n for c, k, n in counts}
    cohorts = sorted({c for c, _, _ in counts})[-last:]
    rows = []
    for c in cohorts:
        size = found[(c, 0)]
        rows.append({"cohort": f"{c // 12}-{c % 12 + 1:02d}", "size": size,
                     "shares": [round(100 * found.get((c, k), 0) / size, 1) for k in range(current - c + 1)]})
    return {"rows": rows, "months": max((len(r["shares"]) for r in rows), default=0), "partial": partial}


# --- RFM ------------------------------------------------------------------------------------------

SEGMENTS = ["Champions", "Loyal", "Potential loyalists", "New", "At risk", "Can't lose them", "Hibernating", "Lost"]


def segment_of(r: int, f: int, m: int) -> str:
    """First match wins; every (R, F, M) lands in exactly one segment (docs/metrics.md has the grid)."""
    if r >= 4 and f >= 4 and m >= 4:
        return "Champions"
    if r >= 3 and f >= 4:
        return "Loyal"
    if r <= 2 and f >= 4 and m >= 4:
        return "Can't lose them"
    if r <= 2 and f >= 3:
        return "At risk"
    if r >= 4 and f == 1:
        return "New"
    if r >= 3 and f >= 2:
        return "Potential loyalists"
    if r >= 2:
        return "Hibernating"
    return "Lost"


@dataclass
class RfmRow:
    member_id: int
    orders: int
    revenue: Decimal
    first: datetime
    last: datetime
    r: int
    f: int
    m: int
    months: int  # the months of the last COHORTS the member bought in, as bits (``_MonthsBought``)


def rfm(*, currency: str, end: datetime, tz) -> list[RfmRow]:
    """Every member with a purchase before ``end``: orders, revenue, first and last purchase, the
    months of the last ``COHORTS`` they bought in (in ``tz``, the program's), and their R, F, M
    scores 1-5: the fifth of customers their rank falls in, 1 + 5 (rank - 1) // n, where tied
    customers share the lowest rank (RANK(), not NTILE: NTILE splits ties by member id, so two
    customers with the same history could land in different segments). With distinct values each
    score holds a fifth of the customers, to within one."""
    def rank(field):
        return Window(Rank(), order_by=F(field).asc())

    _, starts = last_months(end=end, tz=tz, count=COHORTS)
    rows = (purchases(currency=currency, end=end).values("member_id")
            .annotate(orders=Count("*"), revenue=Sum(THOUSANDTHS), first=Min("placed_at"), last=Max("placed_at"),
                      months=_MonthsBought(starts))
            .annotate(r=rank("last"), f=rank("orders"), m=rank("revenue"))
            .order_by("member_id").values_list("member_id", "orders", "revenue", "first", "last", "r", "f", "m",
                                               "months"))
    found = bulk.read_rows(rows)
    n = len(found)
    return [RfmRow(member_id, orders, Decimal(revenue).scaleb(-3), first, last, 1 + 5 * (r - 1) // n,
                   1 + 5 * (f - 1) // n, 1 + 5 * (m - 1) // n, months)
            for member_id, orders, revenue, first, last, r, f, m, months in found]


# --- Program impact -------------------------------------------------------------------------------

def engaged_member_ids(*, end: datetime) -> set[int]:
    """Members who redeemed, had a review published or answered a survey, before ``end``."""
    redeemed = LedgerEntry.objects.filter(kind=EntryKind.REDEEM, effective_at__lt=end).values_list("member_id",
                                                                                                  flat=True)
    reviewed = Review.objects.filter(status=ModerationStatus.APPROVED, published_at__lt=end).values_list(
        "member_id", flat=True)
    answered = SurveyResponse.objects.filter(status=ResponseStatus.COMPLETED, completed_at__lt=end).values_list(
        "member_id", flat=True)
    return set(redeemed.distinct()) | set(reviewed) | set(answered)


def retained_ids(*, currency: str, end: datetime, days: int = 90) -> tuple[set[int], set[int]]:
    """(members who bought in the 90 days before the last 90, those of them who bought again in the
    last 90)."""
    start = end - timedelta(days=days)
    earlier = purchases(currency=currency, start=start - timedelta(days=days), end=start).values("member_id")
    before = set(earlier.values_list("member_id", flat=True).distinct())
    # A subquery, not a list of ids: a big store's list would pass PostgreSQL's parameter limit.
    again = set(purchases(currency=currency, start=start, end=end).filter(member_id__in=earlier)
                .values_list("member_id", flat=True).distinct())
    return before, again
