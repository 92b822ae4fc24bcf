"""Creating projects and managing their members. Plain functions: views and commands both call them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.text import slugify

from reviews.models import Feedback, Invitation, Membership, Project, Role


def unique_slug(name: str) -> str:
    """Return a slug for `name` that no project uses yet."""
    base = slugify(name)[:120] or "project"
    slug, n = base, 1
    while Project.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_project(owner: User, **fields: Any) -> Project:
    """Create a project and make `owner` its owner."""
    project = Project(created_by=owner, slug=unique_slug(fields["name"]), **fields)
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=owner, role=Role.OWNER)
    return project


def _account_named(identifier: str) -> User | None:
    """Return the one active account whose username or email is `identifier`, or None (none, or several)."""
    users = list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username__iexact=identifier) | Q(email__iexact=identifier))[:2]
    )
    return users[0] if len(users) == 1 else None


def invite(project: Project, identifier: str, role: Role, invited_by: User) -> Invitation:
    """Invite the person named by a username or email; they join only when they accept.

    The outcome looks the same whether or not an account answers to `identifier`, so that an owner (anyone can
    create a project) cannot use it to learn who has an account. Inviting again updates the pending role.
    """
    identifier = identifier.strip().lower()
    if not identifier:
        raise ValidationError("Enter a username or an email address.")
    user = _account_named(identifier)
    if user is not None and Membership.objects.filter(project=project, user=user).exists():
        # Owners see every member's username and email: this tells them nothing they could not read.
        raise ValidationError(f"{identifier} is already a member of this project.")
    invitation, _ = Invitation.objects.update_or_create(
        project=project, identifier=identifier, defaults={"user": user, "role": role, "invited_by": invited_by}
    )
    return invitation


def pending_invitations(user: User) -> QuerySet[Invitation]:
    """Return the invitations waiting for `user`'s answer."""
    return Invitation.objects.filter(user=user).select_related("project", "invited_by").order_by("-created_at")


@transaction.atomic
def accept_invitation(invitation: Invitation) -> Membership:
    """Make the invited user a member with the invited role (keeping a role they already have), once."""
    membership, _ = Membership.objects.get_or_create(
        project=invitation.project, user=invitation.user, defaults={"role": invitation.role}
    )
    invitation.delete()
    return membership


def decline_invitation(invitation: Invitation) -> None:
    invitation.delete()


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
def remove_member(project: Project, membership_id: int, unalign: bool = False) -> Membership:
    """Remove a member; refuse to remove the last owner. Their feedback stays (it is the project's), unless the
    owner chooses to `unalign` it: then it is deleted, and the memory forgets it."""
    memberships = _lock_memberships(project)
    membership = _member(memberships, membership_id)
    if membership.role == Role.OWNER:
        _keep_an_owner(memberships, membership)
    if unalign:
        Feedback.objects.filter(project=project, author=membership.user).delete()  # post_delete: the memory forgets
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
