"""manage.py rebuild_memory [PROJECT]: re-embed every feedback from the database into a fresh collection."""

from django.core.management.base import BaseCommand

from memory import episodic, sync
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Drop and rebuild each project's episodic store (Chroma) from the database."

    def add_arguments(self, parser):
        parser.add_argument("project", nargs="?", help="a project's slug (default: every project)")

    def handle(self, project=None, **options):
        episodic.reset_client()  # the store's folder may have been deleted under a cached client
        for target in projects_named(project):
            count = sync.rebuild(target)
            self.stdout.write(self.style.SUCCESS(f"{target.slug}: {count} example(s) embedded"))
