"""A project's backup page (owners): download the whole project as one JSON file, or restore such a file into a
new project. A restore through the site never attributes anything to another account (judging.backup)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from judging import backup
from reviews.models import Role
from reviews.permissions import ProjectRequest, project_view

TEMPLATE = "judging/backup.html"


@project_view(Role.OWNER)
@require_GET
def backup_page(request: ProjectRequest) -> HttpResponse:
    return render(request, TEMPLATE, _context(request))


@project_view(Role.OWNER)
@require_GET
def backup_download(request: ProjectRequest) -> HttpResponse:
    project = request.project
    with_runs = request.GET.get("runs") == "1"
    response = HttpResponse(
        backup.dumps(backup.export(project, with_runs=with_runs)), content_type="application/json; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{stamp}.backup.json"'
    return response


@project_view(Role.OWNER)
@require_POST
def backup_restore(request: ProjectRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        context = _context(request, error="Choose a project backup (a .backup.json file exported from MemAlign).")
        return render(request, TEMPLATE, context, status=400)
    try:
        restored = backup.restore(upload.read(), request.user)
    except backup.Refused as refused:
        return render(request, TEMPLATE, _context(request, error=f"Nothing was restored. {refused}"), status=400)
    messages.success(
        request,
        f"Backup restored as a new project, “{restored.project.name}”; its memory is being rebuilt. "
        f"People: {restored.accounts_summary()}.",
    )
    return redirect(restored.project)


def _context(request: ProjectRequest, error: str = "") -> dict[str, Any]:
    return {"project": request.project, "membership": request.membership, "error": error, "format": backup.FORMAT}
