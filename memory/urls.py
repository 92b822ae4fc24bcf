from django.urls import path

from memory import evaluation_views, run_views, team_views, views

urlpatterns = [
    path("p/<slug:slug>/memory/", views.dashboard, name="memory-dashboard"),
    path("p/<slug:slug>/team/", team_views.team_page, name="team"),
    path("p/<slug:slug>/memory/try/", views.try_judge, name="memory-try"),
    path("p/<slug:slug>/memory/regenerate/", views.regenerate, name="memory-regenerate"),
    path("p/<slug:slug>/memory/consolidate/", views.consolidate, name="memory-consolidate"),
    path("p/<slug:slug>/memory/principles/", views.principle_add, name="principle-add"),
    path("p/<slug:slug>/memory/principles/<int:principle_id>/retire/", views.principle_retire, name="principle-retire"),
    path("p/<slug:slug>/memory/judge-runs/", run_views.judge_run_start, name="judge-run-start"),
    path("p/<slug:slug>/memory/judge-runs/<int:run_id>/", run_views.judge_run, name="judge-run"),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/progress/",
        run_views.judge_run_progress,
        name="judge-run-progress",
    ),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/verdicts/<int:judgement_id>/",
        run_views.judge_run_verdict,
        name="judge-run-verdict",
    ),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/export.csv",
        run_views.judge_run_export,
        {"fmt": "csv"},
        name="judge-run-csv",
    ),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/export.jsonl",
        run_views.judge_run_export,
        {"fmt": "jsonl"},
        name="judge-run-jsonl",
    ),
    path("p/<slug:slug>/memory/judge-runs/<int:run_id>/cancel/", run_views.judge_run_cancel, name="judge-run-cancel"),
    path("p/<slug:slug>/memory/judge-runs/<int:run_id>/retry/", run_views.judge_run_retry, name="judge-run-retry"),
    path("p/<slug:slug>/memory/evaluations/", evaluation_views.evaluation_start, name="evaluation-start"),
    path("p/<slug:slug>/memory/evaluations/<int:evaluation_id>/", evaluation_views.evaluation_page, name="evaluation"),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/progress/",
        evaluation_views.evaluation_progress,
        name="evaluation-progress",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/<str:curve>.svg",
        evaluation_views.evaluation_chart,
        name="evaluation-chart",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/export.csv",
        evaluation_views.evaluation_export,
        {"fmt": "csv"},
        name="evaluation-csv",
    ),
    path(
        "p/<slug:slug>/memory/evaluations/<int:evaluation_id>/export.json",
        evaluation_views.evaluation_export,
        {"fmt": "json"},
        name="evaluation-json",
    ),
    path("p/<slug:slug>/memory/evaluation-settings/", views.evaluation_settings, name="evaluation-settings"),
    path("p/<slug:slug>/memory/held/activate/", views.held_activate, name="held-activate"),
    path("p/<slug:slug>/memory/held/discard/", views.held_discard, name="held-discard"),
]
