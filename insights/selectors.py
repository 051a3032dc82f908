"""Reads of insights that other apps show."""


def member_api_insights(*, member, partner) -> dict:
    """Segment, P(alive) and predicted CLV, for partner keys with the insights:read scope."""
    from insights.models import MemberInsight

    found = MemberInsight.objects.filter(member=member).first()
    if found is None:
        return {"insights": None}
    return {"insights": {
        "segment": found.segment, "p_alive": round(found.p_alive, 4) if found.p_alive is not None else None,
        "predicted_clv": str(found.predicted_clv) if found.predicted_clv is not None else None,
        "expected_orders_90d": round(found.expected_90, 3) if found.expected_90 is not None else None,
        "expected_orders_365d": round(found.expected_365, 3) if found.expected_365 is not None else None,
        "orders": found.orders, "last_order_at": found.last_order_at, "as_of": found.day,
    }}
