from django.core.management.base import BaseCommand, CommandError

from memory import portable
from memory.management.owners import new_project_owner


class Command(BaseCommand):
    help = "Create a project from a judge document (see export_judge); a malformed document creates nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the judge document (JSON)")
        parser.add_argument("--owner", help="the username owning the new project (default: the only superuser)")
        parser.add_argument("--name", default="", help="the new project's name (default: the document's)")

    def handle(self, *args, **options):
        owner = new_project_owner(options["owner"])
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
