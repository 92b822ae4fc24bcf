from django.contrib import admin

from judging.models import Judgement, JudgeRun, JudgingSettings


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
    list_display = ["id", "sample", "value", "confidence", "escalated", "run", "provider", "model", "created_at"]
    list_filter = ["project", "provider", "value", "escalated"]
    search_fields = ["rationale", "sample__external_id"]
    raw_id_fields = ["sample", "run", "memory_version"]
    list_select_related = ["sample__project", "run"]


@admin.register(JudgingSettings)
class JudgingSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "target_agreement", "risk", "asks", "both_orders", "stability_percent"]
    list_select_related = ["project"]
