from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "storefront"
    verbose_name = "Storefront widgets"

    def ready(self):
        from corsheaders.signals import check_request_enabled

        from storefront.selectors import cors_allows

        check_request_enabled.connect(cors_allows, dispatch_uid="storefront.cors_allows")
