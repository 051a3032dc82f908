"""The admin site: Django's, with the owner's dashboard as its front page."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class LoyaltyAdminSite(admin.AdminSite):
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        from loyalty_site.dashboard import owner_dashboard

        return super().index(request, {**owner_dashboard(), **(extra_context or {})})


class LoyaltyAdminConfig(AdminConfig):
    default_site = "loyalty_site.admin_site.LoyaltyAdminSite"
