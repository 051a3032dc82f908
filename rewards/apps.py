from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = "Points and rewards"

    def ready(self):
        from accounts import selectors as account_selectors
        from accounts import services as account_services
        from rewards import hooks

        account_services.MEMBERS_CREATED_HOOKS.append(hooks.on_members_created)
        account_services.PROFILE_UPDATED_HOOKS.append(hooks.on_profile_updated)
        account_services.EXPORT_SECTIONS["points"] = hooks.export_points
        account_services.EXPORT_SECTIONS["progress"] = hooks.export_progress
        account_selectors.MEMBER_API_SECTIONS.append(hooks.member_api_points)
        account_selectors.MEMBER_API_SECTIONS.append(hooks.member_api_progress)
