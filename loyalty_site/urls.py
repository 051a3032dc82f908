from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import apis as accounts_apis
from accounts import views as accounts_views
from community import apis as community_apis
from community import views as community_views
from core import api
from loyalty_site import views
from recommendations import apis as recommendation_apis
from rewards import apis as rewards_apis
from storefront import apis as storefront_apis
from webhooks import apis as webhook_apis

admin.site.site_header = format_lazy(gettext_lazy("{program} administration"), program=settings.PROGRAM_NAME)
admin.site.site_title = format_lazy(gettext_lazy("{program} admin"), program=settings.PROGRAM_NAME)
admin.site.index_title = gettext_lazy("Run the program")

api_v1 = [
    path("members/", accounts_apis.MemberUpsertApi.as_view(), name="members"),
    path("members/<str:external_id>/", accounts_apis.MemberDetailApi.as_view(), name="member-detail"),
    path("members/<str:external_id>/ledger/", rewards_apis.LedgerListApi.as_view(), name="member-ledger"),
    path("members/<str:external_id>/export/", accounts_apis.MemberExportApi.as_view(), name="member-export"),
    path("members/<str:external_id>/erase/", accounts_apis.MemberEraseApi.as_view(), name="member-erase"),
    path("members/<str:external_id>/adjustments/", rewards_apis.AdjustmentCreateApi.as_view(), name="member-adjust"),
    path("members/<str:external_id>/recommendations/", recommendation_apis.MemberRecommendationsApi.as_view(),
         name="member-recommendations"),
    path("orders/", rewards_apis.OrderCreateApi.as_view(), name="orders"),
    path("orders/batch/", rewards_apis.OrderBatchApi.as_view(), name="orders-batch"),
    path("orders/<str:order_id>/refunds/", rewards_apis.RefundCreateApi.as_view(), name="order-refunds"),
    path("events/", rewards_apis.EventCreateApi.as_view(), name="events"),
    path("rewards/", rewards_apis.RewardListApi.as_view(), name="rewards"),
    path("redemptions/", rewards_apis.RedemptionCreateApi.as_view(), name="redemptions"),
    path("coupons/<str:code>/", rewards_apis.CouponDetailApi.as_view(), name="coupon-detail"),
    path("coupons/<str:code>/use/", rewards_apis.CouponUseApi.as_view(), name="coupon-use"),
    path("products/", community_apis.ProductUpsertApi.as_view(), name="products"),
    path("products/<str:sku>/reviews/", community_apis.ProductReviewsApi.as_view(), name="product-reviews"),
    path("embed/", storefront_apis.EmbedApi.as_view(), name="embed"),
    path("embed/rotate-secret/", storefront_apis.EmbedRotateSecretApi.as_view(), name="embed-rotate"),
    path("products/<str:sku>/related/", recommendation_apis.ProductRelatedApi.as_view(), name="product-related"),
    path("webhooks/", webhook_apis.EndpointListApi.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhook_apis.EndpointDetailApi.as_view(), name="webhook-detail"),
    path("webhooks/<int:endpoint_id>/rotate-secret/", webhook_apis.RotateSecretApi.as_view(), name="webhook-rotate"),
    path("webhooks/<int:endpoint_id>/test/", webhook_apis.TestApi.as_view(), name="webhook-test"),
    path("webhooks/<int:endpoint_id>/deliveries/", webhook_apis.DeliveriesApi.as_view(), name="webhook-deliveries"),
    path("webhooks/<int:endpoint_id>/replay/", webhook_apis.ReplayApi.as_view(), name="webhook-replay"),
]

urlpatterns = [
    # The partner API and the widgets' API first: they take most of the calls, and each pattern
    # tried before a match costs every one of them.
    path("api/v1/", include((api_v1, "api"))),
    path("embed/v1/", include("storefront.urls")),
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", accounts_views.set_language, name="set_language"),  # the language switcher
    path("me/", include("accounts.urls")),
    path("rewards/", include("rewards.urls")),
    path("", include("community.urls")),
    path("", include("feedback.urls")),
    path("insights/", include("insights.urls")),
    path("messages/", include("messaging.urls")),
    path("messages/providers/", include("anymail.urls")),  # bounce and complaint reports
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        # The split view serves its script as a file: the Content-Security-Policy allows no inline script.
        SpectacularSwaggerSplitView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    re_path(r"^api/", api.json_not_found),
]

# Members' uploads: always through the view that checks who may see them, whatever serves the rest.
urlpatterns.insert(0, path("media/private/<path:name>", community_views.private_media, name="private-media"))

if settings.SERVE_MEDIA:
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})]

handler500 = "loyalty_site.views.server_error"
