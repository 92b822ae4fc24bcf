"""manage.py import_samples PROJECT FILE: the command-line twin of the import page."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.import_reading import ImportRejected
from reviews.importers import import_samples
from reviews.models import Membership, Project, Role
from reviews.permissions import roles_at_least


class Command(BaseCommand):
    help = "Import judge outputs (CSV or JSONL) into a project; the whole file is checked before anything is written."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("file", type=Path)
        parser.add_argument("--as", dest="username", help="the owner importing (default: the project's first owner)")

    def handle(self, project, file, username=None, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with the slug {project!r}.") from None
        importer = self.importer(target, username)
        if file.is_dir():
            raise CommandError(f"{file} is a folder: give the path of a .csv or .jsonl file in it.")
        if not file.is_file():
            raise CommandError(f"{file}: no such file.")
        with file.open("rb") as stream:
            try:
                summary = import_samples(target, stream, file.name, importer, progress=self.progress)
            except ImportRejected as rejected:
                for line, reason in rejected.errors:
                    self.stderr.write(f"{file.name}:{line}: {reason}" if line else f"{file.name}: {reason}")
                more = rejected.total_errors - len(rejected.errors)
                raise CommandError(
                    f"{file.name} was not imported: {rejected.total_errors} problem(s)"
                    + (f", {more} more not listed" if more > 0 else "")
                    + ". Nothing was written."
                ) from None
        self.stdout.write(self.style.SUCCESS(f"{file.name}: {summary.message()}"))

    def importer(self, project: Project, username: str | None):
        owners = (
            Membership.objects.filter(project=project, role__in=roles_at_least(Role.OWNER))
            .select_related("user")
            .order_by("id")
        )
        if username:
            owners = owners.filter(user__username=username)
        membership = owners.first()
        if membership is None:
            who = f"{username!r} is not an owner of" if username else "no owner in"
            if username and not get_user_model().objects.filter(username=username).exists():
                who = f"no user {username!r} for"
            raise CommandError(f"Cannot import: {who} project {project.slug!r}.")
        return membership.user

    def progress(self, message: str) -> None:
        self.stdout.write(f"  {message}")
