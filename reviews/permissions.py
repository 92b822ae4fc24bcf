"""Every access check in one place: which user may do what in which project.

Views call `project_view(min_role)`; domain code calls `get_project_for_user`. A user who is not a member gets
404 (a project's existence does not leak); a member below the needed role gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from reviews.models import ROLE_RANK, Feedback, Invitation, Membership, Project, Role


def get_project_for_user(user, slug: str, min_role: Role = Role.VIEWER) -> tuple[Project, Membership]:
    """Return the project and the user's membership, or raise Http404 / PermissionDenied."""
    if not user.is_authenticated:
        raise Http404("No such project.")
    membership = Membership.objects.select_related("project").filter(project__slug=slug, user=user).first()
    if membership is None:
        raise Http404("No such project.")
    if ROLE_RANK[Role(membership.role)] < ROLE_RANK[min_role]:
        raise PermissionDenied(f"This needs the {min_role.label.lower()} role in this project.")
    return membership.project, membership


def get_invitation_for_user(user, invitation_id: int) -> Invitation:
    """Return an invitation addressed to `user`, or raise Http404 (anyone else's does not exist for them)."""
    invitation = (
        Invitation.objects.select_related("project").filter(pk=invitation_id, user=user).first()
        if user.is_authenticated
        else None
    )
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def is_blind(membership: Membership | None) -> bool:
    """Reviewers review blind: others' labels and critiques on a sample stay hidden until they gave their own.

    Owners and viewers, who do not review, see everything.
    """
    return membership is not None and membership.role == Role.REVIEWER


def visible_feedback(membership: Membership, queryset: QuerySet, path: str = "") -> QuerySet:
    """Restrict rows about feedback to what the member may see: for a blind reviewer, feedback on samples they
    reviewed themselves. `path` leads from the queryset's model to the Feedback ("" for Feedback itself)."""
    if not is_blind(membership):
        return queryset
    mine = Feedback.objects.filter(author_id=membership.user_id, sample_id=OuterRef(f"{path}sample_id"))
    return queryset.filter(Exists(mine))


def sees_emails(membership: Membership | None) -> bool:
    """Members' email addresses are shown to the project's owners only."""
    return can(membership, Role.OWNER)


def can(membership: Membership | None, role: Role) -> bool:
    """Return whether a membership carries at least `role` (for templates: show or hide a control)."""
    return membership is not None and ROLE_RANK[Role(membership.role)] >= ROLE_RANK[role]


def can_adjudicate(membership: Membership | None) -> bool:
    """Owners, and reviewers given the adjudicator flag, decide the final label where reviewers disagree."""
    if membership is None:
        return False
    return membership.role == Role.OWNER or (membership.adjudicator and can(membership, Role.REVIEWER))


def require_adjudicator(membership: Membership) -> None:
    if not can_adjudicate(membership):
        raise PermissionDenied("Deciding conflicts needs the owner role or the adjudicator flag in this project.")


def can_delete_feedback(membership: Membership, feedback) -> bool:
    """Reviewers delete their own feedback; owners delete anyone's."""
    if membership.role == Role.OWNER:
        return True
    return membership.role == Role.REVIEWER and feedback.author_id == membership.user_id


def deletable_feedback(membership: Membership, queryset: QuerySet) -> QuerySet:
    """Restrict feedback to what the member may delete (unalign): owners anyone's, reviewers their own."""
    if membership.role == Role.OWNER:
        return queryset
    if membership.role == Role.REVIEWER:
        return queryset.filter(author_id=membership.user_id)
    return queryset.none()


def can_edit_feedback(membership: Membership, feedback) -> bool:
    """Only the author edits a feedback, and only while they may still review."""
    return can(membership, Role.REVIEWER) and feedback.author_id == membership.user_id


def project_view(min_role: Role = Role.VIEWER) -> Callable:
    """Decorate a view taking `slug`: log in first, then set `request.project` and `request.membership`."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            request.project, request.membership = get_project_for_user(request.user, slug, min_role)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def require(membership: Membership, role: Role) -> None:
    """Raise PermissionDenied unless the membership carries at least `role`."""
    if not can(membership, role):
        raise PermissionDenied(f"This needs the {role.label.lower()} role in this project.")
