"""The invitation link's page (join with a new account or the one you are logged in with) and resending a link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviews import invitations
from reviews.forms import JoinForm
from reviews.models import Invitation, Role
from reviews.permissions import ProjectRequest, project_view

LINK_SESSION_KEY = "invitation_links"  # links to show the owner once, on the members page


def remember_link(request: HttpRequest, invitation: Invitation, token: str) -> bool:
    """Keep the new link for the members page to show once, and email it if the site can; return whether sent."""
    url = request.build_absolute_uri(invitations.link_path(token))
    links = request.session.get(LINK_SESSION_KEY, {})
    links[str(invitation.pk)] = url
    request.session[LINK_SESSION_KEY] = links
    return invitations.send_link(invitation, url)


def take_links(request: HttpRequest) -> dict[int, str]:
    return {int(k): v for k, v in request.session.pop(LINK_SESSION_KEY, {}).items()}


@project_view(Role.OWNER)
@require_POST
def invitation_resend(request: ProjectRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=invitation_id, project=request.project)
    token = invitations.issue_link(invitation)
    sent = remember_link(request, invitation, token)
    messages.success(
        request,
        f"A new link for {invitation.identifier}{' was emailed and' if sent else ''} is below; the old one no "
        "longer works.",
    )
    return redirect("project-members", request.project.slug)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = invitations.invitation_for_token(token)
    except invitations.InvalidLink as invalid:
        return render(request, "reviews/join.html", {"invalid": str(invalid)}, status=invalid.status)
    context = {"invitation": invitation, "token": token}
    if request.user.is_authenticated:
        return _join_logged_in(request, invitation, token, context)
    form = JoinForm(request.POST if request.method == "POST" else None)
    if request.method == "GET":
        form.initial["username"] = invitations.suggested_username(invitation)
    elif form.is_valid():
        try:
            user = invitations.join_with_new_account(
                token, form.cleaned_data["username"], form.cleaned_data["new_password1"]
            )
        except invitations.InvalidLink as invalid:
            return render(request, "reviews/join.html", {"invalid": str(invalid)}, status=invalid.status)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _joined(invitation))
            return redirect(invitation.project)
    context["form"] = form
    return render(request, "reviews/join.html", context, status=400 if form.errors else 200)


def _join_logged_in(request: HttpRequest, invitation: Invitation, token: str, context: dict) -> HttpResponse:
    try:
        invitations.check_account(invitation, request.user)
    except ValidationError as error:
        context["refused"] = error.messages[0]
        return render(request, "reviews/join.html", context, status=403)
    if request.method == "POST":
        try:
            invitations.join_with_account(token, request.user)
        except invitations.InvalidLink as invalid:
            return render(request, "reviews/join.html", {"invalid": str(invalid)}, status=invalid.status)
        messages.success(request, _joined(invitation))
        return redirect(invitation.project)
    return render(request, "reviews/join.html", context)


def _joined(invitation: Invitation) -> str:
    return f"You joined “{invitation.project.name}” as {invitation.get_role_display().lower()}."
