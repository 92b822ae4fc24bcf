"""The conflicts page: samples whose reviewers disagree, deciding their final label, and undoing a decision."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from reviews import adjudication
from reviews.forms import DecisionForm, FlagForm
from reviews.models import Decision, Feedback, Membership, Role, Sample
from reviews.permissions import ProjectRequest, can_adjudicate, project_view, require_adjudicator

LISTED = 100


@project_view(Role.VIEWER)
@require_GET
def conflicts(request: ProjectRequest) -> HttpResponse:
    return _render(request)


def _render(request: ProjectRequest, failed: dict | None = None, status: int = 200) -> HttpResponse:
    project, membership = request.project, request.membership
    team = adjudication.team_feedback(Feedback.objects.select_related("author")).order_by("label", "created_at")
    open_qs = adjudication.open_conflicts(project, membership)
    listed = list(open_qs.prefetch_related(Prefetch("feedback", queryset=team, to_attr="team"))[:LISTED])
    decided = Decision.objects.filter(project=project).select_related("sample", "decided_by")
    if not can_adjudicate(membership) and membership.role == Role.REVIEWER:
        decided = decided.filter(sample__feedback__author=request.user)  # blind: their own samples only
    context = {
        "project": project,
        "membership": membership,
        "conflicts": listed,
        "open_count": open_qs.count(),
        "decisions": list(decided[:LISTED]),
        "adjudicator": can_adjudicate(membership),
        "labels": project.label_choices,
        "failed": failed or {},
    }
    return render(request, "reviews/conflicts.html", context, status=status)


@project_view(Role.REVIEWER)
@require_POST
def decide(request: ProjectRequest, sample_id: int) -> HttpResponse:
    require_adjudicator(request.membership)
    sample = get_object_or_404(Sample.objects.visible(request.project), pk=sample_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        error = " ".join(" ".join(map(str, errors)) for errors in form.errors.values())
        return _render(request, {"sample": sample.pk, "error": error, **request.POST.dict()}, status=400)
    try:
        decision = adjudication.decide(sample, form.cleaned_data["label"], form.cleaned_data["reason"], request.user)
    except ValidationError as error:
        return _render(request, {"sample": sample.pk, "error": error.messages[0], **request.POST.dict()}, status=400)
    except adjudication.AlreadyDecided as error:
        messages.error(request, str(error))
        return redirect("conflicts", request.project.slug)
    messages.success(
        request,
        f"{sample.external_id}: “{decision.label}” decided. The memory learns your reason and drops the overruled "
        "feedback.",
    )
    return redirect("conflicts", request.project.slug)


@project_view(Role.REVIEWER)
@require_POST
def undo(request: ProjectRequest, decision_id: int) -> HttpResponse:
    require_adjudicator(request.membership)
    get_object_or_404(Decision, pk=decision_id, project=request.project)
    try:
        decision = adjudication.undo(request.project, decision_id)
    except adjudication.AlreadyDecided as error:  # another adjudicator undid it a moment ago
        messages.error(request, str(error))
    else:
        messages.success(request, f"Decision on {decision.sample.external_id} undone: the conflict is open again.")
    return redirect("conflicts", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def member_adjudicator(request: ProjectRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=membership_id, project=request.project)
    form = FlagForm(request.POST)
    membership.adjudicator = form.is_valid() and form.cleaned_data["on"]
    membership.save(update_fields=["adjudicator"])
    state = "may now decide conflicts" if membership.adjudicator else "no longer decides conflicts"
    messages.success(request, f"{membership.user.username} {state}.")
    return redirect("project-members", request.project.slug)
