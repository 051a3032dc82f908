from django.urls import path

from community import views

app_name = "community"

urlpatterns = [
    path("", views.index, name="index"),
    path("members/<int:member_id>/", views.member_page, name="member"),
    path("profile/", views.profile, name="profile"),
]
