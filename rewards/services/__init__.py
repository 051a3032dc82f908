"""Writes of the points engine. Each function is one transaction that locks the members it changes
(``rewards.ledger.lock_members``) before it writes. The modules:

- ``earning``: what an activity earns (rules, caps) and crediting it;
- ``orders``: orders and refunds;
- ``activities``: signups, birthdays, partner events and the activities other apps report;
- ``spending``: adjustments, redemptions, coupons;
- ``schedule``: pending points becoming available, expiry;
- ``configuration``: program settings and earning rules;
- ``tiers``: tier evaluation (the rule itself is ``tiers.tier_decide``), thresholds, tiers set by hand;
- ``progress``: badges and challenges, awarded in sets; ``progress_hook``: announcing activities.

Every movement of points is announced as a domain event (``core.events``) from ``rewards.ledger``.
The tier and progress functions are imported from their modules (``rewards.services.tiers``...).
"""

from rewards.services.activities import (
    ActivityInput,
    activities_record,
    activity_record,
    activity_reverse,
    birthdays_award,
    event_record,
)
from rewards.services.configuration import (
    earning_rule_problems,
    earning_rule_save,
    program_settings_update,
    rule_members_add,
)
from rewards.services.earning import ActivityResult, AwardResult, OrderResult
from rewards.services.orders import RefundResult, order_record, order_refund, orders_record
from rewards.services.schedule import pending_release_due, points_expire_due
from rewards.services.spending import (
    coupon_code_generate,
    coupon_use,
    normalize_coupon_code,
    points_adjust,
    reward_redeem,
)

__all__ = [
    "ActivityInput", "ActivityResult", "AwardResult", "OrderResult", "RefundResult",
    "activities_record", "activity_record", "activity_reverse", "birthdays_award", "coupon_code_generate", "coupon_use",
    "earning_rule_problems", "earning_rule_save", "event_record", "normalize_coupon_code",
    "order_record", "order_refund", "orders_record", "pending_release_due", "points_adjust", "points_expire_due",
    "program_settings_update", "reward_redeem", "rule_members_add",
]
