"""The memory dashboard's judging forms: trying the aligned judge on one item, and the judging settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from judging import tries
from judging.forms import JudgingSettingsForm, TryJudgeForm
from judging.models import JudgingSettings
from memory.llm.base import ProviderError
from reviews.models import Role
from reviews.permissions import ProjectRequest, is_blind, project_view


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
        return render(request, "judging/_judgement.html", context, status=400)
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
    return redirect("memory-dashboard", request.project.slug)
