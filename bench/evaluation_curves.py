"""Benchmark: learning curves of the offline aligned judge on the shared datasets, and how long one takes.

    .venv/bin/python bench/evaluation_curves.py                       # 300 records of each file, all variants
    .venv/bin/python bench/evaluation_curves.py --files llmbar --limit 0 --svg-dir docs/evaluation

For each file of ../shared/datasets a fresh project gets one feedback per record (tests/datasets.py writes the
critique where the file has no rationale), each sample's input text as its metadata "group" and the project's
evaluation group key set to it (so the test items' questions are never in memory: the datasets' groups), its
samples are embedded (as the background embedding does after an import, timed apart), then
`evaluation.curves.run` evaluates it exactly as `manage.py evaluate PROJECT --json` does (seed 0, test fraction
0.3, default shards, all variants, the prequential curve). Reported: the evaluation's wall time, the baselines,
and the curves' points for the episodic, both and learned variants (none and semantic abstain offline: the
offline judge reads examples only). With --svg-dir the two charts the project page draws are written there as
SVG.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import Environment, footer, header  # noqa: E402


def fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def measure(name: str, limit: int, owner, reviewer, svg_dir: Path | None) -> float:
    from evaluation import charts, curves
    from memory import vectors
    from memory.models import EvaluationSettings
    from reviews.models import Sample
    from tests.datasets import load_project

    project, rows = load_project(name, owner, reviewer, limit=limit or None)
    samples = list(Sample.objects.filter(project=project))
    for sample in samples:
        sample.metadata = {"group": sample.inputs_text()}
    Sample.objects.bulk_update(samples, ["metadata"])
    EvaluationSettings.objects.update_or_create(project=project, defaults={"group_key": "group"})
    started = time.monotonic()
    while vectors.embed_pending(project):
        pass
    embedding = time.monotonic() - started
    started = time.monotonic()
    record = curves.run(curves.start(project, owner, curves.Options()))
    seconds = time.monotonic() - started
    result = record.result
    base = result["baselines"]
    print(f"\n### {name}: {len(rows)} reviewed samples ({result['train']} train, {result['test']} test)\n")
    print(
        f"Evaluation {seconds:.1f} s (embedding the samples beforehand: {embedding:.1f} s); "
        f"{len(result['points'])} points. Baselines on the test items: majority label ({base['majority_label']}) "
        f"{fmt(base['majority'])}, imported judge {fmt(base['imported_judge'])}.{' ' + ' '.join(result['notes']) if result['notes'] else ''}\n"
    )
    print(
        "| critiques learned | test, episodic | test, both | test, learned | seen, episodic | seen, both | "
        "seen, learned | test kappa (both) | test kappa (learned) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by = {(p["curve"], p["variant"], p["split"], p["shard"]): p for p in result["points"]}
    for shard in sorted({p["shard"] for p in result["points"] if p["curve"] == "heldout"}):
        cells = [by.get(("heldout", v, s, shard)) for s in ("test", "seen") for v in ("episodic", "both", "learned")]
        kappas = [by.get(("heldout", v, "test", shard)) for v in ("both", "learned")]
        print(
            f"| {shard} | "
            + " | ".join(fmt(c["exact_match"]) if c else "—" for c in cells)
            + " | "
            + " | ".join(fmt(k["kappa"]) if k else "—" for k in kappas)
            + " |"
        )
    print("\nPrequential (each shard judged before it is learned):\n")
    print("| learned before | judged (n) | exact match | kappa |")
    print("| ---: | ---: | ---: | ---: |")
    for p in (p for p in result["points"] if p["curve"] == "prequential"):
        print(f"| {p['shard']} | {p['n']} | {fmt(p['exact_match'])} | {fmt(p['kappa'])} |")
    none = [p for p in result["points"] if p["variant"] in ("none", "semantic")]
    print(
        f"\nVariants none and semantic: {sum(p['abstained'] for p in none)} of {sum(p['n'] for p in none)} verdicts abstained."
    )
    if svg_dir:
        svg_dir.mkdir(parents=True, exist_ok=True)
        for curve in ("heldout", "prequential"):
            (svg_dir / f"{name}-{curve}.svg").write_text(charts.learning_curve(result, curve), encoding="utf-8")
    sys.stdout.flush()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="feedbackqa,halueval_general,llmbar,mtbench_human")
    parser.add_argument("--limit", type=int, default=300, help="records per file (the first N); 0 = all")
    parser.add_argument("--svg-dir", type=Path, help="write each file's two charts here as SVG")
    args = parser.parse_args()
    from tests.datasets import DATASETS

    if not DATASETS.exists():
        print(f"skipped: {DATASETS} is absent (the shared datasets exist only on the team's machines)")
        return 0
    svg_dir = args.svg_dir.resolve() if args.svg_dir else None  # before the environment changes directory
    with Environment("evaluation"):
        from django.contrib.auth import get_user_model

        header("learning curves of the offline aligned judge on the shared datasets")
        User = get_user_model()
        owner, reviewer = User.objects.create_user("bench-owner"), User.objects.create_user("bench-reviewer")
        for name in args.files.split(","):
            measure(name, args.limit, owner, reviewer, svg_dir)
        footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
