"""Benchmark: the learned local judge against the neighbour vote on unseen groups, its training time and its
per-verdict cost.

    .venv/bin/python bench/learned_judge.py                              # the four shared datasets, all records
    .venv/bin/python bench/learned_judge.py --files llmbar --limit 200 --cache /tmp/vectors

Agreement: for each file of ../shared/datasets, every record's parts (input, output or outputs A and B) are
embedded as memory.vectors.part_vectors stores them, and the records are split 70/30 by a seeded shuffle of whole
groups (a group = one input text, so every test input is unseen: no item or question of the test side is in
memory). Both judges learn the training side only:
- the vote: the offline judge's rule (memory.llm.offline.knn_label) over the 5 nearest training items by the
  stored sample vector (the normalised mean of the parts); with unseen groups the same-item rule never fires;
- the learned judge: judging.learned_model.fit_tuned on the training side (as a project's training: the fit, then
  the decision's prior power chosen by kappa on the training side's out-of-fold probabilities), its decision.
Reported per file: Cohen's kappa, exact match and balanced accuracy of each, the learned judge's
quadratic-weighted kappa where the categories are ordered (more than two, in the listed order), the majority-label
baseline. A test side of a few dozen items (MT-Bench: 43) gives a kappa whose standard error is about 0.15, so the
same is then repeated over --splits seeds of the group split (seed 0 first) and each judge's mean kappa and
balanced accuracy are reported with their standard error over the splits: the figure one split cannot give.

Speed (synthetic unit vectors, labels from a linear rule): the time to train on 10,000 labelled samples per label
kind (`fit`; above 3,000 labels a project's training does no out-of-fold tuning, so this is its whole cost), and a verdict's added cost — the learned judge's probabilities for one item (p50 of 300), and per item in a
chunk of 32 as a run judges. Without the shared datasets only the speed part runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import SHARED_DATASETS, footer, header, percentile  # noqa: E402

FILES = ("feedbackqa", "halueval_general", "llmbar", "mtbench_human")
K = 5  # the projects' default retrieval k
TEST_FRACTION = 0.3
SEED = 0


def records(name: str, limit: int) -> list[dict]:
    with open(SHARED_DATASETS / f"{name}.jsonl", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return rows[:limit] if limit else rows


def inputs_text(inputs: object) -> str:
    """As reviews.models.Sample.inputs_text: a string as is, anything else as indented JSON."""
    return inputs if isinstance(inputs, str) else json.dumps(inputs, indent=2, ensure_ascii=False)


def part_texts(rows: list[dict]) -> list[list[str]]:
    """Each record's part texts, laid out as memory.vectors.part_texts lays out a sample's (no Django here)."""
    texts = []
    for row in rows:
        inputs = inputs_text(row["inputs"]).strip()
        if row.get("output_a") or row.get("output_b"):
            texts.append([inputs, f"Output A:\n{row['output_a'].strip()}", f"Output B:\n{row['output_b'].strip()}"])
        else:
            texts.append([inputs, (row.get("outputs") or "").strip()])
    return texts


def part_vectors(name: str, rows: list[dict], cache: Path | None) -> np.ndarray:
    from memory.embeddings import embed_cached

    stored = cache / f"{name}-{len(rows)}.npy" if cache else None
    if stored and stored.exists():
        return np.load(stored)
    texts = part_texts(rows)
    flat = [text or " " for parts in texts for text in parts]
    vectors = embed_cached(flat).reshape(len(rows), len(texts[0]), -1)
    if stored:
        stored.parent.mkdir(parents=True, exist_ok=True)
        np.save(stored, vectors)
    return vectors


def split(groups: list[str], seed: int = SEED) -> np.ndarray:
    """A boolean test mask: whole groups, seeded, about TEST_FRACTION of the items (as evaluation.curves.split)."""
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    sizes: dict[str, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    wanted, taken, test = round(len(groups) * TEST_FRACTION), 0, set()
    for group in names:
        if taken < wanted:
            test.add(group)
            taken += sizes[group]
    return np.array([group in test for group in groups])


def figures(truth: np.ndarray, guess: list[str]) -> str:
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

    guessed = np.array(guess)
    return (
        f"{cohen_kappa_score(truth, guessed):6.3f} | {np.mean(truth == guessed):.3f} | "
        f"{balanced_accuracy_score(truth, guessed):.3f}"
    )


def weighted(truth: np.ndarray, guess: list[str], choices: list[str]) -> str:
    """Quadratic-weighted kappa over the labels' positions in the listed order; "—" for two labels (no order)."""
    from sklearn.metrics import cohen_kappa_score

    if len(choices) <= 2:
        return "—"
    position = {label: i for i, label in enumerate(choices)}
    return f"{cohen_kappa_score([position[t] for t in truth], [position[g] for g in guess], weights='quadratic'):.3f}"


def judged(
    kind: str, choices: list[str], parts: np.ndarray, lengths: np.ndarray, labels: np.ndarray, test: np.ndarray
) -> tuple[list[str], list[str], float]:
    """The vote's and the learned judge's verdicts on the test side, both learning the rest; the training time."""
    from judging.learned_model import fit_tuned
    from memory.llm.offline import knn_label

    train = ~test
    means = parts.sum(axis=1)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    similarity = means[test] @ means[train].T
    voted = []
    for row in similarity:
        nearest = np.argsort(-row, kind="stable")[:K]
        voted.append(knn_label(labels[train][nearest].tolist(), row[nearest].tolist(), choices) or "")
    started = time.monotonic()
    model, _ = fit_tuned(kind, choices, parts[train], labels[train].tolist(), lengths=lengths[train])
    training = time.monotonic() - started
    return voted, model.decide(model.probabilities(parts[test], lengths[test])), training


def agreement(name: str, limit: int, cache: Path | None, splits: int) -> str:
    """Print the file's seed-0 row; return its row of the figures over `splits` seeds."""
    from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

    from judging.learned_model import part_lengths

    rows = records(name, limit)
    kind = "pairwise" if rows[0]["label_type"] == "pairwise" else "categorical"
    choices = list(rows[0]["meta"]["label_space"]) if kind == "categorical" else ["A", "B"]
    started = time.monotonic()
    parts = part_vectors(name, rows, cache)
    embedding = time.monotonic() - started
    lengths = part_lengths(part_texts(rows))
    labels = np.array([r["label"] for r in rows])
    groups = [inputs_text(r["inputs"]) for r in rows]
    test = split(groups)
    train = ~test
    voted, learned, training = judged(kind, choices, parts, lengths, labels, test)
    values, counts = np.unique(labels[train], return_counts=True)
    majority = values[np.argmax(counts)]
    print(
        f"| {name} | {len(rows)} ({int(train.sum())} / {int(test.sum())}) | {figures(labels[test], voted)} | "
        f"{figures(labels[test], learned)} | {weighted(labels[test], learned, choices)} | "
        f"{np.mean(labels[test] == majority):.3f} ({majority}) | "
        f"{training:.1f} s | {embedding:.0f} s |"
    )
    sys.stdout.flush()
    figures_by_split = []  # (vote kappa, learned kappa, vote balanced acc., learned balanced acc.) per seed
    for seed in range(splits):
        if seed:
            test = split(groups, seed)
            voted, learned, _ = judged(kind, choices, parts, lengths, labels, test)
        truth = labels[test]
        figures_by_split.append(
            [
                cohen_kappa_score(truth, voted),
                cohen_kappa_score(truth, learned),
                balanced_accuracy_score(truth, voted),
                balanced_accuracy_score(truth, learned),
            ]
        )
    table = np.array(figures_by_split)
    error = table.std(axis=0, ddof=1) / np.sqrt(len(table)) if len(table) > 1 else np.zeros(4)
    cells = " | ".join(f"{mean:.3f} ± {se:.3f}" for mean, se in zip(table.mean(axis=0), error))
    return f"| {name} | {len(table)} | {cells} | {table[:, 1].min():.3f} – {table[:, 1].max():.3f} |"


def synthetic(n: int, parts: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, parts, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    direction = rng.normal(size=384)
    return vectors, (vectors[:, 1:, :] @ direction) + rng.normal(size=(n, parts - 1)) * 0.5


def microseconds(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1e6:.0f} µs, p95 {percentile(values, 95) * 1e6:.0f} µs (n={len(values)})"


def speed(size: int) -> None:
    from judging.learned_model import fit

    cases = [
        ("pass_fail", ["pass", "fail"], 2, lambda s: np.where(s[:, 0] > 0, "pass", "fail")),
        (
            "categorical (4)",
            ["a", "b", "c", "d"],
            2,
            lambda s: np.select([s[:, 0] < -1, s[:, 0] < 0, s[:, 0] < 1], ["d", "c", "b"], "a"),
        ),
        ("numeric (1..5)", ["1", "2", "3", "4", "5"], 2, lambda s: np.clip(np.round(s[:, 0] + 3), 1, 5).astype(int)),
        ("pairwise", ["A", "B"], 3, lambda s: np.where(s[:, 0] > s[:, 1], "A", "B")),
    ]
    print(f"\n### Training on {size:,} labelled samples (synthetic vectors) and a verdict's added cost\n")
    print("| label kind | training: wall | training: CPU | one item | per item in a chunk of 32 |")
    print("| --- | ---: | ---: | --- | --- |")
    for name, choices, width, rule in cases:
        kind = name.split(" ")[0]
        parts, score = synthetic(size, width)
        labels = [str(v) for v in rule(score)]
        lengths = np.random.default_rng(1).integers(50, 3000, size=(size, width)).astype(np.float64)
        started, cpu = time.monotonic(), time.process_time()
        model = fit(kind, choices, parts, labels, lengths=lengths)
        training, training_cpu = time.monotonic() - started, time.process_time() - cpu
        one, chunk = [], []
        for i in range(300):
            started = time.perf_counter()
            model.probabilities(parts[i : i + 1], lengths[i : i + 1])
            one.append(time.perf_counter() - started)
        for i in range(min(30, size // 32)):
            started = time.perf_counter()
            model.decide(model.probabilities(parts[i * 32 : (i + 1) * 32], lengths[i * 32 : (i + 1) * 32]))
            chunk.append((time.perf_counter() - started) / 32)
        print(f"| {name} | {training:.2f} s | {training_cpu:.2f} s | {microseconds(one)} | {microseconds(chunk)} |")
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", default=",".join(FILES))
    parser.add_argument("--limit", type=int, default=0, help="records per file (the first N); 0 = all")
    parser.add_argument("--size", type=int, default=10_000, help="labelled samples for the training time")
    parser.add_argument("--cache", type=Path, help="keep each file's part vectors here between runs")
    parser.add_argument("--splits", type=int, default=10, help="seeds of the group split for the mean figures")
    args = parser.parse_args()
    header("the learned local judge against the neighbour vote, on unseen groups; training time; verdict cost")
    if SHARED_DATASETS.exists() and args.files:
        print("\n### Agreement on unseen groups (70/30 split of whole groups, seed 0)\n")
        print(
            "| file | records (train / test) | vote: kappa | exact | balanced acc. | learned: kappa | exact | "
            "balanced acc. | weighted kappa | majority baseline | training | embedding |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        summaries = [
            agreement(name, args.limit, args.cache.resolve() if args.cache else None, max(1, args.splits))
            for name in filter(None, args.files.split(","))
        ]
        print(f"\n### Over {max(1, args.splits)} seeds of the group split (mean ± standard error over the splits)\n")
        print(
            "| file | splits | vote: kappa | learned: kappa | vote: balanced acc. | learned: balanced acc. | "
            "learned kappa: lowest – highest split |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        print("\n".join(summaries))
    elif args.files:
        print(f"skipped the agreement part: {SHARED_DATASETS} is absent (it exists only on the team's machines)")
    else:
        print("skipped the agreement part: no --files")
    speed(args.size)
    footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
