from django.contrib import admin

from memory.models import (
    Contradiction,
    DistilledFeedback,
    EvaluationSettings,
    MemoryVersion,
    Principle,
    PrincipleSource,
    PrincipleVector,
    SampleVector,
)


class PrincipleSourceInline(admin.TabularInline):
    model = PrincipleSource
    extra = 0
    raw_id_fields = ["feedback"]


@admin.register(Principle)
class PrincipleAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "short_text", "label", "origin", "pinned", "retired", "created_in", "updated_at"]
    list_filter = ["project", "origin", "pinned", "retired"]
    search_fields = ["text", "retired_reason"]
    list_select_related = ["project", "created_in__project"]
    raw_id_fields = ["created_in"]
    inlines = [PrincipleSourceInline]

    @admin.display(description="text")
    def short_text(self, principle: Principle) -> str:
        return principle.text[:100]


@admin.register(MemoryVersion)
class MemoryVersionAdmin(admin.ModelAdmin):
    list_display = [
        "project",
        "number",
        "trigger",
        "actor",
        "status",
        "summary",
        "provider",
        "model",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["project", "trigger", "status", "provider"]
    search_fields = ["summary", "error"]
    list_select_related = ["project", "actor"]
    raw_id_fields = ["actor"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("principles")  # the snapshot: the versions page diffs it


@admin.register(DistilledFeedback)
class DistilledFeedbackAdmin(admin.ModelAdmin):
    list_display = ["feedback", "revision", "version"]
    raw_id_fields = ["feedback", "version"]
    list_select_related = ["feedback__author", "feedback__sample__project", "version__project"]


@admin.register(Contradiction)
class ContradictionAdmin(admin.ModelAdmin):
    list_display = ["project", "first", "second", "found_in", "resolved"]
    list_filter = ["project", "resolved"]
    raw_id_fields = ["first", "second", "found_in"]
    list_select_related = ["project", "first", "second", "found_in__project"]


@admin.register(SampleVector)
class SampleVectorAdmin(admin.ModelAdmin):
    list_display = ["sample", "project", "scheme", "fingerprint"]
    list_filter = ["project", "scheme"]
    raw_id_fields = ["sample"]
    exclude = ["vector"]  # 1.5 KB of float32: nothing to read by eye
    list_select_related = ["sample__project", "project"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("vector")


@admin.register(PrincipleVector)
class PrincipleVectorAdmin(admin.ModelAdmin):
    """Derived data (memory.principle_vectors), shared by every principle with the same text: listed, not edited."""

    list_display = ["text_hash", "created_at"]
    exclude = ["vector"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("vector")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvaluationSettings)
class EvaluationSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "group_key", "gate_enabled", "guard_size", "gate_threshold"]
    list_filter = ["gate_enabled"]
    list_select_related = ["project"]
