from django.urls import path

from memory import episodic_views, portable_views, principle_views, unalign_views, views

urlpatterns = [
    path("p/<slug:slug>/memory/", views.dashboard, name="memory-dashboard"),
    path("p/<slug:slug>/memory/settings/", views.memory_settings, name="memory-settings"),
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
    # issue 12b: episodic browser, conflicts, playground, unalign in bulk, export and import of a judge
    path("p/<slug:slug>/memory/episodic/", episodic_views.episodic, name="memory-episodic"),
    path("p/<slug:slug>/memory/episodic/conflicts/", episodic_views.conflicts, name="memory-conflicts"),
    path("p/<slug:slug>/memory/unalign/", unalign_views.unalign_view, name="memory-unalign"),
    path("p/<slug:slug>/memory/include/<int:feedback_id>/", unalign_views.include_view, name="memory-include-feedback"),
    path("p/<slug:slug>/memory/export.json", portable_views.export_judge, name="judge-export"),
    path("judges/import/", portable_views.import_judge, name="judge-import"),
]
