from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("recompute/", views.recompute, name="recompute"),
    path("cohorts/", views.cohorts, name="cohorts"),
    path("segments/", views.segments, name="segments"),
    path("segments/<str:name>/", views.segment, name="segment"),
    path("at-risk/", views.at_risk, name="at-risk"),
    path("impact/", views.impact, name="impact"),
]
