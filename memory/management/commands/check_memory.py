"""manage.py check_memory [PROJECT]: exit 1 and list the problems when the database and Chroma disagree, or
when a principle leads to another label than most of its sources chose."""

from django.core.management.base import BaseCommand, CommandError

from memory import distil, sync
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Compare each project's feedback with its episodic store (Chroma); exit 1 when they differ."

    def add_arguments(self, parser):
        parser.add_argument("project", nargs="?", help="a project's slug (default: every project)")

    def handle(self, project=None, **options):
        differing = 0
        for target in projects_named(project):
            drift = sync.diff(target)
            pending = distil.pending_feedback(target).count()
            stale = distil.stale_principles(target).count()
            if drift:
                differing += 1
                self.stdout.write(self.style.ERROR(f"{target.slug}: the episodic store differs from the database"))
                for line in drift.lines():
                    self.stdout.write(f"  {line}")
            else:
                self.stdout.write(self.style.SUCCESS(f"{target.slug}: episodic store matches the database"))
            if pending or stale:
                self.stdout.write(
                    f"  semantic memory: {pending} feedback not distilled yet, {stale} principle(s) to re-derive"
                )
            misaligned = distil.misaligned_principles(target)
            if misaligned:
                differing += 1
                self.stdout.write(
                    self.style.ERROR(f"{target.slug}: {len(misaligned)} principle(s) contradict their sources")
                )
                for principle in misaligned:
                    self.stdout.write(
                        f"  principle {principle.pk} leads to {principle.label!r} but {principle.sources_other} "
                        f"of its {principle.sources_total} sources chose another label"
                    )
        if differing:
            raise CommandError(
                f"{differing} problem(s) found; `manage.py rebuild_memory` repairs the episodic store, "
                "the next regeneration (`manage.py distill`) the principles."
            )
