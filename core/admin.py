"""Admin building blocks the apps share."""

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records (the ledger, what partners sent, decisions taken): looked at, never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SingletonAdmin(admin.ModelAdmin):
    """Settings kept in one row: the list goes straight to it; nobody adds or deletes one.
    ``settings_row()`` returns the row, creating it with its defaults the first time."""

    def settings_row(self):
        raise NotImplementedError

    def changelist_view(self, request, extra_context=None):
        meta = self.model._meta
        return redirect(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[self.settings_row().pk]))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
