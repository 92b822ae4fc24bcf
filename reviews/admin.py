from django.contrib import admin

from reviews import figures
from reviews.models import (
    Decision,
    Feedback,
    ImportRun,
    Invitation,
    Membership,
    Project,
    QueuePriority,
    ReviewClaim,
    Sample,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "label_kind", "provider", "model_name", "retrieval_k", "created_at"]
    list_filter = ["label_kind", "provider"]
    search_fields = ["name", "slug", "criterion"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "added_at"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "user__email", "project__name"]
    autocomplete_fields = ["user", "project"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["identifier", "project", "role", "invited_by", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["identifier", "project__name"]
    autocomplete_fields = ["user", "project"]
    readonly_fields = ["created_at"]
    list_select_related = ["project", "invited_by"]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["filename", "project", "status", "created_by", "started_at", "finished_at"]
    list_filter = ["status", "project"]
    readonly_fields = ["started_at", "finished_at"]
    list_select_related = ["project", "created_by"]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "judge_value", "created_at"]
    list_filter = ["project", "judge_value"]
    search_fields = ["external_id", "outputs", "judge_rationale"]
    list_select_related = ["project"]
    show_full_result_count = False  # fast at 100k rows

    # Sample deletes send no signal to reviews.figures (a receiver would slow every bulk delete): say it here.
    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        figures.changed(obj.project_id)

    def delete_queryset(self, request, queryset):
        projects = set(queryset.values_list("project_id", flat=True))
        super().delete_queryset(request, queryset)
        for project_id in projects:
            figures.changed(project_id)


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["sample", "author", "label", "agrees_with_judge", "revision", "imported_by", "updated_at"]
    list_filter = ["project", "agrees_with_judge", "label"]
    search_fields = ["critique", "author__username", "sample__external_id"]
    list_select_related = ["sample__project", "author", "imported_by"]
    raw_id_fields = ["sample"]
    readonly_fields = ["created_at", "updated_at", "imported_by", "imported_at"]


@admin.register(QueuePriority)
class QueuePriorityAdmin(admin.ModelAdmin):
    list_display = ["sample", "project", "rank", "score", "audit", "computed_at"]
    list_filter = ["audit", "project"]
    readonly_fields = ["sample", "project", "rank", "score", "audit", "reasons", "computed_at"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    """Adjudicated conflicts. Undo them from the project's conflicts page, which also restores the memory."""

    list_display = ["sample", "label", "decided_by", "decided_at"]
    list_filter = ["project"]
    search_fields = ["sample__external_id", "reason"]
    raw_id_fields = ["sample", "feedback", "decided_by"]


@admin.register(ReviewClaim)
class ReviewClaimAdmin(admin.ModelAdmin):
    list_display = ["sample", "user", "expires_at"]
    list_filter = ["sample__project"]
    raw_id_fields = ["sample", "user"]
