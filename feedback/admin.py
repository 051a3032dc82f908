from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.admin import AuditedAdmin
from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.charts import bar_chart, line_chart
from core.errors import DomainError
from feedback import selectors, services
from feedback.models import (
    FollowUp,
    Referral,
    ReferralSettings,
    ReferralStatus,
    Survey,
    SurveyQuestion,
)
from rewards.models import Order


class QuestionInline(admin.StackedInline):
    model = SurveyQuestion
    fk_name = "survey"
    extra = 0
    fields = [("position", "kind", "required"), "text", "options", "scale_max",
              ("show_if_question", "show_if_min", "show_if_max")]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "show_if_question":
            survey_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = SurveyQuestion.objects.filter(survey_id=survey_id, kind__in=["nps", "csat", "rating"])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Survey)
class SurveyAdmin(AuditedAdmin):
    list_display = ["name", "audience", "opens_at", "closes_at", "is_active", "results_link"]
    list_filter = ["audience", "is_active"]
    inlines = [QuestionInline]
    fields = ["name", "intro", "audience", "tier", "days_after_order", "repeat_every_days", "opens_at", "closes_at",
              "is_active"]

    @admin.display(description=_("Results"))
    def results_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:feedback_survey_results", args=[obj.pk]),
                           _("Results"))

    def get_urls(self):
        return [
            path("<int:survey_id>/results/", self.admin_site.admin_view(self.results_view),
                 name="feedback_survey_results"),
            path("<int:survey_id>/results.csv", self.admin_site.admin_view(self.csv_view),
                 name="feedback_survey_csv"),
            *super().get_urls(),
        ]

    def results_view(self, request, survey_id: int):
        survey = get_object_or_404(Survey, pk=survey_id)

        def score(name):
            value = request.GET.get(name, "")
            return int(value) if value.isdigit() and int(value) <= 10 else None

        results = selectors.survey_results(survey=survey, text_min=score("min"), text_max=score("max"))
        charts = {}
        for result in results.questions:
            if result.counts:
                charts[result.question.pk] = bar_chart([(label, count) for label, count, _ in result.counts],
                                                       title=result.question.text)
        trend = line_chart([(f"{week:%d %b}", nps) for week, _, nps in results.trend], low=-100, high=100,
                           title=_("NPS by week"))
        return TemplateResponse(request, "admin/feedback/results.html", {
            **self.admin_site.each_context(request), "title": _("Results: %(survey)s") % {"survey": survey.name},
            "results": results,
            "charts": charts, "trend": trend, "opts": self.model._meta, "min": request.GET.get("min", ""),
            "max": request.GET.get("max", ""),
        })

    def csv_view(self, request, survey_id: int):
        survey = get_object_or_404(Survey, pk=survey_id)
        response = StreamingHttpResponse(selectors.survey_csv_rows(survey=survey), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="survey-{survey.pk}-answers.csv"'
        return response


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    """Detractors to contact: open ones first."""

    list_display = ["member", "score", "comment", "created_at", "handled_at", "handled_by"]
    list_filter = [("handled_at", admin.EmptyFieldListFilter)]
    list_select_related = ["member", "handled_by"]
    readonly_fields = ["member", "score", "comment", "created_at", "recent_orders", "handled_at", "handled_by"]
    fields = ["member", "score", "comment", "recent_orders", "created_at", "note", "handled_at", "handled_by"]
    actions = ["mark_handled"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("Recent orders"))
    def recent_orders(self, obj):
        orders = Order.objects.filter(member_id=obj.member_id).order_by("-placed_at")[:5]
        return format_html_join("", "<div>{} · {} {} · {}</div>", (
            (order.order_id, order.total, order.currency, f"{order.placed_at:%Y-%m-%d}") for order in orders)) or "-"

    @admin.action(description=_("Mark handled"))
    def mark_handled(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            services.follow_up_handle(follow_up_id=pk, staff_user=request.user)
        self.message_user(request, _("Marked handled."), messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        services.follow_up_handle(follow_up_id=obj.pk, staff_user=request.user, note=form.cleaned_data["note"])

    def has_delete_permission(self, request, obj=None):
        return False  # handled, not forgotten


class VoidActionForm(ActionForm):
    reason = forms.CharField(required=False, label=_("Reason (to void)"))


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ["referrer", "friend", "status", "flag_list", "source", "created_at", "converted_at",
                    "rewarded_at", "void_reason"]
    list_filter = ["status", "source"]
    search_fields = ["referrer__email", "friend__email", "referrer__referral_code"]
    list_select_related = ["referrer", "friend"]
    action_form = VoidActionForm
    actions = ["approve_selected", "void_selected"]
    readonly_fields = [f.name for f in Referral._meta.fields]

    @admin.display(description=_("Flags"))
    def flag_list(self, obj):
        return ", ".join(obj.flags) or "-"

    @admin.action(description=_("Approve the selected flagged referrals"))
    def approve_selected(self, request, queryset):
        done = 0
        for pk in queryset.filter(status=ReferralStatus.HELD).values_list("pk", flat=True):
            services.referral_approve(referral_id=pk, staff_user=request.user)
            done += 1
        self.message_user(request, _("%(count)s approved.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Void the selected (type the reason first)"))
    def void_selected(self, request, queryset):
        reason = request.POST.get("reason", "")
        try:
            for pk in queryset.values_list("pk", flat=True):
                services.referral_void(referral_id=pk, staff_user=request.user, reason=reason)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("Voided; any points were reversed."), messages.SUCCESS)


@admin.register(ReferralSettings)
class ReferralSettingsAdmin(SingletonAdmin, AuditedAdmin):
    def settings_row(self):
        return services.referral_settings()
