"""The memory's "Runs" tab (the runs, the learned judge, the try box), trying the judge on one item, and the judging
settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from judging import panels, tries
from judging.forms import JudgingSettingsForm, TryJudgeForm
from judging.models import JudgingSettings
from memory.llm.base import ProviderError
from reviews.models import Role
from reviews.permissions import ProjectRequest, can, is_blind, project_view


@project_view(Role.VIEWER)
@require_GET
def runs_page(request: ProjectRequest) -> HttpResponse:
    """The aligned judge's runs, the learned local judge's state, and the box to try the judge on one item."""
    page = {
        "project": request.project,
        "membership": request.membership,
        "is_owner": can(request.membership, Role.OWNER),
        "blind": is_blind(request.membership),
    }
    context = {
        **page,
        **panels.latest_runs(request.project),
        **panels.learned_judge(page),
        **panels.try_box(page),
    }
    return render(request, "judging/runs.html", context)


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
        return render(request, "judging/_judgement.html", context, status=403)
    if not form.is_valid():
        # 422, as the review page's refused saves: htmx swaps it into the result area with the form kept, where
        # django-htmx's DEBUG handler would put a 400 in place of the whole page.
        return render(request, "judging/_judgement.html", context, status=422)
    if not tries.allowed(project.pk, request.user.pk):
        context["error"] = f"You tried the judge {tries.PER_MINUTE} times in the last minute: wait a moment."
        return render(request, "judging/_judgement.html", context, status=429)
    try:
        context["judgement"] = tries.judge(project, form.item())
    except tries.Busy as error:
        context["error"] = str(error)
    except ProviderError as error:
        context["error"] = f"The judge could not answer: {error}"
    return render(request, "judging/_judgement.html", context)


@project_view(Role.OWNER)
@require_POST
def judging_settings(request: ProjectRequest) -> HttpResponse:
    """Save the project's target agreement, risk and extra asks; they apply to runs that end from now on."""
    form = JudgingSettingsForm(request.POST, instance=JudgingSettings.of(request.project))
    if form.is_valid():
        form.save()
        messages.success(request, "Judging settings saved; they apply to the next run.")
    else:
        problems = "; ".join(
            f"{form.fields[name].label}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()
        )
        messages.error(request, f"Judging settings not saved. {problems}")
    return redirect("memory-settings", request.project.slug)
