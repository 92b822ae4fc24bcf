"""manage.py judge PROJECT [--reviewed|--unreviewed|--all] [--limit N] [--json]: an aligned-judge run, here."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from judging import runs
from judging.models import JudgeRun
from reviews.management.commands._projects import projects_named


class Command(BaseCommand):
    help = "Run the aligned judge over a project's samples in this process, recorded as a run like one from the site."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        scope = parser.add_mutually_exclusive_group()
        for name in ("reviewed", "unreviewed", "all"):
            scope.add_argument(
                f"--{name}", dest="scope", action="store_const", const=name, help=f"judge {name} samples"
            )
        parser.add_argument("--limit", type=int, help="judge at most N samples (the first N in id order)")
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print one JSON document with the run's figures on stdout",
        )

    def handle(self, project, scope=None, limit=None, as_json=False, **options):
        target = projects_named(project)[0]
        try:
            run = runs.start(target, None, scope or JudgeRun.Scope.REVIEWED, limit=limit, in_process=True)
        except runs.RunError as error:
            raise CommandError(str(error)) from None
        bar = sys.stderr.isatty() and not as_json
        try:
            for index in range(run.chunk_count):
                status = runs.judge_chunk(run.pk, index)
                if bar:  # drawn after the last chunk too, so a finished run shows a full bar
                    self._progress(JudgeRun.objects.get(pk=run.pk))
                if status != "running":
                    break
        except KeyboardInterrupt:
            runs.cancel(run)
            raise CommandError(f"Interrupted: run #{run.pk} cancelled, keeping what it judged.") from None
        run.refresh_from_db()
        if bar:
            sys.stderr.write("\n")
        document = summary(run)
        if as_json:
            self.stdout.write(json.dumps(document, indent=2))
        else:
            aligned = (document["agreement"] or {}).get("aligned") or {}
            headline = aligned.get("headline")
            figure = (
                f", {aligned['headline_name']} {headline:.2f} ({aligned['reading']})" if headline is not None else ""
            )
            self.stdout.write(
                f"run #{run.pk} {run.status}: {run.done} judged, {run.failed} failed, {run.abstained} abstained{figure}"
            )
            if run.guarantee:
                self.stdout.write(run.guarantee["sentence"])
        if run.status == JudgeRun.Status.FAILED:
            raise CommandError(run.error)

    def _progress(self, run: JudgeRun) -> None:
        width = 40
        filled = int(width * (run.done + run.failed) / max(run.total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {run.done + run.failed}/{run.total}")
        sys.stderr.flush()


def summary(run: JudgeRun) -> dict:
    """The run as one JSON document: counts, errors, abstentions, tokens, time, agreement, the guarantee, the
    corrected rates and the order and stability checks."""
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
    return {
        "run": run.pk,
        "project": run.project.slug,
        "scope": run.scope,
        "status": run.status,
        "total": run.total,
        "judged": run.done,
        "errors": run.failed,
        "abstained": run.abstained,
        "usage": run.usage,
        "seconds": seconds,
        "memory_version": run.memory_version.number if run.memory_version else None,
        "agreement": run.figures,
        "guarantee": run.guarantee,
        "corrected_rates": run.corrected_rates,
        "checks": run.checks,
        "escalated": run.judgements.filter(escalated=True).count(),
    }
