from django.urls import path

from feedback import views

app_name = "feedback"

urlpatterns = [
    path("surveys/", views.surveys, name="surveys"),
    path("surveys/<int:survey_id>/", views.survey, name="survey"),
    path("surveys/<int:survey_id>/thanks/", views.survey_done, name="survey-done"),
    path("refer/", views.refer, name="refer"),
    path("r/<str:code>/", views.referral_landing, name="referral-landing"),
]
