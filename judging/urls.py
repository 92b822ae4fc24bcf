from django.urls import path

from judging import backup_views, playground, run_views, views

urlpatterns = [
    path("p/<slug:slug>/memory/runs/", views.runs_page, name="memory-runs"),
    path("p/<slug:slug>/memory/try/", views.try_judge, name="memory-try"),
    path("p/<slug:slug>/memory/judging-settings/", views.judging_settings, name="judging-settings"),
    path("p/<slug:slug>/memory/judge-runs/", run_views.judge_run_start, name="judge-run-start"),
    path("p/<slug:slug>/memory/judge-runs/<int:run_id>/", run_views.judge_run, name="judge-run"),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/progress/",
        run_views.judge_run_progress,
        name="judge-run-progress",
    ),
    path(
        "p/<slug:slug>/memory/judge-runs/<int:run_id>/coverage.svg",
        run_views.judge_run_coverage_chart,
        name="judge-run-coverage-chart",
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
    path("p/<slug:slug>/memory/playground/", playground.playground, name="memory-playground"),
    path("p/<slug:slug>/backup/", backup_views.backup_page, name="project-backup"),
    path("p/<slug:slug>/backup/download/", backup_views.backup_download, name="project-backup-download"),
    path("p/<slug:slug>/backup/restore/", backup_views.backup_restore, name="project-backup-restore"),
]
