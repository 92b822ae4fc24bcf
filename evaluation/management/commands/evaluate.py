"""manage.py evaluate PROJECT [--json] [--seed N] [--test-fraction F] [--shards 0,2,5] [--variants none,both]
[--no-prequential] [--limit N]: learning curves of the aligned judge on scratch memory, recorded like one from the site."""

import json

from django.core.management.base import BaseCommand, CommandError

from evaluation import curves
from reviews.management.commands._projects import projects_named


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--shards takes whole numbers separated by commas, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Measure how the aligned judge's agreement grows with critiques (held-out and prequential curves, ablations)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="print exactly one JSON document on stdout"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=curves.DEFAULT_TEST_FRACTION,
            help="share of reviewed samples held out (default 0.3)",
        )
        parser.add_argument(
            "--shards", help="train sizes learned before each point, e.g. 0,2,5,10 (default 0,2,5,10,20,50,… up to all)"
        )
        parser.add_argument(
            "--variants",
            default=",".join(curves.VARIANTS),
            help="memory variants, from none,semantic,episodic,both,learned",
        )
        parser.add_argument("--no-prequential", action="store_true", help="skip the prequential curve")
        parser.add_argument("--limit", type=int, help="use the first N reviewed samples (in review order)")

    def handle(
        self,
        project,
        as_json=False,
        seed=0,
        test_fraction=0.3,
        shards=None,
        variants="",
        no_prequential=False,
        limit=None,
        **_,
    ):
        target = projects_named(project)[0]
        options = curves.Options(
            seed=seed,
            test_fraction=test_fraction,
            shards=_numbers(shards) if shards else None,
            variants=[v.strip() for v in variants.split(",") if v.strip()],
            prequential=not no_prequential,
            limit=limit,
        )
        try:
            record = curves.start(target, None, options)
            if not as_json:
                self.stderr.write(
                    f"Evaluation #{record.pk} of {target.slug}: about {curves.estimated_calls(target, options)} judge calls."
                )
            record = curves.run(record)
        except curves.EvaluationError as error:
            raise CommandError(str(error)) from None
        if as_json:
            self.stdout.write(json.dumps(record.result, ensure_ascii=False))
            return
        self.stdout.write(curves.summary_text(record.result), ending="")
