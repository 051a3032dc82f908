"""The widgets' API, under /embed/v1/ (the partner's embed settings are in the partner API)."""

from django.urls import path

from community import views as community_views
from storefront import apis

app_name = "embed"

urlpatterns = [
    path("loyalty.js", apis.loyalty_js, name="script"),
    path("program/", apis.ProgramWidgetApi.as_view(), name="program"),
    path("me/", apis.MeWidgetApi.as_view(), name="me"),
    path("redemptions/", apis.RedeemWidgetApi.as_view(), name="redemptions"),
    path("stars/", apis.StarsWidgetApi.as_view(), name="stars"),
    path("products/<str:sku>/reviews/", apis.ReviewsWidgetApi.as_view(), name="reviews"),
    path("products/<str:sku>/questions/", apis.QuestionWidgetApi.as_view(), name="questions"),
    path("reviews/<int:review_id>/helpful/", apis.HelpfulWidgetApi.as_view(), name="helpful"),
    # For shops to include on the server: reviews and the JSON-LD stars (docs/embed.md).
    path("products/<str:sku>/reviews.html", community_views.reviews_fragment, name="reviews-fragment"),
]
