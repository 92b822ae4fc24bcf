"""The playground: paste or pick an item, see its working memory and the exact request the judge would be sent,
and optionally run the judge on it (judging.tries: rate-limited, a provider slot, short patience). Writes nothing."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from judging import tries
from judging.forms import TryJudgeForm
from memory.llm import provider_name
from memory.llm.base import ProviderError
from reviews.models import Role, Sample
from reviews.permissions import ProjectRequest, is_blind, project_view

PICKABLE = 100  # the most recent samples offered in the picker


class PlaygroundForm(TryJudgeForm):
    sample = forms.IntegerField(required=False, widget=forms.HiddenInput)


def prefill(form: TryJudgeForm, sample: Sample) -> dict[str, Any]:
    """The form's initial values for a stored sample: its input fields (or text) and its output(s)."""
    initial: dict[str, Any] = {"sample": sample.pk}
    if form.input_names and isinstance(sample.inputs, dict):
        initial.update({f"input__{name}": _text(sample.inputs.get(name, "")) for name in form.input_names})
    else:
        initial["inputs"] = sample.inputs_text()
    if form.pairwise:
        initial.update(output_a=sample.output_a, output_b=sample.output_b)
    else:
        initial["output"] = sample.outputs
    return initial


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@project_view(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def playground(request: ProjectRequest) -> HttpResponse:
    project = request.project
    context = {
        "project": project,
        "membership": request.membership,
        "provider": provider_name(project),
        "samples": Sample.objects.visible(project).order_by("-id").only("id", "external_id")[:PICKABLE],
    }
    if is_blind(request.membership):
        # The retrieved examples would show others' labels before one's own review.
        context["error"] = "Reviewers review blind, so the playground is for owners and viewers."
        return render(request, "judging/playground.html", context, status=403)
    if request.method == "GET":
        form = PlaygroundForm(project)
        if (picked := request.GET.get("sample", "")).isdigit():
            sample = get_object_or_404(Sample.objects.visible(project), pk=int(picked))
            form = PlaygroundForm(project, initial=prefill(form, sample))
            context["picked"] = sample
        context["form"] = form
        return render(request, "judging/playground.html", context)

    form = context["form"] = PlaygroundForm(project, request.POST)
    if not form.is_valid():
        return render(request, "judging/playground.html", context, status=400)
    exclude = form.cleaned_data.get("sample")
    if exclude is not None:
        context["picked"] = get_object_or_404(Sample.objects.visible(project), pk=exclude)
    prompt = context["prompt"] = tries.prompt(project, form.item(), exclude_sample_id=exclude)
    if request.POST.get("action") == "judge":
        if not tries.allowed(project.pk, request.user.pk):
            context["error"] = f"You ran the judge {tries.PER_MINUTE} times in the last minute: wait a moment."
            return render(request, "judging/playground.html", context, status=429)
        try:
            context["judgement"] = tries.judge_memory(project, prompt.memory)
        except tries.Busy as error:
            context["error"] = str(error)
        except ProviderError as error:
            context["error"] = f"The judge could not answer: {error}"
    return render(request, "judging/playground.html", context)
