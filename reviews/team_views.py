"""The Team page: how much the experts agree with each other (reviews.team)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviews import team
from reviews.models import Role
from reviews.permissions import ProjectRequest, project_view


@project_view(Role.VIEWER)
@require_GET
def team_page(request: ProjectRequest) -> HttpResponse:
    project = request.project
    context = {
        "project": project,
        "membership": request.membership,
        "team": team.team_agreement(project),
        "with_judge": team.agreement_with_judge_by_visibility(project),
        "reviews_per_sample": project.reviews_per_sample,
    }
    return render(request, "reviews/team.html", context)
