"""Which text should an episodic example be embedded as? A group-aware kNN measurement on real judge data.

For every record (the "held-back" query), its k nearest records by cosine over our embeddings are retrieved
from the other records, excluding every record of the query's own group (FeedbackQA: the same question;
LLMBar, MT-Bench: the same instruction; HaluEval: one record per group), so near-duplicates cannot inflate the
score. We then ask whether the neighbours carry the query's expert label, for each text mode below
(the product's memory.embeddings.example_text is the "inputs+output" one).

Printed per dataset and mode: majority-vote accuracy of the k neighbours, the offline judge's
similarity-weighted vote (memory.llm.offline.knn_label) with its balanced accuracy, mean neighbour label
agreement, and the baselines: majority class accuracy and the agreement expected from random neighbours
(sum of squared label shares). FeedbackQA also gets within-one accuracy (its labels are ordinal) and accuracy
on records whose label is a strict majority of the annotators.

Run from the repository root:
    .venv/bin/python -m bench.embedding_choice
Options: --datasets, --k, --max-groups (fixed-seed group subsample per dataset), --seed, --modes,
--data-dir (default ../shared/datasets), --skip-throughput. It first measures embedding throughput on real
texts. The default run takes under 3 minutes on 2 cores; texts/s in the tables are only indicative (they
include many lengths), the throughput section is the figure to quote.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allows `python bench/embedding_choice.py` as well as `python -m`
    sys.path.insert(0, str(REPO))

from memory.embeddings import embed, token_counts  # noqa: E402
from memory.llm.offline import SHARPEN, knn_label  # noqa: E402

DEFAULT_DATA_DIR = REPO.parent / "shared" / "datasets"
DEFAULT_DATASETS = ("feedbackqa", "halueval_general", "llmbar")
# Fixed-seed group samples small enough for the default run to stay under 3 minutes on 2 cores (a 256-token
# text embeds at only ~6-8/s here). `--max-groups 100000 --modes inputs output inputs+output labelled`
# measures everything (10-15 minutes).
DEFAULT_MAX_GROUPS = {"feedbackqa": 160, "halueval_general": 200, "llmbar": 80, "mtbench_human": 50}
# "labelled" ("Input: …\nOutput: …") scored like "inputs+output" in the full run; ask for it with --modes.
DEFAULT_MODES = ("inputs", "output", "inputs+output")
# The texts measured for an example; the product embeds "inputs+output" (memory.embeddings.example_text).
EXAMPLE_TEXT_MODES = ("inputs", "output", "inputs+output", "labelled")


def example_text(inputs: str, output: str, mode: str) -> str:
    """Return an example's text in one of the measured forms ("labelled": "Input: ...\\nOutput: ...")."""
    inputs, output = inputs.strip(), output.strip()
    forms = {
        "inputs": inputs,
        "output": output,
        "inputs+output": f"{inputs}\n\n{output}",
        "labelled": f"Input: {inputs}\nOutput: {output}",
    }
    if mode not in forms:
        raise ValueError(f"unknown example text mode {mode!r}; one of {EXAMPLE_TEXT_MODES}")
    return forms[mode]


SHARPEN_GRID = (0.0, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Record:
    id: str
    group: str
    inputs: str
    output: str
    label: str
    majority: bool  # FeedbackQA: the label is a strict majority of annotators; True elsewhere


def load(path: Path) -> tuple[list[Record], list[str]]:
    """Records of one JSONL file and its label space (in the file's order)."""
    records: list[Record] = []
    label_space: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        label_space = row["meta"]["label_space"]
        inputs = "\n".join(row["inputs"].values())
        if "outputs" in row:
            output = row["outputs"]
        else:  # pairwise, written as in memory.llm.base.Example
            output = f"A: {row['output_a']}\n\nB: {row['output_b']}"
        majority = row["meta"].get("label_rule", "majority") == "majority"
        # The group is the judged system's input: FeedbackQA's question, LLMBar/MT-Bench's instruction.
        records.append(Record(row["id"], inputs, inputs, output, row["label"], majority))
    return records, label_space


def subsample(records: list[Record], max_groups: int, seed: int) -> list[Record]:
    """Whole groups, a fixed-seed sample of at most `max_groups` of them (all if fewer)."""
    groups = sorted({r.group for r in records})
    if len(groups) <= max_groups:
        return records
    chosen = set(random.Random(seed).sample(groups, max_groups))
    return [r for r in records if r.group in chosen]


def embed_unique(texts: list[str]) -> tuple[np.ndarray, float]:
    """Embeddings of `texts` (each distinct text embedded once) and the seconds it took."""
    unique = list(dict.fromkeys(texts))
    start = time.perf_counter()
    vectors = embed(unique)
    seconds = time.perf_counter() - start
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[t] for t in texts]], seconds


def neighbours(vectors: np.ndarray, groups: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and similarities (most similar first) of each row's k nearest rows of other groups."""
    similarity = vectors @ vectors.T
    codes = np.unique(np.array(groups), return_inverse=True)[1]
    similarity[codes[:, None] == codes[None, :]] = -np.inf  # the query's own group is never retrieved
    top = np.argpartition(-similarity, k, axis=1)[:, :k]
    top_sims = np.take_along_axis(similarity, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def scores(
    labels: list[str], index: np.ndarray, sims: np.ndarray, choices: list[str], sharpen: float
) -> dict[str, float]:
    """kNN figures for one mode: majority vote, weighted vote, balanced accuracy, neighbour agreement."""
    truth = np.array(labels)
    neighbour_labels = truth[index]
    majority = [knn_label(list(row), list(s), choices, 0.0) for row, s in zip(neighbour_labels, sims)]
    weighted = [knn_label(list(row), list(s), choices, sharpen) for row, s in zip(neighbour_labels, sims)]
    return {
        "majority_vote": float(np.mean(np.array(majority) == truth)),
        "weighted_vote": float(np.mean(np.array(weighted) == truth)),
        "balanced_weighted": balanced_accuracy(labels, weighted),
        "agreement": float(np.mean(neighbour_labels == truth[:, None])),
        "predictions": weighted,  # type: ignore[dict-item]
    }


def balanced_accuracy(truth: list[str], predicted: list[str | None]) -> float:
    """Mean per-class recall (a constant prediction scores 1 / number of classes)."""
    recalls = []
    for label in sorted(set(truth)):
        rows = [p for t, p in zip(truth, predicted) if t == label]
        recalls.append(sum(p == label for p in rows) / len(rows))
    return float(np.mean(recalls))


def baselines(labels: list[str]) -> dict[str, float]:
    shares = np.array(list(Counter(labels).values())) / len(labels)
    return {"majority_class": float(shares.max()), "chance_agreement": float((shares**2).sum())}


def ordinal_extras(records: list[Record], predicted: list[str | None], choices: list[str]) -> str:
    """FeedbackQA only: within-one accuracy and accuracy on the strict-majority records."""
    rank = {label: i for i, label in enumerate(choices)}
    within = np.mean([p is not None and abs(rank[p] - rank[r.label]) <= 1 for r, p in zip(records, predicted)])
    strict = [(r, p) for r, p in zip(records, predicted) if r.majority]
    strict_acc = np.mean([r.label == p for r, p in strict])
    return f"within-one {within:.3f}, accuracy on {len(strict)} strict-majority records {strict_acc:.3f}"


def run_dataset(name: str, args: argparse.Namespace) -> None:
    records, choices = load(args.data_dir / f"{name}.jsonl")
    records = subsample(records, args.max_groups or DEFAULT_MAX_GROUPS.get(name, 400), args.seed)
    labels = [r.label for r in records]
    groups = [r.group for r in records]
    base = baselines(labels)
    print(f"\n## {name}: {len(records)} records, {len(set(groups))} groups, k={args.k}")
    print(
        f"baselines: majority class {base['majority_class']:.3f}, chance agreement {base['chance_agreement']:.3f}; "
        f"one standard error of an accuracy near 0.5: ±{0.5 / np.sqrt(len(records)):.3f}"
    )
    print(
        "| mode | majority vote | weighted vote | balanced acc (weighted) | neighbour agreement | texts/s | tokens/s | truncated |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode in args.modes:
        texts = [example_text(r.inputs, r.output, mode) for r in records]
        vectors, seconds = embed_unique(texts)
        unique = list(dict.fromkeys(texts))
        tokens = token_counts(unique)
        index, sims = neighbours(vectors, groups, args.k)
        result = scores(labels, index, sims, choices, SHARPEN)
        print(
            f"| {mode} | {result['majority_vote']:.3f} | {result['weighted_vote']:.3f} | "
            f"{result['balanced_weighted']:.3f} | {result['agreement']:.3f} | {len(unique) / seconds:.0f} | "
            f"{sum(min(t, 256) for t in tokens) / seconds:.0f} | {np.mean(np.array(tokens) > 256):.0%} |"
        )
        if name == "feedbackqa":
            print(f"    ({mode}: {ordinal_extras(records, result['predictions'], choices)})")
        if mode == args.sharpen_mode:
            sweep = {p: scores(labels, index, sims, choices, p)["weighted_vote"] for p in SHARPEN_GRID}
            print(
                f"    ({mode}: weighted-vote accuracy by sharpening exponent: "
                + ", ".join(f"{p:g} -> {acc:.3f}" for p, acc in sweep.items())
                + ")"
            )


def measure_throughput(data_dir: Path) -> None:
    """Embedding speed on real texts: short critiques, 256-token passages, and single-query latency."""
    rows = [json.loads(line) for line in (data_dir / "feedbackqa.jsonl").read_text(encoding="utf-8").splitlines()]
    critiques = list(dict.fromkeys(r["rationale"] for r in rows))[:320]
    passages = [p for p, n in zip(*_with_counts(list(dict.fromkeys(r["outputs"] for r in rows)))) if n > 256][:96]
    embed(["warm up"])
    print("\n## embedding throughput (feedbackqa texts, batches of 16, this machine)")
    for name, texts in (("critiques", critiques), ("passages cut at 256 tokens", passages)):
        tokens = sum(min(n, 256) for n in token_counts(texts))
        start = time.perf_counter()
        embed(texts)
        seconds = time.perf_counter() - start
        print(
            f"{name}: {len(texts)} texts, {tokens / len(texts):.0f} tokens each on average: "
            f"{len(texts) / seconds:.0f} texts/s, {tokens / seconds:.0f} tokens/s"
        )
    latencies = []
    for critique in critiques[:50]:
        start = time.perf_counter()
        embed([critique])
        latencies.append(time.perf_counter() - start)
    print(f"one short query: p50 {np.median(latencies) * 1000:.1f} ms, p90 {np.quantile(latencies, 0.9) * 1000:.1f} ms")


def _with_counts(texts: list[str]) -> tuple[list[str], list[int]]:
    return texts, token_counts(texts)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), choices=EXAMPLE_TEXT_MODES)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-groups", type=int, default=0, help="per dataset; 0: the built-in defaults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sharpen-mode", default="inputs+output", help="mode on which to sweep the exponent")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--skip-throughput", action="store_true", help="skip the embedding speed measurement")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"no datasets at {args.data_dir}; pass --data-dir", file=sys.stderr)
        return 2
    print("command: .venv/bin/python -m bench.embedding_choice " + shlex.join(argv))
    start = time.perf_counter()
    if not args.skip_throughput:
        measure_throughput(args.data_dir)
    for name in args.datasets:
        run_dataset(name, args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
