"""Benchmark: what the semantic memory holds after distilling a shared data file with the offline provider.

    .venv/bin/python bench/semantic_quality.py
    .venv/bin/python bench/semantic_quality.py --files feedbackqa --limits 100,500,0

For each file of ../shared/datasets (and each size; 0 means every record) a fresh project gets one feedback per
record (tests/datasets.py writes the critique where the file has no rationale), then the semantic memory is
brought up to date in this process with the offline provider (`semantic.regenerate(force=True)`) and
consolidated once more. Reported: active principles, how many cite one source only, principles whose sources
mostly chose another label than the one they name (`distil.misaligned_principles`), source links whose
feedback chose another label, open contradictions, and the project's principle budget. No worker, Redis or
Chroma is needed: distillation reads the database and embeds locally.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import Environment, footer, header  # noqa: E402


def measure(name: str, limit: int, owner, reviewer) -> dict:
    from django.db.models import Count, F

    from memory import consolidate, distil, semantic, versions
    from memory.models import Contradiction, PrincipleSource
    from tests.datasets import load_project

    project, rows = load_project(name, owner, reviewer, limit=limit or None)
    started = time.monotonic()
    semantic.regenerate(project, force=True)
    consolidate.consolidate(project)
    seconds = time.monotonic() - started
    active = versions.active_principles(project)
    links = PrincipleSource.objects.filter(principle__in=active, feedback__isnull=False)
    per_principle = links.values("principle_id").annotate(n=Count("id"))
    single = sum(1 for row in per_principle if row["n"] == 1)
    crossing = links.exclude(principle__label="").exclude(feedback__label=F("principle__label")).count()
    active = list(active)
    return {
        "file": name,
        "critiques": len(rows),
        "principles": len(active),
        "single": single,
        "misaligned": len(distil.misaligned_principles(project)),
        "crossing_links": crossing,
        "contradictions": Contradiction.objects.filter(project=project, resolved=False).count(),
        "budget": project.max_principles,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="feedbackqa,halueval_general,llmbar,mtbench_human")
    parser.add_argument("--limits", default="0", help="records per file, comma-separated; 0 = all")
    args = parser.parse_args()
    from tests.datasets import DATASETS

    if not DATASETS.exists():
        print(f"skipped: {DATASETS} is absent (the shared datasets exist only on the team's machines)")
        return 0
    with Environment("semantic", chroma=False):
        from django.contrib.auth import get_user_model

        header("semantic memory quality on the shared datasets (offline provider)")
        User = get_user_model()
        owner, reviewer = User.objects.create_user("bench-owner"), User.objects.create_user("bench-reviewer")
        print(
            "| file | critiques | principles (budget) | single-source | misaligned | cross-label links | contradictions | time |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        failed = False
        for name in args.files.split(","):
            for limit in (int(x) for x in args.limits.split(",")):
                r = measure(name, limit, owner, reviewer)
                failed |= r["misaligned"] > 0 or r["principles"] > r["budget"]
                print(
                    f"| {r['file']} | {r['critiques']:,} | {r['principles']} ({r['budget']}) | {r['single']} | "
                    f"{r['misaligned']} | {r['crossing_links']} | {r['contradictions']} | {r['seconds']:.1f} s |"
                )
                sys.stdout.flush()
        footer()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
