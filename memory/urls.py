from django.urls import path

from memory import views

urlpatterns = [
    path("p/<slug:slug>/memory/", views.dashboard, name="memory-dashboard"),
]
