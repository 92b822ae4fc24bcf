"""The episodic memory browser: the stored examples with search and filters, the label distribution, and
conflicts (near-identical samples the experts labelled differently)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from memory import browse
from reviews.models import Feedback, Role
from reviews.permissions import can, can_delete_feedback, is_blind, project_view, visible_feedback


def _visible(request: HttpRequest):
    # A blind reviewer sees only examples on samples they reviewed themselves (others' labels stay hidden).
    return visible_feedback(request.membership, Feedback.objects.filter(project=request.project))


def _reviewer(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@project_view(Role.VIEWER)
@require_GET
def episodic(request: HttpRequest) -> HttpResponse:
    project, feedback = request.project, _visible(request)
    query = {
        "q": request.GET.get("q", "")[:200],
        "label": request.GET.get("label", "")[:64],
        "reviewer": _reviewer(request.GET.get("reviewer", "")),
    }
    rows = browse.examples(feedback, **query)
    page = Paginator(rows, browse.PAGE_SIZE).get_page(request.GET.get("page"))
    params = {k: v for k, v in query.items() if v}
    context = {
        "project": project,
        "membership": request.membership,
        "blind": is_blind(request.membership),
        "page": page,
        "rows": [(f, can_delete_feedback(request.membership, f)) for f in page.object_list],
        "query": query,
        "query_string": urlencode(params),
        "distribution": browse.label_distribution(feedback, project.label_choices),
        "total": feedback.count(),
        "reviewers": browse.reviewers(project, feedback),
        "labels": project.label_choices,
        "can_unalign": can(request.membership, Role.REVIEWER),
    }
    return render(request, "memory/episodic.html", context)


@project_view(Role.VIEWER)
@require_GET
def conflicts(request: HttpRequest) -> HttpResponse:
    project = request.project
    error = ""
    try:
        threshold = float(request.GET.get("similarity", browse.DEFAULT_SIMILARITY))
    except ValueError:
        threshold, error = browse.DEFAULT_SIMILARITY, "The similarity is a number such as 0.9."
    if not browse.MIN_SIMILARITY <= threshold <= 1.0:
        error = f"The similarity goes from {browse.MIN_SIMILARITY} to 1.0; showing {browse.DEFAULT_SIMILARITY}."
        threshold = browse.DEFAULT_SIMILARITY
    context = {
        "project": project,
        "membership": request.membership,
        "threshold": threshold,
        "min_similarity": browse.MIN_SIMILARITY,
        "error": error,
        "found": browse.conflicts(_visible(request), threshold),
        "shown_max": browse.CONFLICTS_SHOWN,
        "compared_max": browse.CONFLICT_EXAMPLES,
    }
    return render(request, "memory/conflicts.html", context, status=400 if error else 200)
