"""The API's access checks: the token's scope, then the site's own permission module."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from api.auth import TokenRequest
from reviews.models import Membership, Project, Role
from reviews.permissions import get_project_for_user, require


def project_for(
    request: TokenRequest, slug: str, role: Role = Role.VIEWER, write: bool = False
) -> tuple[Project, Membership]:
    """Return the project and the caller's membership, or raise Http404 / PermissionDenied.

    A token restricted to another project sees this one as nonexistent (404), as a non-member does; a
    read-only token is refused any write (403), and never does more than its user's role allows.
    """
    token = request.auth
    if token.project is not None and token.project.slug != slug:
        raise Http404("No such project.")
    project, membership = get_project_for_user(token.user, slug, Role.VIEWER)
    if write and token.read_only:
        raise PermissionDenied("This token is read-only.")
    require(membership, role)
    return project, membership
