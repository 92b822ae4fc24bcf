"""Print a new API token once, for bootstrapping automation."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api import tokens
from reviews.models import Project


class Command(BaseCommand):
    help = "Create a personal access token for USERNAME and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True)
        parser.add_argument("--project", metavar="SLUG", help="Restrict the token to this project.")
        parser.add_argument("--read-only", action="store_true")
        parser.add_argument("--expires", type=int, metavar="DAYS", help="Expire after this many days.")

    def handle(self, *args, username, name, project, read_only, expires, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        scope = None
        if project:
            scope = Project.objects.filter(slug=project).first()
            if scope is None:
                raise CommandError(f"No project {project!r}.")
        try:
            _, raw = tokens.create_token(user, name, scope, read_only, expires)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(raw)
