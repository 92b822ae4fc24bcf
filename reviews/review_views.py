"""The reviewer's pages: import, the queue, the review page and saving or deleting feedback."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from reviews import overlap, queue
from reviews.feedback import StaleFeedback, delete_feedback, save_feedback
from reviews.forms import FeedbackForm
from reviews.importers import ImportRejected, human_size, import_samples, max_bytes, max_rows, too_large_message
from reviews.middleware import accepts_upload
from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS, Feedback, Role, Sample
from reviews.permissions import (
    can,
    can_delete_feedback,
    can_edit_feedback,
    feedback_shown,
    is_blind,
    project_view,
    require,
)


def _query(request: HttpRequest) -> queue.QueueQuery:
    """The queue query in the URL; its filters travel in the query string only (a POST body holds a label)."""
    membership = request.membership
    default = "todo" if can(membership, Role.REVIEWER) else "all"
    hidden = Sample.objects.writing_runs(request.project)
    return queue.QueueQuery.from_params(request.GET, default, blind=is_blind(membership), hidden_runs=hidden)


@accepts_upload(Role.OWNER, max_bytes)
@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def sample_import(request: HttpRequest) -> HttpResponse:
    project = request.project
    context = {
        "project": project,
        "membership": request.membership,
        "max_size": human_size(max_bytes()),
        "max_rows": max_rows(),
        "max_text": MAX_TEXT_CHARS,
        "max_critique": MAX_CRITIQUE_CHARS,
    }
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            context["errors"] = [(None, "Choose a CSV or JSONL file to import.")]
            status = 400
        elif upload.size > max_bytes():
            context.update(errors=[(None, too_large_message(upload.size))], filename=upload.name)
            status = 400
        else:
            try:
                summary = import_samples(project, upload, upload.name, request.user)
            except ImportRejected as rejected:
                context.update(errors=rejected.errors, total_errors=rejected.total_errors, filename=upload.name)
                status = 400
            else:
                messages.success(request, f"{upload.name}: {summary.message()}")
                queue_url = reverse("sample-queue", args=[project.slug])
                return HttpResponseClientRedirect(queue_url) if request.htmx else redirect(queue_url)
    return render(request, "reviews/import.html", context, status=status)


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
def sample_queue(request: HttpRequest) -> HttpResponse:
    project = request.project
    query = _query(request)
    qs = queue.samples(project, request.user, query)
    mine = Feedback.objects.filter(author=request.user)
    qs = qs.prefetch_related(Prefetch("feedback", queryset=mine, to_attr="my_feedback"))
    result = queue.page(qs, _int(request.GET.get("after")), _int(request.GET.get("before")))
    context = {
        "project": project,
        "membership": request.membership,
        "query": query,
        "query_string": urlencode(query.params()),
        "filters": [
            (name, label, n)
            for (name, label), n in zip(queue.FILTERS.items(), queue.counts(project, request.user, query).values())
        ],
        "page": result,
        "labels": project.label_choices,
    }
    return render(request, "reviews/queue.html", context)


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
@vary_on_headers("HX-Request")  # the same URL answers a whole page or, for htmx and the prefetch, the item alone
def sample_review(request: HttpRequest, sample_id: int) -> HttpResponse:
    sample = get_object_or_404(Sample.objects.visible(request.project), pk=sample_id)
    # Served from "needs my review": take one of its review slots (overlap), unless others hold them all.
    served = _query(request).filter == "todo" and can(request.membership, Role.REVIEWER)
    if served and not overlap.claim(sample, request.user) and not request.htmx:
        messages.info(request, "This sample has all the reviewers it needs; you may still review it, or go on.")
    context = _review_context(request, sample)
    template = "reviews/review.html#item" if request.htmx else "reviews/review.html"
    return render(request, template, context)


@project_view(Role.REVIEWER)
@require_POST
def feedback_save(request: HttpRequest, sample_id: int) -> HttpResponse:
    sample = get_object_or_404(Sample.objects.visible(request.project), pk=sample_id)
    form = FeedbackForm(request.POST)
    error = None
    if form.is_valid():
        try:
            feedback, created = save_feedback(
                sample,
                request.user,
                form.cleaned_data["label"],
                form.cleaned_data["critique"],
                form.cleaned_data["revision"] or 0,
            )
        except (ValidationError, StaleFeedback) as problem:
            error = problem.messages[0] if isinstance(problem, ValidationError) else str(problem)
        else:
            if not request.htmx:
                messages.success(request, "Feedback saved.")
                return redirect(_next_url(request, sample))
            response = render(request, "reviews/review.html#item", _review_context(request, sample, saved=True))
            return trigger_client_event(
                response,
                "feedbackSaved",
                {"sampleId": sample.pk, "feedbackId": feedback.pk, "created": created},
                after="swap",
            )
    else:
        error = " ".join(" ".join(errs) for errs in form.errors.values())
    context = _review_context(request, sample, error=error, posted=request.POST)
    template = "reviews/review.html#item" if request.htmx else "reviews/review.html"
    return render(request, template, context, status=422)


@project_view(Role.REVIEWER)
@require_POST
def feedback_delete(request: HttpRequest, feedback_id: int) -> HttpResponse:
    feedback = get_object_or_404(Feedback.objects.select_related("sample"), pk=feedback_id, project=request.project)
    if not can_delete_feedback(request.membership, feedback):
        require(request.membership, Role.OWNER)  # raises 403 with the reason
    delete_feedback(feedback)
    messages.success(request, "Feedback deleted; the judge will unlearn it.")
    return redirect(reverse("sample-review", args=[request.project.slug, feedback.sample_id]) + _query_suffix(request))


def _review_context(
    request: HttpRequest, sample: Sample, saved: bool = False, error: str | None = None, posted=None
) -> dict:
    project = request.project
    query = _query(request)
    previous_id, next_id = queue.neighbours(project, request.user, query, sample.pk)
    all_feedback = list(sample.feedback.select_related("author", "imported_by").order_by("created_at"))
    mine, others, hidden = feedback_shown(request.membership, all_feedback)
    suffix = "?" + urlencode(query.params()) if query.params() else ""
    return {
        "project": project,
        "membership": request.membership,
        "sample": sample,
        "labels": project.label_choices,
        "mine": mine,
        "can_review": can(request.membership, Role.REVIEWER),
        "can_edit": mine is None or can_edit_feedback(request.membership, mine),
        "others": [(f, can_delete_feedback(request.membership, f)) for f in others],
        "hidden_others": hidden,
        "query": query,
        "query_suffix": suffix,
        "previous_url": reverse("sample-review", args=[project.slug, previous_id]) + suffix if previous_id else "",
        "next_url": reverse("sample-review", args=[project.slug, next_id]) + suffix if next_id else "",
        "queue_url": reverse("sample-queue", args=[project.slug]) + suffix,
        "saved": saved,
        "error": error,
        "posted_label": (posted or {}).get("label", mine.label if mine else ""),
        "posted_critique": (posted or {}).get("critique", mine.critique if mine else ""),
    }


def _next_url(request: HttpRequest, sample: Sample) -> str:
    context = _review_context(request, sample)
    return context["next_url"] or context["queue_url"]


def _query_suffix(request: HttpRequest) -> str:
    params = _query(request).params()
    return "?" + urlencode(params) if params else ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
