import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import ApiKey, AuditLog, ConsentEvent, ExternalId, Member, Partner, Scope, User
from core import l10n
from core.errors import DomainError


class AuditedAdmin(admin.ModelAdmin):
    """An admin whose saves go through ``accounts.services.staff_save``: the row, its many-to-many
    fields and its inlines in one transaction, with one audit row. ``after_save`` is for what the
    app does next (draw badge images, forget cached rules)."""

    def save_model(self, request, obj, form, change):
        pass  # saved with its inlines in save_related, in one transaction

    def save_related(self, request, form, formsets, change):
        obj = services.staff_save(form=form, formsets=formsets, actor_user=request.user)
        self.after_save(request, obj, change)

    def after_save(self, request, obj, change) -> None:
        pass

    def has_delete_permission(self, request, obj=None):
        # Catalogue rows are retired (``is_active``), not deleted: orders, coupons and answers point at them.
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class ExternalIdInline(ReadOnlyInline):
    model = ExternalId
    fields = ["partner", "external_id", "created_at"]
    readonly_fields = fields


class ConsentEventInline(ReadOnlyInline):
    model = ConsentEvent
    fields = ["created_at", "purpose", "channel", "source", "partner"]
    readonly_fields = fields
    verbose_name_plural = _("Consent history")


class EraseForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text=_("Who asked and how, for the audit log (a ticket number)."))


class MemberForm(forms.ModelForm):
    """The service's rules, checked here so that a refusal shows next to its field."""

    class Meta:
        model = Member
        fields = ["email", "first_name", "last_name", "birthday", "phone"]

    def clean_email(self):
        email = services.normalize_email(self.cleaned_data.get("email"))
        try:
            services.member_email_check(email=email, member=self.instance)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        return email

    def clean_phone(self):
        try:
            return services.normalize_phone(self.cleaned_data.get("phone"))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):  # its own service: member_staff_update
    form = MemberForm
    change_form_template = "admin/accounts/member/change_form.html"
    list_display = ["__str__", "email", "points_available", "points_pending", "created_at", "has_login"]
    list_filter = [("user", admin.EmptyFieldListFilter), ("erased_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "first_name", "last_name", "phone", "referral_code", "external_ids__external_id"]
    search_help_text = _("Email, name, phone, referral code or a partner's external id.")
    date_hierarchy = "created_at"
    inlines = [ExternalIdInline, ConsentEventInline]
    readonly_fields = [
        "user", "referral_code", "points_summary", "last_activity_at",
        "offers_channel", "reminders_channel", "surveys_channel", "statements_channel", "created_at", "updated_at",
        "erased_at",
    ]
    fieldsets = [
        (_("Profile"), {"fields": ["email", "first_name", "last_name", "birthday", "phone", "user", "referral_code"]}),
        (_("Communication preferences (set by the member)"), {
            "fields": ["offers_channel", "reminders_channel", "surveys_channel", "statements_channel"],
        }),
        (_("Points"), {"fields": ["points_summary", "last_activity_at"]}),
        (_("Dates"), {"fields": ["created_at", "updated_at", "erased_at"]}),
    ]

    @admin.display(description=_("Points"))
    def points_summary(self, obj):
        from rewards.admin import member_points_summary

        return member_points_summary(obj) if obj.pk else "—"

    def get_urls(self):
        from rewards.admin import adjust_points_view, set_tier_view

        def adjust(request, member_id):
            return adjust_points_view(request, member_id, self)

        def set_tier(request, member_id):
            return set_tier_view(request, member_id, self)

        view = self.admin_site.admin_view
        return [
            path("<int:member_id>/export/", view(self.export_view), name="accounts_member_export"),
            path("<int:member_id>/erase/", view(self.erase_view), name="accounts_member_erase"),
            path("<int:member_id>/adjust/", self.admin_site.admin_view(adjust), name="accounts_member_adjust"),
            path("<int:member_id>/tier/", self.admin_site.admin_view(set_tier), name="accounts_member_set_tier"),
            *super().get_urls(),
        ]

    def export_view(self, request, member_id):
        """A data access request answered by staff: the member's JSON, audited."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        data = services.member_export(member=member, actor_user=request.user)
        response = HttpResponse(json.dumps(data, indent=2, default=str), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="member-{member.pk}-data.json"'
        return response

    def erase_view(self, request, member_id):
        """An erasure request answered by staff, with a reason for the audit log."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        form = EraseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.member_erase(member=member, actor_user=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, _("Personal data erased; the ledger and orders stay for the books."))
            return redirect("admin:accounts_member_change", member.pk)
        context = {**self.admin_site.each_context(request), "title": _("Erase %(member)s") % {"member": member},
                   "member": member,
                   "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/accounts/member/erase.html", context)

    @admin.display(boolean=True, description=_("Portal login"))
    def has_login(self, obj):
        return obj.user_id is not None

    def has_add_permission(self, request):
        # Members come from signups and partners; a hand-made one would have no login and no id.
        return False

    def has_delete_permission(self, request, obj=None):
        # Members are erased (personal data removed), never deleted: their ledger is the books.
        return False

    def save_model(self, request, obj, form, change):
        services.member_staff_update(member=obj, actor_user=request.user,
                                     data={field: form.cleaned_data[field] for field in form.changed_data})


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "active_keys", "members", "created_at"]
    search_fields = ["name"]
    inlines = [ApiKeyInline]
    fields = ["name", "is_active", "shares_members", "created_at"]
    readonly_fields = ["created_at"]
    filter_horizontal = ["shares_members"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
            _members=Count("external_ids", distinct=True),
        )

    def save_model(self, request, obj, form, change):
        # Every field through a service, each audited; the many-to-many is set in save_related.
        if not change:
            obj.pk = services.partner_create(name=obj.name, actor_user=request.user).pk
            return
        if "name" in form.changed_data:
            services.partner_rename(partner=obj, name=obj.name, actor_user=request.user)
        if "is_active" in form.changed_data:
            services.partner_set_active(partner=obj, active=obj.is_active, actor_user=request.user)

    def save_related(self, request, form, formsets, change):
        services.partner_set_sharing(partner=form.instance, shares_with=list(form.cleaned_data["shares_members"]),
                                     actor_user=request.user)
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.display(description=_("Active keys"), ordering="_keys")
    def active_keys(self, obj):
        return obj._keys

    @admin.display(description=_("Members"), ordering="_members")
    def members(self, obj):
        return obj._members

    def has_delete_permission(self, request, obj=None):
        return False


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["rate_limit"]

    def clean_rate_limit(self):
        try:
            return services.rate_limit_clean(self.cleaned_data["rate_limit"])
        except DomainError as exc:
            raise forms.ValidationError(exc.fields["rate_limit"]) from None


class ApiKeyCreateForm(ApiKeyForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["partner", "name", "scopes", "rate_limit"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "partner", "prefix", "scope_list", "created_at", "last_used_at", "status"]
    list_filter = ["partner", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "partner__name"]
    actions = ["revoke"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = ApiKeyCreateForm if obj is None else ApiKeyForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["partner", "name", "scopes", "rate_limit"]
        return ["partner", "name", "prefix", "scopes", "rate_limit", "created_at", "created_by", "last_used_at",
                "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        # Only the rate limit changes after creation (a new scope set is a new key).
        return [] if obj is None else [f for f in self.get_fields(request, obj) if f != "rate_limit"]

    @admin.display(description=_("Scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description=_("Status"))
    def status(self, obj):
        if obj.revoked_at:
            return format_html('<span style="color:#b91c1c">{}</span>',
                               _("revoked %(day)s") % {"day": l10n.short_day(obj.revoked_at)})
        return _("active")

    def save_model(self, request, obj, form, change):
        if change:
            if "rate_limit" in form.changed_data:
                services.api_key_set_rate_limit(api_key=obj, rate_limit=form.cleaned_data["rate_limit"],
                                                actor_user=request.user)
            return
        key, raw = services.api_key_create(
            partner=form.cleaned_data["partner"], name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"], rate_limit=form.cleaned_data.get("rate_limit", ""),
            actor_user=request.user,
        )
        obj.pk = key.pk
        # Kept on the request only: the response below shows it once, nothing stores it.
        request._new_api_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Copy the new API key now"),
            "api_key": ApiKey.objects.get(pk=obj.pk),
            "raw_key": request._new_api_key,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/apikey/created.html", context)

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=key, actor_user=request.user, reason="revoked in the admin")
        messages.success(request, _("Revoked. Calls with these keys now get 401."))

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor", "member", "subject", "reason"]
    list_filter = ["action"]
    search_fields = ["action", "subject", "reason", "member__email"]
    date_hierarchy = "created_at"
    list_select_related = ["actor_user", "actor_partner", "member"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
