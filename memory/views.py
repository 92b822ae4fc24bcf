"""The memory dashboard: what the project's memory holds, where each principle came from, and its versions."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviews.models import Role
from reviews.permissions import project_view


@project_view(Role.VIEWER)
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "memory/dashboard.html", {"project": request.project, "membership": request.membership})
