"""The memory dashboard: what the project's memory holds, where each principle came from, and its versions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from memory import blind, budget, dispatch, distil, episodic, semantic, versions
from memory.forms import PrincipleAddForm
from memory.llm import provider_name
from memory.models import Contradiction, MemoryVersion, Principle
from memory.principle_views import add_source_figures, visible_sources
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


DASHBOARD_SOURCES = 5  # source critiques shown per principle on the dashboard


@project_view(Role.VIEWER)
@require_GET
def dashboard(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if request.htmx and request.htmx.target == "memory-status":
        return render(request, "memory/dashboard.html#status", {"project": project, **status(project)})
    # A blind reviewer sees a principle's sources only on samples they reviewed themselves. The first few of each
    # (a window-function prefetch); counted apart: the principle's page lists them all.
    first = visible_sources(request.membership)[:DASHBOARD_SOURCES]
    principles = list(
        Principle.objects.filter(project=project)
        .exclude(pk__in=blind.withheld_principle_ids(request.membership, project))
        .prefetch_related(Prefetch("sources", queryset=first, to_attr="first_sources"))
    )
    add_source_figures(request.membership, principles)
    context = {
        "project": project,
        "membership": request.membership,
        "is_owner": can(request.membership, Role.OWNER),
        "blind": is_blind(request.membership),  # the held version's flipped samples show the experts' labels
        "provider": provider_name(project),
        "anthropic_configured": bool(settings.ANTHROPIC_API_KEY),
        "active": [p for p in principles if not p.retired],
        "retired": [p for p in principles if p.retired],
        "contradictions": Contradiction.objects.filter(project=project, resolved=False).select_related(
            "first", "second"
        ),
        "versions": MemoryVersion.objects.filter(project=project).order_by("-number")[:30],
        "active_version": budget.latest_version(project),
        "principle_form": PrincipleAddForm(project),
        **status(project),
    }
    return render(request, "memory/dashboard.html", context)


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
