from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "community"
    verbose_name = "Community"

    def ready(self):
        from accounts import services as account_services
        from community import services

        account_services.ERASURE_HOOKS.append(services.member_erased)
        account_services.EXPORT_SECTIONS["community_profile"] = _export


def _export(member) -> dict | None:
    from community.models import PublicProfile

    profile = PublicProfile.objects.filter(member=member).first()
    if profile is None:
        return None
    return {"is_public": profile.is_public, "display_name": profile.display_name,
            "avatar": profile.avatar.url if profile.avatar else None}
