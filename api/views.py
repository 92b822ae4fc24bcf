"""The API's endpoints: thin, each one an access check, then a call into reviews or memory."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import StreamingHttpResponse
from ninja import Body, File, Query, Router, Status, UploadedFile
from ninja.params.functions import Path  # the function ninja.Path calls: typed for a parameter's default

from api import schemas as s
from api.access import project_for
from api.auth import TokenRequest
from api.errors import ApiError, field_error
from judging import run_agreement, run_listing, runs, tiers, tries
from judging.models import JudgeRun
from memory import blind
from memory.models import MemoryVersion, Principle
from reviews import import_jobs
from reviews.export_views import dataset_response
from reviews.feedback import StaleFeedback, quote, save_feedback, saved_quote
from reviews.importers import import_samples
from reviews.labels import normalize_label
from reviews.models import MAX_TEXT_CHARS, Feedback, ImportRun, Membership, Project, Role, Sample
from reviews.permissions import is_blind, visible_feedback
from reviews.tasks import run_import

router = Router()
ERRORS = {code: s.ErrorOut for code in (400, 401, 403, 404, 409, 413, 429)}
Row = TypeVar("Row")


def _page(items: Sequence[Row], key: Callable[[Row], int], limit: int) -> dict[str, Any]:
    """A keyset page from `limit + 1` fetched rows: the rows, and the key to continue after (None at the end)."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_after": key(items[-1]) if more and items else None}


# --- projects ------------------------------------------------------------------------------------------------


def _project_out(project: Project, role: str) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "name": project.name,
        "criterion": project.criterion,
        "label_kind": project.label_kind,
        "labels": project.label_choices,
        "scale_min": project.scale_min,
        "scale_max": project.scale_max,
        "provider": project.provider,
        "model_name": project.model_name,
        "retrieval_k": project.retrieval_k,
        "role": role,
    }


@router.get("/projects/", response={200: s.ProjectPage, **ERRORS}, summary="List my projects")
def project_list(request: TokenRequest, page: Query[s.PageQuery]) -> dict[str, Any]:
    memberships = Membership.objects.filter(user=request.auth.user).select_related("project").order_by("project_id")
    if request.auth.project_id is not None:
        memberships = memberships.filter(project_id=request.auth.project_id)
    if page.after is not None:
        memberships = memberships.filter(project_id__gt=page.after)
    rows = list(memberships[: page.limit + 1])
    result = _page(rows, lambda m: m.project_id, page.limit)
    result["items"] = [_project_out(m.project, m.role) for m in result["items"]]
    return result


@router.get("/projects/{slug}", response={200: s.ProjectOut, **ERRORS}, summary="Read a project")
def project_read(request: TokenRequest, slug: str) -> dict[str, Any]:
    project, membership = project_for(request, slug)
    return _project_out(project, membership.role)


# --- samples -------------------------------------------------------------------------------------------------


def _import(request: TokenRequest, slug: str, data: bytes, filename: str) -> dict[str, Any]:
    project, _ = project_for(request, slug, Role.OWNER, write=True)
    summary = import_samples(project, io.BytesIO(data), filename, request.auth.user)
    return {**summary.__dict__, "message": summary.message()}


def _as_jsonl(items: Sequence[object]) -> bytes:
    """A JSON array's items as the lines of a JSONL file: the importer's line numbers are then item numbers."""
    return "\n".join(json.dumps(item, ensure_ascii=False) for item in items).encode()


def _import_job_out(record: ImportRun) -> dict[str, Any]:
    return {
        "id": record.pk,
        "status": record.status,
        "filename": record.filename,
        "total": record.total,
        "written": record.written,
        "percent": record.percent,
        "summary": record.summary or None,
        "errors": [{"line": line, "message": message} for line, message in record.errors],
        "total_errors": record.total_errors,
        "url": f"/api/v1/projects/{record.project.slug}/imports/{record.pk}",
    }


@router.post(
    "/projects/{slug}/samples/import",
    response={202: s.ImportJobOut, **ERRORS},
    summary="Import a JSONL or CSV file in the background",
)
def sample_import_file(request: TokenRequest, slug: str, file: File[UploadedFile]) -> Status[dict[str, Any]]:
    """The file is stored and the answer comes at once; a worker then checks every row (a bad file is refused
    whole, with line numbers, nothing written) and writes it. Follow `url` for its progress and outcome."""
    project, _ = project_for(request, slug, Role.OWNER, write=True)
    record = import_jobs.receive(project, file, file.name or "", request.auth.user)
    # robust: with the broker away the import waits, queued, for the repair (reviews.tasks.repair_imports)
    transaction.on_commit(partial(run_import.delay, record.pk), robust=True)
    return Status(202, _import_job_out(record))


@router.get(
    "/projects/{slug}/imports/{import_id}", response={200: s.ImportJobOut, **ERRORS}, summary="An import's progress"
)
def import_read(request: TokenRequest, slug: str, import_id: int = Path(..., ge=1, le=s.MAX_ID)) -> dict[str, Any]:
    project, _ = project_for(request, slug, Role.OWNER)
    record = ImportRun.objects.select_related("project").filter(project=project, pk=import_id).first()
    if record is None:
        raise ApiError(404, "No such import in this project.")
    return _import_job_out(record)


@router.post(
    "/projects/{slug}/samples", response={200: s.ImportOut, **ERRORS}, summary="Import samples from a JSON array"
)
def sample_import_json(request: TokenRequest, slug: str, items: Body[list[object]]) -> dict[str, Any]:
    """Each item is one row as in a JSONL file; an error's `line` is the item's position, counted from 1."""
    if not items:
        raise field_error("body", "The array is empty: send at least one sample.")
    return _import(request, slug, _as_jsonl(items), "request.jsonl")


def _sample_out(sample: Sample) -> dict[str, Any]:
    return {f: getattr(sample, f) for f in s.SampleOut.model_fields}


@router.get("/projects/{slug}/samples", response={200: s.SamplePage, **ERRORS}, summary="List samples")
def sample_list(request: TokenRequest, slug: str, query: Query[s.SampleQuery]) -> dict[str, Any]:
    project, _ = project_for(request, slug)
    qs = Sample.objects.visible(project).order_by("id")
    if query.external_id is not None:
        qs = qs.filter(external_id=query.external_id)
    if query.judge_value is not None:
        qs = qs.filter(judge_value=query.judge_value)
    if query.reviewed is not None:
        reviewed = Exists(Feedback.objects.filter(sample=OuterRef("pk")))
        qs = qs.filter(reviewed if query.reviewed else ~reviewed)
    if query.after is not None:
        qs = qs.filter(id__gt=query.after)
    result = _page(list(qs[: query.limit + 1]), lambda x: x.pk, query.limit)
    result["items"] = [_sample_out(x) for x in result["items"]]
    return result


@router.get(
    "/projects/{slug}/samples/{sample_id}",
    response={200: s.SampleDetail, **ERRORS},
    summary="Read a sample with its feedback",
)
def sample_read(request: TokenRequest, slug: str, sample_id: int = Path(..., ge=1, le=s.MAX_ID)) -> dict[str, Any]:
    project, membership = project_for(request, slug)
    sample = _sample(project, sample_id=sample_id)
    feedback = visible_feedback(membership, sample.feedback.select_related("author", "sample").order_by("id"))
    return {**_sample_out(sample), "feedback": [_feedback_out(f) for f in feedback]}


def _sample(project: Project, sample_id: int | None = None, external_id: str | None = None) -> Sample:
    found: QuerySet[Sample] = (
        Sample.objects.visible(project).filter(pk=sample_id)
        if sample_id
        else Sample.objects.visible(project).filter(external_id=external_id)
    )
    sample = found.first()
    if sample is None:
        raise ApiError(404, "No such sample in this project.")
    return sample


# --- feedback ------------------------------------------------------------------------------------------------


def _feedback_out(f: Feedback) -> dict[str, Any]:
    return {
        "id": f.pk,
        "sample_id": f.sample_id,
        "external_id": f.sample.external_id,
        "reviewer": f.author.username,
        "label": f.label,
        "critique": f.critique,
        "quote": saved_quote(f),
        "agrees_with_judge": f.agrees_with_judge,
        "revision": f.revision,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
    }


@router.get("/projects/{slug}/feedback", response={200: s.FeedbackPage, **ERRORS}, summary="List feedback")
def feedback_list(request: TokenRequest, slug: str, query: Query[s.FeedbackQuery]) -> dict[str, Any]:
    """Reviewers review blind: they see feedback only on samples they reviewed themselves."""
    project, membership = project_for(request, slug)
    qs = (
        visible_feedback(membership, Feedback.objects.filter(project=project))
        .select_related("author", "sample")
        .order_by("id")
    )
    filters = Q()
    if query.reviewer is not None:
        filters &= Q(author__username=query.reviewer)
    if query.label is not None:
        filters &= Q(label=query.label)
    if query.since is not None:
        filters &= Q(updated_at__gte=query.since)
    if query.until is not None:
        filters &= Q(updated_at__lt=query.until)
    if query.after is not None:
        filters &= Q(id__gt=query.after)
    result = _page(list(qs.filter(filters)[: query.limit + 1]), lambda f: f.pk, query.limit)
    result["items"] = [_feedback_out(f) for f in result["items"]]
    return result


@router.post(
    "/projects/{slug}/feedback",
    response={200: s.FeedbackOut, 201: s.FeedbackOut, **ERRORS},
    summary="Give feedback on a sample",
)
def feedback_create(request: TokenRequest, slug: str, data: s.FeedbackIn) -> Status[dict[str, Any]]:
    """The caller's own label and critique on a sample named by `sample_id` or `external_id`. Sending the same
    content again changes nothing (200); different content on a sample the caller already reviewed is a 409."""
    project, _ = project_for(request, slug, Role.REVIEWER, write=True)
    if (data.sample_id is None) == (data.external_id is None):
        raise field_error("sample_id", "Name the sample by sample_id or by external_id (one of them).")
    sample = _sample(project, data.sample_id, data.external_id)
    try:
        normalize_label(data.label, project.label_choices, project.label_kind)
    except ValidationError as error:
        raise field_error("label", error.messages[0]) from None
    quoted = None
    if data.quote is not None:
        try:
            quoted = quote(sample, data.quote.output, data.quote.text)
        except ValidationError as error:
            raise field_error("quote", error.messages[0]) from None
    try:
        feedback, created = save_feedback(sample, request.auth.user, data.label, data.critique, quoted=quoted)
    except ValidationError as error:
        raise field_error("critique", error.messages[0]) from None
    except StaleFeedback:
        raise ApiError(409, "You already gave different feedback on this sample; edit it on the review page.") from None
    return Status(201 if created else 200, _feedback_out(feedback))


# --- judging -------------------------------------------------------------------------------------------------


def _judge_item(project: Project, data: s.JudgeIn) -> dict[str, str | None]:
    inputs = data.inputs if isinstance(data.inputs, str) else json.dumps(data.inputs, indent=2, ensure_ascii=False)
    if not inputs.strip() or inputs in ("{}", "[]"):
        raise field_error("inputs", "inputs is empty.")
    if len(inputs) > MAX_TEXT_CHARS:
        raise field_error("inputs", f"inputs is {len(inputs):,} characters long; the limit is {MAX_TEXT_CHARS:,}.")
    if project.is_pairwise:
        if data.outputs is not None:
            raise field_error("outputs", "A pairwise project takes output_a and output_b, not outputs.")
        for name in ("output_a", "output_b"):
            if not (getattr(data, name) or "").strip():
                raise field_error(name, f"{name} is missing: a pairwise project judges two outputs.")
        return {"inputs": inputs, "output_a": data.output_a, "output_b": data.output_b}
    if data.output_a is not None or data.output_b is not None:
        raise field_error("output_a", "output_a and output_b are for pairwise projects; this one takes outputs.")
    if not (data.outputs or "").strip():
        raise field_error("outputs", "outputs is missing: the output to judge.")
    return {"inputs": inputs, "output": data.outputs}


@router.post(
    "/projects/{slug}/judge",
    response={200: s.JudgeOut, 502: s.ErrorOut, 503: s.ErrorOut, **ERRORS},
    summary="Judge one item",
)
def judge(request: TokenRequest, slug: str, data: s.JudgeIn) -> dict[str, Any]:
    """Judge one item with the aligned judge, synchronously. Stores nothing. A provider failure is a 502 with
    the provider's message."""
    project, membership = project_for(request, slug)
    if is_blind(membership):
        raise ApiError(403, "Reviewers review blind, so judging from the API is for owners and viewers.")
    item = _judge_item(project, data)
    try:
        result = tries.judge(project, item)
    except tries.Busy as error:
        raise ApiError(503, str(error)) from None
    memory = result.memory
    return {
        "verdict": result.verdict.value,
        "rationale": result.verdict.rationale,
        "principles": [{"id": p.id, "text": p.text} for p in memory.principles],
        "examples": [
            {"feedback_id": e.feedback_id, "label": e.label, "similarity": e.similarity, "same_item": e.same_item}
            for e in memory.examples
        ],
        "memory_version": result.version,
        "provider": result.provider,
        "model": result.model,
        "usage": result.verdict.usage.as_dict(),
        "tier": result.verdict.tier,
        "probability": result.verdict.probability,
        "probabilities": result.memory.local.probabilities if result.memory.local else {},
    }


# --- runs ----------------------------------------------------------------------------------------------------


def _run_out(run: JudgeRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "scope": run.scope,
        "total": run.total,
        "done": run.done,
        "failed": run.failed,
        "abstained": run.abstained,
        "percent": run.percent,
        "memory_version": run.memory_version.number if run.memory_version else None,
        "figures": run.figures,
        "tiers": tiers.summary(run),
        "guarantee": run.guarantee,
        "corrected_rates": run.corrected_rates,
        "checks": run.checks,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def _run(project: Project, run_id: int) -> JudgeRun:
    run = JudgeRun.objects.select_related("memory_version", "project").filter(project=project, pk=run_id).first()
    if run is None:
        raise ApiError(404, "No such run in this project.")
    return run


@router.post("/projects/{slug}/runs", response={201: s.RunOut, **ERRORS}, summary="Start a judge run")
def run_start(request: TokenRequest, slug: str, data: s.RunIn) -> Status[dict[str, Any]]:
    """Judge the scope's samples in the background; it starts at once, or after the project's active run."""
    project, _ = project_for(request, slug, Role.OWNER, write=True)
    if (data.scope == JudgeRun.Scope.ITEMS.value) != bool(data.items):
        raise field_error("items", "Send items with the scope items (and only with it), at least one.")
    sample_ids = None
    if data.items:
        import_samples(project, io.BytesIO(_as_jsonl(data.items)), "request.jsonl", request.auth.user)
        external_ids = [str(item["external_id"]).strip() for item in data.items]  # the import validated them
        sample_ids = list(
            Sample.objects.filter(project=project, external_id__in=external_ids).values_list("id", flat=True)
        )
    try:
        run = runs.start(
            project, request.auth.user, data.scope, limit=data.limit, sample_ids=sample_ids, origin=JudgeRun.Origin.API
        )
    except runs.RunError as error:
        raise field_error("scope", str(error)) from None
    return Status(201, _run_out(_run(project, run.pk)))


@router.get("/projects/{slug}/runs/{run_id}", response={200: s.RunOut, **ERRORS}, summary="A run's status")
def run_read(request: TokenRequest, slug: str, run_id: int = Path(..., ge=1, le=s.MAX_ID)) -> dict[str, Any]:
    project, _ = project_for(request, slug)
    return _run_out(_run(project, run_id))


@router.get(
    "/projects/{slug}/runs/{run_id}/verdicts", response={200: s.VerdictPage, **ERRORS}, summary="A run's verdicts"
)
def run_verdicts(
    request: TokenRequest, slug: str, query: Query[s.VerdictQuery], run_id: int = Path(..., ge=1, le=s.MAX_ID)
) -> dict[str, Any]:
    project, membership = project_for(request, slug)
    run = _run(project, run_id)
    page = run_listing.verdict_page(
        run_listing.verdicts(run, membership, query.filter), membership, query.after, size=query.limit
    )
    items = [
        {
            "sample_id": j.sample_id,
            "external_id": j.sample.external_id,
            "verdict": j.value or None,
            "rationale": j.rationale,
            "error": j.error,
            "imported": j.sample.judge_value,
            "experts": j.expert_labels,  # type: ignore[attr-defined]  # set by run_listing.verdict_page
            "principle_ids": j.principle_ids,
            "retrieved": j.retrieved,
            "usage": j.usage or {},
            "confidence": j.confidence,
            "escalated": j.escalated,
            "position_consistent": j.position_consistent,
            "checks": j.checks or {},
            "withheld": j.withheld,  # type: ignore[attr-defined]  # set by run_listing.verdict_page
        }
        for j in page.items
    ]
    return {"items": items, "next_after": page.next_after}


@router.post("/projects/{slug}/runs/{run_id}/cancel", response={200: s.RunOut, **ERRORS}, summary="Cancel a run")
def run_cancel(request: TokenRequest, slug: str, run_id: int = Path(..., ge=1, le=s.MAX_ID)) -> dict[str, Any]:
    """Stop a run; what it judged stays. Cancelling a finished run changes nothing."""
    project, _ = project_for(request, slug, Role.OWNER, write=True)
    run = _run(project, run_id)
    runs.cancel(run)
    return _run_out(_run(project, run_id))


# --- memory and metrics ----------------------------------------------------------------------------------------


@router.get("/projects/{slug}/principles", response={200: list[s.PrincipleOut], **ERRORS}, summary="The principles")
def principle_list(request: TokenRequest, slug: str, retired: bool = False) -> list[Principle]:
    """The semantic memory's active principles (with `retired=true`, the retired ones as well)."""
    project, membership = project_for(request, slug)
    qs = Principle.objects.filter(project=project).exclude(pk__in=blind.withheld_principle_ids(membership, project))
    return list((qs if retired else qs.filter(retired=False)).order_by("id"))


@router.get("/projects/{slug}/versions", response={200: s.VersionPage, **ERRORS}, summary="Memory versions")
def version_list(request: TokenRequest, slug: str, page: Query[s.PageQuery]) -> dict[str, Any]:
    """The memory's versions, newest first; `after` continues below that version number."""
    project, membership = project_for(request, slug)
    qs = MemoryVersion.objects.filter(project=project).order_by("-number")
    if page.after is not None:
        qs = qs.filter(number__lt=page.after)
    found = list(qs[: page.limit + 1])
    withheld = blind.withheld_principle_ids(membership, project)
    for version in found:  # the snapshot, as a blind reviewer may read it (not saved)
        version.principles = [p for p in version.principles if p.get("id") not in withheld]
    return _page(found, lambda v: v.number, page.limit)


@router.get("/projects/{slug}/metrics", response={200: s.MetricsOut, **ERRORS}, summary="The latest agreement figures")
def metrics(request: TokenRequest, slug: str) -> dict[str, Any]:
    project, _ = project_for(request, slug)
    figures, experts = run_agreement.imported_judge_agreement(project)
    latest = (
        JudgeRun.objects.select_related("memory_version")
        .filter(project=project, status=JudgeRun.Status.DONE)
        .order_by("-id")
        .first()
    )
    return {
        "imported_judge": figures.as_dict() if figures else None,
        "reviewed_samples": experts.samples,
        "latest_run": _run_out(latest) if latest else None,
    }


# --- the dataset ---------------------------------------------------------------------------------------------


def _file(content_type: str, description: str) -> dict[str, Any]:
    """The OpenAPI description of a streamed file (the schema then allows its content type)."""
    body = {"content": {content_type: {"schema": {"type": "string"}}}, "description": description}
    return {"responses": {200: body}}


@router.get(
    "/projects/{slug}/export.jsonl",
    response=ERRORS,
    summary="The dataset as JSONL: samples, reviews, final labels",
    openapi_extra=_file("application/x-ndjson", "One sample a line."),
)
def dataset_jsonl(request: TokenRequest, slug: str) -> StreamingHttpResponse:
    """One sample a line, with every review and the final label (blind reviewers: on samples they reviewed)."""
    project, membership = project_for(request, slug)
    return dataset_response(project, membership, "jsonl")


@router.get(
    "/projects/{slug}/export.csv",
    response=ERRORS,
    summary="The dataset as CSV: samples, reviews, final labels",
    openapi_extra=_file("text/csv", "One sample a row; each reviewer's label, critique and time in columns."),
)
def dataset_csv(request: TokenRequest, slug: str) -> StreamingHttpResponse:
    """One sample a row; each reviewer's label, critique and time in columns of their own."""
    project, membership = project_for(request, slug)
    return dataset_response(project, membership, "csv")
