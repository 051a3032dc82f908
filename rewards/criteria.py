"""What badges and challenges measure: one small class per criterion, each computing its value for
many members at once (set-based queries, never one query per member) and saying in plain words
what is left to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Sum
from django.db.models.functions import ExtractMonth, ExtractYear
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Member
from core import bulk, l10n
from rewards.models import Activity, Criterion, Order, OrderLine, OrderStatus


@dataclass(frozen=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None


def _more(activity_type: str, count: int) -> str:
    """"3 more approved reviews", in the reader's language (whole phrases, so each language can
    order its words and make its plurals)."""
    phrases = {
        "order": lambda: ngettext("%(count)s more order", "%(count)s more orders", count),
        "review_approved": lambda: ngettext("%(count)s more approved review", "%(count)s more approved reviews",
                                            count),
        "survey_completed": lambda: ngettext("%(count)s more survey answered", "%(count)s more surveys answered",
                                             count),
        "referral": lambda: ngettext("%(count)s more friend who ordered", "%(count)s more friends who ordered",
                                     count),
        "helpful_vote_received": lambda: ngettext("%(count)s more helpful vote", "%(count)s more helpful votes",
                                                  count),
        "birthday": lambda: ngettext("%(count)s more birthday", "%(count)s more birthdays", count),
    }
    if activity_type in phrases:
        return phrases[activity_type]() % {"count": l10n.number(count)}
    return _("%(count)s more %(activity)s") % {"count": l10n.number(count),
                                                 "activity": activity_type.replace("_", " ")}


def _first(activity_type: str) -> str:
    """"your first approved review"."""
    phrases = {"order": lambda: _("your first order"), "review_approved": lambda: _("your first approved review"),
               "survey_completed": lambda: _("your first survey answered"),
               "referral": lambda: _("your first friend who ordered"),
               "helpful_vote_received": lambda: _("your first helpful vote"),
               "birthday": lambda: _("your first birthday")}
    if activity_type in phrases:
        return phrases[activity_type]()
    return _("your first %(activity)s") % {"activity": activity_type.replace("_", " ")}


def _in_window(queryset, field: str, window: Window | None):
    if window is None:
        return queryset
    if window.start is not None:
        queryset = queryset.filter(**{f"{field}__gte": window.start})
    if window.end is not None:
        queryset = queryset.filter(**{f"{field}__lt": window.end})
    return queryset


def _members(queryset, field: str, member_ids):
    return queryset if member_ids is None else queryset.filter(**{f"{field}__in": list(member_ids)})


class ActivityCount:
    label = "activities"

    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        rows = _members(_in_window(Activity.objects.filter(type=activity_type), "occurred_at", window), "member_id",
                        member_ids)
        return {m: Decimal(n) for m, n in rows.values_list("member_id").annotate(n=Count("id")).order_by()}

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        return _more(activity_type, int(needed))


class First(ActivityCount):
    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        return _first(activity_type)


class FixedTypeCount(ActivityCount):
    """An activity count whose type is fixed by the criterion (referrals, helpful votes)."""

    def __init__(self, activity_type: str):
        self.fixed_type = activity_type

    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        return super().values(activity_type=self.fixed_type, member_ids=member_ids, window=window, currency=currency,
                              now=now)

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        return super().to_go(activity_type=self.fixed_type, needed=needed, currency=currency)


class Spend:
    """What a member paid, less refunds, in the program's currency."""

    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        rows = _members(_in_window(Order.objects.filter(currency=currency), "placed_at", window), "member_id",
                        member_ids)
        return dict(rows.values_list("member_id").annotate(total=Sum(F("total") - F("refunded_amount"))).order_by())

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        return _("%(money)s more in orders") % {"money": l10n.money(needed, currency)}


class MembershipYears:
    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        rows = _members(Member.objects.filter(erased_at__isnull=True), "pk", member_ids)
        out = {}
        for pk, joined in rows.values_list("pk", "created_at"):
            years = now.year - joined.year - ((now.month, now.day) < (joined.month, joined.day))
            out[pk] = Decimal(max(years, 0))
        return out

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        years = int(needed)
        return ngettext("%(count)s more year as a member", "%(count)s more years as a member", years) % {
            "count": years}


class OrderStreak:
    """The longest run of consecutive calendar months with an order (not fully refunded)."""

    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        rows = _members(_in_window(Order.objects.exclude(status=OrderStatus.REFUNDED), "placed_at", window),
                        "member_id", member_ids)
        # Months counted in UTC. In the database, not in Python: a backfill over every member reads
        # each order once there, and only a number per member comes back.
        month = ExtractYear("placed_at", tzinfo=UTC) * 12 + ExtractMonth("placed_at", tzinfo=UTC)
        inner, params = rows.annotate(month=month).values("member_id", "month").distinct().order_by() \
            .query.sql_with_params()
        # Gaps and islands: within a run of consecutive months, month - its rank is the same number.
        sql = f"""
            SELECT member_id, MAX(months) FROM (
                SELECT member_id, COUNT(*) AS months FROM (
                    SELECT member_id, month - ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY month) AS island
                    FROM ({inner}) AS member_months
                ) AS ranked GROUP BY member_id, island
            ) AS runs GROUP BY member_id"""
        # Everyone (a backfill) sorts every member's months: with room to do it in memory. One
        # member (the badges page) needs no transaction around a single read.
        with bulk.big_read() if member_ids is None else connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {member_id: Decimal(best) for member_id, best in cursor.fetchall()}

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        months = int(needed)
        return ngettext("orders in %(count)s more month in a row", "orders in %(count)s more months in a row",
                        months) % {"count": months}


class DistinctCategories:
    def values(self, *, activity_type, member_ids, window, currency, now) -> dict[int, Decimal]:
        rows = OrderLine.objects.exclude(category="").exclude(order__status=OrderStatus.REFUNDED)
        rows = _in_window(rows, "order__placed_at", window)
        rows = _members(rows, "order__member_id", member_ids)
        counted = rows.values_list("order__member_id").annotate(n=Count("category", distinct=True)).order_by()
        return {m: Decimal(n) for m, n in counted}

    def to_go(self, *, activity_type, needed: Decimal, currency: str) -> str:
        count = int(needed)
        return ngettext("orders from %(count)s more category", "orders from %(count)s more categories", count) % {
            "count": count}


KINDS = {
    Criterion.ACTIVITY_COUNT: ActivityCount(),
    Criterion.FIRST: First(),
    Criterion.SPEND: Spend(),
    Criterion.MEMBERSHIP_YEARS: MembershipYears(),
    Criterion.ORDER_STREAK: OrderStreak(),
    Criterion.REFERRALS: FixedTypeCount("referral"),
    Criterion.HELPFUL_VOTES: FixedTypeCount("helpful_vote_received"),
    Criterion.DISTINCT_CATEGORIES: DistinctCategories(),
}

# Which activities can move which criterion: a new activity only re-checks these.
MOVED_BY = {
    Criterion.ACTIVITY_COUNT: None,  # its own activity type
    Criterion.FIRST: None,
    Criterion.SPEND: {"order", "refund"},
    Criterion.MEMBERSHIP_YEARS: set(),
    Criterion.ORDER_STREAK: {"order", "refund"},
    Criterion.REFERRALS: {"referral"},
    Criterion.HELPFUL_VOTES: {"helpful_vote_received"},
    Criterion.DISTINCT_CATEGORIES: {"order", "refund"},
}


def values(criterion: str, *, activity_type: str = "", member_ids=None, window: Window | None = None,
           currency: str, now: datetime) -> dict[int, Decimal]:
    return KINDS[criterion].values(activity_type=activity_type, member_ids=member_ids, window=window,
                                   currency=currency, now=now)


def to_go(criterion: str, *, activity_type: str, needed: Decimal, currency: str) -> str:
    return KINDS[criterion].to_go(activity_type=activity_type, needed=needed, currency=currency)


def values_for_member(member_id: int, pairs: set[tuple[str, str]], *, currency: str, now: datetime,
                      window: Window | None = None) -> dict[tuple[str, str], Decimal]:
    """One member's value for many (criterion, activity type) pairs, in a few grouped queries: one
    for all activity counts together, one per other criterion kind. The number of queries does not
    grow with the number of badges."""
    out: dict[tuple[str, str], Decimal] = {}
    counted = {pair for pair in pairs if isinstance(KINDS[pair[0]], ActivityCount)}
    types = {KINDS[c].fixed_type if isinstance(KINDS[c], FixedTypeCount) else t for c, t in counted}
    if types:
        rows = _in_window(Activity.objects.filter(member_id=member_id, type__in=types), "occurred_at", window)
        by_type = dict(rows.values_list("type").annotate(n=Count("id")).order_by())
        for criterion, activity_type in counted:
            kind = KINDS[criterion]
            key = kind.fixed_type if isinstance(kind, FixedTypeCount) else activity_type
            out[(criterion, activity_type)] = Decimal(by_type.get(key, 0))
    for criterion, activity_type in pairs - counted:
        found = KINDS[criterion].values(activity_type=activity_type, member_ids=[member_id], window=window,
                                        currency=currency, now=now)
        out[(criterion, activity_type)] = Decimal(found.get(member_id, 0))
    return out
