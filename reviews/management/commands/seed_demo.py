"""Create the demo account and project once; later runs only print how to log in."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reviews.importers import import_samples
from reviews.labels import LabelKind
from reviews.models import Membership, Project, Role
from reviews.projects import create_project

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_SLUG = "customer-support-tone"


class Command(BaseCommand):
    help = "Create the demo user `demo` and the demo project (local sites only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("The demo account is never created in production mode (DEBUG=0).")
        password = self.demo_password()
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(
                username="demo", defaults={"email": "demo@example.com"}
            )
            # Setting even the same password again changes its hash, which logs the demo user out everywhere.
            if created or not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            if not Project.objects.filter(slug=DEMO_SLUG).exists():
                self.create_project(user)
            elif not Membership.objects.filter(project__slug=DEMO_SLUG, user=user).exists():
                Membership.objects.create(project=Project.objects.get(slug=DEMO_SLUG), user=user, role=Role.OWNER)
        self.stdout.write(self.style.SUCCESS(f"Demo account: username demo, password {password}"))

    def demo_password(self) -> str:
        """Return DEMO_PASSWORD, or a generated password kept in DATA_DIR so it stays the same across runs."""
        if settings.DEMO_PASSWORD:
            return settings.DEMO_PASSWORD
        path = Path(settings.DATA_DIR) / "demo-password"
        if path.exists():
            return path.read_text().strip()
        password = secrets.token_urlsafe(9)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password)
        path.chmod(0o600)
        return password

    def create_project(self, user) -> None:
        project = create_project(
            user,
            name="Customer support tone",
            criterion=(DEMO_DIR / "criterion.txt").read_text().strip(),
            label_kind=LabelKind.PASS_FAIL,
            reviews_per_sample=2,  # an invited colleague reviews the same samples: the Team page measures agreement
        )
        with open(DEMO_DIR / "customer_support_tone.jsonl", "rb") as stream:
            summary = import_samples(project, stream, "customer_support_tone.jsonl", user)
        self.stdout.write(f"Demo project created: {summary.message()}")
