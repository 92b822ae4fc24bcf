from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from judging import backup


class Command(BaseCommand):
    help = (
        "Restore a project backup (see export_project) into a new project; people are mapped to this site's "
        "accounts of the same username, or become inactive placeholder accounts. A malformed backup creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the backup (JSON)")
        parser.add_argument("--owner", help="the username owning the new project (default: the only superuser)")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = self._owner(options["owner"])
        try:
            with open(options["file"], "rb") as source:
                raw = source.read()
        except OSError as error:
            raise CommandError(f"Cannot read {options['file']}: {error.strerror}.") from None
        try:
            restored = backup.restore(raw, owner, match_accounts=True)
        except backup.Refused as refused:
            raise CommandError(f"Nothing was restored. {refused}") from None
        project = restored.project
        self.stdout.write(
            f"Restored into the new project {project.slug} ({project.name}), owned by {owner.get_username()}. "
            f"People: {restored.accounts_summary()}."
        )

    def _owner(self, username: str | None) -> User:
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
