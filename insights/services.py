"""Computing the nightly snapshot: every metric, the cohorts, the RFM segments, the CLV models and
each member's predictions, written in one transaction. Re-running it for the same day gives the
same rows."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core import bulk
from insights import clv, metrics
from insights.models import MemberInsight, Snapshot, SnapshotRun
from rewards.program import current_program

PERIODS = (7, 30, 90, 365)
# The model needs some history to say anything: fewer buyers or repeat buyers than this, no fit.
MIN_CUSTOMERS, MIN_REPEATERS = 20, 5
# A fit that gives this share of repeat buyers a P(alive) below this is degenerate (see _predict).
DEGENERATE_P_ALIVE, DEGENERATE_SHARE = 0.01, 0.95
CENT = Decimal("0.01")


def day_end(day: date, tz) -> datetime:
    """The first instant after ``day`` in the program's time zone."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)


def _step(run: SnapshotRun | None, name: str) -> None:
    if run is not None:
        run.step, run.done_steps = name, run.done_steps + 1
        SnapshotRun.objects.filter(pk=run.pk).update(step=name, done_steps=run.done_steps)


def snapshot_compute(*, day: date | None = None, run: SnapshotRun | None = None) -> Snapshot:
    """Compute and store the snapshot as of the end of ``day`` (yesterday by default)."""
    program = current_program()
    tz = program.tz
    day = day or (timezone.now().astimezone(tz).date() - timedelta(days=1))
    end = day_end(day, tz)
    currency = program.settings.currency
    point_value = program.settings.point_value
    started = time.perf_counter()

    _step(run, "Overview metrics")
    overview = {str(length): {
        "current": metrics.period(currency=currency, start=end - timedelta(days=length), end=end,
                                  before_start=end - timedelta(days=2 * length), point_value=point_value),
        "previous": metrics.period(currency=currency, start=end - timedelta(days=2 * length),
                                   end=end - timedelta(days=length), before_start=end - timedelta(days=3 * length),
                                   point_value=point_value),
    } for length in PERIODS}
    overview["liability"] = metrics.liability(point_value=point_value)
    overview["monthly"] = metrics.monthly(currency=currency, end=end, tz=tz)

    _step(run, "RFM segments")
    rows = metrics.rfm(currency=currency, end=end, tz=tz)

    _step(run, "Cohorts")
    cohorts = metrics.cohort_table(metrics.cohort_counts(rows, end=end, tz=tz),
                                   current=metrics.month_number(end - timedelta(microseconds=1), tz),
                                   partial=metrics.month_unfinished(end, tz))

    _step(run, "Fitting the CLV models")
    history = _purchase_days(currency=currency, end=end, tz=tz)
    model, predictions = _predict(history, day=day)

    _step(run, "Program impact")
    impact = _impact(rows, currency=currency, end=end)

    _step(run, "Saving")
    with transaction.atomic():
        before = {member_id: (seen, alive, alive_before) for member_id, seen, alive, alive_before in
                  MemberInsight.objects.values_list("member_id", "day", "p_alive", "p_alive_before")}
        fields = ("member", "day", "orders", "revenue", "first_order_at", "last_order_at", "recency_days", "r", "f",
                  "m", "segment", "p_alive", "p_alive_before", "expected_90", "expected_365", "expected_value",
                  "predicted_clv")
        insights = []
        for row in rows:
            p_alive, exp90, exp365, value, clv_value = predictions.get(row.member_id, (None,) * 5)
            # The previous snapshot's P(alive), kept as it was when today's is computed again.
            seen, alive, alive_before = before.get(row.member_id, (None, None, None))
            previous = alive_before if seen == day else alive
            insights.append((
                row.member_id, day, row.orders, Decimal(row.revenue).quantize(CENT, rounding=ROUND_HALF_UP),
                row.first, row.last, (end - row.last).days, row.r, row.f, row.m,
                metrics.segment_of(row.r, row.f, row.m), p_alive, previous, exp90, exp365, value, clv_value))
        # Replaced as a whole (readers see the old rows until this commits); COPY or one INSERT per
        # 10,000 rows is an order of magnitude faster than an upsert through the ORM.
        MemberInsight.objects.all().delete()
        for start in range(0, len(insights), 10_000):
            bulk.insert(MemberInsight, fields, insights[start:start + 10_000], ids=False)
        total = sum((i[3] for i in insights), Decimal(0))
        segments = []
        found = {row["segment"]: row for row in MemberInsight.objects.values("segment").annotate(
            members=Count("pk"), revenue=Sum("revenue")).order_by()}
        for name in metrics.SEGMENTS:
            row = found.get(name, {"members": 0, "revenue": Decimal(0)})
            revenue = Decimal(row["revenue"] or 0).quantize(CENT, rounding=ROUND_HALF_UP)
            segments.append({"name": name, "members": row["members"], "revenue": str(revenue),
                             "revenue_share": float(round(100 * revenue / total, 1)) if total else 0.0})
        snapshot, _ = Snapshot.objects.update_or_create(day=day, defaults={
            "computed_at": timezone.now(), "seconds": round(time.perf_counter() - started, 2), "currency": currency,
            "overview": overview, "cohorts": cohorts, "segments": segments, "impact": impact, "model": model})
    if run is not None:
        SnapshotRun.objects.filter(pk=run.pk).update(finished_at=timezone.now(), step="Done",
                                                     done_steps=run.total_steps)
    return snapshot


def _purchase_days(*, currency: str, end: datetime, tz):
    """Per member: (member ids, repeat days x, t_x and T in weeks, mean value of repeat days), from
    the members' purchase days (several orders on one day are one purchase, as in the models'
    papers) summed up per member in the database: one row per member comes back, not one per day."""
    days = (metrics.purchases(currency=currency, end=end).annotate(day=TruncDate("placed_at", tzinfo=tz))
            .values("member_id", "day").annotate(value=Sum(metrics.VALUE)).order_by())
    sql, params = days.query.sql_with_params()
    query = ("SELECT member_id, COUNT(*) - 1, MIN(day), MAX(day), SUM(CASE WHEN day > first_day THEN value ELSE 0 END) "
             "FROM (SELECT member_id, day, value, MIN(day) OVER (PARTITION BY member_id) AS first_day "
             f"FROM ({sql}) AS days) AS member_days GROUP BY member_id ORDER BY member_id")
    with bulk.big_read() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    if not rows:
        return tuple(np.array([]) for _ in range(5))
    ids, repeats, firsts, lasts, repeat_values = zip(*rows, strict=True)
    x = np.array(repeats, dtype=float)
    # Days as PostgreSQL's dates or SQLite's "YYYY-MM-DD": numpy reads both.
    first, latest = np.array(firsts, dtype="datetime64[D]"), np.array(lasts, dtype="datetime64[D]")
    last_day = np.datetime64((end - timedelta(microseconds=1)).astimezone(tz).date(), "D")
    repeat_total = np.array([float(value) for value in repeat_values])
    mean = np.divide(repeat_total, x, out=np.zeros_like(x), where=x > 0)
    return (np.array(ids), x, (latest - first).astype(int) / 7, (last_day - first).astype(int) / 7, mean)


def _predict(history, *, day: date):
    ids, x, t_x, T, mean = history
    if len(ids) < MIN_CUSTOMERS or int((x > 0).sum()) < MIN_REPEATERS:
        return {"fitted": False, "reason": f"Needs at least {MIN_CUSTOMERS} customers and {MIN_REPEATERS} who "
                "bought twice."}, {}
    bgnbd = clv.fit_bgnbd(x, t_x, T)
    trouble = bgnbd.trouble()
    alive = clv.p_alive(bgnbd, x, t_x, T)
    repeaters = alive[x > 0]
    if not trouble and float((repeaters < DEGENERATE_P_ALIVE).mean()) > DEGENERATE_SHARE:
        # Every repeat buyer "gone": the at-risk list would be every good customer.
        trouble = "the fit gives almost every repeat buyer no chance of being alive"
    if trouble:
        return {"fitted": False, "reason": f"Not enough history to predict yet: {trouble} "
                f"({len(ids):,} customers, {int((x > 0).sum()):,} who bought twice)."}, {}
    exp90 = clv.expected_purchases(bgnbd, 90 / 7, x, t_x, T)
    exp365 = clv.expected_purchases(bgnbd, 365 / 7, x, t_x, T)
    gg = clv.fit_gamma_gamma(mean, x)
    value_trouble = gg.trouble() if gg is not None else "no customer bought again for money"
    # Without a trustworthy value model, no order value is made up: value and CLV stay empty.
    value = clv.expected_value(gg, mean, x, fallback=float("nan")) if not value_trouble else None
    predictions = {}
    for index, member_id in enumerate(ids.tolist()):
        amount = clv_value = None
        if value is not None and np.isfinite(value[index]):
            amount = Decimal(str(round(float(value[index]), 2)))
            clv_value = Decimal(str(round(float(exp365[index] * value[index]), 2)))
        predictions[member_id] = (round(float(alive[index]), 6), round(float(exp90[index]), 6),
                                  round(float(exp365[index]), 6), amount, clv_value)
    return {"fitted": True, "as_of": day.isoformat(), "time_unit": "week", "bgnbd": bgnbd.as_dict(),
            "gamma_gamma": gg.as_dict() if not value_trouble else None,
            "value_reason": f"No predicted value: {value_trouble}." if value_trouble else "",
            "mean_p_alive": round(float(alive.mean()), 4),
            "expected_orders_365": round(float(exp365.sum()), 1)}, predictions


def _impact(rows, *, currency: str, end: datetime) -> dict:
    """Engaged members (redeemed, reviewed or answered a survey) against the others who bought:
    average order value, orders per member, 90-day retention. A comparison, not a proof of cause."""
    engaged = metrics.engaged_member_ids(end=end)
    before, again = metrics.retained_ids(currency=currency, end=end)
    groups = {}
    for name, chosen in (("engaged", [r for r in rows if r.member_id in engaged]),
                         ("others", [r for r in rows if r.member_id not in engaged])):
        orders = sum(r.orders for r in chosen)
        revenue = sum((Decimal(r.revenue) for r in chosen), Decimal(0))
        ids = {r.member_id for r in chosen}
        base = before & ids
        groups[name] = {
            "members": len(chosen), "orders": orders, "revenue": str(revenue.quantize(CENT)),
            "average_order_value": str((revenue / orders).quantize(CENT, rounding=ROUND_HALF_UP)) if orders else None,
            "orders_per_member": round(orders / len(chosen), 2) if chosen else None,
            "retention_rate": round(100 * len(again & base) / len(base), 1) if base else None,
        }
    return groups


def snapshot_run_start(*, day: date | None = None) -> SnapshotRun:
    """Staff asked to recompute now: a run they can watch, computed by a task."""
    from insights.tasks import compute_snapshot

    program = current_program()
    day = day or (timezone.now().astimezone(program.tz).date() - timedelta(days=1))
    run = SnapshotRun.objects.create(day=day)
    transaction.on_commit(lambda: compute_snapshot.delay(run_id=run.pk))
    return run
