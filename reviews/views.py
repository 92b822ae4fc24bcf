"""Project and member pages. Thin: each reads a form, calls reviews.projects, renders or redirects."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviews import projects, stats
from reviews.forms import AddMemberForm, ProjectForm, RoleForm
from reviews.models import Membership, Project, Role
from reviews.permissions import can, project_view, require


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("project").order_by("project__name")
    return render(request, "reviews/project_list.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        project = projects.create_project(request.user, **form.project_fields())
        messages.success(request, f"Project “{project.name}” created. Import judge outputs to start reviewing.")
        return redirect(project)
    return render(request, "reviews/project_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200)


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
def project_overview(request: HttpRequest) -> HttpResponse:
    context = {"project": request.project, "membership": request.membership, **stats.overview(request.project)}
    return render(request, "reviews/project_overview.html", context)


@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest) -> HttpResponse:
    project: Project = request.project
    form = ProjectForm(request.POST if request.method == "POST" else None, instance=project)
    if request.method == "POST" and form.is_valid():
        for name, value in form.project_fields().items():
            setattr(project, name, value)
        project.save()
        messages.success(request, "Settings saved.")
        return redirect("project-settings", project.slug)
    context = {"form": form, "project": project, "membership": request.membership}
    return render(request, "reviews/project_form.html", context, status=400 if form.errors else 200)


@project_view(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest) -> HttpResponse:
    project: Project = request.project
    form = AddMemberForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        require(request.membership, Role.OWNER)
        if form.is_valid():
            try:
                added = projects.add_member(project, form.cleaned_data["identifier"], Role(form.cleaned_data["role"]))
            except ValidationError as error:
                form.add_error("identifier", error)
            else:
                messages.success(request, f"{added.user.username} added as {added.get_role_display().lower()}.")
                return redirect("project-members", project.slug)
    context = {
        "project": project,
        "membership": request.membership,
        "form": form,
        "memberships": project.memberships.select_related("user").order_by("user__username"),
        "roles": Role.choices,
        "is_owner": can(request.membership, Role.OWNER),
    }
    return render(request, "reviews/members.html", context, status=400 if form.errors else 200)


@project_view(Role.OWNER)
@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    get_object_or_404(Membership, pk=membership_id, project=request.project)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: owner, reviewer or viewer.")
        return redirect("project-members", request.project.slug)
    try:
        changed = projects.change_role(request.project, membership_id, Role(form.cleaned_data["role"]))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"{changed.user.username} is now {changed.get_role_display().lower()}.")
    return redirect("project-members", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    try:
        removed = projects.remove_member(request.project, membership_id)
    except Membership.DoesNotExist:
        raise Http404("No such member in this project.") from None
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("project-members", request.project.slug)
    messages.success(request, f"{removed.user.username} removed from {request.project.name}.")
    if removed.user_id == request.user.pk:
        return redirect("project-list")  # an owner who left can no longer see the project
    return redirect("project-members", request.project.slug)
