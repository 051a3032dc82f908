"""A campaign's audience: conditions on what the program and its insights know about a member,
combined with "all" or "any", turned into one database query (no Python loop over members).

``{"match": "all", "conditions": [{"field": "segment", "value": ["At risk", "Can't lose them"]},
{"field": "days_since_last_order", "op": "gte", "value": 90}]}``

Members who refused offers (no channel for "offers and news") and erased members are never in an
audience, whatever the conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, ExtractMonth, ExtractYear

from accounts.models import Channel, Member
from core.errors import Invalid


@dataclass(frozen=True)
class Field:
    label: str
    kind: str  # "number", "share" (0..1), "money", "choices", "text", "days"
    help: str = ""


FIELDS: dict[str, Field] = {
    "segment": Field("RFM segment", "choices", "one of the insights' segments"),
    "p_alive": Field("P(alive)", "share", "the chance the member still buys (0 to 1), from the last snapshot"),
    "predicted_clv": Field("Predicted CLV", "money", "expected revenue in the next 12 months"),
    "revenue": Field("Historic spend", "money", "revenue from the member's orders so far"),
    "orders": Field("Orders", "number", "number of orders so far"),
    "days_since_last_order": Field("Days since the last order", "number"),
    "tier": Field("Tier", "choices", "tier ids"),
    "points_available": Field("Points available", "number"),
    "points_expiring": Field("Points expiring within 30 days", "number"),
    "bought_sku": Field("Bought the SKU (within `days`)", "text"),
    "bought_category": Field("Bought in the category (within `days`)", "text"),
    "nps": Field("Survey answer", "choices", "promoter (9-10), passive (7-8) or detractor (0-6), in the last year"),
    "event": Field("Did the custom event (within `days`)", "text", "an activity type"),
    "members": Field("A fixed list", "choices", "member ids, from an uploaded list"),
    "birthday_this_month": Field("Birthday this month", "flag", "in the program's time zone, when the campaign runs"),
    "joined_this_month": Field("Joined in this month of an earlier year", "flag",
                               "a membership anniversary this month"),
    "referral": Field("Referral status", "choices",
                      "referred_friends (a friend they invited ordered), was_referred, not_referred (or void)"),
}
REFERRAL = {"referred_friends", "was_referred", "not_referred"}
OPS = {"gte": "at least", "lte": "at most", "in": "is one of", "eq": "is"}
NPS = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}


def _problem(index: int, message: str) -> Invalid:
    return Invalid(message, fields={f"audience.conditions[{index}]": message})


def check(audience: dict) -> dict:
    """The audience in its canonical form, or ``Invalid`` naming the condition that is wrong."""
    if not isinstance(audience, dict):
        raise Invalid("The audience must be an object.", fields={"audience": "An object with match and conditions."})
    match = audience.get("match", "all")
    if match not in ("all", "any"):
        raise Invalid("match is all or any.", fields={"audience.match": "Use all or any."})
    conditions = audience.get("conditions", [])
    if not isinstance(conditions, list):
        raise Invalid("conditions must be a list.", fields={"audience.conditions": "A list of conditions."})
    clean = []
    for index, condition in enumerate(conditions):
        if not isinstance(condition, dict) or condition.get("field") not in FIELDS:
            raise _problem(index, f"Unknown field; use one of {', '.join(FIELDS)}.")
        field = FIELDS[condition["field"]]
        op = condition.get("op") or ("in" if field.kind == "choices" else "eq" if field.kind == "text" else "gte")
        value = condition.get("value")
        if field.kind in ("number", "share", "money"):
            if op not in ("gte", "lte"):
                raise _problem(index, f"{field.label}: use gte or lte.")
            try:
                number = Decimal(str(value))
            except (InvalidOperation, ValueError):
                raise _problem(index, f"{field.label}: a number is needed.") from None
            if not number.is_finite() or number < 0 or (field.kind == "share" and number > 1):
                allowed = "between 0 and 1" if field.kind == "share" else "not negative"
                raise _problem(index, f"{field.label}: {allowed}.")
            value = str(number)
        elif field.kind == "flag":
            if value is not True:
                raise _problem(index, f"{field.label}: true.")
            op = "eq"
        elif field.kind == "choices":
            if not isinstance(value, list) or not value:
                raise _problem(index, f"{field.label}: a non-empty list.")
            if condition["field"] == "nps" and not set(value) <= set(NPS):
                raise _problem(index, "Survey answer: promoter, passive or detractor.")
            if condition["field"] == "referral" and not set(value) <= REFERRAL:
                raise _problem(index, f"Referral status: {', '.join(sorted(REFERRAL))}.")
            if condition["field"] in ("tier", "members") and not all(isinstance(v, int) for v in value):
                raise _problem(index, f"{field.label}: a list of ids.")
            op = "in"
        else:
            if not isinstance(value, str) or not value.strip():
                raise _problem(index, f"{field.label}: a value is needed.")
            value, op = value.strip(), "eq"
        days = condition.get("days")
        if days is not None and (not isinstance(days, int) or days < 1):
            raise _problem(index, f"{field.label}: days is a whole number from 1.")
        clean.append({"field": condition["field"], "op": op, "value": value,
                      **({"days": days} if days is not None else {})})
    return {"match": match, "conditions": clean}


def _compare(path: str, op: str, value) -> Q:
    return Q(**{f"{path}__{op}": value})


def _condition(condition: dict, now: datetime) -> Q:
    from feedback.models import ResponseStatus, SurveyResponse
    from rewards.models import Activity, OrderLine, OrderStatus, PointsLot
    from rewards.program import current_program

    field, op, value = condition["field"], condition["op"], condition["value"]
    since = now - timedelta(days=condition.get("days") or 36500)
    if field == "segment":
        return Q(insight__segment__in=value)
    if field in ("p_alive", "predicted_clv", "revenue", "orders"):
        return _compare(f"insight__{field}", op, Decimal(value) if field != "p_alive" else float(value))
    if field == "days_since_last_order":
        moment = now - timedelta(days=float(value))
        return Q(insight__last_order_at__lte=moment) if op == "gte" else Q(insight__last_order_at__gte=moment)
    if field == "points_available":
        return _compare("points_available", op, int(Decimal(value)))
    if field == "points_expiring":
        soon = (PointsLot.objects.filter(member=OuterRef("pk"), remaining__gt=0, expires_at__gt=now,
                                         expires_at__lte=now + timedelta(days=30))
                .values("member").annotate(total=Sum("remaining")).values("total"))
        return Q(**{f"expiring__{op}": int(Decimal(value))}), {"expiring": Coalesce(Subquery(soon), 0)}
    if field == "tier":
        base = current_program().base_tier
        wanted = Q(tier_status__tier_id__in=value)
        return wanted | Q(tier_status__isnull=True) if base is not None and base.pk in value else wanted
    if field in ("bought_sku", "bought_category"):
        lines = OrderLine.objects.filter(order__member=OuterRef("pk"), order__placed_at__gte=since,
                                         order__placed_at__lte=now).exclude(order__status=OrderStatus.REFUNDED)
        lines = lines.filter(sku=value) if field == "bought_sku" else lines.filter(category=value)
        return Q(Exists(lines))
    if field == "nps":
        ranges = Q()
        for name in value:
            low, high = NPS[name]
            ranges |= Q(nps__gte=low, nps__lte=high)
        answers = SurveyResponse.objects.filter(ranges, member=OuterRef("pk"), status=ResponseStatus.COMPLETED,
                                                completed_at__gte=now - timedelta(days=365))
        return Q(Exists(answers))
    if field == "event":
        return Q(Exists(Activity.objects.filter(member=OuterRef("pk"), type=value, occurred_at__gte=since,
                                                occurred_at__lte=now)))
    if field == "members":
        return Q(pk__in=value)
    if field == "birthday_this_month":
        return Q(birthday__month=now.astimezone(current_program().tz).month)
    if field == "joined_this_month":
        tz = current_program().tz
        local = now.astimezone(tz)
        return Q(joined_month=local.month, joined_year__lt=local.year), {
            "joined_month": ExtractMonth("created_at", tzinfo=tz), "joined_year": ExtractYear("created_at", tzinfo=tz)}
    if field == "referral":
        from feedback.models import Referral, ReferralStatus

        paid = [ReferralStatus.CONVERTED, ReferralStatus.REWARDED]
        ways = {"referred_friends": Q(Exists(Referral.objects.filter(referrer=OuterRef("pk"), status__in=paid))),
                "was_referred": Q(Exists(Referral.objects.filter(friend=OuterRef("pk")).exclude(
                    status=ReferralStatus.VOID))),
                "not_referred": ~Q(Exists(Referral.objects.filter(friend=OuterRef("pk")).exclude(
                    status=ReferralStatus.VOID)))}
        found = Q()
        for name in value:
            found |= ways[name]
        return found
    raise ValueError(field)


def members(audience: dict, *, now: datetime):
    """The members in the audience now: one query (subqueries for what needs them)."""
    audience = check(audience)
    wanted, annotations = Q(), {}
    for condition in audience["conditions"]:
        found = _condition(condition, now)
        if isinstance(found, tuple):
            found, extra = found
            annotations.update(extra)
        wanted = (wanted & found) if audience["match"] == "all" else (wanted | found)
    queryset = Member.objects.filter(erased_at__isnull=True).exclude(offers_channel=Channel.NONE)
    if annotations:
        queryset = queryset.annotate(**annotations)
    return queryset.filter(wanted) if audience["conditions"] else queryset
