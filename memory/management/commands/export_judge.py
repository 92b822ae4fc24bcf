from django.core.management.base import BaseCommand

from memory import portable
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Write a project's judge (criterion, labels, provider settings, principles, examples) as one JSON file."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("file", help="where to write the document; - for standard output")

    def handle(self, *args, **options):
        (project,) = projects_named(options["project"])
        document = portable.export(project)
        text = portable.dumps(document)
        if options["file"] == "-":
            self.stdout.write(text, ending="")
            return
        with open(options["file"], "w", encoding="utf-8") as out:
            out.write(text)
        self.stderr.write(
            f"Exported {project.slug}: {len(document['principles'])} principles, "
            f"{len(document['examples'])} examples, to {options['file']}."
        )
