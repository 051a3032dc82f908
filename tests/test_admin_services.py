"""Staff edits in the admin go through services: the member's balances are never written by a
form, a staff-uploaded avatar is cleaned, and every settings or catalogue change is audited."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory

from accounts.models import AuditLog, Member
from rewards.models import Reward
from rewards.services import points_adjust
from tests import images

pytestmark = pytest.mark.django_db


def inline_management(page) -> dict:
    """The management-form values of the inlines on an admin change page, as a browser posts them."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-TOTAL_FORMS": str(formset.total_form_count()),
                     f"{formset.prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
                     f"{formset.prefix}-MIN_NUM_FORMS": "0", f"{formset.prefix}-MAX_NUM_FORMS": "1000"})
        for index, form in enumerate(formset.initial_forms):
            data[f"{formset.prefix}-{index}-{formset.model._meta.pk.name}"] = str(form.instance.pk)
            fk = getattr(formset, "fk", None)
            if fk is not None:
                data[f"{formset.prefix}-{index}-{fk.name}"] = str(formset.instance.pk)
    return data

OUR_APPS = {"accounts", "rewards", "community", "feedback", "insights", "core", "webhooks", "messaging"}
# Django's own user admin: logins, passwords and permissions, saved by Django's forms.
EXEMPT = {"accounts.user"}


def test_no_admin_of_ours_saves_a_model_without_a_service(staff):
    request = RequestFactory().get("/admin/")
    request.user = staff
    offenders = []
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if model._meta.app_label not in OUR_APPS or label in EXEMPT:
            continue
        writes = model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
        if not writes:
            continue
        if type(model_admin).save_model is admin.ModelAdmin.save_model:
            offenders.append(f"{label}: save_model")
        editable_inlines = [inline for inline in model_admin.get_inline_instances(request)
                            if inline.has_add_permission(request, None) or inline.has_change_permission(request)
                            or (inline.can_delete and inline.has_delete_permission(request))]
        has_related = editable_inlines or model._meta.many_to_many
        if has_related and type(model_admin).save_related is admin.ModelAdmin.save_related:
            offenders.append(f"{label}: save_related")
        deletes = model_admin.has_delete_permission(request)
        if deletes and type(model_admin).delete_model is admin.ModelAdmin.delete_model:
            offenders.append(f"{label}: delete_model")
    assert offenders == [], "\n".join(offenders)


def test_saving_a_member_in_the_admin_never_overwrites_points_the_ledger_wrote(admin_client, tea_shop, alice):
    page = admin_client.get(f"/admin/accounts/member/{alice.pk}/change/")
    assert page.status_code == 200
    # Points arrive while the page is open; the form then posts the profile it showed.
    points_adjust(member=alice, points=75, reason="goodwill")
    response = admin_client.post(f"/admin/accounts/member/{alice.pk}/change/", {
        "email": "  ALICE.NEW@Example.com ", "first_name": "Alice", "last_name": "Archer", "birthday": "",
        "phone": "+44 1234 567890", **inline_management(page),
    })
    assert response.status_code == 302, response.content[:1500]
    alice.refresh_from_db()
    assert (alice.points_available, alice.email, alice.phone) == (75, "alice.new@example.com", "+441234567890")
    audit = AuditLog.objects.get(action="member.profile_edited")
    assert audit.before == {"email": "alice@example.com", "phone": ""}


def test_an_email_of_another_member_is_refused_next_to_the_field(admin_client, alice, bob):
    page = admin_client.get(f"/admin/accounts/member/{alice.pk}/change/")
    response = admin_client.post(f"/admin/accounts/member/{alice.pk}/change/", {
        "email": "bob@example.com", "first_name": "Alice", "last_name": "Archer", "birthday": "", "phone": "12",
        **inline_management(page),
    })
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["email"] == ["Another member already uses this email address."]
    assert "country code" in errors["phone"][0]
    assert Member.objects.get(pk=alice.pk).email == "alice@example.com"


def test_a_staff_uploaded_avatar_is_cleaned_of_its_location(admin_client, alice):
    from PIL import Image

    from community.models import PublicProfile
    from community.services import public_profile_update

    public_profile_update(member=alice, is_public=True, display_name="Ali")
    profile = PublicProfile.objects.get(member=alice)
    response = admin_client.post(f"/admin/community/publicprofile/{alice.pk}/change/", {
        "is_public": "on", "display_name": "Ali", "avatar": images.photo("gps.jpg", size=(800, 600), gps=True),
    })
    assert response.status_code == 302, response.content[:1500]
    profile.refresh_from_db()
    with profile.avatar.open("rb") as stored, Image.open(stored) as picture:
        assert max(picture.size) == 256
        assert not picture.getexif()
    assert AuditLog.objects.filter(action="profile.edited_by_staff", member=alice).exists()


def test_catalogue_and_settings_edits_are_audited(admin_client):
    form = {"name": "5 EUR off", "description": "", "kind": "fixed_discount", "value": "5.00", "currency": "EUR",
            "product_sku": "", "points_cost": "500", "stock": "", "per_member_limit": "", "coupon_valid_days": "30",
            "is_active": "on"}
    response = admin_client.post("/admin/rewards/reward/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    reward = Reward.objects.get()
    assert reward.value == Decimal("5.00")
    created = AuditLog.objects.get(action="reward.created")
    assert created.subject == f"reward:{reward.pk}"
    response = admin_client.post(f"/admin/rewards/reward/{reward.pk}/change/", {**form, "points_cost": "450"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    changed = AuditLog.objects.get(action="reward.changed")
    assert (changed.before, changed.after) == ({"points_cost": "500"}, {"points_cost": "450"})
    settings_page = admin_client.get("/admin/feedback/referralsettings/")
    assert settings_page.status_code == 302
