from django.urls import path

from rewards import views

app_name = "rewards"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("<int:reward_id>/redeem/", views.redeem, name="redeem"),
    path("coupons/", views.coupons, name="coupons"),
    path("history/", views.history, name="history"),
    path("earn/", views.earn, name="earn"),
    path("tier/", views.tier, name="tier"),
    path("badges/", views.badges, name="badges"),
    path("challenges/", views.challenges, name="challenges"),
    path("challenges/<int:challenge_id>/join/", views.challenge_join, name="challenge-join"),
]
