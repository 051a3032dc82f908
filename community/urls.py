from django.urls import path

from community import views

app_name = "community"

# Mounted at the site root: product pages live at /products/<sku>/ as partners link to them.
urlpatterns = [
    path("community/", views.index, name="index"),
    path("community/members/<int:member_id>/", views.member_page, name="member"),
    path("community/profile/", views.profile, name="profile"),
    path("community/reviews/", views.my_reviews, name="my-reviews"),
    path("products/<str:sku>/", views.product, name="product"),
    path("products/<str:sku>/review/", views.review, name="review"),
    path("products/<str:sku>/questions/", views.question_ask, name="ask"),
    path("reviews/<int:review_id>/helpful/", views.review_helpful, name="review-helpful"),
    path("reviews/<int:review_id>/report/", views.review_report, name="review-report"),
    path("questions/<int:question_id>/answers/", views.answer_post, name="answer"),
    path("answers/<int:answer_id>/helpful/", views.answer_helpful, name="answer-helpful"),
]
