from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from memory import portable


class Command(BaseCommand):
    help = "Create a project from a judge document (see export_judge); a malformed document creates nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the judge document (JSON)")
        parser.add_argument("--owner", help="the username owning the new project (default: the only superuser)")
        parser.add_argument("--name", default="", help="the new project's name (default: the document's)")

    def handle(self, *args, **options):
        owner = self._owner(options["owner"])
        try:
            with open(options["file"], "rb") as source:
                raw = source.read()
        except OSError as error:
            raise CommandError(f"Cannot read {options['file']}: {error.strerror}.") from None
        try:
            project = portable.import_judge(raw, owner, name=options["name"])
        except portable.Refused as refused:
            raise CommandError(f"Nothing was imported. {refused}") from None
        self.stdout.write(f"Created project {project.slug} ({project.name}), owned by {owner.get_username()}.")

    def _owner(self, username: str | None):
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
