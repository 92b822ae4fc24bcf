"""The memory dashboard: what the project's memory holds, where each principle came from, and its versions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from memory import episodic, evaluation, gate, judge, semantic, tries
from memory.forms import EvaluationSettingsForm, PrincipleAddForm, TryJudgeForm
from memory.llm import provider_name
from memory.llm.base import ProviderError
from memory.locks import MemoryBusy
from memory.models import Contradiction, Evaluation, GateCheck, JudgeRun, MemoryVersion, Principle
from memory.principle_views import add_source_figures, visible_sources
from memory.tasks import regeneration_pending, request_regeneration
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
        "pending_count": semantic.pending_feedback(project).count(),
        "stale_count": semantic.stale_principles(project).count(),
        "active_count": semantic.active_principles(project).count(),
        "principle_tokens": judge.principle_set(project).tokens,
        "latest": MemoryVersion.objects.filter(project=project).order_by("-number").first(),
    }
    # The dashboard polls this block only while work is pending: embedding, distillation, a queued run.
    figures["working"] = bool(
        figures["pending_count"]
        or figures["stale_count"]
        or (stored is not None and stored != figures["feedback_count"])
        or regeneration_pending(project.pk)
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
        Principle.objects.filter(project=project).prefetch_related(
            Prefetch("sources", queryset=first, to_attr="first_sources")
        )
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
        "try_form": TryJudgeForm(project),
        **_judge_run_context(project),
        **_evaluation_context(project),
        "principle_form": PrincipleAddForm(project),
        **status(project),
    }
    return render(request, "memory/dashboard.html", context)


@project_view(Role.VIEWER)
@require_POST
def try_judge(request: ProjectRequest) -> HttpResponse:
    """Show what an item would retrieve, and the aligned judge's verdict on it. Writes nothing."""
    project = request.project
    form = TryJudgeForm(project, request.POST)
    context = {"project": project, "form": form}
    if is_blind(request.membership):
        # The retrieved examples (and an exact match's verdict) would show others' labels before one's own.
        context["error"] = "Reviewers review blind, so trying the judge is for owners and viewers."
        return render(request, "memory/_judgement.html", context, status=403)
    if not form.is_valid():
        return render(request, "memory/_judgement.html", context, status=400)
    if not tries.allowed(project.pk, request.user.pk):
        context["error"] = f"You tried the judge {tries.PER_MINUTE} times in the last minute: wait a moment."
        return render(request, "memory/_judgement.html", context, status=429)
    try:
        context["judgement"] = tries.judge(project, form.item())
    except tries.Busy as error:
        context["error"] = str(error)
    except ProviderError as error:
        context["error"] = f"The judge could not answer: {error}"
    return render(request, "memory/_judgement.html", context)


@project_view(Role.OWNER)
@require_POST
def regenerate(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if semantic.up_to_date(project) and not regeneration_pending(project.pk):
        messages.success(
            request, "The memory is already up to date: every critique is distilled and no principle needs re-deriving."
        )
        return redirect("memory-dashboard", project.slug)
    queued = request_regeneration(project.pk, delay=0)
    messages.success(request, "Regeneration queued." if queued else "A regeneration is already queued.")
    return redirect("memory-dashboard", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def consolidate(request: ProjectRequest) -> HttpResponse:
    from memory.tasks import consolidate_memory

    consolidate_memory.delay(request.project.pk)
    messages.success(request, "Consolidation queued: near-duplicates will be merged and contradictions flagged.")
    return redirect("memory-dashboard", request.project.slug)


def _judge_run_context(project) -> dict:
    runs_list = list(
        JudgeRun.objects.filter(project=project)
        .select_related("created_by", "memory_version")
        .defer("sample_ids")
        .order_by("-id")[:20]
    )
    return {
        "runs": runs_list,
        "scopes": [
            (v, label) for v, label in JudgeRun.Scope.choices if v not in (JudgeRun.Scope.QUEUE, JudgeRun.Scope.ITEMS)
        ],
    }


def _evaluation_context(project) -> dict:
    listed = list(Evaluation.objects.filter(project=project).select_related("created_by").order_by("-id")[:20])
    held = gate.held_versions(project).last()
    settings_row = gate.gate_settings(project)
    return {
        "evaluations": listed,
        "evaluation_calls": evaluation.estimated_calls(project, evaluation.Options()),
        "gate_form": EvaluationSettingsForm(instance=settings_row),
        "gate_calls": 2 * settings_row.guard_size,
        "active_version": judge.latest_version(project),
        "held_check": GateCheck.objects.filter(version=held).select_related("version", "compared_with").first()
        if held
        else None,
    }


@project_view(Role.OWNER)
@require_POST
def evaluation_settings(request: ProjectRequest) -> HttpResponse:
    form = EvaluationSettingsForm(request.POST, instance=gate.gate_settings(request.project))
    if form.is_valid():
        form.save()
        messages.success(request, "Evaluation settings saved.")
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("memory-dashboard", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def held_activate(request: ProjectRequest) -> HttpResponse:
    count = gate.activate_held(request.project)
    messages.success(request, "The held version is now active." if count else "No version is held.")
    return redirect("memory-dashboard", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def held_discard(request: ProjectRequest) -> HttpResponse:
    try:
        version = semantic.discard_held(request.project, request.user.username)
    except MemoryBusy as busy:
        messages.error(request, str(busy))
    else:
        messages.success(
            request,
            f"Discarded: the principles are back to the active version's (v{version.number})."
            if version
            else "No version is held.",
        )
    return redirect("memory-dashboard", request.project.slug)
