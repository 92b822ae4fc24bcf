from django.urls import path
from django.views.generic import RedirectView

from reviews import adjudication_views, export_views, invitation_views, review_views, team_views, views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="project-list", permanent=False)),
    path("projects/", views.project_list, name="project-list"),
    path("projects/new/", views.project_create, name="project-create"),
    path("p/<slug:slug>/", views.project_overview, name="project-overview"),
    path("p/<slug:slug>/settings/", views.project_settings, name="project-settings"),
    path("p/<slug:slug>/members/", views.members, name="project-members"),
    path("p/<slug:slug>/members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("p/<slug:slug>/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("p/<slug:slug>/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path(
        "p/<slug:slug>/invitations/<int:invitation_id>/resend/",
        invitation_views.invitation_resend,
        name="invitation-resend",
    ),
    path("join/<str:token>/", invitation_views.join, name="invitation-join"),
    path(
        "invitations/<int:invitation_id>/accept/",
        views.invitation_answer,
        {"answer": "accept"},
        name="invitation-accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        views.invitation_answer,
        {"answer": "decline"},
        name="invitation-decline",
    ),
]

urlpatterns += [
    path("p/<slug:slug>/import/", review_views.sample_import, name="sample-import"),
    path("p/<slug:slug>/import/<int:import_id>/", review_views.sample_import_status, name="sample-import-status"),
    path("p/<slug:slug>/queue/", review_views.sample_queue, name="sample-queue"),
    path("p/<slug:slug>/samples/<int:sample_id>/", review_views.sample_review, name="sample-review"),
    path("p/<slug:slug>/samples/<int:sample_id>/feedback/", review_views.feedback_save, name="feedback-save"),
    path("p/<slug:slug>/samples/<int:sample_id>/verdict/", review_views.verdict_reveal, name="verdict-reveal"),
    path("p/<slug:slug>/feedback/<int:feedback_id>/delete/", review_views.feedback_delete, name="feedback-delete"),
    path("p/<slug:slug>/feedback/<int:feedback_id>/undo/", review_views.feedback_undo, name="feedback-undo"),
]

urlpatterns += [
    path("p/<slug:slug>/conflicts/", adjudication_views.conflicts, name="conflicts"),
    path("p/<slug:slug>/samples/<int:sample_id>/decide/", adjudication_views.decide, name="conflict-decide"),
    path("p/<slug:slug>/decisions/<int:decision_id>/undo/", adjudication_views.undo, name="decision-undo"),
    path(
        "p/<slug:slug>/members/<int:membership_id>/adjudicator/",
        adjudication_views.member_adjudicator,
        name="member-adjudicator",
    ),
]
urlpatterns += [
    path("p/<slug:slug>/team/", team_views.team_page, name="team"),
]
urlpatterns += [
    path("p/<slug:slug>/export.csv", export_views.dataset_export, {"fmt": "csv"}, name="dataset-csv"),
    path("p/<slug:slug>/export.jsonl", export_views.dataset_export, {"fmt": "jsonl"}, name="dataset-jsonl"),
]
