"""The dataset export's download: every sample with its reviews and final label, as CSV or JSONL."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET

from reviews import dataset
from reviews.models import Membership, Project, Role
from reviews.permissions import ProjectRequest, project_view

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def dataset_response(project: Project, membership: Membership, fmt: str) -> StreamingHttpResponse:
    """Stream the export in `fmt` ("csv" or "jsonl") as a download (the site and the API both answer with it)."""
    lines = dataset.csv_lines(project, membership) if fmt == "csv" else dataset.jsonl_lines(project, membership)
    response = StreamingHttpResponse(lines, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-dataset.{fmt}"'
    return response


@project_view(Role.VIEWER)
@require_GET
def dataset_export(request: ProjectRequest, fmt: str) -> StreamingHttpResponse:
    return dataset_response(request.project, request.membership, fmt)
