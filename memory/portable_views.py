"""Export a project's judge as one JSON file (owners), and create a project from such a file (anyone signed in,
as for creating a project)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from memory import portable
from reviews.models import Role
from reviews.permissions import AuthenticatedRequest, ProjectRequest, project_view


@project_view(Role.OWNER)
@require_GET
def export_judge(request: ProjectRequest) -> HttpResponse:
    project = request.project
    response = HttpResponse(portable.dumps(portable.export(project)), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}.judge.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def import_judge(request: AuthenticatedRequest) -> HttpResponse:
    context: dict = {"format": portable.FORMAT}
    if request.method == "GET":
        return render(request, "memory/judge_import.html", context)
    upload = request.FILES.get("file")
    if upload is None:
        context["error"] = "Choose a judge document (a .json file exported from MemAlign)."
        return render(request, "memory/judge_import.html", context, status=400)
    try:
        project = portable.import_judge(upload.read(), request.user, name=request.POST.get("name", "").strip())
    except portable.Refused as refused:
        context["error"] = f"Nothing was imported. {refused}"
        return render(request, "memory/judge_import.html", context, status=400)
    messages.success(
        request, f"Judge imported as “{project.name}”: its examples are being embedded into the episodic memory."
    )
    return redirect("memory-dashboard", project.slug)
