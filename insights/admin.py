"""A member's insights on their admin page (segment, P(alive), predicted CLV, orders, last order)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from insights.models import MemberInsight


class MemberInsightInline(admin.StackedInline):
    model = MemberInsight
    can_delete = False
    verbose_name_plural = _("Insights (from the latest nightly snapshot)")
    fields = [("segment", "r", "f", "m"), ("orders", "revenue", "last_order_at"),
              ("p_alive", "expected_90", "expected_365"), ("expected_value", "predicted_clv", "day")]
    readonly_fields = ["segment", "r", "f", "m", "orders", "revenue", "last_order_at", "p_alive", "expected_90",
                       "expected_365", "expected_value", "predicted_clv", "day"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # written only by the nightly snapshot


member_admin = admin.site._registry.get(Member)
if member_admin is not None:
    member_admin.inlines = [*member_admin.inlines, MemberInsightInline]
