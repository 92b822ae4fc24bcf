from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from judging import backup
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Back up a whole project (settings, samples, reviews, decisions, members, memory) as one JSON file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("--output", default="-", help="where to write the backup (default: standard output)")
        parser.add_argument("--with-runs", action="store_true", help="include the judge runs and their verdicts")

    def handle(self, *args: Any, **options: Any) -> None:
        (project,) = projects_named(options["project"])
        document = backup.export(project, with_runs=options["with_runs"])
        text = backup.dumps(document)
        if options["output"] == "-":
            self.stdout.write(text, ending="")
            return
        with open(options["output"], "w", encoding="utf-8") as out:
            out.write(text)
        runs = f", {len(document['runs'])} runs" if document["runs"] is not None else ""
        self.stderr.write(
            f"Backed up {project.slug}: {len(document['samples'])} samples, {len(document['reviews'])} reviews, "
            f"{len(document['principles'])} principles, {len(document['versions'])} versions{runs}, "
            f"to {options['output']}."
        )
