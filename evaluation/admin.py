from django.contrib import admin

from evaluation.models import Evaluation, GateCheck


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "provider", "model", "done", "total", "created_at", "finished_at"]
    list_filter = ["project", "status", "provider"]
    search_fields = ["error"]
    exclude = ["result"]  # the points: the evaluation page draws and exports them
    list_select_related = ["project"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("result")


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
