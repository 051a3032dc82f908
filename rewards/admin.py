from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin import AuditedAdmin
from accounts.models import Member, Partner
from core import l10n
from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.errors import DomainError, Invalid
from core.images import clean_image
from rewards import selectors, services
from rewards.currencies import is_currency
from rewards.models import (
    Activity,
    Badge,
    BadgeLevel,
    Challenge,
    Coupon,
    EarningRule,
    LedgerEntry,
    MemberBadge,
    MemberTier,
    Order,
    OrderLine,
    PointsLot,
    ProgramSettings,
    Redemption,
    Refund,
    Reward,
    RewardKind,
    Tier,
    TierChange,
)
from rewards.program import program_changed
from rewards.services import progress as progress_services
from rewards.services import tiers as tier_services


@admin.register(ProgramSettings)
class ProgramSettingsAdmin(SingletonAdmin):
    fieldsets = [
        (_("Program"), {"fields": ["time_zone", "currency", "accepted_currencies"]}),
        (_("Pending points"), {"fields": ["pending_days"]}),
        (_("Expiry"), {"fields": ["expiry_policy", "expiry_months", "expiring_soon_days"]}),
        (_("Reports"), {"fields": ["point_value"]}),
        (_("How the program looks"), {"fields": ["name", "logo", "colour", "accent_colour", "support_email"],
                                   "description": _("In the portal, the admin and every e-mail. Colours must be dark "
                                   "enough for white text on them (WCAG AA, 4.5:1).")}),
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in ("colour", "accent_colour"):
            kwargs["widget"] = forms.TextInput(attrs={"type": "color"})
        if db_field.name == "logo":  # a plain file field: the one picture check (clean_logo) decides, in its words
            kwargs["form_class"] = forms.FileField
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def settings_row(self):
        return ProgramSettings.objects.get_or_create(pk=1)[0]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class Checked(form):
            def clean_time_zone(self):
                from zoneinfo import available_timezones

                value = self.cleaned_data["time_zone"]
                if value not in available_timezones():
                    raise ValidationError(_("Unknown time zone; use a name such as Europe/Paris."))
                return value

            def clean_accepted_currencies(self):
                codes = [c.strip().upper() for c in self.cleaned_data["accepted_currencies"].split(",") if c.strip()]
                unknown = [c for c in codes if not is_currency(c)]
                if unknown or not codes:
                    raise ValidationError(_("Unknown currencies: %(codes)s.") % {"codes": ", ".join(unknown)}
                                          if unknown else _("Give at least one currency."))
                return ",".join(codes)

            def clean_logo(self):
                upload = self.cleaned_data.get("logo")
                if upload is False:  # "Clear" ticked: no logo (the field keeps an empty name, not "False")
                    return ""
                if not upload or not hasattr(upload, "content_type"):  # unchanged
                    return upload
                try:
                    # Re-encoded from its pixels: no metadata of the original file is kept.
                    return clean_image(upload, field="logo", max_side=400, thumb_side=None).image
                except Invalid as exc:
                    raise ValidationError(exc.fields["logo"]) from None

            def clean_currency(self):
                value = self.cleaned_data["currency"].upper()
                if not is_currency(value):
                    raise ValidationError(_("Unknown currency; use an ISO 4217 code such as EUR."))
                return value

        return Checked

    def save_model(self, request, obj, form, change):
        services.program_settings_update(
            actor_user=request.user, changes={field: form.cleaned_data[field] for field in form.changed_data}
        )


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        fields = ["name", "is_active", "kind", "activity_type", "points", "points_per_unit", "currency", "rounding",
                  "multiplier", "starts_at", "ends_at", "min_order_value", "categories", "skus", "partners", "tiers",
                  "cap_per_day", "cap_per_month", "priority", "stacks"]

    def _post_clean(self):
        super()._post_clean()  # copies the cleaned values onto the instance
        if self.errors:
            return
        partner_ids = [p.pk for p in self.cleaned_data.get("partners") or []]
        tier_ids = [t.pk for t in self.cleaned_data.get("tiers") or []]
        found = services.earning_rule_problems(rule=self.instance, partner_ids=partner_ids, tier_ids=tier_ids)
        for field, problems in found.items():
            target = field if field in self.fields else None
            for problem in problems:
                self.add_error(target, problem)


@admin.register(EarningRule)
class EarningRuleAdmin(admin.ModelAdmin):
    form = EarningRuleForm
    list_display = ["name", "kind", "activity_type", "gives", "priority", "stacks", "window", "is_active"]
    list_filter = ["kind", "activity_type", "is_active", "stacks"]
    search_fields = ["name"]
    filter_horizontal = ["partners", "tiers"]
    fieldsets = [
        (None, {"fields": ["name", "is_active", "kind", "activity_type"]}),
        (_("What it gives"), {
            "fields": ["points", "points_per_unit", "currency", "rounding", "multiplier"],
            "description": _("Per-currency rules: points per whole unit, rounded once per order. Fixed rules: "
            "points per activity. Multipliers: multiply the points of the lines they match."),
        }),
        (_("When it applies"), {"fields": ["starts_at", "ends_at", "min_order_value", "categories", "skus", "partners",
                                        "tiers"]}),
        (_("Limits and order"), {
            "fields": ["cap_per_day", "cap_per_month", "priority", "stacks"],
            "description": _("Rules run from the highest priority down. A rule that does not stack stops the "
            "lower-priority rules of its kind (base rules, or multipliers) when it applies."),
        }),
    ]
    change_list_template = "admin/rewards/earningrule/change_list.html"

    def has_delete_permission(self, request, obj=None):
        # Orders keep the rules they were earned under; retire a rule by unticking "active".
        return False

    @admin.display(description=_("Gives"))
    def gives(self, rule):
        if rule.kind == "per_currency":
            return f"{l10n.decimal(rule.points_per_unit.normalize(), None)} / {rule.currency or _('unit')}"
        if rule.kind == "fixed":
            return l10n.points(rule.points or 0)
        return f"x{l10n.decimal(rule.multiplier.normalize(), None)}"

    @admin.display(description=_("Dates"))
    def window(self, rule):
        if not rule.starts_at and not rule.ends_at:
            return _("always")
        start = l10n.short_day(rule.starts_at) if rule.starts_at else "…"
        end = l10n.short_day(rule.ends_at) if rule.ends_at else "…"
        return f"{start} – {end}"

    def save_model(self, request, obj, form, change):
        services.earning_rule_save(rule=obj, partner_ids=[p.pk for p in form.cleaned_data.get("partners") or []],
                                   tier_ids=[t.pk for t in form.cleaned_data.get("tiers") or []],
                                   actor_user=request.user)

    def save_related(self, request, form, formsets, change):
        pass  # the service already set the partners

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="rewards_earningrule_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        form = OrderPreviewForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = selectors.order_preview(**form.preview_arguments())
        context = {**self.admin_site.each_context(request), "title": _("What would this order earn?"), "form": form,
                   "result": result, "opts": self.model._meta}
        return TemplateResponse(request, "admin/rewards/earningrule/preview.html", context)


class OrderPreviewForm(forms.Form):
    partner = forms.ModelChoiceField(Partner.objects.all(), required=False)
    member_email = forms.EmailField(required=False, help_text=_("Optional: applies this member's caps."))
    currency = forms.CharField(initial="EUR", max_length=3)
    placed_at = forms.DateTimeField(initial=timezone.now, help_text=_("YYYY-MM-DD HH:MM, program time zone."),
                                    widget=forms.DateTimeInput(format="%Y-%m-%d %H:%M"))
    discount = forms.DecimalField(initial=Decimal(0), min_value=0, decimal_places=3)
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        initial="TEA-1, tea, 2, 12.50\nCUP-3, accessories, 1, 8.00",
        help_text=_("One line per row: SKU, category, quantity, unit price."),
    )

    def clean_currency(self):
        value = self.cleaned_data["currency"].upper()
        if not is_currency(value):
            raise ValidationError(_("Unknown currency."))
        return value

    def clean_member_email(self):
        email = self.cleaned_data["member_email"].strip().lower()
        if email and not Member.objects.filter(email=email).exists():
            raise ValidationError(_("No member with this email."))
        return email

    def clean_lines(self):
        parsed = []
        for number, row in enumerate(self.cleaned_data["lines"].strip().splitlines(), start=1):
            parts = [part.strip() for part in row.split(",")]
            try:
                sku, category, quantity, price = parts
                parsed.append((sku, category, int(quantity), Decimal(price)))
            except (ValueError, InvalidOperation):
                raise ValidationError(_("Row %(number)s: expected 'SKU, category, quantity, unit price'.") % {
                    "number": number}) from None
        if not parsed:
            raise ValidationError(_("Add at least one line."))
        return parsed

    def preview_arguments(self) -> dict:
        data = self.cleaned_data
        placed_at = data["placed_at"]
        if isinstance(placed_at, datetime) and timezone.is_naive(placed_at):
            placed_at = timezone.make_aware(placed_at)
        member = Member.objects.filter(email=data["member_email"]).first() if data["member_email"] else None
        return {"partner": data["partner"], "member": member, "currency": data["currency"], "placed_at": placed_at,
                "discount": data["discount"], "lines": data["lines"]}


class RewardForm(forms.ModelForm):
    class Meta:
        model = Reward
        fields = ["name", "description", "kind", "value", "currency", "product_sku", "points_cost", "stock",
                  "per_member_limit", "valid_from", "valid_to", "tiers", "early_access_tiers", "early_access_from",
                  "coupon_valid_days", "image", "is_active"]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind in (RewardKind.FIXED_DISCOUNT, RewardKind.PERCENTAGE_DISCOUNT) and not cleaned.get("value"):
            self.add_error("value", _("A discount needs a value."))
        if kind == RewardKind.PERCENTAGE_DISCOUNT and cleaned.get("value") and cleaned["value"] > 100:
            self.add_error("value", _("A percentage is at most 100."))
        if kind == RewardKind.FREE_PRODUCT and not cleaned.get("product_sku"):
            self.add_error("product_sku", _("A free product needs its SKU."))
        if cleaned.get("currency") and not is_currency(cleaned["currency"].upper()):
            self.add_error("currency", _("Unknown currency."))
        if cleaned.get("valid_from") and cleaned.get("valid_to") and cleaned["valid_to"] <= cleaned["valid_from"]:
            self.add_error("valid_to", _("Must be after 'valid from'."))
        early_from, tiers = cleaned.get("early_access_from"), cleaned.get("early_access_tiers")
        if tiers and not early_from:
            self.add_error("early_access_from", _("Early access needs the date it opens for those tiers."))
        if early_from and cleaned.get("valid_from") and early_from >= cleaned["valid_from"]:
            self.add_error("early_access_from", _("Early access opens before 'valid from', the date for everyone."))
        return cleaned


@admin.register(Reward)
class RewardAdmin(AuditedAdmin):
    form = RewardForm
    list_display = ["name", "kind", "points_cost", "stock", "per_member_limit", "valid_from", "valid_to", "is_active",
                    "redeemed"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "product_sku"]

    @admin.display(description=_("Redeemed"))
    def redeemed(self, reward):
        return reward.redemptions.count()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("redemptions")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "kind", "available_delta", "pending_delta", "owed_delta", "description",
                    "actor"]
    list_filter = ["kind"]
    search_fields = ["member__email", "description", "reason"]
    list_select_related = ["member", "actor_user", "actor_partner"]
    date_hierarchy = "created_at"
    raw_id_fields = ["member", "activity", "related_entry"]

    @admin.display(description=_("By"))
    def actor(self, entry):
        return entry.actor_user or entry.actor_partner or ""


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["sku", "name", "category", "quantity", "unit_price", "refunded_quantity", "refunded_value"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(OrderLineInline):
    model = Refund
    readonly_fields = ["refund_id", "amount", "points_reversed", "created_at"]
    fields = readonly_fields


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "partner", "member", "placed_at", "total", "currency", "points", "status"]
    list_filter = ["status", "partner", "currency"]
    search_fields = ["order_id", "member__email"]
    list_select_related = ["partner", "member"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline, RefundInline]
    exclude = ["rules_applied", "content_hash"]

    def has_change_permission(self, request, obj=None):
        return obj is not None and request.method == "GET"


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "member", "type", "partner", "source_key"]
    list_filter = ["type"]
    search_fields = ["source_key", "member__email"]
    list_select_related = ["member", "partner"]


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ["code", "reward", "member", "created_at", "expires_at", "used_at", "used_by"]
    search_fields = ["code", "member__email"]
    list_filter = ["reward"]
    list_select_related = ["reward", "member", "used_by"]


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "reward", "points", "partner"]
    list_select_related = ["member", "reward", "partner"]


@admin.register(PointsLot)
class PointsLotAdmin(ReadOnlyAdmin):
    list_display = ["member", "points", "remaining", "expires_at", "created_at"]
    list_select_related = ["member"]


class AdjustForm(forms.Form):
    points = forms.IntegerField(help_text=_("Positive to credit, negative to debit."))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=500)

    def clean_points(self):
        if self.cleaned_data["points"] == 0:
            raise ValidationError(_("Must not be zero."))
        return self.cleaned_data["points"]


def adjust_points_view(request, member_id: int, model_admin):
    """Staff credit or debit a member's points with a reason (linked from the member page)."""
    member = get_object_or_404(Member, pk=member_id)
    form = AdjustForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.points_adjust(member=member, points=form.cleaned_data["points"],
                                   reason=form.cleaned_data["reason"], actor_user=request.user)
        except DomainError as exc:
            for field, problems in exc.fields.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, _("Adjusted by %(points)s points.") % {
                "points": f"{form.cleaned_data['points']:+d}"})
            return redirect(reverse("admin:accounts_member_change", args=[member.pk]))
    context = {**model_admin.admin_site.each_context(request),
               "title": _("Adjust points of %(member)s") % {"member": member}, "form": form,
               "member": member, "opts": Member._meta}
    return TemplateResponse(request, "admin/rewards/adjust.html", context)


def member_points_summary(member: Member) -> str:
    ledger = reverse("admin:rewards_ledgerentry_changelist") + f"?member__id__exact={member.pk}"
    adjust = reverse("admin:accounts_member_adjust", args=[member.pk])
    set_tier = reverse("admin:accounts_member_set_tier", args=[member.pk])
    tier = MemberTier.objects.filter(member=member).select_related("tier").first()
    return format_html(
        '{} · {} · {} — <a href="{}">{}</a> · <a class="button" href="{}">{}</a><br>{} · <a class="button" '
        'href="{}">{}</a>',
        _("%(points)s available") % {"points": l10n.number(member.points_available)},
        _("%(points)s pending") % {"points": l10n.number(member.points_pending)},
        _("%(points)s owed") % {"points": l10n.number(member.points_owed)}, ledger, _("ledger"), adjust,
        _("Adjust points"),
        _("Tier: %(tier)s until %(day)s") % {"tier": tier.tier.name, "day": l10n.short_day(tier.period_end)}
        if tier else _("Tier: entry"), set_tier, _("Set tier"),
    )


# --- Tiers, badges, challenges ---------------------------------------------------------------------


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "rank", "threshold", "members"]
    fields = ["name", "rank", "threshold", "color", "benefits"]
    change_list_template = "admin/rewards/tier/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        # After launch a threshold moves members: it changes through the dry run and apply step.
        return ["threshold"] if obj is not None else []

    @admin.display(description=_("Members"))
    def members(self, tier):
        return tier._members

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    def save_model(self, request, obj, form, change):
        tier_services.tier_save(tier=obj, actor_user=request.user)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [path("thresholds/", self.admin_site.admin_view(self.thresholds_view),
                     name="rewards_tier_thresholds"), *super().get_urls()]

    def thresholds_view(self, request):
        tiers = list(Tier.objects.order_by("rank"))
        form = ThresholdsForm(request.POST or None, tiers=tiers)
        plan = None
        if request.method == "POST" and form.is_valid():
            try:
                if "apply" in request.POST:
                    plan = tier_services.tier_thresholds_apply(thresholds=form.thresholds(), actor_user=request.user,
                                                               reason=form.cleaned_data["reason"])
                    messages.success(request, _("Thresholds changed: %(up)s members moved up, %(down)s down.") % {
                        "up": plan.up, "down": plan.down})
                    return redirect(reverse("admin:rewards_tier_changelist"))
                plan = tier_services.tier_thresholds_plan(thresholds=form.thresholds())
            except DomainError as exc:
                form.add_error(None, exc.message)
        context = {**self.admin_site.each_context(request), "title": _("Change tier thresholds"), "form": form,
                   "plan": plan, "opts": self.model._meta}
        return TemplateResponse(request, "admin/rewards/tier/thresholds.html", context)


class ThresholdsForm(forms.Form):
    reason = forms.CharField(required=False, max_length=300)

    def __init__(self, *args, tiers, **kwargs):
        super().__init__(*args, **kwargs)
        self.tiers = tiers
        for tier in tiers:
            self.fields[f"tier_{tier.pk}"] = forms.DecimalField(label=tier.name, initial=tier.threshold, min_value=0,
                                                                decimal_places=3)

    def thresholds(self) -> dict[int, Decimal]:
        return {tier.pk: self.cleaned_data[f"tier_{tier.pk}"] for tier in self.tiers}


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "member", "from_tier", "to_tier", "cause", "measure", "actor_user", "reason"]
    list_filter = ["cause", "to_tier"]
    search_fields = ["member__email"]
    list_select_related = ["member", "from_tier", "to_tier", "actor_user"]


class SetTierForm(forms.Form):
    tier = forms.ModelChoiceField(Tier.objects.order_by("rank"))
    until = forms.DateTimeField(help_text=_("YYYY-MM-DD HH:MM. After this the normal review applies."))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=500)


def set_tier_view(request, member_id: int, model_admin):
    member = get_object_or_404(Member, pk=member_id)
    form = SetTierForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        until = form.cleaned_data["until"]
        if timezone.is_naive(until):
            until = timezone.make_aware(until)
        try:
            tier_services.tier_set_manually(member=member, tier=form.cleaned_data["tier"], until=until,
                                            reason=form.cleaned_data["reason"], actor_user=request.user)
        except DomainError as exc:
            for field, problems in exc.fields.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, _("%(member)s is %(tier)s until %(day)s.") % {
                "member": member, "tier": form.cleaned_data["tier"], "day": l10n.short_day(until)})
            return redirect(reverse("admin:accounts_member_change", args=[member.pk]))
    context = {**model_admin.admin_site.each_context(request),
               "title": _("Set the tier of %(member)s") % {"member": member}, "form": form,
               "member": member, "opts": Member._meta}
    return TemplateResponse(request, "admin/rewards/set_tier.html", context)


class BadgeLevelInline(admin.TabularInline):
    model = BadgeLevel
    extra = 1
    fields = ["level", "name", "threshold", "points_bonus", "image"]


@admin.register(Badge)
class BadgeAdmin(AuditedAdmin):
    list_display = ["name", "criterion", "activity_type", "levels_count", "holders", "is_active"]
    list_filter = ["criterion", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [BadgeLevelInline]

    @admin.display(description=_("Levels"))
    def levels_count(self, badge):
        return badge.levels.count()

    @admin.display(description=_("Awarded"))
    def holders(self, badge):
        return MemberBadge.objects.filter(level__badge=badge).count()

    def after_save(self, request, obj, change):
        # Missing images are drawn now; who already qualifies gets it in the background.
        progress_services.badge_saved(badge=obj)
        self.message_user(request, _("Members who already qualify receive this badge in the background."))

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MemberBadge)
class MemberBadgeAdmin(ReadOnlyAdmin):
    list_display = ["awarded_at", "member", "level"]
    list_filter = ["level__badge"]
    search_fields = ["member__email"]
    list_select_related = ["member", "level__badge"]


class ChallengeForm(forms.ModelForm):
    class Meta:
        model = Challenge
        fields = ["name", "description", "criterion", "activity_type", "threshold", "starts_at", "ends_at",
                  "enrollment", "reward_points", "reward_badge", "is_active"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("starts_at") and cleaned.get("ends_at") and cleaned["ends_at"] <= cleaned["starts_at"]:
            self.add_error("ends_at", _("Must be after the start."))
        if cleaned.get("criterion") in ("activity_count", "first") and not cleaned.get("activity_type"):
            self.add_error("activity_type", _("Counting activities needs their type, e.g. review_approved."))
        if cleaned.get("criterion") == "membership_years":
            self.add_error("criterion", _("Years of membership cannot grow inside a challenge's dates."))
        return cleaned


@admin.register(Challenge)
class ChallengeAdmin(AuditedAdmin):
    form = ChallengeForm
    list_display = ["name", "criterion", "threshold", "starts_at", "ends_at", "enrollment", "completed", "is_active"]
    list_filter = ["enrollment", "is_active"]

    @admin.display(description=_("Completed"))
    def completed(self, challenge):
        return challenge.entries.filter(completed_at__isnull=False).count()

    def after_save(self, request, obj, change):
        program_changed()
