"""Project and member pages. Thin: each reads a form, calls reviews.projects, renders or redirects."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviews import invitation_views, invitations, projects, stats, team
from reviews.forms import InviteForm, ProjectForm, RoleForm
from reviews.models import Invitation, Membership, Project, Role
from reviews.permissions import (
    AuthenticatedRequest,
    ProjectRequest,
    can,
    get_invitation_for_user,
    project_view,
    require,
    sees_emails,
)


@login_required
def project_list(request: AuthenticatedRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("project").order_by("project__name")
    context = {"memberships": memberships, "invitations": projects.pending_invitations(request.user)}
    return render(request, "reviews/project_list.html", context)


@login_required
@require_POST
def invitation_answer(request: AuthenticatedRequest, invitation_id: int, answer: str) -> HttpResponse:
    invitation = get_invitation_for_user(request.user, invitation_id)
    if answer == "accept":
        membership = projects.accept_invitation(invitation)
        messages.success(request, f"You joined “{invitation.project.name}” as {membership.get_role_display().lower()}.")
        return redirect(invitation.project)
    projects.decline_invitation(invitation)
    messages.success(request, f"Invitation to “{invitation.project.name}” declined.")
    return redirect("project-list")


@login_required
@require_http_methods(["GET", "POST"])
def project_create(request: AuthenticatedRequest) -> HttpResponse:
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        project = projects.create_project(request.user, **form.project_fields())
        messages.success(request, f"Project “{project.name}” created. Import judge outputs to start reviewing.")
        return redirect(project)
    return render(
        request, "reviews/project_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200
    )


@project_view(Role.VIEWER)
@require_http_methods(["GET"])
def project_overview(request: ProjectRequest) -> HttpResponse:
    context = {
        "project": request.project,
        "membership": request.membership,
        **stats.overview(request.project, request.membership),
        "team": team.overview_agreement(request.project),
    }
    return render(request, "reviews/project_overview.html", context)


@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def project_settings(request: ProjectRequest) -> HttpResponse:
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
def members(request: ProjectRequest) -> HttpResponse:
    project: Project = request.project
    form = InviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        require(request.membership, Role.OWNER)
        if form.is_valid():
            try:
                invitation, token = invitations.invite_with_link(
                    project, form.cleaned_data["identifier"], Role(form.cleaned_data["role"]), request.user
                )
            except ValidationError as error:
                form.add_error("identifier", error)
            else:
                sent = invitation_views.remember_link(request, invitation, token)
                # The same words whether or not an account answers to the identifier.
                messages.success(
                    request,
                    f"{invitation.identifier} is invited as {invitation.get_role_display().lower()}; "
                    f"they join the project once they accept{' (the link was emailed)' if sent else ''}.",
                )
                return redirect("project-members", project.slug)
    is_owner = can(request.membership, Role.OWNER)
    context = {
        "project": project,
        "membership": request.membership,
        "form": form,
        "memberships": project.memberships.select_related("user").order_by("user__username"),
        "invitations": project.invitations.select_related("invited_by") if is_owner else [],
        "new_links": invitation_views.take_links(request) if is_owner else {},
        "roles": Role.choices,
        "is_owner": is_owner,
        "show_emails": sees_emails(request.membership),
    }
    return render(request, "reviews/members.html", context, status=400 if form.errors else 200)


@project_view(Role.OWNER)
@require_POST
def invitation_revoke(request: ProjectRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=invitation_id, project=request.project)
    invitation.delete()
    messages.success(request, f"Invitation of {invitation.identifier} revoked.")
    return redirect("project-members", request.project.slug)


@project_view(Role.OWNER)
@require_POST
def member_role(request: ProjectRequest, membership_id: int) -> HttpResponse:
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
def member_remove(request: ProjectRequest, membership_id: int) -> HttpResponse:
    try:
        removed = projects.remove_member(
            request.project, membership_id, unalign=request.POST.get("feedback") == "unalign"
        )
    except Membership.DoesNotExist:
        raise Http404("No such member in this project.") from None
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("project-members", request.project.slug)
    messages.success(request, f"{removed.user.username} removed from {request.project.name}.")
    if removed.user_id == request.user.pk:
        return redirect("project-list")  # an owner who left can no longer see the project
    return redirect("project-members", request.project.slug)
