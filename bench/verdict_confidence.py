"""Benchmark: verdicts you can act on, with the offline judge on the shared datasets (issue 20's figures).

    .venv/bin/python bench/verdict_confidence.py                  # 600 records of each file
    .venv/bin/python bench/verdict_confidence.py --limit 0        # every record

For each file of ../shared/datasets a project gets one feedback per record (tests/datasets.py) and its samples
are embedded. The records are split group-disjoint (every record with the same input on one side, seeded) into
a memory (50%: the offline judge's reviewed examples), a reviewed half of the rest (calibration and the
guarantee) and an unreviewed half (held out: their expert labels are used only to score the figures). Each
item is judged by the offline judge's own rule (memory.llm.offline.knn_label over the k nearest memory
examples, from the stored vectors), and its confidence signal is the share of that vote behind the verdict, as
judging.checks computes it. Reported per file:

- calibration error (ECE, 10 bins) of the raw signal and of the calibrated confidence: cross-fitted on the
  reviewed items, and on the held-out items with the calibrator fitted on all reviewed items;
- at a 90% target and 10% risk: the chosen threshold and its coverage on the reviewed items, and on the held-out
  items the coverage and the accepted verdicts' real agreement;
- PPI++ at a 10% audit share of the held-out items: the per-label corrected interval width against the
  experts-only width (the same audit labels), and whether the corrected interval covers the true rate.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import Environment, footer, header  # noqa: E402

TARGET, RISK, AUDIT_SHARE = 0.9, 0.1, 0.1


def side(text: str, seed: int = 0) -> float:
    """A stable draw per input text: records with the same input land on the same side of every split."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "big") / 2**64


def judge(matrix, train_rows, train_labels, rows, choices, k):
    from judging.checks import neighbour_vote
    from memory.llm.base import Example, LabelSchema, WorkingMemory
    from memory.llm.offline import knn_label

    similarities = matrix[rows] @ matrix[train_rows].T
    verdicts, signals = [], []
    for row in similarities:
        nearest = np.argsort(-row, kind="stable")[:k]
        labels, sims = [train_labels[i] for i in nearest], [float(row[i]) for i in nearest]
        value = knn_label(labels, sims, choices)
        memory = WorkingMemory(
            "",
            LabelSchema("", list(choices)),
            [],
            [Example(0, "", "", la, "", similarity=s) for la, s in zip(labels, sims)],
            "",
            "",
        )
        verdicts.append(value)
        signals.append(neighbour_vote(memory, value) or 0.0)
    return verdicts, np.array(signals)


def measure(name: str, limit: int, owner, reviewer) -> None:
    from agreement import calibration, ppi, selective
    from memory import vectors
    from reviews.models import Feedback
    from tests.datasets import load_project

    project, _ = load_project(name, owner, reviewer, limit=limit or None)
    while vectors.embed_pending(project):
        pass
    feedback = list(Feedback.objects.filter(project=project).select_related("sample").order_by("id"))
    samples = [f.sample for f in feedback]
    matrix = vectors.for_samples(samples)
    labels = [f.label for f in feedback]
    draws = [side(s.inputs_text()) for s in samples]
    memory = [i for i, d in enumerate(draws) if d < 0.5]
    reviewed = [i for i, d in enumerate(draws) if 0.5 <= d < 0.75]
    held_out = [i for i, d in enumerate(draws) if d >= 0.75]
    choices = project.label_choices
    k = project.retrieval_k
    memory_labels = [labels[i] for i in memory]
    cal_values, cal_raw = judge(matrix, memory, memory_labels, reviewed, choices, k)
    test_values, test_raw = judge(matrix, memory, memory_labels, held_out, choices, k)
    cal_agreed = [v == labels[i] for v, i in zip(cal_values, reviewed)]
    test_agreed = np.array([v == labels[i] for v, i in zip(test_values, held_out)])
    crossed = calibration.cross_fitted([samples[i].pk for i in reviewed], cal_raw.tolist(), cal_agreed)
    fitted = calibration.fit(cal_raw.tolist(), cal_agreed)(test_raw)
    selection = selective.select_threshold(crossed.tolist(), cal_agreed, TARGET, RISK)
    print(f"\n### {name}: {len(memory)} in memory, {len(reviewed)} reviewed, {len(held_out)} held out\n")
    print(f"Judge agreement: reviewed {np.mean(cal_agreed):.3f}, held out {test_agreed.mean():.3f}.\n")
    print("| ECE | raw signal | calibrated |")
    print("| --- | ---: | ---: |")
    print(
        f"| reviewed (cross-fitted) | {calibration.expected_calibration_error(cal_raw, cal_agreed):.3f} | "
        f"{calibration.expected_calibration_error(crossed, cal_agreed):.3f} |"
    )
    print(
        f"| held out | {calibration.expected_calibration_error(test_raw, test_agreed):.3f} | "
        f"{calibration.expected_calibration_error(fitted, test_agreed):.3f} |\n"
    )
    print(f"Guarantee ({TARGET:.0%} target, {RISK:.0%} risk): {selection.sentence}")
    if selection.threshold is not None:
        accepted = fitted >= selection.threshold
        real = test_agreed[accepted].mean() if accepted.any() else float("nan")
        print(
            f"Held out: coverage {accepted.mean():.3f}, accepted verdicts' agreement {real:.3f} "
            f"({int(accepted.sum())} of {len(held_out)}).\n"
        )
    rng = np.random.default_rng(0)
    audit = rng.random(len(held_out)) < AUDIT_SHARE
    experts = [labels[i] for i, a in zip(held_out, audit) if a]
    on_audit = [v or "" for v, a in zip(test_values, audit) if a]
    rest = [v or "" for v, a in zip(test_values, audit) if not a]
    truth = [labels[i] for i, a in zip(held_out, audit) if not a]
    reason = ppi.why_not(len(experts), len(rest))
    if reason:
        print(f"PPI: {reason}\n")
        return
    print(f"PPI++ at a {AUDIT_SHARE:.0%} audit share ({len(experts)} expert labels, {len(rest)} unreviewed):\n")
    print("| label | true rate | judge raw | corrected (interval) | width | experts-only width | lambda | covers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for rate in ppi.corrected_rates(choices, experts, on_audit, rest):
        true_rate = truth.count(rate.label) / len(truth)
        low, high = rate.corrected_interval
        print(
            f"| {rate.label} | {true_rate:.3f} | {rate.judge_rate:.3f} | {rate.corrected:.3f} ({low:.3f}–{high:.3f}) | "
            f"{high - low:.3f} | {rate.experts_interval[1] - rate.experts_interval[0]:.3f} | {rate.power:.2f} | "
            f"{'yes' if low <= true_rate <= high else 'no'} |"
        )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default="feedbackqa,halueval_general,llmbar,mtbench_human")
    parser.add_argument("--limit", type=int, default=600, help="records per file (the first N); 0 = all")
    args = parser.parse_args()
    from tests.datasets import DATASETS

    if not DATASETS.exists():
        print(f"skipped: {DATASETS} is absent (the shared datasets exist only on the team's machines)")
        return 0
    with Environment("verdicts"):
        from django.contrib.auth import get_user_model

        header("confidence, the guarantee and PPI++ rates of the offline judge on the shared datasets")
        User = get_user_model()
        owner, reviewer = User.objects.create_user("bench-owner"), User.objects.create_user("bench-reviewer")
        for name in args.files.split(","):
            measure(name, args.limit, owner, reviewer)
        footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
