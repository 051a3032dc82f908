"""The points engine's data: activities, orders, earning rules, the ledger, lots, rewards, coupons.

The ledger is the truth. ``LedgerEntry`` rows are only ever inserted; a correction is a new entry
that points at the one it corrects. Each entry moves points between three buckets of a member:
``available`` (spendable), ``pending`` (earned, waiting for the return window) and ``owed`` (taken
back by a refund after it had been spent, repaid from the next earnings). The member's cached
balances are the sums of these deltas, kept in the same transaction under a row lock.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member, Partner
from core.colours import validate_brand_colour

MONEY = {"max_digits": 14, "decimal_places": 3}


class ExpiryPolicy(models.TextChoices):
    NEVER = "never", _("Points never expire")
    ROLLING = "rolling", _("Each lot expires N months after it was earned")
    END_OF_MONTH = "end_of_month", _("Each lot expires at the end of the month N months after it was earned")
    END_OF_YEAR = "end_of_year", _("Each lot expires at the end of the year N months after it was earned")
    INACTIVITY = "inactivity", _("The whole balance expires after N months without earning or spending")


class TierMeasure(models.TextChoices):
    POINTS = "points", _("Points earned")
    SPEND = "spend", _("Spend")
    ORDERS = "orders", _("Number of orders")


class TierWindow(models.TextChoices):
    ROLLING = "rolling", _("A rolling number of months")
    CALENDAR_YEAR = "calendar_year", _("The calendar year")


class ProgramSettings(models.Model):
    """The program's points settings: one row, edited by staff in the admin (audited)."""

    time_zone = models.CharField(
        max_length=64, default="UTC",
        help_text=_("All program dates (caps per day, birthdays, end of month) are in this time zone."),
    )
    currency = models.CharField(max_length=3, default="EUR", help_text=_("The program's own currency (ISO 4217)."))
    accepted_currencies = models.CharField(
        max_length=200, default="EUR", help_text=_("Comma-separated ISO 4217 codes the program accepts orders in.")
    )
    pending_days = models.PositiveIntegerField(
        default=14, help_text=_("Return window: order points stay pending this many days after the order.")
    )
    expiry_policy = models.CharField(max_length=20, choices=ExpiryPolicy.choices, default=ExpiryPolicy.ROLLING)
    expiry_months = models.PositiveIntegerField(default=12, validators=[MinValueValidator(1)])
    expiring_soon_days = models.PositiveIntegerField(
        default=30, help_text=_("Members see points that expire within this many days as 'expiring soon'.")
    )
    point_value = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0.01"),
        help_text=_("What one point is worth in the program currency, for the points liability."),
    )
    tier_measure = models.CharField(max_length=10, choices=TierMeasure.choices, default=TierMeasure.POINTS)
    tier_window = models.CharField(max_length=15, choices=TierWindow.choices, default=TierWindow.ROLLING)
    tier_window_months = models.PositiveIntegerField(
        default=12, validators=[MinValueValidator(1)], help_text=_("Rolling window: how many months count.")
    )
    tier_grace_days = models.PositiveIntegerField(
        default=30, help_text=_("After a tier's period ends, it is kept this many days before a downgrade.")
    )
    tier_warning_days = models.PositiveIntegerField(
        default=30, help_text=_("Members who would lose their tier are warned this many days before.")
    )
    tier_max_drop = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text=_("Most tiers a member drops at one review.")
    )
    # --- How the program looks (the portal and every message) ---
    name = models.CharField(max_length=80, blank=True,
                            help_text=_("The program's name in the portal and in every message. Empty: the "
                            "PROGRAM_NAME environment variable."))
    logo = models.ImageField(upload_to="brand/", blank=True,
                             help_text=_("Shown in the portal's header and at the top of e-mails (JPEG, PNG or WebP; "
                             "at most 400 pixels wide is kept, its metadata dropped)."))
    colour = models.CharField(max_length=7, default="#0f766e", validators=[validate_brand_colour],
                              help_text=_("The main colour: the header of e-mails, buttons and links."))
    accent_colour = models.CharField(max_length=7, default="#b45309", validators=[validate_brand_colour],
                                     help_text=_("The second colour: pending points, highlights."))
    support_email = models.EmailField(blank=True, help_text=_("Where members write for help: in the portal's footer "
                                      "and at the foot of every e-mail. Empty: not shown."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = _("Program settings")

    def __str__(self):
        return "Program settings"

    def accepted(self) -> list[str]:
        return [code.strip().upper() for code in self.accepted_currencies.split(",") if code.strip()]


class ActivityType(models.TextChoices):
    ORDER = "order", _("Order")
    SIGNUP = "signup", _("Signed up")
    PROFILE_COMPLETED = "profile_completed", _("Completed profile")
    BIRTHDAY = "birthday", _("Birthday")
    REVIEW_APPROVED = "review_approved", _("Review approved")
    REVIEW_PHOTO = "review_photo", _("Photo in an approved review")
    HELPFUL_VOTE_RECEIVED = "helpful_vote_received", _("Helpful vote received")
    SURVEY_COMPLETED = "survey_completed", _("Survey completed")
    REFERRAL = "referral", _("Referral converted")
    REFUND = "refund", _("Refund")


class Activity(models.Model):
    """Something a member did, stored once: ``source_key`` makes a second copy impossible."""

    # Indexes are chosen, not defaulted: every one costs each insert, and orders arrive by the thousand.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="activities", db_index=False)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                db_index=False)
    type = models.CharField(max_length=50, help_text=_("A built-in type or a partner's custom type."))
    source_key = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = _("activities")
        indexes = [models.Index(fields=["member", "type", "occurred_at"])]
        # A constraint, not unique=True: that would add a second (LIKE) index on the key, which no
        # query reads (keys are looked up whole) and every insert would pay for.
        constraints = [models.UniqueConstraint(fields=["source_key"], name="activity_source_key_unique")]

    def __str__(self):
        return f"{self.type} · {self.source_key}"


class RuleKind(models.TextChoices):
    PER_CURRENCY = "per_currency", _("Points per currency unit spent")
    FIXED = "fixed", _("Fixed points per activity")
    MULTIPLIER = "multiplier", _("Multiplier of other rules' points")


class Rounding(models.TextChoices):
    DOWN = "down", _("Round down (12.9 -> 12)")
    NEAREST = "nearest", _("Round to nearest, halves up (12.5 -> 13)")


class EarningRule(models.Model):
    """Which activities earn how many points. See ``rewards.rules`` for how rules combine."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    activity_type = models.CharField(
        max_length=50, default=ActivityType.ORDER,
        help_text=_("order, signup, profile_completed, birthday, review_approved, survey_completed, referral, "
        "or a partner's custom event type such as app_installed."),
    )
    points = models.PositiveIntegerField(null=True, blank=True, help_text=_("Fixed rules: points per activity."))
    points_per_unit = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True,
        help_text=_("Per-currency rules: points per whole unit of the currency (1 = one point per euro)."),
    )
    currency = models.CharField(max_length=3, blank=True, help_text=_("Per-currency rules: empty = program currency."))
    rounding = models.CharField(max_length=10, choices=Rounding.choices, default=Rounding.DOWN)
    multiplier = models.DecimalField(
        max_digits=6, decimal_places=3, null=True, blank=True, help_text=_("Multiplier rules: 2 = double points.")
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text=_("Applies to activities from this time."))
    ends_at = models.DateTimeField(null=True, blank=True, help_text=_("...and before this time."))
    min_order_value = models.DecimalField(**MONEY, null=True, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text=_("Only order lines in these categories."))
    skus = models.JSONField(default=list, blank=True, help_text=_("Only order lines with these SKUs."))
    partners = models.ManyToManyField(Partner, blank=True, help_text=_("Only activities from these partners."))
    tiers = models.ManyToManyField("Tier", blank=True, related_name="earning_rules",
                                   help_text=_("Only members in these tiers (a tier's multiplier or birthday bonus)."))
    cap_per_day = models.PositiveIntegerField(null=True, blank=True, help_text=_("Most points per member per day."))
    cap_per_month = models.PositiveIntegerField(null=True, blank=True, help_text=_("Most points per member per month."))
    priority = models.IntegerField(default=100, help_text=_("Higher runs first."))
    stacks = models.BooleanField(
        default=True,
        help_text=_("Unticked: when this rule applies, lower-priority rules of the same kind (base or "
        "multiplier) do not."),
    )
    members_only = models.BooleanField(
        default=False, help_text=_("Only for the members given it (a campaign's offer gives it to the members it "
        "sends to)."))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "id"]

    def __str__(self):
        return self.name


class RuleMember(models.Model):
    """A member given a members-only earning rule (by a campaign)."""

    rule = models.ForeignKey(EarningRule, on_delete=models.CASCADE, related_name="given_to")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "rule"], name="rule_member_once")]

    def __str__(self):
        return f"{self.rule_id} for member #{self.member_id}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    RELEASE = "release", _("Became available")
    REVERSE = "reverse", _("Reversed")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")


class LedgerEntry(models.Model):
    """One movement of points. Never updated, never deleted."""

    # No index of its own: the (member, effective_at, id) index below serves every lookup by member.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False)
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    available_delta = models.BigIntegerField(default=0)
    pending_delta = models.BigIntegerField(default=0)
    owed_delta = models.BigIntegerField(default=0)
    activity = models.ForeignKey(Activity, null=True, blank=True, on_delete=models.PROTECT, related_name="entries",
                                 db_index=False)
    related_entry = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="followers", db_index=False,
        help_text=_("The entry this one releases or reverses."),
    )
    available_at = models.DateTimeField(null=True, blank=True,
                                        help_text=_("Pending points: when they become available."))
    expires_at = models.DateTimeField(null=True, blank=True, help_text=_("Credits: when these points expire."))
    description = models.CharField(max_length=255)
    reason = models.TextField(blank=True)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", db_index=False)
    actor_partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                      db_index=False)
    effective_at = models.DateTimeField(help_text=_("When it happened in the program (the order's time, the expiry)."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["member", "-effective_at", "-id"]),
            models.Index(
                fields=["available_at"], condition=Q(kind="earn", pending_delta__gt=0), name="ledger_pending_due"
            ),
            # Partial: most entries have none of these, and a NULL costs a partial index nothing.
            models.Index(fields=["related_entry"], condition=Q(related_entry__isnull=False), name="ledger_related"),
            models.Index(fields=["actor_user"], condition=Q(actor_user__isnull=False), name="ledger_actor_user"),
            models.Index(fields=["actor_partner"], condition=Q(actor_partner__isnull=False),
                         name="ledger_actor_partner"),
        ]
        constraints = [
            # The database itself refuses to count one activity's points twice, or release twice.
            models.UniqueConstraint(fields=["activity"], condition=Q(kind="earn"), name="ledger_one_earn_per_activity"),
            models.UniqueConstraint(
                fields=["related_entry"], condition=Q(kind="release"), name="ledger_one_release_per_entry"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.points:+d} · {self.description}"

    @property
    def points(self) -> int:
        """The change the member sees: spendable or pending points gained or lost."""
        return self.available_delta + self.pending_delta


class PointsLot(models.Model):
    """Available points from one credit, with their expiry; spending takes the soonest-expiring first.

    A cache like the balance (the ledger can rebuild it), updated only under the member's lock.
    """

    # The entry's member, copied for the spending index. No database constraint of its own: the
    # entry's holds it (PostgreSQL checked it once per lot at commit, for nothing).
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="lots", db_index=False,
                               db_constraint=False)
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="lot")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["member", "expires_at", "id"], condition=Q(remaining__gt=0), name="lot_open_by_member"
            ),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="lot_open_by_expiry"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("points")),
                                   name="lot_remaining_in_range"),
        ]

    def __str__(self):
        return f"{self.remaining}/{self.points} until {self.expires_at or 'forever'}"


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")


class Order(models.Model):
    # The order shares its activity's id, so its lines can be written without waiting for an id.
    activity = models.OneToOneField(Activity, on_delete=models.PROTECT, related_name="order", primary_key=True)
    # The activity's partner and member, copied for the order's own indexes and queries. No database
    # constraints of their own: the activity's hold them (PostgreSQL checked both again at commit,
    # for every order, a tenth of an import's time). Deleting is still PROTECTed by Django.
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="orders", db_index=False,
                                db_constraint=False)
    order_id = models.CharField(max_length=100)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="orders", db_index=False,
                               db_constraint=False)
    placed_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY)
    shipping = models.DecimalField(**MONEY, default=Decimal(0))
    tax = models.DecimalField(**MONEY, default=Decimal(0))
    discount = models.DecimalField(**MONEY, default=Decimal(0))
    refunded_amount = models.DecimalField(**MONEY, default=Decimal(0))
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    points = models.BigIntegerField(default=0, help_text=_("Points this order earns now, after any refunds."))
    rules_applied = models.JSONField(
        default=list, help_text=_("The rules as they were on the order's day, to reverse points exactly on refund.")
    )
    content_hash = models.CharField(max_length=64,
                                    help_text=_("To tell a retry from a different order with the same id."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "order_id"], name="order_unique_per_partner")]
        indexes = [models.Index(fields=["member", "placed_at"])]

    def __str__(self):
        return f"Order {self.order_id}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=100)
    name = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    refunded_quantity = models.PositiveIntegerField(default=0)
    # Merchandise value refunded on this line, net of the order discount, to 1/10,000 of a unit so
    # that amount refunds spread over lines add up exactly.
    refunded_value = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))

    class Meta:
        ordering = ["position"]
        # SKUs are looked up whole (a member's purchase of a product): a plain index, without the
        # second LIKE index that db_index=True adds on PostgreSQL and no query reads.
        indexes = [models.Index(fields=["sku"], name="orderline_sku")]
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=models.F("quantity")), name="line_refund_lte_qty"
            ),
        ]

    def __str__(self):
        return f"{self.quantity} x {self.sku}"


class Refund(models.Model):
    activity = models.OneToOneField(Activity, on_delete=models.PROTECT, related_name="refund")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    refund_id = models.CharField(max_length=100)
    amount = models.DecimalField(**MONEY)
    lines = models.JSONField(default=list, blank=True)
    points_reversed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "refund_id"], name="refund_unique_per_order")]

    def __str__(self):
        return f"Refund {self.refund_id} of {self.order}"


class PointsAward(models.Model):
    """Points one rule gave for one activity (negative after a refund), counted against the rule's caps.

    Written for every rule of activities other than orders, and for the capped rules of orders:
    an order keeps its full breakdown in ``Order.rules_applied``, and one row fewer per order is
    measurable at thousands of orders a second.
    """

    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="awards")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", db_index=False)
    rule = models.ForeignKey(EarningRule, null=True, on_delete=models.SET_NULL, related_name="awards", db_index=False)
    rule_name = models.CharField(max_length=120)
    points = models.BigIntegerField()
    day = models.DateField(help_text=_("The activity's day in the program time zone."))

    class Meta:
        indexes = [models.Index(fields=["member", "rule", "day"])]

    def __str__(self):
        return f"{self.rule_name}: {self.points:+d}"


class RewardKind(models.TextChoices):
    FIXED_DISCOUNT = "fixed_discount", _("Fixed discount")
    PERCENTAGE_DISCOUNT = "percentage_discount", _("Percentage discount")
    FREE_SHIPPING = "free_shipping", _("Free shipping")
    FREE_PRODUCT = "free_product", _("Free product")


class Reward(models.Model):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=30, choices=RewardKind.choices)
    value = models.DecimalField(
        **MONEY, null=True, blank=True, help_text=_("Fixed discount: the amount; percentage: the percent (10 = 10%).")
    )
    currency = models.CharField(max_length=3, blank=True, help_text=_("Fixed discount: empty = program currency."))
    product_sku = models.CharField(max_length=100, blank=True, help_text=_("Free product: its SKU."))
    points_cost = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    stock = models.PositiveIntegerField(null=True, blank=True, help_text=_("Coupons left; empty = unlimited."))
    per_member_limit = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty = no limit."))
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)
    coupon_valid_days = models.PositiveIntegerField(
        default=90, help_text=_("A coupon expires this many days after redemption.")
    )
    image = models.ImageField(upload_to="rewards/", blank=True)
    tiers = models.ManyToManyField("Tier", blank=True, related_name="exclusive_rewards",
                                   help_text=_("Only members in these tiers may redeem it; empty = everyone."))
    early_access_tiers = models.ManyToManyField(
        "Tier", blank=True, related_name="early_rewards",
        help_text=_("These tiers may redeem it from 'early access from', before everyone else's 'valid from'."),
    )
    early_access_from = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["points_cost", "id"]
        constraints = [models.CheckConstraint(condition=Q(points_cost__gte=1), name="reward_cost_positive")]

    def __str__(self):
        return self.name


class Redemption(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField()
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="redemption")
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["member", "reward"])]

    def __str__(self):
        return f"{self.reward} for {self.member}"


class Coupon(models.Model):
    code = models.CharField(max_length=20, unique=True)
    redemption = models.OneToOneField(Redemption, on_delete=models.PROTECT, related_name="coupon")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="coupons")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="coupons")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    used_order_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self):
        return self.code

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.used_at:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "active"


# --- Tiers ---------------------------------------------------------------------------------------


class Tier(models.Model):
    """A level members reach by their qualifying measure (``ProgramSettings.tier_measure``)."""

    name = models.CharField(max_length=60, unique=True)
    rank = models.PositiveSmallIntegerField(unique=True, help_text=_("0 for the entry tier, then 1, 2..."))
    threshold = models.DecimalField(
        **MONEY, help_text=_("The measure (points, spend or orders) over the window that reaches this tier.")
    )
    benefits = models.TextField(blank=True, help_text=_("One benefit per line, shown to members."))
    color = models.CharField(max_length=7, default="#0f766e", help_text=_("Hex colour for badges and cards."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rank"]
        constraints = [models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_gte_0")]

    def __str__(self):
        return self.name

    def benefit_list(self) -> list[str]:
        return [line.strip() for line in self.benefits.splitlines() if line.strip()]


class MemberTier(models.Model):
    """A member's current tier: held until ``period_end`` (plus the grace period), then reviewed."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, primary_key=True, related_name="tier_status")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="members")
    since = models.DateTimeField()
    period_end = models.DateTimeField(help_text=_("The tier is secure until then; reviewed after the grace period."))
    manual_until = models.DateTimeField(null=True, blank=True, help_text=_("Set by staff: kept at least until then."))
    warned_for = models.DateTimeField(null=True, blank=True, help_text=_("The period end a warning was sent for."))

    def __str__(self):
        return f"{self.member_id}: {self.tier}"


class TierCause(models.TextChoices):
    QUALIFIED = "qualified", _("Qualified")
    RENEWED = "renewed", _("Kept for another period")
    DOWNGRADED = "downgraded", _("Moved down at review")
    MANUAL = "manual", _("Set by staff")
    THRESHOLDS = "thresholds", _("Thresholds changed")


class TierChange(models.Model):
    """Every change of a member's tier, with its cause: the tier history."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(max_length=20, choices=TierCause.choices)
    measure = models.DecimalField(**MONEY, null=True, blank=True)
    reason = models.TextField(blank=True)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.member_id}: {self.from_tier} -> {self.to_tier} ({self.cause})"


# --- Badges and challenges -------------------------------------------------------------------------


class Criterion(models.TextChoices):
    ACTIVITY_COUNT = "activity_count", _("Number of activities of a type")
    FIRST = "first", _("First activity of a type")
    SPEND = "spend", _("Total spend")
    MEMBERSHIP_YEARS = "membership_years", _("Years of membership")
    ORDER_STREAK = "order_streak", _("Months in a row with an order")
    REFERRALS = "referrals", _("Friends referred who ordered")
    HELPFUL_VOTES = "helpful_votes", _("Helpful votes received")
    DISTINCT_CATEGORIES = "distinct_categories", _("Different product categories ordered")


class Badge(models.Model):
    """Recognition for a behaviour, in levels (bronze, silver, gold of the same badge)."""

    name = models.CharField(max_length=80)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    criterion = models.CharField(max_length=30, choices=Criterion.choices)
    activity_type = models.CharField(max_length=50, blank=True, help_text=_("For activity counts: which type."))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class BadgeLevel(models.Model):
    badge = models.ForeignKey(Badge, on_delete=models.CASCADE, related_name="levels")
    level = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=40, default="Bronze")
    threshold = models.DecimalField(**MONEY, help_text=_("What the criterion must reach for this level."))
    points_bonus = models.PositiveIntegerField(default=0, help_text=_("Points given with the badge (0 for none)."))
    image = models.ImageField(upload_to="badges/", blank=True, help_text=_("Empty: a default is drawn."))

    class Meta:
        ordering = ["badge", "level"]
        constraints = [models.UniqueConstraint(fields=["badge", "level"], name="badge_level_unique")]

    def __str__(self):
        return f"{self.badge} ({self.name})"


class MemberBadge(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="badges", db_index=False)
    level = models.ForeignKey(BadgeLevel, on_delete=models.PROTECT, related_name="holders")
    awarded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "level"], name="member_badge_once_per_level")]

    def __str__(self):
        return f"{self.member_id}: {self.level}"


class Enrollment(models.TextChoices):
    AUTOMATIC = "automatic", _("Everyone takes part")
    OPT_IN = "opt_in", _("Members join")


class Challenge(models.Model):
    """A time-boxed goal: the criterion counts only what happens between ``starts_at`` and ``ends_at``."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    criterion = models.CharField(max_length=30, choices=Criterion.choices)
    activity_type = models.CharField(max_length=50, blank=True)
    threshold = models.DecimalField(**MONEY)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    enrollment = models.CharField(max_length=10, choices=Enrollment.choices, default=Enrollment.AUTOMATIC)
    reward_points = models.PositiveIntegerField(default=0)
    reward_badge = models.ForeignKey(BadgeLevel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ends_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                              name="challenge_ends_after_start")]

    def __str__(self):
        return self.name


class ChallengeEntry(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="entries")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="challenge_entries", db_index=False)
    joined_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "challenge"], name="challenge_entry_once")]

    def __str__(self):
        return f"{self.member_id} in {self.challenge}"
