"""Creating projects and managing their members. Plain functions: views and commands both call them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.text import slugify

from reviews.models import Membership, Project, Role


def unique_slug(name: str) -> str:
    """Return a slug for `name` that no project uses yet."""
    base = slugify(name)[:120] or "project"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_project(owner, **fields) -> Project:
    """Create a project and make `owner` its owner."""
    project = Project(created_by=owner, slug=unique_slug(fields["name"]), **fields)
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def find_user(identifier: str):
    """Return the active user with this username or email, or raise ValidationError."""
    identifier = identifier.strip()
    users = list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username__iexact=identifier) | Q(email__iexact=identifier))[:2]
    )
    if not identifier or not users:
        raise ValidationError(f"No user has the username or email {identifier!r}.")
    if len(users) > 1:
        raise ValidationError(f"Several users match {identifier!r}; use the username.")
    return users[0]


def add_member(project: Project, identifier: str, role: Role) -> Membership:
    """Add the user named by username or email to the project, or raise ValidationError."""
    user = find_user(identifier)
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise ValidationError(f"{user.username} is already a member of this project.") from None


@transaction.atomic
def change_role(project: Project, membership_id: int, role: Role) -> Membership:
    """Change a member's role; refuse to demote the last owner."""
    memberships = _lock_memberships(project)
    membership = _member(memberships, membership_id)
    if membership.role == Role.OWNER and role != Role.OWNER:
        _keep_an_owner(memberships, membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(project: Project, membership_id: int) -> Membership:
    """Remove a member; refuse to remove the last owner. Their feedback stays: it is the project's."""
    memberships = _lock_memberships(project)
    membership = _member(memberships, membership_id)
    if membership.role == Role.OWNER:
        _keep_an_owner(memberships, membership)
    membership.delete()
    return membership


def _lock_memberships(project: Project) -> list[Membership]:
    # Lock every membership row of the project, so two owners demoting each other at once cannot both succeed.
    return list(Membership.objects.select_for_update().filter(project=project).select_related("user"))


def _member(memberships: list[Membership], membership_id: int) -> Membership:
    for membership in memberships:
        if membership.pk == membership_id:
            return membership
    raise Membership.DoesNotExist


def _keep_an_owner(memberships: list[Membership], leaving: Membership) -> None:
    if not any(m.role == Role.OWNER and m.pk != leaving.pk for m in memberships):
        raise ValidationError("A project must keep at least one owner: make someone else owner first.")
