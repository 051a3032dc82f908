from django.contrib import admin, messages

from community.models import PublicProfile, Spotlight
from community.services import spotlight_create
from loyalty_site.errors import DomainError


@admin.register(PublicProfile)
class PublicProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "member", "is_public", "updated_at"]
    list_filter = ["is_public"]
    search_fields = ["display_name", "member__email"]
    fields = ["member", "is_public", "display_name", "avatar"]
    readonly_fields = ["member"]

    def has_add_permission(self, request):
        return False  # members make their own profiles


@admin.register(Spotlight)
class SpotlightAdmin(admin.ModelAdmin):
    list_display = ["headline", "member", "starts_at", "ends_at", "created_by"]
    raw_id_fields = ["member"]
    fields = ["member", "headline", "text", "ends_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
            created = spotlight_create(member=obj.member, headline=obj.headline, text=obj.text,
                                       actor_user=request.user, ends_at=obj.ends_at)
        except DomainError as exc:
            messages.error(request, exc.message)
            raise
        obj.pk = created.pk
