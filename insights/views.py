"""Staff pages of insights. Each reads the latest snapshot (one query) and, for member lists, one
page of members: a constant number of queries however many orders and members there are. They
read from the replica when there is one (``core.replica``): the snapshot is a night old anyway."""

import csv
import io
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from core import l10n
from core.charts import bar_chart, line_chart
from core.replica import replica_reads
from insights import metrics, services
from insights.models import MemberInsight, Snapshot, SnapshotRun

# Labels made at import, read in each page's language.
PERIODS = {"7": gettext_lazy("7 days"), "30": gettext_lazy("30 days"), "90": gettext_lazy("90 days"),
           "365": gettext_lazy("12 months")}
# (key, label, unit, higher is better)
FIGURES = [
    ("active_members", gettext_lazy("Active members"), "", True),
    ("new_members", gettext_lazy("New members"), "", True),
    ("retention_rate", gettext_lazy("Retention rate"), "%", True),
    ("churn_rate", gettext_lazy("Churn rate"), "%", False),
    ("repeat_purchase_rate", gettext_lazy("Repeat purchase rate"), "%", True),
    ("orders", gettext_lazy("Orders"), "", True),
    ("revenue", gettext_lazy("Revenue from members"), "money", True),
    ("average_order_value", gettext_lazy("Average order value"), "money", True),
    ("purchase_frequency", gettext_lazy("Purchase frequency"), "", True),
    ("lifespan_periods", gettext_lazy("Average lifespan (periods of this length)"), "", True),
    ("historic_clv", gettext_lazy("Historic CLV"), "money", True),
    ("earned_share", gettext_lazy("Members who earned"), "%", True),
    ("redeemed_share", gettext_lazy("Members who redeemed"), "%", True),
    ("points_issued", gettext_lazy("Points issued"), "", None),
    ("points_redeemed", gettext_lazy("Points redeemed"), "", None),
    ("points_expired", gettext_lazy("Points expired"), "", None),
    ("breakage_rate", gettext_lazy("Breakage"), "%", None),
    ("nps", "NPS", "", True),
]


def shown(value, unit: str, *, signed: bool = False) -> str:
    """A figure as the page shows it: counts whole, money with cents, shares with one decimal,
    thousands separated; a change signed, in percentage points for shares."""
    if value is None:
        return "-"
    number = Decimal(str(value))
    if unit == "money":
        text = l10n.decimal(number, 2)
    elif unit == "%":
        text = l10n.decimal(number, 1) + (" " + _("pts") if signed else "%")
    elif number == number.to_integral_value():
        text = l10n.number(number)
    else:
        text = l10n.decimal(number, 2)
    return f"+{text}" if signed and number > 0 else text


def _render(request, template: str, context: dict):
    """The admin's look and header (the pages are linked from it)."""
    return render(request, template, {**admin.site.each_context(request), **context})


def _latest():
    return Snapshot.objects.order_by("-day").first()


def _csv(name: str, header: list[str], rows) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@staff_member_required
def overview(request):
    # The recomputation staff may just have started is read where it was written; the rest may
    # come from the replica.
    run = SnapshotRun.objects.order_by("-started_at").first()
    with replica_reads():
        return _overview(request, run)


def _overview(request, run):
    snapshot = _latest()
    period = request.GET.get("period") if request.GET.get("period") in PERIODS else "30"
    context = {"snapshot": snapshot, "period": period, "periods": PERIODS, "run": run,
               "running": run is not None and run.finished_at is None}
    if snapshot is not None:
        data = snapshot.overview[period]
        rows = []
        for key, label, unit, higher in FIGURES:
            now, before = data["current"].get(key), data["previous"].get(key)
            change = None
            if now is not None and before is not None:
                change = Decimal(str(now)) - Decimal(str(before))
            rows.append({"key": key, "label": label, "unit": unit, "now": now, "before": before,
                         "shown": (shown(now, unit), shown(before, unit), shown(change, unit, signed=True)),
                         "good": None if higher is None or not change else (change > 0) == higher})
        if request.GET.get("format") == "csv":  # data: English names, machine numbers
            with translation.override(settings.LANGUAGE_CODE):
                return _csv(f"overview-{snapshot.day}-{period}d", ["metric", "this period", "previous period"],
                            [(str(r["label"]), r["now"], r["before"]) for r in rows])
        monthly = snapshot.overview.get("monthly", [])
        finished = [m for m in monthly if not m.get("partial")]  # a month so far is no collapse: not plotted
        context.update(rows=rows, current=data["current"], previous=data["previous"], monthly=monthly,
                       liability=snapshot.overview["liability"], model=snapshot.model,
                       outstanding=shown(snapshot.overview["liability"]["outstanding_points"], ""),
                       liability_shown=shown(snapshot.overview["liability"]["liability"], "money"),
                       revenue_chart=bar_chart([(m["month"][2:], float(m["revenue"])) for m in finished],
                                               title=_("Revenue per month")),
                       active_chart=line_chart([(m["month"][2:], m["active_members"]) for m in finished], low=0,
                                               title=_("Active members per month")))
    return _render(request, "insights/overview.html", context)


@staff_member_required
@require_POST
def recompute(request):
    services.snapshot_run_start()
    messages.success(request, _("Recomputing; this page shows the progress."))
    return redirect("insights:overview")


@staff_member_required
@replica_reads()
def cohorts(request):
    snapshot = _latest()
    if snapshot is not None and request.GET.get("format") == "csv":
        months = snapshot.cohorts["months"]
        return _csv(f"cohorts-{snapshot.day}", ["cohort", "members", *[f"month {k}" for k in range(months)]],
                    [[row["cohort"], row["size"], *row["shares"]] for row in snapshot.cohorts["rows"]])
    partial = bool(snapshot and snapshot.cohorts.get("partial"))
    # Shaded up to 0.6: dark text stays readable on the darkest cell (4.5:1).
    rows = [{**row, "cells": [(share, f"{0.6 * share / 100:.2f}", partial and k == len(row["shares"]) - 1)
                              for k, share in enumerate(row["shares"])]}
            for row in (snapshot.cohorts["rows"] if snapshot else [])]
    return _render(request, "insights/cohorts.html", {
        "snapshot": snapshot, "rows": rows, "months": range(snapshot.cohorts["months"]) if snapshot else [],
        "partial": partial,
    })


@staff_member_required
@replica_reads()
def segments(request):
    snapshot = _latest()
    if snapshot is not None and request.GET.get("format") == "csv":
        return _csv(f"segments-{snapshot.day}", ["segment", "members", "revenue", "revenue share %"],
                    [(s["name"], s["members"], s["revenue"], s["revenue_share"]) for s in snapshot.segments])
    chart = bar_chart([(s["name"].replace("Potential loyalists", "Potential"), s["members"])
                       for s in snapshot.segments], title=_("Members per segment")) if snapshot else ""
    return _render(request, "insights/segments.html", {"snapshot": snapshot, "chart": chart})


def _members_csv(name: str, members) -> HttpResponse:
    return _csv(name, ["member_id", "email", "segment", "r", "f", "m", "orders", "revenue", "last_order_at",
                       "p_alive", "predicted_clv"],
                ((i.member_id, i.member.email, i.segment, i.r, i.f, i.m, i.orders, i.revenue,
                  i.last_order_at.isoformat(), i.p_alive, i.predicted_clv) for i in members.iterator(chunk_size=2000)))


@staff_member_required
@replica_reads()
def segment(request, name: str):
    if name not in metrics.SEGMENTS:
        raise Http404("No such segment.")
    members = MemberInsight.objects.filter(segment=name).select_related("member").order_by("-revenue", "member_id")
    if request.GET.get("format") == "csv":
        return _members_csv(f"segment-{name.lower().replace(' ', '-').replace(chr(39), '')}", members)
    page = Paginator(members, 50).get_page(request.GET.get("page"))
    return _render(request, "insights/members.html", {
        "title": _("Segment: %(name)s") % {"name": name}, "page": page, "csv": "?format=csv",
        "help": _("Members in this segment, highest revenue first."),
    })


@staff_member_required
@replica_reads()
def at_risk(request):
    """High past value (M 4-5) and P(alive) at most 0.5: whom a win-back offer is for."""
    members = (MemberInsight.objects.filter(m__gte=4, p_alive__lte=0.5).select_related("member")
               .order_by("-revenue", "member_id"))
    if request.GET.get("format") == "csv":
        return _members_csv("at-risk", members)
    page = Paginator(members, 50).get_page(request.GET.get("page"))
    return _render(request, "insights/members.html", {
        "title": _("At risk"), "page": page, "csv": "?format=csv", "at_risk": True,
        # xgettext:no-python-format
        "help": _("Members in the top two revenue quintiles whose chance of still being a customer (P(alive)) is "
                  "50% or less; an arrow shows whether it fell since the previous snapshot."),
    })


@staff_member_required
@replica_reads()
def impact(request):
    snapshot = _latest()
    groups = snapshot.impact if snapshot else {}
    if snapshot is not None and request.GET.get("format") == "csv":
        keys = ["members", "orders", "revenue", "average_order_value", "orders_per_member", "retention_rate"]
        return _csv(f"impact-{snapshot.day}", ["group", *keys],
                    [[name, *[group.get(k) for k in keys]] for name, group in groups.items()])
    charts = {}
    if groups:
        names = {"engaged": _("Engaged"), "others": _("Others")}
        for key, label in (("average_order_value", _("Average order value")),
                           ("orders_per_member", _("Orders per member")), ("retention_rate", _("90-day retention %"))):
            charts[label] = bar_chart([(names.get(name, name.title()), float(group.get(key) or 0))
                                       for name, group in groups.items()], width=320, title=label)
    return _render(request, "insights/impact.html", {"snapshot": snapshot, "groups": groups, "charts": charts})
