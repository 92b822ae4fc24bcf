from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from judging import backup
from memory.management.owners import new_project_owner


class Command(BaseCommand):
    help = (
        "Restore a project backup (see export_project) into a new project; people are mapped to this site's "
        "accounts of the same username, or become inactive placeholder accounts. A malformed backup creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the backup (JSON)")
        parser.add_argument("--owner", help="the username owning the new project (default: the only superuser)")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = new_project_owner(options["owner"])
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
