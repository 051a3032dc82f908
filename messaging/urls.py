from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("providers/sms/inbound/", views.sms_inbound, name="sms-inbound"),
]
