"""Every access check in one place: which user may do what in which project.

Views call `project_view(min_role)`; domain code calls `get_project_for_user`. A user who is not a member gets
404 (a project's existence does not leak); a member below the needed role gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django_htmx.middleware import HtmxDetails

from reviews import figures
from reviews.models import Feedback, Invitation, Membership, Project, Role

M = TypeVar("M", bound=Model)
View = Callable[..., HttpResponseBase]


class AuthenticatedRequest(HttpRequest):
    """A request behind `login_required`, with django-htmx's details (HtmxMiddleware sets them)."""

    user: User
    htmx: HtmxDetails


class ProjectRequest(AuthenticatedRequest):
    """A request to a project view: `project_view` has resolved the project and the user's membership."""

    project: Project
    membership: Membership


def get_project_for_user(
    user: User | AnonymousUser, slug: str, min_role: Role = Role.VIEWER
) -> tuple[Project, Membership]:
    """Return the project and the user's membership, or raise Http404 / PermissionDenied."""
    if not user.is_authenticated:
        raise Http404("No such project.")
    membership = Membership.objects.select_related("project").filter(project__slug=slug, user=user).first()
    if membership is None:
        raise Http404("No such project.")
    if not role_can(membership.role, min_role):
        raise PermissionDenied(f"This needs the {min_role.label.lower()} role in this project.")
    return membership.project, membership


def get_invitation_for_user(user: User | AnonymousUser, invitation_id: int) -> Invitation:
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


def verdict_hidden(membership: Membership | None, project: Project, mine: Feedback | None, picked: bool) -> bool:
    """The judge-blind first pass (Project.judge_blind): whoever reviews sees the judge's verdict and rationale on
    a sample only once they have chosen a label (`picked`) or reviewed it (`mine`). Viewers see it."""
    return project.judge_blind and can(membership, Role.REVIEWER) and mine is None and not picked


def visible_feedback(membership: Membership, queryset: QuerySet[M], path: str = "") -> QuerySet[M]:
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
    """Return whether a membership carries at least `role` (templates ask it through the `can` filter)."""
    return membership is not None and role_can(membership.role, role)


def can_adjudicate(membership: Membership | None) -> bool:
    """Owners, and reviewers given the adjudicator flag, decide the final label where reviewers disagree."""
    if membership is None:
        return False
    return membership.role == Role.OWNER or (membership.adjudicator and can(membership, Role.REVIEWER))


def require_adjudicator(membership: Membership) -> None:
    if not can_adjudicate(membership):
        raise PermissionDenied("Deciding conflicts needs the owner role or the adjudicator flag in this project.")


def role_can(role: str, needed: Role) -> bool:
    """Return whether a role (a membership's or an import row's) is at least `needed`."""
    return Role(role).rank >= needed.rank


def roles_at_least(needed: Role) -> list[Role]:
    """Return the roles that carry at least `needed`, for filtering memberships in a query."""
    return [role for role in Role if role.rank >= needed.rank]


def feedback_shown(membership: Membership, feedback: list[Feedback]) -> tuple[Feedback | None, list[Feedback], int]:
    """Split a sample's feedback into the member's own, the others' they may see, and how many stay hidden.

    A blind reviewer sees the others' feedback only once they gave their own.
    """
    mine = next((f for f in feedback if f.author_id == membership.user_id), None)
    others = [f for f in feedback if f.author_id != membership.user_id]
    if mine is None and is_blind(membership):
        return mine, [], len(others)
    return mine, others, 0


def can_delete_feedback(membership: Membership, feedback: Feedback) -> bool:
    """Reviewers delete their own feedback; owners delete anyone's."""
    if membership.role == Role.OWNER:
        return True
    return membership.role == Role.REVIEWER and feedback.author_id == membership.user_id


def deletable_feedback(membership: Membership, queryset: QuerySet[Feedback]) -> QuerySet[Feedback]:
    """Restrict feedback to what the member may delete (unalign): owners anyone's, reviewers their own."""
    if membership.role == Role.OWNER:
        return queryset
    if membership.role == Role.REVIEWER:
        return queryset.filter(author_id=membership.user_id)
    return queryset.none()


def can_edit_feedback(membership: Membership, feedback: Feedback) -> bool:
    """Only the author edits a feedback, and only while they may still review."""
    return can(membership, Role.REVIEWER) and feedback.author_id == membership.user_id


def project_view(min_role: Role = Role.VIEWER) -> Callable[[View], View]:
    """Decorate a view taking `slug`: log in first, then set `request.project` and `request.membership`."""

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
            typed = cast(ProjectRequest, request)
            typed.project, typed.membership = get_project_for_user(request.user, slug, min_role)
            with figures.snapshot():  # the page's figures in one Redis round trip
                return view(typed, *args, **kwargs)

        return wrapped

    return decorator


def require(membership: Membership, role: Role) -> None:
    """Raise PermissionDenied unless the membership carries at least `role`."""
    if not can(membership, role):
        raise PermissionDenied(f"This needs the {role.label.lower()} role in this project.")
