from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Prefetch, When
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import AuditedAdmin
from community import services
from community.models import (
    Answer,
    CommunitySettings,
    Flag,
    ModerationLog,
    ModerationStatus,
    Product,
    PublicProfile,
    Question,
    Review,
    ReviewPhoto,
    Spotlight,
)
from community.services import public_profile_update, spotlight_create
from core import l10n
from core.admin import ReadOnlyAdmin, SingletonAdmin
from core.errors import DomainError


@admin.register(PublicProfile)
class PublicProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "member", "is_public", "updated_at"]
    list_filter = ["is_public"]
    search_fields = ["display_name", "member__email"]
    fields = ["member", "is_public", "display_name", "avatar"]
    readonly_fields = ["member"]

    def save_model(self, request, obj, form, change):
        # The member's own path: the picture cleaned (location data gone), the name checked; audited.
        avatar = form.cleaned_data.get("avatar")
        new_avatar = avatar if "avatar" in form.changed_data and avatar else None
        try:
            public_profile_update(member=obj.member, is_public=obj.is_public, display_name=obj.display_name,
                                  avatar=new_avatar, remove_avatar=avatar is False, actor_user=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            raise

    def has_add_permission(self, request):
        return False  # members make their own profiles

    def has_delete_permission(self, request, obj=None):
        return False  # erasing the member removes it


@admin.register(Spotlight)
class SpotlightAdmin(AuditedAdmin):
    list_display = ["headline", "member", "starts_at", "ends_at", "created_by"]
    raw_id_fields = ["member"]
    fields = ["member", "headline", "text", "ends_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return  # an edit: AuditedAdmin.save_related saves it, audited
        try:
            created = spotlight_create(member=obj.member, headline=obj.headline, text=obj.text,
                                       actor_user=request.user, ends_at=obj.ends_at)
        except DomainError as exc:
            messages.error(request, exc.message)
            raise
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)


# --- Products, reviews, questions: the moderation queue ---------------------------------------------


class ModerationActionForm(ActionForm):
    reason = forms.CharField(required=False, label=_("Reason (shown to the member when rejecting)"),
                             widget=forms.TextInput(attrs={"size": 40}))


class FlaggedFilter(admin.SimpleListFilter):
    title = _("flags")
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [("any", _("Any flag")), *Flag.choices]

    def queryset(self, request, queryset):
        if self.value() == "any":
            return queryset.exclude(flags=[])
        if self.value() in Flag.values:
            # JSON "contains" is not on SQLite; the flag names are distinct words, so text search is exact.
            return queryset.filter(flags__icontains=f'"{self.value()}"')
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """The queue opens on what waits; "All" is one click away."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*ModerationStatus.choices, ("all", _("All"))]

    def choices(self, changelist):
        current = self.value() or ModerationStatus.PENDING
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request, queryset):
        value = self.value() or ModerationStatus.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


def _moderate_selected(approve: bool):
    def action(modeladmin, request, queryset):
        reason = request.POST.get("reason", "")
        try:
            changed = modeladmin.moderate(ids=list(queryset.values_list("pk", flat=True)), approve=approve,
                                          moderator=request.user, reason=reason)
        except DomainError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
            return
        done = ngettext("%(count)s published.", "%(count)s published.", changed) if approve else \
            ngettext("%(count)s rejected.", "%(count)s rejected.", changed)
        modeladmin.message_user(request, done % {"count": changed}, messages.SUCCESS)

    action.__name__ = "approve_selected" if approve else "reject_selected"
    action.short_description = _("Approve and publish the selected") if approve else \
        _("Reject the selected (type the reason first)")
    return action


class DecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(required=False, choices=[("", _("No change")), ("approve", _("Approve and publish")),
                                                          ("reject", _("Reject"))], label=_("Moderation decision"))
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Required to reject; the member sees it."))

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Say why, for the member."))
        return data


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = ["name", "sku", "category", "partner", "updated_at"]
    search_fields = ["sku", "name"]
    list_filter = ["category"]
    readonly_fields = ["partner", "created_at", "updated_at"]

    def view_on_site(self, obj):
        return reverse("community:product", args=[obj.sku])


class PhotoInline(admin.TabularInline):
    model = ReviewPhoto
    extra = 0
    can_delete = False
    fields = ["preview", "width", "height"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # photos change with the member's own edit of their review

    @admin.display(description=_("Photo"))
    def preview(self, photo):
        return format_html('<a href="{}"><img src="{}" height="80" alt=""></a>', photo.image.url, photo.thumbnail.url)


class QueueAdmin(admin.ModelAdmin):
    """A moderation queue: pending first, oldest first (by ``written_field``); flags say what to
    look at; approve or reject one at a time (a decision on its page), the selected ones, or one
    click from the list (approve, or reject with a reason from the store's list), with keyboard
    shortcuts (j / k, a, r: ``static/js/moderation-queue.js``)."""

    written_field = "created_at"
    form = DecisionForm
    action_form = ModerationActionForm
    actions = [_moderate_selected(True), _moderate_selected(False)]
    change_list_template = "admin/community/queue_change_list.html"

    class Media:
        js = ["js/moderation-queue.js"]
        css = {"all": ["css/moderation-queue.css"]}

    def moderate(self, *, ids, approve, moderator, reason) -> int:
        raise NotImplementedError

    def headline(self, obj) -> str:
        """How a decision's message names the post."""
        return obj.text if len(obj.text) <= 60 else obj.text[:59].rstrip() + "…"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by(
            Case(When(status=ModerationStatus.PENDING, then=0), default=1), self.written_field)

    @admin.display(description=_("Flags"))
    def flag_list(self, obj):
        labels = dict(Flag.choices)
        return ", ".join(str(labels.get(flag, flag)) for flag in obj.flags) or "-"

    def changelist_view(self, request, extra_context=None):
        self._reasons = services.community_settings().reasons()  # once per page, for every row's menu
        return super().changelist_view(request, extra_context)

    def _decide_url(self, obj, decision: str) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_decide", args=[obj.pk, decision])

    @admin.display(description=_("Decide"))
    def decide(self, obj):
        """One click from the queue: approve, or reject with a reason from the store's list. The
        buttons submit the list's own form to this post's decision (no form inside a form)."""
        if obj.status != ModerationStatus.PENDING:
            return "-"
        options = format_html('<option value="">{}</option>{}', _("Reason to reject…"), format_html_join(
            "", '<option value="{}">{}</option>', ((text, text[:60]) for text in getattr(self, "_reasons", []))))
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" data-decide="approve">{}'
            '</button> <select name="reason-{}" aria-label="{}" data-decide="reason">{}</select> '
            '<button type="submit" class="button" formaction="{}" formmethod="post" data-decide="reject">{}'
            '</button>', self._decide_url(obj, "approve"), _("Approve"), obj.pk,
            _("Reason to reject %(post)s %(id)s") % {"post": self.opts.verbose_name, "id": obj.pk}, options,
            self._decide_url(obj, "reject"), _("Reject"))

    def get_urls(self):
        return [path("<int:pk>/decide/<str:decision>/", self.admin_site.admin_view(self.decide_view),
                     name=f"{self.opts.app_label}_{self.opts.model_name}_decide"), *super().get_urls()]

    def decide_view(self, request, pk, decision):
        """A decision from the queue's buttons, through ``moderate`` like the bulk actions."""
        if request.method != "POST" or not self.has_change_permission(request) or decision not in ("approve",
                                                                                                   "reject"):
            raise PermissionDenied
        obj = get_object_or_404(self.model, pk=pk)
        try:
            if decision == "approve":
                self.moderate(ids=[obj.pk], approve=True, moderator=request.user, reason="")
                messages.success(request, _("Published: %(post)s.") % {"post": self.headline(obj)})
            else:
                choice = request.POST.get(f"reason-{pk}", "")
                if choice not in services.community_settings().reasons():  # the reason as staff saw it
                    raise DomainError(_("Pick a reason for the member first."))
                self.moderate(ids=[obj.pk], approve=False, moderator=request.user, reason=choice)
                messages.success(request, _("Rejected: %(post)s (%(reason)s)") % {"post": self.headline(obj),
                                                                                  "reason": choice})
        except DomainError as exc:
            messages.error(request, exc.message)
        back = request.headers.get("Referer") or ""
        return redirect(back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
                        else reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # reject instead: the decision is logged and the member told


class ReviewDecisionForm(DecisionForm):
    reply_template = forms.ChoiceField(
        required=False, label=_("Saved reply"),
        help_text=_("Puts a saved reply (Community settings) in the box below, to change before saving if you like."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        replies = services.community_settings().replies()
        self.fields["reply_template"].choices = [("", _("Write my own")), *((text, text[:80]) for text in replies)]


@admin.register(Review)
class ReviewAdmin(QueueAdmin):
    written_field = "submitted_at"
    form = ReviewDecisionForm
    list_display = ["thumbnail", "summary", "product", "stars", "status", "flag_list", "report_count", "submitted_at",
                    "decide"]
    list_display_links = ["summary"]
    list_filter = [StatusFilter, FlaggedFilter, "verified_buyer", "featured", "rating"]
    search_fields = ["title", "text", "product__sku", "product__name", "member__email"]
    list_select_related = ["product", "member"]
    list_per_page = 25
    ordering = ["-status", "submitted_at"]
    inlines = [PhotoInline]
    readonly_fields = ["product", "member", "rating", "title", "text", "status", "flag_list", "verified_buyer",
                       "rejection_reason", "rewarded", "helpful_count", "report_count", "submitted_at",
                       "published_at", "moderated_at", "history"]
    fieldsets = [
        (None, {"fields": ["product", "member", "rating", "title", "text", "verified_buyer", "submitted_at"]}),
        (_("Moderation"), {"fields": ["status", "flag_list", "report_count", "rejection_reason", "decision", "reason",
                                   "history"]}),
        (_("Public"), {"fields": ["reply_template", "staff_reply", "featured", "rewarded", "helpful_count",
                               "published_at"]}),
    ]

    @admin.display(boolean=True)
    def rewarded(self, obj):
        return obj.rewarded

    def get_queryset(self, request):
        photos = Prefetch("photos", queryset=ReviewPhoto.objects.order_by("position", "id"), to_attr="listed_photos")
        return super().get_queryset(request).prefetch_related(photos)

    @admin.display(description=_("Photo"))
    def thumbnail(self, obj):
        photos = getattr(obj, "listed_photos", None)
        if not photos:
            return "-"
        more = f" +{len(photos) - 1}" if len(photos) > 1 else ""
        return format_html('<img src="{}" alt="{}" width="48" height="48" loading="lazy" '
                           'style="object-fit:cover;border-radius:4px">{}', photos[0].thumbnail.url,
                           _("Photo of the review"), more)

    @admin.display(description=_("Review"), ordering="title")
    def summary(self, obj):
        text = obj.text if len(obj.text) <= 140 else obj.text[:139].rstrip() + "…"
        who = f"{obj.member}{' · ' + str(_('verified buyer')) if obj.verified_buyer else ''}"
        return format_html('<strong>{}</strong><br><span style="white-space:normal">{}</span><br><small>{}</small>',
                           obj.title, text, who)

    @admin.display(description=_("Rating"), ordering="rating")
    def stars(self, obj):
        return format_html('<span aria-label="{}" title="{}">{}</span>',
                           _("%(rating)s out of 5 stars") % {"rating": obj.rating},
                           _("%(rating)s out of 5") % {"rating": obj.rating},
                           "★" * obj.rating + "☆" * (5 - obj.rating))

    @admin.display(description=_("Moderation log"))
    def history(self, obj):
        rows = ModerationLog.objects.filter(subject=f"review:{obj.pk}").select_related("actor_user")[:20]
        return format_html_join(mark_safe("<br>"), "{} · {} · {} {}", (
            (l10n.short_day(row.created_at) + f" {timezone.localtime(row.created_at):%H:%M}", row.action,
             row.actor_user or _("automatic"), row.reason)
            for row in rows)) or "-"

    def headline(self, obj) -> str:
        return obj.title

    def moderate(self, *, ids, approve, moderator, reason):
        return services.reviews_moderate(review_ids=ids, approve=approve, moderator=moderator, reason=reason)

    def save_model(self, request, obj, form, change):
        """Every change goes through the services (points, log, the member told); nothing is saved here."""
        data = form.cleaned_data
        if "staff_reply" in form.changed_data:
            services.review_reply(review_id=obj.pk, moderator=request.user, text=data["staff_reply"])
        elif data.get("reply_template"):  # a saved reply picked without a script to put it in the box
            services.review_reply(review_id=obj.pk, moderator=request.user, text=data["reply_template"])
        if data.get("decision") == "approve":
            services.review_approve(review_id=obj.pk, moderator=request.user, reason=data.get("reason", ""))
        elif data.get("decision") == "reject":
            services.review_reject(review_id=obj.pk, moderator=request.user, reason=data["reason"])
        if "featured" in form.changed_data:
            try:
                services.review_feature(review_id=obj.pk, moderator=request.user, featured=data["featured"])
            except DomainError as exc:
                messages.error(request, exc.message)


class PostAdmin(QueueAdmin):
    """Questions and answers."""

    kind = ""
    list_filter = [StatusFilter, FlaggedFilter]

    def moderate(self, *, ids, approve, moderator, reason):
        if not approve and not reason.strip():
            raise DomainError(_("Type the reason for the members first."))
        return sum(services.post_moderate(kind=self.kind, post_id=pk, approve=approve, moderator=moderator,
                                          reason=reason) for pk in sorted(ids))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if data.get("decision"):
            services.post_moderate(kind=self.kind, post_id=obj.pk, approve=data["decision"] == "approve",
                                   moderator=request.user, reason=data.get("reason", ""))


class QuestionDecisionForm(DecisionForm):
    staff_answer = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text=_("Answer as the store: published at once, and the asker is told."))


@admin.register(Question)
class QuestionAdmin(PostAdmin):
    kind = "question"
    form = QuestionDecisionForm
    list_display = ["text", "product", "member", "status", "flag_list", "created_at", "decide"]
    search_fields = ["text", "product__sku", "member__email"]
    list_select_related = ["product", "member"]
    readonly_fields = ["product", "member", "text", "status", "flag_list", "rejection_reason", "created_at"]
    fields = ["product", "member", "text", "status", "flag_list", "rejection_reason", "decision", "reason",
              "staff_answer"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        text = form.cleaned_data.get("staff_answer", "").strip()
        if text:
            try:
                services.answer_post(question_id=obj.pk, text=text, staff_user=request.user)
            except DomainError as exc:
                messages.error(request, _("The answer was not saved: %(problem)s") % {"problem": exc.message})


@admin.register(Answer)
class AnswerAdmin(PostAdmin):
    kind = "answer"
    list_display = ["text", "question", "member", "staff_user", "status", "flag_list", "created_at", "decide"]
    search_fields = ["text", "member__email"]
    list_select_related = ["question", "member", "staff_user"]
    readonly_fields = ["question", "member", "staff_user", "text", "status", "flag_list", "rejection_reason",
                       "verified_buyer", "helpful_count", "created_at"]
    fields = ["question", "member", "staff_user", "text", "verified_buyer", "status", "flag_list",
              "rejection_reason", "decision", "reason"]


@admin.register(CommunitySettings)
class CommunitySettingsAdmin(SingletonAdmin):
    fields = ["allow_unverified_reviews", "banned_words", "posts_per_hour", "burst_count", "burst_minutes",
              "auto_publish_min_rating", "rejection_reasons", "reply_templates"]

    def settings_row(self):
        return services.community_settings()

    def save_model(self, request, obj, form, change):
        settings = services.community_settings_update(
            actor_user=request.user, changes={name: form.cleaned_data[name] for name in form.changed_data})
        if getattr(settings, "rechecked", 0):
            messages.warning(request, ngettext(
                "%(count)s published post contains a banned word and waits for moderation again.",
                "%(count)s published posts contain a banned word and wait for moderation again.",
                settings.rechecked) % {"count": settings.rechecked})


@admin.register(ModerationLog)
class ModerationLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subject", "action", "actor_user", "reason"]
    list_filter = ["action"]
    search_fields = ["subject", "reason"]
