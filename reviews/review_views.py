"""The reviewer's pages: import, the queue, the review page and saving or deleting feedback."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRedirect, push_url, trigger_client_event

from reviews import figures, import_jobs, overlap, queue
from reviews.coaching import vague_reason
from reviews.feedback import StaleFeedback, delete_feedback, quote, save_feedback, undo_save
from reviews.forms import FeedbackForm
from reviews.import_reading import ImportRejected, human_size, max_bytes, max_rows, too_large_message
from reviews.middleware import accepts_upload
from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS, Feedback, ImportRun, Project, Role, Sample
from reviews.permissions import (
    ProjectRequest,
    can,
    can_delete_feedback,
    can_edit_feedback,
    feedback_shown,
    is_blind,
    project_view,
    require,
    verdict_hidden,
)
from reviews.tasks import run_import

PRELOAD_SECONDS = 60  # how long the browser may keep a preloaded item (its URL changes with any feedback anyway)
UNDO_SECONDS = 15  # a save can be undone this long (the page offers it for the first 10)
UNDO_KEY = "memalign-undo"
PICKS_KEY = "memalign-blind-picks"  # sample id -> the label chosen before the judge's verdict was revealed
PICKS_KEPT = 50


def _query(request: ProjectRequest) -> queue.QueueQuery:
    """The queue query in the URL; its filters travel in the query string only (a POST body holds a label).
    Read once per request (it asks the database which imports are unfinished and which order is the default)."""
    found = getattr(request, "_queue_query", None)
    if found is None:
        found = request._queue_query = _read_query(request)  # type: ignore[attr-defined]
    return found


def _read_query(request: ProjectRequest) -> queue.QueueQuery:
    membership = request.membership
    reviewer = can(membership, Role.REVIEWER)
    default = "todo" if reviewer else "all"
    hidden = Sample.objects.writing_runs(request.project)
    return queue.QueueQuery.from_params(
        request.GET,
        default,
        blind=is_blind(membership),
        judge_hidden=request.project.judge_blind and reviewer,
        hidden_runs=hidden,
        default_order=queue.default_order(request.project),
        reviewer=reviewer,
    )


@accepts_upload(Role.OWNER, max_bytes)
@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def sample_import(request: ProjectRequest) -> HttpResponse:
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
        elif (upload.size or 0) > max_bytes():
            context.update(errors=[(None, too_large_message(upload.size))], filename=upload.name)
            status = 400
        else:
            try:
                record = import_jobs.receive(project, upload, upload.name or "upload", request.user)
            except ImportRejected as rejected:
                context.update(errors=rejected.errors, total_errors=rejected.total_errors, filename=upload.name)
                status = 400
            else:
                # robust: with the broker away the import waits, queued, for the repair (reviews.tasks)
                transaction.on_commit(partial(run_import.delay, record.pk), robust=True)
                status_url = reverse("sample-import-status", args=[project.slug, record.pk])
                return HttpResponseClientRedirect(status_url) if request.htmx else redirect(status_url)
    return render(request, "reviews/import.html", context, status=status)


@project_view(Role.OWNER)
@require_http_methods(["GET"])
def sample_import_status(request: ProjectRequest, import_id: int) -> HttpResponse:
    """An import's progress (polled by the page while it runs), then its summary or the file's problems."""
    record = get_object_or_404(ImportRun, project=request.project, pk=import_id)
    context = {"project": request.project, "membership": request.membership, "record": record}
    if not request.htmx:
        return render(request, "reviews/import_status.html", context)
    response = render(request, "reviews/import_status.html#progress", context)
    if record.finished:
        response.status_code = HTMX_STOP_POLLING  # the bar stops polling; the summary is in this reply
    return response


def _empty_queue(project: Project, query: queue.QueueQuery, counts: Mapping[str, int]) -> str:
    """Why the queue shows nothing: no samples yet, the reviewer reviewed every sample, or the others' reviews
    cover what the reviewer has not reviewed (each sample wants the project's reviews per sample, no more)."""
    if not Sample.objects.filter(project=project).exists():
        return "no-samples"
    if query.filter != "todo":
        return "nothing"
    return "all-mine" if counts["mine"] >= counts["all"] else "covered"


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
def sample_queue(request: ProjectRequest) -> HttpResponse:
    project = request.project
    query = _query(request)
    qs = queue.samples(project, request.user, query).select_related("priority")
    if query.filter not in queue.SHRINKING:  # those hold no sample the reviewer reviewed
        mine = Feedback.objects.filter(author=request.user)
        qs = qs.prefetch_related(Prefetch("feedback", queryset=mine, to_attr="my_feedback"))
    after, before = _int(request.GET.get("after")), _int(request.GET.get("before"))
    result = queue.page(qs, after, before, key=query.key, project=project)
    if query.filter in queue.SHRINKING:
        for item in result.items:
            item.my_feedback = []  # type: ignore[attr-defined]
    counts = queue.counts(project, request.user, query)
    reviewer = can(request.membership, Role.REVIEWER)
    context = {
        "project": project,
        "membership": request.membership,
        "query": query,
        # Review links and pages carry the order shown here, so walking the queue follows what the reviewer saw.
        "query_string": urlencode(replace(query, order_chosen=True).params()),
        "filters": [
            (name, label, counts[name])
            for name, label in queue.FILTERS.items()
            if reviewer or name not in queue.REVIEWER_FILTERS
        ],
        "empty": _empty_queue(project, query, counts) if not result.items else "",
        "page": result,
        "labels": project.label_choices,
        # A judge-blind first pass: a reviewer sees the judge's verdict only on samples they have labelled.
        "judge_blind": project.judge_blind and can(request.membership, Role.REVIEWER),
        "orders": [(name, label, urlencode({**query.params(), "order": name})) for name, label in queue.ORDERS.items()],
    }
    return render(request, "reviews/queue.html", context)


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
@vary_on_headers("HX-Request")  # the same URL answers a whole page or, for htmx and the preload, the item alone
def sample_review(request: ProjectRequest, sample_id: int) -> HttpResponse:
    # Sample.objects.visible, with the unfinished imports the query already read
    samples = queue.with_rank(Sample.objects.filter(project=request.project))  # its rank: its place in the queue
    hidden = _query(request).hidden_runs
    sample = get_object_or_404(samples.exclude(import_run__in=hidden) if hidden else samples, pk=sample_id)
    # Served from "needs my review": take one of its review slots (overlap), unless others hold them all.
    served = _query(request).filter == "todo" and can(request.membership, Role.REVIEWER)
    if served and not overlap.claim(sample, request.user) and not request.htmx:
        messages.info(request, "This sample has all the reviewers it needs; you may still review it, or go on.")
    if not request.htmx:
        return render(request, "reviews/review.html", _review_context(request, sample))
    response = render(request, "reviews/review.html#item", _review_context(request, sample))
    if request.GET.get("v"):
        # The preload extension fetches the next item ahead into the browser's cache. `v` is the project's
        # feedback state: any save changes the links' URLs, so a cached item is never one that changed since.
        patch_cache_control(response, private=True, max_age=PRELOAD_SECONDS)
    return response


@project_view(Role.REVIEWER)
@require_POST
def feedback_save(request: ProjectRequest, sample_id: int) -> HttpResponse:
    sample = get_object_or_404(Sample.objects.visible(request.project), pk=sample_id)
    form = FeedbackForm(request.POST)
    error = nudge = None
    if form.is_valid():
        label, critique = form.cleaned_data["label"], form.cleaned_data["critique"]
        if not request.POST.get("coached"):
            nudge = vague_reason(critique, label, sample.judge_value, sample.judge_rationale)
        if nudge is None:
            before = _saved_content(sample, request)
            try:
                feedback, created = save_feedback(
                    sample,
                    request.user,
                    label,
                    critique,
                    form.cleaned_data["revision"] or 0,
                    verdict_shown=_verdict_shown(request, sample, label, first=before is None),
                    quoted=quote(sample, form.cleaned_data["quote_output"], form.cleaned_data["quote_text"]),
                )
            except (ValidationError, StaleFeedback) as problem:
                error = problem.messages[0] if isinstance(problem, ValidationError) else str(problem)
            else:
                if str(sample.pk) in _picks(request):  # answered: the next pass on it is not a first one
                    request.session[PICKS_KEY] = {k: v for k, v in _picks(request).items() if k != str(sample.pk)}
                changed = created or before != _saved_content(sample, request)
                if changed:
                    _remember_for_undo(request, feedback, None if created else before)
                return _after_save(request, sample, feedback, created, changed)
    else:
        error = " ".join(str(e) for errs in form.errors.values() for e in errs)
    context = _review_context(request, sample, error=error, nudge=nudge, posted=request.POST)
    template = "reviews/review.html#item" if request.htmx else "reviews/review.html"
    return render(request, template, context, status=422)


def _saved_content(sample: Sample, request: ProjectRequest) -> dict[str, Any] | None:
    """The reviewer's feedback on the sample as an undo puts it back: label, critique and quote."""
    row = Feedback.objects.filter(sample=sample, author=request.user).first()
    if row is None:
        return None
    quoted = {"text": row.quote_text, "output": row.quote_output, "start": row.quote_start, "end": row.quote_end}
    return {"label": row.label, "critique": row.critique, "quote": quoted}


def _verdict_shown(request: ProjectRequest, sample: Sample, label: str, first: bool) -> bool:
    """Whether the judge's verdict was on screen when this label was chosen: in a judge-blind first pass, not if
    the label is the one picked before the reveal (or no reveal happened); otherwise it was shown."""
    if not (first and request.project.judge_blind):
        return True
    picked = _picks(request).get(str(sample.pk))
    return picked is not None and picked != label


def _picks(request: ProjectRequest) -> dict[str, str]:
    picks = request.session.get(PICKS_KEY)
    return picks if isinstance(picks, dict) else {}


@project_view(Role.REVIEWER)
@require_POST
def verdict_reveal(request: ProjectRequest, sample_id: int) -> HttpResponse:
    """The judge-blind first pass: the reviewer chose a label; remember it, and show the judge's verdict."""
    sample = get_object_or_404(Sample.objects.visible(request.project), pk=sample_id)
    label = request.POST.get("label", "")
    if label not in request.project.label_choices:
        return HttpResponse("Choose one of the project's labels first.", status=400, content_type="text/plain")
    picks = _picks(request)
    picks.setdefault(str(sample.pk), label)  # the first label chosen blind; later ones were chosen seeing it
    request.session[PICKS_KEY] = dict(list(picks.items())[-PICKS_KEPT:])
    context = {
        "project": request.project,
        "membership": request.membership,
        "sample": sample,
        "verdict_hidden": False,
        "picked": picks[str(sample.pk)],
        "aside_oob": True,  # the aligned judge's verdict too, out of band (withheld until now as well)
    }
    return render(request, "reviews/review.html#verdict", context)


def _after_save(
    request: ProjectRequest, sample: Sample, feedback: Feedback, created: bool, changed: bool
) -> HttpResponse:
    """Answer a save: htmx gets the next item at once (with the saved cue and its undo), or this one marked
    saved when the queue holds nothing further; a plain form post is redirected to the next sample."""
    if not request.htmx:
        messages.success(request, "Feedback saved.")
        return redirect(_next_url(request, sample))
    cue = {"sample": sample, "label": feedback.label, "feedback_id": feedback.pk, "undo": changed}
    _previous, next_id = queue.neighbours(request.project, request.user, _query(request), sample.pk)
    following = Sample.objects.visible(request.project).filter(pk=next_id).first() if next_id else None
    if following is None:
        response = render(request, "reviews/review.html#item", _review_context(request, sample, saved=True, cue=cue))
    else:
        context = _review_context(request, following, cue=cue)
        response = push_url(render(request, "reviews/review.html#item", context), context["self_url"])
    return trigger_client_event(
        response,
        "feedbackSaved",
        {"sampleId": sample.pk, "feedbackId": feedback.pk, "created": created},
        after="swap",
    )


def _remember_for_undo(request: ProjectRequest, feedback: Feedback, previous: Mapping[str, Any] | None) -> None:
    request.session[UNDO_KEY] = {
        "feedback": feedback.pk,
        "sample": feedback.sample_id,
        "revision": feedback.revision,
        "previous": previous,
        "until": time.time() + UNDO_SECONDS,
    }


@project_view(Role.REVIEWER)
@require_POST
def feedback_undo(request: ProjectRequest, feedback_id: int) -> HttpResponse:
    """Undo the reviewer's last save, for UNDO_SECONDS after it: back to that sample, as it was before."""
    stash = request.session.get(UNDO_KEY) or {}
    feedback = get_object_or_404(Feedback.objects.select_related("sample"), pk=feedback_id, project=request.project)
    sample = feedback.sample
    if feedback.author_id != request.user.pk or stash.get("feedback") != feedback.pk:
        problem = "There is no save of yours to undo here (only your last one can be undone)."
    elif stash["until"] < time.time():
        problem = f"Too late to undo: a save can be undone for {UNDO_SECONDS} seconds. Edit the feedback instead."
    else:
        problem = None
    if problem is None:
        try:
            undo_save(sample, request.user, stash["revision"], stash["previous"])
        except StaleFeedback as stale:
            problem = str(stale)
        else:
            del request.session[UNDO_KEY]
    if not request.htmx:
        (messages.error if problem else messages.success)(request, problem or "Undone.")
        return redirect(reverse("sample-review", args=[request.project.slug, sample.pk]) + _query_suffix(request))
    context = _review_context(request, sample, error=problem, undone=problem is None)
    return push_url(
        render(request, "reviews/review.html#item", context, status=422 if problem else 200), context["self_url"]
    )


@project_view(Role.REVIEWER)
@require_POST
def feedback_delete(request: ProjectRequest, feedback_id: int) -> HttpResponse:
    feedback = get_object_or_404(Feedback.objects.select_related("sample"), pk=feedback_id, project=request.project)
    if not can_delete_feedback(request.membership, feedback):
        require(request.membership, Role.OWNER)  # raises 403 with the reason
    delete_feedback(feedback)
    messages.success(request, "Feedback deleted; the judge will unlearn it.")
    return redirect(reverse("sample-review", args=[request.project.slug, feedback.sample_id]) + _query_suffix(request))


def _review_context(
    request: ProjectRequest,
    sample: Sample,
    saved: bool = False,
    error: str | None = None,
    posted=None,
    nudge: str | None = None,
    cue: dict | None = None,
    undone: bool = False,
) -> dict:
    project = request.project
    # The order the reviewer walks is fixed when they start, so a ranking stored meanwhile does not reshuffle it.
    query = replace(_query(request), order_chosen=True)
    place = queue.place(project, request.user, query, sample.pk, queue.key_of(query, sample))
    previous_id, next_id = place.previous, place.next
    all_feedback = list(sample.feedback.select_related("author", "imported_by").order_by("created_at"))
    mine, others, hidden = feedback_shown(request.membership, all_feedback)
    picked = _picks(request).get(str(sample.pk))
    hide_verdict = verdict_hidden(request.membership, project, mine, picked is not None)
    suffix = "?" + urlencode(query.params())
    version = figures.token(project.pk)  # changes whenever any feedback in the project is saved or deleted

    def url(sample_id: int | None) -> str:
        return reverse("sample-review", args=[project.slug, sample_id]) + suffix if sample_id else ""

    return {
        "project": project,
        "membership": request.membership,
        "sample": sample,
        "labels": project.label_choices,
        "mine": mine,
        "verdict_hidden": hide_verdict,
        # the judge's verdict sits beside the labels when reviewers choose theirs first
        "blind_pass": project.judge_blind and can(request.membership, Role.REVIEWER) and mine is None,
        "picked": picked if project.judge_blind and mine is None else None,
        "can_review": can(request.membership, Role.REVIEWER),
        "can_edit": mine is None or can_edit_feedback(request.membership, mine),
        "others": [(f, can_delete_feedback(request.membership, f)) for f in others],
        "hidden_others": hidden,
        "query": query,
        "query_suffix": suffix,
        "filter_label": queue.FILTERS[query.filter],
        "position": place.position,
        "total": place.total,
        "self_url": url(sample.pk),
        "previous_url": url(previous_id),
        "next_url": url(next_id),
        # What htmx fetches: the same URL plus the feedback state, so the browser's cache is never stale.
        "previous_fetch": url(previous_id) + f"&v={version}" if previous_id else "",
        "next_fetch": url(next_id) + f"&v={version}" if next_id else "",
        "queue_url": reverse("sample-queue", args=[project.slug]) + suffix,
        "criterion_folded": request.COOKIES.get("memalign-criterion-folded") == "1",  # set by review.js
        "saved": saved,
        "cue": cue,
        "undone": undone,
        "undo_seconds": UNDO_SECONDS,
        "error": error,
        "nudge": nudge,
        "posted_label": (posted or {}).get("label", mine.label if mine else ""),
        "posted_critique": (posted or {}).get("critique", mine.critique if mine else ""),
        "posted_quote": (posted or {}).get("quote_text", mine.quote_text if mine else ""),
        "posted_quote_output": (posted or {}).get("quote_output", mine.quote_output if mine else ""),
    }


def _next_url(request: ProjectRequest, sample: Sample) -> str:
    context = _review_context(request, sample)
    return context["next_url"] or context["queue_url"]


def _query_suffix(request: ProjectRequest) -> str:
    params = _query(request).params()
    return "?" + urlencode(params) if params else ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
