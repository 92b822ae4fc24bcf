"""The memory's overview (the dashboard) and its settings page; principles, versions and the episodic store have
their own pages (principle_views, episodic_views), runs and evaluations theirs in the apps above."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from memory import blind, budget, dispatch, distil, episodic, semantic, versions
from memory.llm import provider_name
from memory.models import Contradiction, MemoryVersion, Principle
from reviews.adjudication import learnable as learnable_feedback
from reviews.models import Feedback, Role
from reviews.permissions import ProjectRequest, can, is_blind, project_view


def status(project) -> dict:
    """Return the memory's live figures (polled by the dashboard)."""
    try:
        stored, store_error = episodic.collection(project.pk).count(), ""
    except Exception as error:  # the dashboard shows a broken store instead of failing
        stored, store_error = None, f"{type(error).__name__}: {error}"
    figures = {
        "feedback_count": Feedback.objects.filter(project=project).count(),
        "episodic_count": stored,
        "store_error": store_error,
        "pending_count": distil.pending_feedback(project).count(),
        "stale_count": distil.stale_principles(project).count(),
        "active_count": versions.active_principles(project).count(),
        "principle_tokens": budget.principle_set(project).tokens,
        "latest": MemoryVersion.objects.filter(project=project).order_by("-number").first(),
    }
    # The dashboard polls this block only while work is pending: embedding, distillation, a queued run. The
    # episodic store holds the learnable feedback (overruled feedback stays in the database, not in the store).
    learnable = learnable_feedback(Feedback.objects.filter(project=project)).count()
    figures["working"] = bool(
        figures["pending_count"]
        or figures["stale_count"]
        or (stored is not None and stored != learnable)
        or dispatch.regeneration_pending(project.pk)
    )
    return figures


OVERVIEW_PRINCIPLES = 8  # the overview lists the first few; the principles page lists them all
OVERVIEW_VERSIONS = 5


@project_view(Role.VIEWER)
@require_GET
def dashboard(request: ProjectRequest) -> HttpResponse:
    """The memory's overview: its live figures (polled while work is pending), what needs a decision, the first
    principles and the latest versions. Each has its own page in the sub-navigation."""
    project = request.project
    if request.htmx and request.htmx.target == "memory-status":
        return render(request, "memory/dashboard.html#status", {"project": project, **status(project)})
    principles = (
        Principle.objects.filter(project=project, retired=False)
        .exclude(pk__in=blind.withheld_principle_ids(request.membership, project))
        .order_by("-pinned", "id")
    )
    context = {
        "project": project,
        "membership": request.membership,
        "is_owner": can(request.membership, Role.OWNER),
        "blind": is_blind(request.membership),
        "provider": provider_name(project),
        "anthropic_configured": bool(settings.ANTHROPIC_API_KEY),
        "first_principles": principles[:OVERVIEW_PRINCIPLES],
        "contradictions": Contradiction.objects.filter(project=project, resolved=False).select_related(
            "first", "second"
        ),
        "recent_versions": MemoryVersion.objects.filter(project=project).order_by("-number")[:OVERVIEW_VERSIONS],
        "active_version": budget.latest_version(project),
        **status(project),
    }
    return render(request, "memory/dashboard.html", context)


@project_view(Role.OWNER)
@require_GET
def memory_settings(request: ProjectRequest) -> HttpResponse:
    """The memory's settings: the project's memory limits (set on the project's settings page), and what the apps
    above add through the "memory-settings" slot (which verdicts to accept, the regression gate)."""
    context = {
        "project": request.project,
        "membership": request.membership,
        "is_owner": True,
        "provider": provider_name(request.project),
    }
    return render(request, "memory/settings.html", context)


@project_view(Role.OWNER)
@require_POST
def regenerate(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if semantic.up_to_date(project) and not dispatch.regeneration_pending(project.pk):
        messages.success(
            request, "The memory is already up to date: every critique is distilled and no principle needs re-deriving."
        )
        return redirect("memory-dashboard", project.slug)
    queued = dispatch.request_regeneration(project.pk, delay=0)
    messages.success(request, "Regeneration queued." if queued else "A regeneration is already queued.")
    return redirect("memory-dashboard", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def consolidate(request: ProjectRequest) -> HttpResponse:
    dispatch.consolidate(request.project.pk)
    messages.success(request, "Consolidation queued: near-duplicates will be merged and contradictions flagged.")
    return redirect("memory-dashboard", request.project.slug)
