"""A judge run's pages: start, progress and summary, its verdicts with their explanations, export, cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, trigger_client_event

from judging import coverage_chart, panels, run_agreement, run_listing, runs, tiers
from judging.models import Judgement, JudgeRun
from reviews import dataset, queue, spreadsheets
from reviews.models import Role
from reviews.permissions import ProjectRequest, can, project_view


def _run(request: ProjectRequest, run_id: int) -> JudgeRun:
    return get_object_or_404(
        JudgeRun.objects.select_related("project", "created_by", "memory_version"), pk=run_id, project=request.project
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def judge_run_start(request: ProjectRequest) -> HttpResponse:
    """GET: the page the navigation's "Run the judge" opens (the scopes, the latest runs); POST: start a run."""
    if request.method == "GET":
        context = {
            "project": request.project,
            "membership": request.membership,
            **panels.headline_context(request.project),
            "recent": JudgeRun.objects.filter(project=request.project).defer("sample_ids").order_by("-id")[:5],
        }
        return render(request, "judging/run_start.html", context)
    scope = request.POST.get("scope", JudgeRun.Scope.REVIEWED)
    query = queue.QueueQuery.from_params(request.POST, "all") if scope == JudgeRun.Scope.QUEUE else None
    try:
        run = runs.start(request.project, request.user, scope, query, limit=_int(request.POST.get("limit")))
    except runs.RunError as error:
        messages.error(request, str(error))
        return redirect("memory-runs", request.project.slug)
    queued = run.status == JudgeRun.Status.QUEUED
    state = "queued: it starts when the project's current run has finished" if queued else "started"
    messages.success(
        request, f"A run of {run.total} sample{'s' if run.total != 1 else ''} with the aligned judge {state}."
    )
    return redirect("judge-run", request.project.slug, run.pk)


def _status_context(request: ProjectRequest, run: JudgeRun) -> dict:
    return {
        "project": request.project,
        "membership": request.membership,  # the navigation shows owners their links
        "run": run,
        "notice": run_listing.notice(run),
        "is_owner": can(request.membership, Role.OWNER),
        "figures": run_agreement.current_figures(run),
        "tiers": tiers.summary(run) if run.finished else None,
    }


@project_view(Role.VIEWER)
@require_GET
def judge_run(request: ProjectRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    chosen = request.GET.get("filter", "all")
    chosen = chosen if chosen in run_listing.VERDICT_FILTERS else "all"
    search = request.GET.get("q", "").replace("\x00", "").strip()[:200]
    page = run_listing.verdict_page(
        run_listing.verdicts(run, request.membership, chosen, search),
        request.membership,
        _int(request.GET.get("after")),
    )
    context = {
        **_status_context(request, run),
        "filters": run_listing.VERDICT_FILTERS,
        "chosen": chosen,
        "q": search,
        "page": page,
    }
    template = "judging/run.html#rows" if request.htmx else "judging/run.html"  # htmx asks only for more rows
    return render(request, template, context)


@project_view(Role.VIEWER)
@require_GET
def judge_run_progress(request: ProjectRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    response = render(request, "judging/_judge_run.html", _status_context(request, run))
    # The verdict table (static/run.js) reloads when this number moves, and a last time when the run ends.
    trigger_client_event(response, "runProgress", {"judged": run.done + run.failed, "finished": run.finished})
    if run.finished:
        response.status_code = HTMX_STOP_POLLING  # the progress bar stops polling; the summary is in this reply
    return response


@project_view(Role.VIEWER)
@require_GET
def judge_run_coverage_chart(request: ProjectRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    if not run.guarantee or not run.guarantee.get("curve"):
        return HttpResponse("This run has no coverage curve.", status=404, content_type="text/plain")
    return HttpResponse(coverage_chart.coverage_chart(run.guarantee), content_type="image/svg+xml")


@project_view(Role.VIEWER)
@require_GET
def judge_run_verdict(request: ProjectRequest, run_id: int, judgement_id: int) -> HttpResponse:
    run = _run(request, run_id)
    judgement = get_object_or_404(
        Judgement.objects.select_related("sample", "memory_version"), pk=judgement_id, run=run
    )
    if run_listing.withheld_samples(request.membership, [judgement.sample_id]):
        return HttpResponse(
            '<p class="muted" data-withheld>Hidden until you review this sample: the aligned judge learned from the '
            "other experts' labels.</p>"
        )
    return render(
        request,
        "judging/_explanation.html",
        {"project": request.project, **run_listing.explanation(judgement, request.membership)},
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value):
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value


@project_view(Role.VIEWER)
@require_GET
def judge_run_export(request: ProjectRequest, run_id: int, fmt: str) -> StreamingHttpResponse:
    run = _run(request, run_id)
    filename = f"{request.project.slug}-run-{run.pk}.{fmt}"
    lines: Iterator[str]
    if fmt == "jsonl":
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in run_listing.export_rows(run, request.membership))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    else:
        names = dataset.reviewers(request.project)
        writer = spreadsheets.writer(_Echo())
        header = [*run_listing.EXPORT_FIELDS, *(f"expert:{name}" for name in names)]
        body = (
            [_csv_cell(r[k]) for k in run_listing.EXPORT_FIELDS] + [r["experts"].get(name, "") for name in names]
            for r in run_listing.export_rows(run, request.membership)
        )
        lines = (writer.writerow(row) for row in chain([header], body))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@project_view(Role.OWNER)
@require_POST
def judge_run_cancel(request: ProjectRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    if runs.cancel(run):
        messages.success(request, "Run cancelled: it stops within a few seconds and keeps what it judged.")
    else:
        messages.error(request, "This run has already ended.")
    return redirect("judge-run", request.project.slug, run.pk)


@project_view(Role.OWNER)
@require_POST
def judge_run_retry(request: ProjectRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    try:
        count = runs.retry_failed(run)
    except runs.RunError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"Judging the {count} failed sample{'s' if count != 1 else ''} again."
            if count
            else "No failed verdicts to retry.",
        )
    return redirect("judge-run", request.project.slug, run.pk)
