import csv
import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Member
from campaigns import audience, selectors, services, stats
from campaigns.models import Campaign, CampaignEntry, CampaignStatus
from campaigns.selectors import MIN_GROUP
from core import l10n
from core.admin import ReadOnlyAdmin
from core.charts import bar_chart
from core.errors import DomainError
from insights.metrics import SEGMENTS
from rewards.models import Tier

LIST_MAX_BYTES = 2_000_000
NPS_CHOICES = [("promoter", "Promoters (9-10)"), ("passive", "Passives (7-8)"), ("detractor", "Detractors (0-6)")]
# Form field -> (audience field, op); a pair of fields for a range.
NUMBERS = {
    "p_alive_min": ("p_alive", "gte"), "p_alive_max": ("p_alive", "lte"),
    "clv_min": ("predicted_clv", "gte"), "revenue_min": ("revenue", "gte"), "revenue_max": ("revenue", "lte"),
    "orders_min": ("orders", "gte"), "orders_max": ("orders", "lte"),
    "days_since_min": ("days_since_last_order", "gte"), "days_since_max": ("days_since_last_order", "lte"),
    "points_min": ("points_available", "gte"), "expiring_min": ("points_expiring", "gte"),
}
TEXTS = {"bought_sku": "bought_sku", "bought_category": "bought_category", "event": "event"}


class CampaignForm(forms.ModelForm):
    """The campaign, with its audience as fields staff fill in (stored as the audience's conditions)."""

    match = forms.ChoiceField(choices=[("all", _("Members who match every condition below")),
                                       ("any", _("Members who match any condition below"))], initial="all",
                              label=_("Match"))
    segments = forms.MultipleChoiceField(choices=[(s, s) for s in SEGMENTS], required=False,
                                         widget=forms.CheckboxSelectMultiple, label=_("RFM segments"))
    p_alive_min = forms.FloatField(required=False, min_value=0, max_value=1, label=_("P(alive) at least"))
    p_alive_max = forms.FloatField(required=False, min_value=0, max_value=1, label=_("P(alive) at most"),
                                   help_text=_("For a win-back: at most 0.5, say."))
    clv_min = forms.DecimalField(required=False, min_value=0, label=_("Predicted CLV at least"))
    revenue_min = forms.DecimalField(required=False, min_value=0, label=_("Historic spend at least"))
    revenue_max = forms.DecimalField(required=False, min_value=0, label=_("Historic spend at most"))
    orders_min = forms.IntegerField(required=False, min_value=0, label=_("Orders at least"))
    orders_max = forms.IntegerField(required=False, min_value=0, label=_("Orders at most"))
    days_since_min = forms.IntegerField(required=False, min_value=0, label=_("Days since the last order at least"))
    days_since_max = forms.IntegerField(required=False, min_value=0, label=_("Days since the last order at most"))
    tiers = forms.ModelMultipleChoiceField(queryset=Tier.objects.order_by("rank"), required=False,
                                           widget=forms.CheckboxSelectMultiple)
    points_min = forms.IntegerField(required=False, min_value=0, label=_("Points available at least"),
                                    help_text=_("Near a reward: at least its price less 100, say."))
    expiring_min = forms.IntegerField(required=False, min_value=0, label=_("Points expiring within 30 days at least"))
    bought_sku = forms.CharField(required=False, label=_("Bought the SKU"))
    bought_category = forms.CharField(required=False, label=_("Bought in the category"))
    bought_days = forms.IntegerField(required=False, min_value=1, label=_("...within this many days"),
                                     help_text=_("Empty: ever. Also the window of the custom event."))
    nps = forms.MultipleChoiceField(choices=NPS_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
                                    label=_("Answered a survey as"))
    event = forms.CharField(required=False, label=_("Did the custom event (activity type)"))
    birthday_this_month = forms.BooleanField(required=False, label=_("Birthday this month"),
                                             help_text=_("With a monthly trigger: a birthday offer, once a year each."))
    joined_this_month = forms.BooleanField(required=False, label=_("Membership anniversary this month"),
                                           help_text=_("Joined in this month of an earlier year (monthly trigger)."))
    referral = forms.MultipleChoiceField(choices=[("referred_friends", _("Referred a friend who ordered")),
                                                  ("was_referred", _("Was referred by a friend")),
                                                  ("not_referred", _("Was not referred"))],
                                         required=False, widget=forms.CheckboxSelectMultiple, label=_("Referrals"))
    member_list = forms.FileField(required=False, label=_("A fixed list (CSV)"),
                                  help_text=_("One e-mail address or member id per line (commas or semicolons), "
                                  "at most 2 MB. Replaces the list saved."))
    member_list_clear = forms.BooleanField(required=False, label=_("Remove the saved list"))

    class Meta:
        model = Campaign
        fields = ["name", "trigger", "starts_at", "ends_at", "offer", "offer_points", "offer_reward",
                  "offer_multiplier", "offer_categories", "offer_skus", "offer_days", "title", "body", "delivery",
                  "holdout_percent", "report_days"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = self.instance.audience or {}
        self.fields["match"].initial = spec.get("match", "all")
        for condition in spec.get("conditions", []):
            field, op, value = condition["field"], condition["op"], condition["value"]
            if field == "segment":
                self.fields["segments"].initial = value
            elif field == "tier":
                self.fields["tiers"].initial = value
            elif field == "nps":
                self.fields["nps"].initial = value
            elif field in ("birthday_this_month", "joined_this_month"):
                self.fields[field].initial = True
            elif field == "referral":
                self.fields["referral"].initial = value
            elif field in TEXTS.values():
                self.fields[field].initial = value
                self.fields["bought_days"].initial = condition.get("days")
            for name, (target, target_op) in NUMBERS.items():
                if (field, op) == (target, target_op):
                    self.fields[name].initial = value

    def clean_member_list(self):
        upload = self.cleaned_data.get("member_list")
        if not upload:
            return None
        ids, bad = [], []
        if upload.size > LIST_MAX_BYTES:
            raise ValidationError(_("The list is larger than %(size)s MB; split it.") % {
                "size": LIST_MAX_BYTES // 1_000_000})
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark.
        text = upload.read().decode("utf-8-sig", errors="replace")
        lines = [row[0].strip() if row else "" for row in csv.reader(io.StringIO(text.replace(";", ",")))]
        emails = {line.lower() for line in lines if "@" in line}
        known = dict(Member.objects.filter(email__in=emails, erased_at__isnull=True).values_list("email", "pk"))
        numbers = {int(line) for line in lines if line.isdigit()}
        real = set(Member.objects.filter(pk__in=numbers, erased_at__isnull=True).values_list("pk", flat=True))
        for number, line in enumerate(lines, start=1):
            if not line or (number == 1 and line.lower() in ("email", "member", "member_id", "id")):
                continue
            if "@" in line and line.lower() in known:
                ids.append(known[line.lower()])
            elif line.isdigit() and int(line) in real:
                ids.append(int(line))
            else:
                bad.append(_("line %(number)s (%(text)s)") % {"number": number, "text": line[:40]})
        if bad:
            named = ", ".join(bad[:10]) + (_(" and more") if len(bad) > 10 else "")
            raise ValidationError(ngettext("No member for %(lines)s; the %(count)s other is fine.",
                                           "No member for %(lines)s; the %(count)s others are fine.", len(ids)) % {
                "lines": named, "count": len(ids)})
        if not ids:
            raise ValidationError(_("The list has no member in it."))
        return sorted(set(ids))

    def audience(self) -> dict:
        data = self.cleaned_data
        conditions = []
        if data.get("segments"):
            conditions.append({"field": "segment", "value": list(data["segments"])})
        for name, (field, op) in NUMBERS.items():
            if data.get(name) is not None:
                conditions.append({"field": field, "op": op, "value": str(data[name])})
        if data.get("tiers"):
            conditions.append({"field": "tier", "value": [tier.pk for tier in data["tiers"]]})
        for name, field in TEXTS.items():
            if data.get(name):
                conditions.append({"field": field, "value": data[name],
                                   **({"days": data["bought_days"]} if data.get("bought_days") else {})})
        if data.get("nps"):
            conditions.append({"field": "nps", "value": list(data["nps"])})
        for flag in ("birthday_this_month", "joined_this_month"):
            if data.get(flag):
                conditions.append({"field": flag, "value": True})
        if data.get("referral"):
            conditions.append({"field": "referral", "value": list(data["referral"])})
        listed = data.get("member_list")
        if data.get("member_list_clear") and listed is None:
            listed = []
        elif listed is None:  # keep the list saved before
            listed = next((c["value"] for c in (self.instance.audience or {}).get("conditions", [])
                           if c["field"] == "members"), None)
        if listed:
            conditions.append({"field": "members", "value": listed})
        return {"match": data.get("match") or "all", "conditions": conditions}

    def _post_clean(self):
        super()._post_clean()
        self.instance.audience = self.audience() if not self.errors else self.instance.audience
        for name, message in services.campaign_problems(self.instance).items():
            self.add_error(name if name in self.fields else None, message)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "status", "trigger", "offer", "holdout_percent", "starts_at", "last_run_at"]
    list_filter = ["status", "trigger", "offer"]
    search_fields = ["name"]
    readonly_fields = ["status", "audience_now", "last_run_at", "entered"]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "status", "trigger", "starts_at", "ends_at", "last_run_at", "entered"]}),
        (_("Audience"), {"fields": ["match", "segments", ("p_alive_min", "p_alive_max"), "clv_min",
                                 ("revenue_min", "revenue_max"), ("orders_min", "orders_max"),
                                 ("days_since_min", "days_since_max"), "tiers", ("points_min", "expiring_min"),
                                 ("bought_sku", "bought_category", "bought_days"), "nps", "event",
                                 "birthday_this_month", "joined_this_month", "referral",
                                 ("member_list", "member_list_clear"),
                                 "audience_now"],
                      "description": _("Members who refused offers and news are never in it.")}),
        (_("Offer"), {"fields": ["offer", "offer_points", "offer_reward",
                              ("offer_multiplier", "offer_days"), ("offer_categories", "offer_skus")]}),
        (_("Message"), {"fields": ["title", "body", "delivery"],
                        "description": _("Placeholders: {first_name}, {points}, {tier}, {next_reward}, {recommended} "
                                         "(the member's first \"for you\" product), {offer}, {program}. Sent on "
                                         "the member's channel for offers and news, under the weekly cap.")}),
        (_("Measuring it"), {"fields": ["holdout_percent", "report_days"]}),
    ]

    @admin.display(description=_("Entered so far"))
    def entered(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        groups = dict(CampaignEntry.objects.filter(campaign=obj).values_list("group").annotate(n=Count("pk")))
        url = reverse("admin:campaigns_campaignentry_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html('{}: <a href="{}">{}</a>', _("%(sent)s sent, %(held)s held out") % {
            "sent": l10n.number(groups.get("treated", 0)), "held": l10n.number(groups.get("holdout", 0))}, url,
            _("every entry"))

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in ("starts_at", "ends_at"):
            # One labelled input (the admin's split date and time inputs have no label of their own).
            kwargs["widget"] = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
            return db_field.formfield(**kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    class Media:
        js = ["js/campaign-audience.js"]  # the count below follows the audience fields as staff change them

    @admin.display(description=_("In the audience now"))
    def audience_now(self, obj):
        # The script's own words come with the box, in the page's language.
        box = ('<span data-audience-count data-counting="{}" data-not-counted="{}" data-failed="{}">{}</span>')
        words = (_("Counting…"), _("Not counted:"), _("Could not count just now."))
        if obj is None or obj.pk is None:
            return format_html(box, *words, _("Fill in the conditions to see who is in it."))
        return format_html(box, *words, audience_words(obj))

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.status == CampaignStatus.DRAFT

    def save_model(self, request, obj, form, change):
        services.campaign_save(campaign=obj, actor_user=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/status/<str:status>/", view(self.status_view), name="campaigns_campaign_status"),
            path("<int:pk>/run/", view(self.run_view), name="campaigns_campaign_run"),
            path("<int:pk>/test/", view(self.test_view), name="campaigns_campaign_test"),
            path("<int:pk>/report/", view(self.report_view), name="campaigns_campaign_report"),
            path("audience/", view(self.audience_view), name="campaigns_campaign_audience"),
            *super().get_urls(),
        ]

    def _post_only(self, request):
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied

    def _back(self, campaign):
        return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    def status_view(self, request, pk, status):
        self._post_only(request)
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            services.campaign_set_status(campaign=campaign, status=status, actor_user=request.user)
            messages.success(request, _("The campaign is %(status)s.") % {
                "status": str(CampaignStatus(status).label).lower()})
        except DomainError as exc:
            messages.error(request, exc.message)
        return self._back(campaign)

    def run_view(self, request, pk):
        self._post_only(request)
        campaign = get_object_or_404(Campaign.objects.select_related("offer_reward"), pk=pk)
        result = services.campaign_run(campaign=campaign)
        if result.occurrence is None:
            messages.warning(request, _("Nothing is due: the campaign is not running, not started, over, or has run."))
        else:
            messages.success(request, _("%(entered)s entered (%(sent)s sent, %(held)s held out).") % {
                "entered": l10n.number(result.entered), "sent": l10n.number(result.treated),
                "held": l10n.number(result.held_out)})
        return self._back(campaign)

    def test_view(self, request, pk):
        self._post_only(request)
        campaign = get_object_or_404(Campaign.objects.select_related("offer_reward"), pk=pk)
        try:
            services.campaign_test_send(campaign=campaign, user=request.user)
            messages.success(request, _("A test is on its way to %(email)s.") % {"email": request.user.email})
        except DomainError as exc:
            messages.error(request, exc.message)
        return self._back(campaign)

    def audience_view(self, request):
        """The audience of the campaign as the form stands, unsaved (the page's script asks as
        staff change a condition): the count in words, or what is wrong, by field."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        instance = Campaign.objects.filter(pk=request.POST.get("campaign_id") or None).first() or Campaign()
        form = self.get_form(request, instance)(request.POST, request.FILES, instance=instance)
        form.is_valid()
        names = set(self.form.declared_fields) | {"holdout_percent", "report_days", "offer", "offer_points"}
        problems = {name: [str(e) for e in errors] for name, errors in form.errors.items() if name in names}
        if problems:
            return JsonResponse({"errors": problems}, status=400)
        campaign = form.instance
        campaign.audience = form.audience()  # whatever else on the page is still unfinished
        try:
            audience.check(campaign.audience)
        except DomainError as exc:
            return JsonResponse({"errors": exc.fields}, status=400)
        return JsonResponse({"html": str(audience_words(campaign))})

    def report_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            days = int(request.GET.get("days") or campaign.report_days)
        except ValueError:
            days = campaign.report_days
        days = min(max(days, 1), 365)
        report = selectors.campaign_report(campaign=campaign, window_days=days)
        chart = bar_chart([(_("Sent"), 100 * (report.treated.rate or 0)),
                           (_("Held out"), 100 * (report.holdout.rate or 0))],
                          title=_("Share who ordered in the window, %"))
        return TemplateResponse(request, "admin/campaigns/campaign/report.html", {
            **self.admin_site.each_context(request), "title": _("Report: %(campaign)s") % {"campaign": campaign},
            "campaign": campaign,
            "report": report, "rates": report_words(report), "chart": chart, "days": days,
            "opts": self.model._meta})


def audience_words(campaign: Campaign) -> str:
    """Who is in a campaign's audience now, what holding some out and the offer mean, in words."""
    count, sample = selectors.audience_preview(audience_spec=campaign.audience)
    baseline = selectors.baseline_rate(audience_spec=campaign.audience, days=campaign.report_days)
    held = round(count * campaign.holdout_percent / 100)
    mde = stats.minimum_detectable_rate_effect(baseline, count - held, held)
    cost = campaign.offer_cost_points * (count - held)
    names = format_html_join(", ", "{}", ((m["email"] or _("member #%(id)s") % {"id": m["pk"]},) for m in sample))
    words = (_("%(rise)s percentage points on a %(baseline)s%% baseline") % {
        "rise": l10n.decimal(mde * 100, 1), "baseline": l10n.decimal(baseline * 100, 1)} if mde is not None
             else _("none: too few members to hold some out"))
    return format_html("<strong>{}</strong> ({}).<br>{}",
                       ngettext("%(count)s member", "%(count)s members", count) % {"count": l10n.number(count)},
                       _("for example %(names)s") % {"names": names} if names else _("for example nobody"),
                       _("Held out: about %(held)s. Offer cost: about %(cost)s. Smallest rise in the %(days)s-day "
                         "order rate the report could show (80%% of the time): %(words)s.") % {
                           "held": l10n.number(held), "cost": l10n.points(cost), "days": campaign.report_days,
                           "words": words})


def report_words(report) -> dict[str, str]:
    """The report's figures as the page prints them: rates in %, differences in points, intervals."""
    def share(rate):
        return "-" if rate is None else f"{l10n.decimal(100 * rate, 1)}%"

    def signed(value, places):
        return ("+" if value >= 0 else "-") + l10n.decimal(abs(value), places)

    c, r = report.conversion, report.revenue_per_member
    both = report.treated.members and report.holdout.members
    verdicts = {"likely positive": _("likely positive"), "likely negative": _("likely negative"),
                "no measurable effect yet": _("no measurable effect yet")}
    return {
        "treated": share(report.treated.rate), "holdout": share(report.holdout.rate),
        "difference": _("%(estimate)s percentage points (%(low)s to %(high)s)") % {
            "estimate": signed(100 * c.estimate, 1), "low": signed(100 * c.low, 1), "high": signed(100 * c.high, 1)}
        if both else "-",
        "revenue": f"{signed(r.estimate, 2)} ({signed(r.low, 2)} {_('to')} {signed(r.high, 2)})" if both else "-",
        "verdict": verdicts.get(report.verdict) or (
            _("too few members to measure yet (at least %(count)s in each group are needed)") % {"count": MIN_GROUP}),
    }


@admin.register(CampaignEntry)
class CampaignEntryAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "member", "occurrence", "group", "entered_at", "offer_points"]
    list_filter = ["group", "campaign"]
    raw_id_fields = ["member"]
    list_select_related = ["campaign", "member"]
