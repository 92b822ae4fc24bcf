from django.urls import path

from memory import (
    episodic_views,
    evaluation_views,
    playground,
    portable_views,
    principle_views,
    run_views,
    team_views,
    unalign_views,
    views,
)

urlpatterns = [
    path("p/<slug:slug>/memory/", views.dashboard, name="memory-dashboard"),
    path("p/<slug:slug>/team/", team_views.team_page, name="team"),
    path("p/<slug:slug>/memory/try/", views.try_judge, name="memory-try"),
    path("p/<slug:slug>/memory/regenerate/", views.regenerate, name="memory-regenerate"),
    path("p/<slug:slug>/memory/consolidate/", views.consolidate, name="memory-consolidate"),
    # Principles, versions and the audit log (memory/principle_views.py)
    path("p/<slug:slug>/memory/principles/", principle_views.principle_list, name="principles"),
    path("p/<slug:slug>/memory/principles/<int:principle_id>/", principle_views.principle_page, name="principle"),
    path(
        "p/<slug:slug>/memory/principles/<int:principle_id>/edit/",
        principle_views.principle_edit,
        name="principle-edit",
    ),
    path(
        "p/<slug:slug>/memory/principles/<int:principle_id>/pin/", principle_views.principle_pin, name="principle-pin"
    ),
    path(
        "p/<slug:slug>/memory/principles/<int:principle_id>/retire/",
        principle_views.principle_retire,
        name="principle-retire",
    ),
    path("p/<slug:slug>/memory/versions/", principle_views.version_list, name="versions"),
    path("p/<slug:slug>/memory/versions/compare/", principle_views.version_compare, name="version-compare"),
    path(
        "p/<slug:slug>/memory/versions/<int:number>/rollback/",
        principle_views.version_rollback,
        name="version-rollback",
    ),
    path("p/<slug:slug>/memory/audit/", principle_views.audit_log, name="memory-audit"),
    path("p/<slug:slug>/memory/audit.csv", principle_views.audit_csv, name="memory-audit-csv"),
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
    # issue 12b: episodic browser, conflicts, playground, unalign in bulk, export and import of a judge
    path("p/<slug:slug>/memory/episodic/", episodic_views.episodic, name="memory-episodic"),
    path("p/<slug:slug>/memory/episodic/conflicts/", episodic_views.conflicts, name="memory-conflicts"),
    path("p/<slug:slug>/memory/unalign/", unalign_views.unalign_view, name="memory-unalign"),
    path("p/<slug:slug>/memory/playground/", playground.playground, name="memory-playground"),
    path("p/<slug:slug>/memory/export.json", portable_views.export_judge, name="judge-export"),
    path("judges/import/", portable_views.import_judge, name="judge-import"),
]
