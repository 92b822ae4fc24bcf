from django.urls import path

from evaluation import views

urlpatterns = [
    path("p/<slug:slug>/memory/evaluations/", views.evaluations, name="evaluations"),
    path("p/<slug:slug>/memory/evaluations/<int:evaluation_id>/", views.evaluation_page, name="evaluation"),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/progress/",
        views.evaluation_progress,
        name="evaluation-progress",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/<str:curve>.svg",
        views.evaluation_chart,
        name="evaluation-chart",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/export.csv",
        views.evaluation_export,
        {"fmt": "csv"},
        name="evaluation-csv",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/export.json",
        views.evaluation_export,
        {"fmt": "json"},
        name="evaluation-json",
    ),
    path("p/<slug:slug>/memory/evaluation-settings/", views.evaluation_settings, name="evaluation-settings"),
    path("p/<slug:slug>/memory/held/activate/", views.held_activate, name="held-activate"),
    path("p/<slug:slug>/memory/held/discard/", views.held_discard, name="held-discard"),
]
