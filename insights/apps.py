from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Insights"

    def ready(self):
        from accounts import selectors as account_selectors
        from accounts.models import Scope

        account_selectors.MEMBER_API_SCOPED_SECTIONS.append((Scope.INSIGHTS_READ, _api_section))


def _api_section(*, member, partner) -> dict:
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
