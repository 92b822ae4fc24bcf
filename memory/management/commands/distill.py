"""manage.py distill PROJECT [--consolidate]: bring the principles up to date now, in this process."""

from django.core.management.base import BaseCommand, CommandError

from memory import consolidate, semantic, versions
from memory.llm.base import ProviderError
from memory.locks import memory_writer
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Distil pending feedback into principles (and re-derive those that lost sources); optionally consolidate."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--consolidate", action="store_true", help="also merge duplicates and flag contradictions")

    def handle(self, project, **options):
        target = projects_named(project)[0]
        # One writer at a time: wait for a regeneration a worker is running, and hold the workers off meanwhile.
        self.stderr.write(f"{target.slug}: waiting for the semantic memory's lock…")
        try:
            with memory_writer(target.pk, wait=None):
                outcome = semantic.regenerate(target, force=True)
                written = outcome.versions
                if options["consolidate"] and (version := consolidate.consolidate(target)):
                    written.append(version)
        except ProviderError as error:
            raise CommandError(
                f"The provider failed: {error}. Nothing was changed; the failure is recorded as a memory version."
            ) from None
        for version in written:
            self.stdout.write(f"v{version.number} ({version.trigger}): {version.summary}")
        active = versions.active_principles(target).count()
        self.stdout.write(
            self.style.SUCCESS(f"{target.slug}: {len(written)} new version(s), {active} active principle(s)")
        )
