from django.contrib import admin

from memory.models import (
    Contradiction,
    DistilledFeedback,
    Evaluation,
    EvaluationSettings,
    GateCheck,
    Judgement,
    JudgeRun,
    MemoryVersion,
    Principle,
    PrincipleSource,
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


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "scope", "status", "done", "failed", "total", "created_at", "finished_at"]
    exclude = ["sample_ids"]  # up to 100,000 ids: the run page lists them as verdicts
    list_filter = ["project", "status", "scope"]
    search_fields = ["error"]
    list_select_related = ["project"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("sample_ids")


@admin.register(Judgement)
class JudgementAdmin(admin.ModelAdmin):
    list_display = ["id", "sample", "value", "run", "provider", "model", "latency_ms", "created_at"]
    list_filter = ["project", "provider", "value"]
    search_fields = ["rationale", "sample__external_id"]
    raw_id_fields = ["sample", "run", "memory_version"]
    list_select_related = ["sample__project", "run"]


@admin.register(SampleVector)
class SampleVectorAdmin(admin.ModelAdmin):
    list_display = ["sample", "project", "scheme", "fingerprint"]
    list_filter = ["project", "scheme"]
    raw_id_fields = ["sample"]
    exclude = ["vector"]  # 1.5 KB of float32: nothing to read by eye
    list_select_related = ["sample__project", "project"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("vector")


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "provider", "model", "done", "total", "created_at", "finished_at"]
    list_filter = ["project", "status", "provider"]
    search_fields = ["error"]
    exclude = ["result"]  # the points: the evaluation page draws and exports them
    list_select_related = ["project"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("result")


@admin.register(EvaluationSettings)
class EvaluationSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "group_key", "gate_enabled", "guard_size", "gate_threshold"]
    list_filter = ["gate_enabled"]
    list_select_related = ["project"]


@admin.register(GateCheck)
class GateCheckAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "compared_with",
        "guard_size",
        "agreement_before",
        "agreement_after",
        "threshold",
        "held",
        "created_at",
    ]
    list_filter = ["held"]
    raw_id_fields = ["version", "compared_with"]
    list_select_related = ["version__project", "compared_with__project"]
