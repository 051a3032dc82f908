"""Campaigns: an audience (conditions on what the program and its insights know), a trigger, an
offer paid through the engine, a message through the outbox, and a holdout that makes the report
honest. Written through ``campaigns.services``; read through ``campaigns.selectors``."""


from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from messaging.models import Delivery
from rewards.models import Coupon, Reward


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    STOPPED = "stopped", _("Stopped")


class Trigger(models.TextChoices):
    ONCE = "once", _("Once, at the start")
    WEEKLY = "weekly", _("Every week (each member at most once a week)")
    MONTHLY = "monthly", _("Every month (each member at most once a month)")
    ENTERING = "entering", _("When a member comes into the audience (win-back, near a reward...): once per member")


class OfferKind(models.TextChoices):
    NONE = "none", _("No offer: a message only")
    POINTS = "points", _("Bonus points")
    COUPON = "coupon", _("A coupon for a reward")
    MULTIPLIER = "multiplier", _("A points multiplier on orders for some days")


class Campaign(models.Model):
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    # The audience: {"match": "all" | "any", "conditions": [{"field": ..., "op": ..., "value": ...}]}
    # (campaigns.audience lists the fields). Members who refused offers are never in it.
    audience = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.ONCE)
    starts_at = models.DateTimeField(default=timezone.now, help_text=_("Nobody enters before this."))
    ends_at = models.DateTimeField(null=True, blank=True, help_text=_("Nobody enters after this. Empty: no end."))
    offer = models.CharField(max_length=10, choices=OfferKind.choices, default=OfferKind.NONE)
    offer_points = models.PositiveIntegerField(null=True, blank=True, help_text=_("Bonus points per member."))
    offer_reward = models.ForeignKey(Reward, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                     help_text=_("The reward whose coupon each member gets (paid by the campaign)."))
    offer_multiplier = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True,
                                           help_text=_("2 = double points on the orders it covers."))
    offer_categories = models.CharField(max_length=300, blank=True,
                                        help_text=_("Comma-separated categories it covers; empty: every category."))
    offer_skus = models.CharField(max_length=300, blank=True, help_text=_("Comma-separated SKUs; empty: every SKU."))
    offer_days = models.PositiveSmallIntegerField(null=True, blank=True,
                                                  help_text=_("The multiplier covers orders from the start for this "
                                                  "many days (a weekend: 3)."))
    offer_rule = models.ForeignKey("rewards.EarningRule", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", help_text=_("The members-only earning rule of a multiplier."))
    title = models.CharField(max_length=200, help_text=_("The message's subject. Placeholders: {first_name}, "
                             "{points}, {tier}, {next_reward}, {recommended}, {offer}, {program}."))
    body = models.TextField(max_length=2000, blank=True)
    delivery = models.CharField(max_length=5, choices=Delivery.choices, default=Delivery.SEND,
                                help_text=_("Who sends the message: us, or the store's own service (a "
                                "campaign.message webhook with the words)."))
    holdout_percent = models.PositiveSmallIntegerField(
        default=10, validators=[MaxValueValidator(90)],
        help_text=_("This share of the audience, chosen at random, gets nothing, to measure what the campaign did."))
    report_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_("The report counts orders in this many days after each member's entry."))
    completed_once = models.BooleanField(default=False, help_text=_("A one-off campaign that has run to the end."))
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def offer_cost_points(self) -> int:
        """Points one treated member costs: the bonus, or the reward's price."""
        if self.offer == OfferKind.POINTS:
            return self.offer_points or 0
        if self.offer == OfferKind.COUPON and self.offer_reward_id:
            return self.offer_reward.points_cost
        return 0


class Group(models.TextChoices):
    TREATED = "treated", _("Sent")
    HOLDOUT = "holdout", _("Held out")


class CampaignEntry(models.Model):
    """A member entering a campaign for one occurrence (``once``, a week, a month, ``entering``),
    in the treated group or the holdout. Never two for the same campaign, member and occurrence."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="entries")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    occurrence = models.CharField(max_length=20)
    group = models.CharField(max_length=7, choices=Group.choices)
    entered_at = models.DateTimeField(default=timezone.now)
    offer_points = models.PositiveIntegerField(default=0, help_text=_("Points the offer cost (0 for the holdout)."))
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "member", "occurrence"], name="campaign_entry_once")]
        verbose_name_plural = _("campaign entries")
        indexes = [models.Index(fields=["campaign", "group", "entered_at"], name="campaign_entry_group")]

    def __str__(self):
        return f"{self.member_id} in {self.campaign_id} ({self.group})"


