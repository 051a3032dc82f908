from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import apis as accounts_apis
from loyalty_site import api, views

admin.site.site_header = f"{settings.PROGRAM_NAME} administration"
admin.site.site_title = f"{settings.PROGRAM_NAME} admin"
admin.site.index_title = "Run the program"

api_v1 = [
    path("members/", accounts_apis.MemberUpsertApi.as_view(), name="members"),
    path("members/<str:external_id>/", accounts_apis.MemberDetailApi.as_view(), name="member-detail"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("me/", include("accounts.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    re_path(r"^api/", api.json_not_found),
]

if settings.SERVE_MEDIA:
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})]

handler500 = "loyalty_site.views.server_error"
