from django.urls import path

from memory import views

urlpatterns = [
    path("p/<slug:slug>/memory/", views.dashboard, name="memory-dashboard"),
    path("p/<slug:slug>/memory/try/", views.try_judge, name="memory-try"),
    path("p/<slug:slug>/memory/regenerate/", views.regenerate, name="memory-regenerate"),
    path("p/<slug:slug>/memory/consolidate/", views.consolidate, name="memory-consolidate"),
    path("p/<slug:slug>/memory/principles/", views.principle_add, name="principle-add"),
    path("p/<slug:slug>/memory/principles/<int:principle_id>/retire/", views.principle_retire, name="principle-retire"),
    path("p/<slug:slug>/memory/judge-runs/", views.judge_run_start, name="judge-run-start"),
    path("p/<slug:slug>/memory/judge-runs/<int:run_id>/", views.judge_run_progress, name="judge-run-progress"),
]
