"""The episodic memory browser: the stored examples with search and filters, the label distribution, and
conflicts (near-identical samples the experts labelled differently)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from memory import browse, examples
from memory.models import EvaluationSettings
from reviews.adjudication import learnable
from reviews.models import Feedback, Role
from reviews.permissions import (
    ProjectRequest,
    can,
    can_delete_feedback,
    is_blind,
    project_view,
    require,
    visible_feedback,
)


def _visible(request: ProjectRequest):
    # A blind reviewer sees only examples on samples they reviewed themselves (others' labels stay hidden).
    return visible_feedback(request.membership, Feedback.objects.filter(project=request.project))


def _reviewer(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@project_view(Role.VIEWER)
@require_GET
def episodic(request: ProjectRequest) -> HttpResponse:
    project, everything = request.project, _visible(request)
    feedback = learnable(everything)  # what the judge can retrieve (memory.examples)
    q, label = request.GET.get("q", "")[:200], request.GET.get("label", "")[:64]
    reviewer = _reviewer(request.GET.get("reviewer", ""))
    state = request.GET.get("state", "") if request.GET.get("state") in browse.STATES else ""
    query = {"q": q, "label": label, "reviewer": reviewer, "state": state}
    listed = {"": feedback, "out": everything.exclude(pk__in=feedback.values("pk")), "all": everything}[state]
    rows = examples.with_status(browse.examples(listed, q=q, label=label, reviewer=reviewer))
    page = Paginator(rows, browse.PAGE_SIZE).get_page(request.GET.get("page"))
    params = {k: v for k, v in query.items() if v}
    context = {
        "project": project,
        "membership": request.membership,
        "blind": is_blind(request.membership),
        "page": page,
        "rows": [(f, examples.status(f), can_delete_feedback(request.membership, f)) for f in page.object_list],
        "query": query,
        "query_string": urlencode(params),
        "distribution": browse.label_distribution(feedback, project.label_choices),
        "total": feedback.count(),
        "samples": feedback.values("sample_id").distinct().count(),
        "left_out": everything.count() - feedback.count(),
        "states": browse.STATES,
        "reviewers": browse.reviewers(project, feedback),
        "labels": project.label_choices,
        "can_unalign": can(request.membership, Role.REVIEWER),
        "is_owner": can(request.membership, Role.OWNER),
    }
    return render(request, "memory/episodic.html", context)


def _threshold(value: str | None, default: float) -> tuple[float, str]:
    """Return the similarity asked for (or `default`) and an error message when it is not usable."""
    if value is None or value == "":
        return default, ""
    try:
        threshold = float(value)
    except ValueError:
        return default, f"The similarity is a number such as 0.9; showing {default}."
    if not browse.MIN_SIMILARITY <= threshold <= 1.0:
        return default, f"The similarity goes from {browse.MIN_SIMILARITY} to 1.0; showing {default}."
    return threshold, ""


@project_view(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def conflicts(request: ProjectRequest) -> HttpResponse:
    """Conflicts at a similarity anyone may try (?similarity=); owners save the project's default by POST."""
    project = request.project
    row = EvaluationSettings.objects.get_or_create(project=project)[0]
    if request.method == "POST":
        require(request.membership, Role.OWNER)
        threshold, error = _threshold(request.POST.get("similarity", "-"), row.conflict_similarity)
        if not error:
            row.conflict_similarity = threshold
            row.save(update_fields=["conflict_similarity"])
            messages.success(request, f"Conflicts are now looked for at a similarity of {threshold} by default.")
            return redirect("memory-conflicts", project.slug)
    else:
        threshold, error = _threshold(request.GET.get("similarity"), row.conflict_similarity)
    context = {
        "project": project,
        "membership": request.membership,
        "is_owner": can(request.membership, Role.OWNER),
        "threshold": threshold,
        "saved": row.conflict_similarity,
        "min_similarity": browse.MIN_SIMILARITY,
        "error": error,
        # Among what the judge can retrieve: a decided conflict's overruled feedback has left the memory.
        "found": browse.conflicts(learnable(_visible(request)), threshold),
        "shown_max": browse.CONFLICTS_SHOWN,
        "compared_max": browse.CONFLICT_EXAMPLES,
    }
    return render(request, "memory/conflicts.html", context, status=400 if error else 200)
