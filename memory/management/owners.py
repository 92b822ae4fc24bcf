"""The owner a command-line import gives its new project (`import_judge`, `import_project`)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError


def new_project_owner(username: str | None) -> User:
    """The active user named `username`; without a name, the site's only active superuser."""
    users = get_user_model()
    if username:
        owner = users.objects.filter(username=username, is_active=True).first()
        if owner is None:
            raise CommandError(f"No active user named {username!r}.")
        return owner
    superusers = list(users.objects.filter(is_superuser=True, is_active=True)[:2])
    if len(superusers) != 1:
        raise CommandError("Name the new project's owner with --owner USERNAME.")
    return superusers[0]
