"""Unalign in bulk: choose feedback (one, a reviewer's, a date range), see what will change, confirm."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from memory import unalign
from memory.locks import MemoryBusy
from reviews.models import Feedback, Role
from reviews.permissions import ProjectRequest, can, deletable_feedback, project_view


class UnalignForm(forms.Form):
    how = forms.ChoiceField(
        required=False,
        choices=[
            ("delete", "Delete the feedback (its label leaves agreement figures too)"),
            ("exclude", "Leave it out of the memory, keep the label"),
        ],
        label="How",
        initial="delete",
    )
    feedback = forms.IntegerField(required=False, min_value=1, label="One feedback (its number)")
    reviewer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="All of a reviewer's")
    since = forms.DateField(required=False, label="Given from", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, reviewers: list[tuple[int, str]], *args, **kwargs):
        super().__init__(*args, **kwargs)
        reviewer = self.fields["reviewer"]
        assert isinstance(reviewer, forms.TypedChoiceField)
        reviewer.choices = [("", "anyone")] + [(pk, name) for pk, name in reviewers]

    def clean(self):
        data = super().clean()
        data["how"] = data.get("how") or "delete"
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The date range ends before it starts.")
        return data

    def criteria(self) -> unalign.Criteria:
        data = self.cleaned_data
        return unalign.Criteria(data.get("feedback"), data.get("reviewer"), data.get("since"), data.get("until"))


@project_view(Role.REVIEWER)
@require_http_methods(["GET", "POST"])
def unalign_view(request: ProjectRequest) -> HttpResponse:
    project, membership = request.project, request.membership
    mine = deletable_feedback(membership, Feedback.objects.filter(project=project))
    is_owner = can(membership, Role.OWNER)
    reviewers = list(
        mine.order_by().values_list("author_id", "author__username").distinct().order_by("author__username")
    )
    if not is_owner:
        reviewers = [(request.user.pk, request.user.username)]  # reviewers unalign their own feedback only
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = UnalignForm(reviewers, data)
    if not is_owner:
        del form.fields["how"]  # leaving out while keeping the label is the owner's call
    context = {"project": project, "membership": membership, "form": form, "is_owner": is_owner}
    if data is None:
        return render(request, "memory/unalign_confirm.html", context)
    if not form.is_valid():
        return render(request, "memory/unalign_confirm.html", context, status=400)
    criteria = form.criteria()
    if criteria.empty:
        context["error"] = "Choose a feedback, a reviewer or a date range."
        return render(request, "memory/unalign_confirm.html", context, status=400)
    excluding = form.cleaned_data.get("how") == "exclude"
    # Feedback already left out is not left out again (its memory state would not change).
    selection = unalign.select(mine.filter(excluded_from_memory=False) if excluding else mine, criteria)
    context.update(criteria=criteria, excluding=excluding)
    if request.method == "POST":
        act = unalign.exclude if excluding else unalign.apply
        try:
            context["result"] = act(
                project, selection, request.POST.get("token", ""), request.user.username, actor=request.user
            )
        except unalign.NothingSelected as error:
            context["error"] = str(error)
            context["preview"] = unalign.preview(project, selection)
            return render(request, "memory/unalign_confirm.html", context, status=409)
        except MemoryBusy as busy:
            context["error"] = str(busy)
            context["preview"] = unalign.preview(project, selection)
            return render(request, "memory/unalign_confirm.html", context, status=503)
        return render(request, "memory/unalign_confirm.html", context)
    context["preview"] = unalign.preview(project, selection)
    return render(request, "memory/unalign_confirm.html", context)


@project_view(Role.OWNER)
@require_POST
def include_view(request: ProjectRequest, feedback_id: int) -> HttpResponse:
    """Put one feedback an owner left out of the memory back in."""
    feedback = get_object_or_404(Feedback, pk=feedback_id, project=request.project)
    if unalign.include(request.project, Feedback.objects.filter(pk=feedback.pk)):
        messages.success(request, f"Feedback #{feedback.pk} is back in the memory; it is stored and distilled again.")
    else:
        messages.info(request, f"Feedback #{feedback.pk} was not left out; nothing changed.")
    return redirect(reverse("memory-episodic", args=[request.project.slug]) + "?state=out")
