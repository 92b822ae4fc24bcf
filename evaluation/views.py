"""Evaluation pages: the memory's "Evaluations" tab (the list, the held version; owners start one), an
evaluation's progress, its learning curves as SVG charts, CSV and JSON export."""

from __future__ import annotations

import io
import json

from csp.decorators import csp_replace
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from evaluation import charts, curves, gate, panels, summary
from evaluation.forms import EvaluationSettingsForm
from evaluation.models import Evaluation
from evaluation.tasks import run_evaluation
from memory import versions
from memory.llm import provider_name
from memory.locks import MemoryBusy
from reviews import spreadsheets
from reviews.models import Role
from reviews.permissions import ProjectRequest, can, is_blind, project_view, require

CURVES = ("heldout", "prequential")
EXPORT_FIELDS = (
    "curve",
    "variant",
    "split",
    "shard",
    "n",
    "exact_match",
    "kappa",
    "weighted_kappa",
    "ccc",
    "mae",
    "abstained",
    "tokens",
    "interval_low",
    "interval_high",
)


def _evaluation(request: ProjectRequest, evaluation_id: int) -> Evaluation:
    return get_object_or_404(
        Evaluation.objects.select_related("project", "created_by"), pk=evaluation_id, project=request.project
    )


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default


@project_view(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def evaluations(request: ProjectRequest) -> HttpResponse:
    """GET: the evaluations and the version the regression gate holds; POST (owners): start an evaluation."""
    if request.method == "POST":
        require(request.membership, Role.OWNER)
        return _start(request)
    page = {
        "project": request.project,
        "membership": request.membership,
        "is_owner": can(request.membership, Role.OWNER),
        "blind": is_blind(request.membership),  # the held version's flipped samples show the experts' labels
        "provider": provider_name(request.project),
    }
    return render(request, "evaluation/evaluations.html", {**page, **panels.evaluations_tab(page)})


def _start(request: ProjectRequest) -> HttpResponse:
    variants = request.POST.getlist("variants") or list(curves.VARIANTS)
    options = curves.Options(
        seed=int(_float(request.POST.get("seed"), 0)),
        test_fraction=_float(request.POST.get("test_fraction"), curves.DEFAULT_TEST_FRACTION),
        variants=variants,
        prequential=request.POST.get("prequential", "on") == "on",
    )
    try:
        record = curves.start(request.project, request.user, options)
    except curves.EvaluationError as error:
        messages.error(request, str(error))
        return redirect("evaluations", request.project.slug)
    run_evaluation.delay_on_commit(record.pk)  # type: ignore[attr-defined]  # Celery adds it under Django
    messages.success(
        request, f"Evaluation #{record.pk} queued; it runs on scratch memory and leaves the project's memory as it is."
    )
    return redirect("evaluation", request.project.slug, record.pk)


def _context(request: ProjectRequest, record: Evaluation) -> dict:
    return {
        "project": request.project,
        "evaluation": record,
        "is_owner": can(request.membership, Role.OWNER),
        "result": record.result,
        "held_out": summary.held_out_reading(record.result) if record.result else [],
        "curves": CURVES
        if record.result and any(p["curve"] == "prequential" for p in record.result["points"])
        else CURVES[:1],
    }


@project_view(Role.VIEWER)
@require_GET
def evaluation_page(request: ProjectRequest, evaluation_id: int) -> HttpResponse:
    return render(request, "evaluation/evaluation.html", _context(request, _evaluation(request, evaluation_id)))


@project_view(Role.VIEWER)
@require_GET
def evaluation_progress(request: ProjectRequest, evaluation_id: int) -> HttpResponse:
    record = _evaluation(request, evaluation_id)
    response = render(request, "evaluation/_evaluation.html", _context(request, record))
    if record.finished:
        response.status_code = HTMX_STOP_POLLING
    return response


# The chart is an image document: no script can run in it, and matplotlib's SVG styles its elements inline.
@csp_replace({"default-src": ["'none'"], "style-src": ["'unsafe-inline'"]})
@project_view(Role.VIEWER)
@require_GET
def evaluation_chart(request: ProjectRequest, evaluation_id: int, curve: str) -> HttpResponse:
    record = _evaluation(request, evaluation_id)
    if curve not in CURVES or not record.result:
        return HttpResponse("No such chart.", status=404, content_type="text/plain")
    return HttpResponse(charts.learning_curve(record.result, curve), content_type="image/svg+xml")


@project_view(Role.VIEWER)
@require_GET
def evaluation_export(request: ProjectRequest, evaluation_id: int, fmt: str) -> HttpResponse:
    record = _evaluation(request, evaluation_id)
    if not record.result:
        return HttpResponse("This evaluation has no result.", status=404, content_type="text/plain")
    filename = f"{request.project.slug}-evaluation-{record.pk}.{fmt}"
    if fmt == "json":
        response = HttpResponse(
            json.dumps(record.result, ensure_ascii=False, indent=1), content_type="application/json; charset=utf-8"
        )
    else:
        buffer = io.StringIO()
        writer = spreadsheets.writer(buffer)
        writer.writerow(EXPORT_FIELDS)
        for p in record.result["points"]:
            low, high = p.get("interval") or (None, None)
            writer.writerow([*(p.get(k) for k in EXPORT_FIELDS[:-2]), low, high])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@project_view(Role.OWNER)
@require_POST
def evaluation_settings(request: ProjectRequest) -> HttpResponse:
    form = EvaluationSettingsForm(request.POST, instance=gate.gate_settings(request.project))
    if form.is_valid():
        form.save()
        messages.success(request, "Evaluation settings saved.")
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("memory-settings", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def held_activate(request: ProjectRequest) -> HttpResponse:
    count = gate.activate_held(request.project)
    messages.success(request, "The held version is now active." if count else "No version is held.")
    return redirect("evaluations", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def held_discard(request: ProjectRequest) -> HttpResponse:
    try:
        version = versions.discard_held(request.project, request.user.username)
    except MemoryBusy as busy:
        messages.error(request, str(busy))
    else:
        messages.success(
            request,
            f"Discarded: the principles are back to the active version's (v{version.number})."
            if version
            else "No version is held.",
        )
    return redirect("evaluations", request.project.slug)
