"""Browsing the episodic memory: the stored examples (one per feedback), their label distribution, and conflicts.

The database is the source of truth for what the episodic memory holds (Chroma is an index derived from it), so
the examples are read from `Feedback`. Conflicts compare the samples' stored vectors (memory.vectors): nothing
is embedded for this page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast

from memory import vectors as sample_vectors
from memory.models import SampleVector
from reviews.models import Feedback, Project

PAGE_SIZE = 50
DEFAULT_SIMILARITY = 0.90
MIN_SIMILARITY = 0.50
CONFLICTS_SHOWN = 200
CONFLICT_EXAMPLES = 5_000  # conflicts are looked for among the most recent examples (a dense comparison)
BLOCK = 1_024  # rows of the similarity matrix computed at a time


def examples(feedback: QuerySet[Feedback], q: str = "", label: str = "", reviewer: int | None = None) -> QuerySet:
    """Return the examples (feedback rows, newest first) matching a text search, a label and a reviewer."""
    rows = feedback.select_related("sample", "author").order_by("-created_at", "-id")
    if label:
        rows = rows.filter(label=label)
    if reviewer:
        rows = rows.filter(author_id=reviewer)
    if q := q.strip():
        # As the queue searches: the inputs as their JSON text, the same on SQLite and PostgreSQL.
        rows = rows.annotate(inputs_text=Cast("sample__inputs", TextField()))
        text = (
            Q(critique__icontains=q)
            | Q(sample__external_id__icontains=q)
            | Q(inputs_text__icontains=q)
            | Q(sample__outputs__icontains=q)
            | Q(sample__output_a__icontains=q)
            | Q(sample__output_b__icontains=q)
        )
        rows = rows.filter(text)
    return rows


def label_distribution(feedback: QuerySet[Feedback], choices: list[str]) -> list[tuple[str, int, int]]:
    """Return (label, count, percent) for every label of the schema (and any stray stored label), schema order."""
    counts = dict(feedback.order_by().values_list("label").annotate(n=Count("id")))
    total = sum(counts.values())
    labels = list(choices) + sorted(set(counts) - set(choices))
    return [
        (label, counts.get(label, 0), round(100 * counts.get(label, 0) / total) if total else 0) for label in labels
    ]


@dataclass
class Conflict:
    first: Feedback
    second: Feedback
    similarity: float  # cosine between the two samples' stored vectors (1.0 for one sample reviewed twice)

    @property
    def both(self) -> tuple[Feedback, Feedback]:
        return self.first, self.second


@dataclass
class Conflicts:
    pairs: list[Conflict]  # the most similar first, at most CONFLICTS_SHOWN
    total: int  # every pair found
    compared: int  # examples compared
    unembedded: int  # examples whose sample has no stored vector yet: left out


def conflicts(feedback: QuerySet[Feedback], threshold: float = DEFAULT_SIMILARITY) -> Conflicts:
    """Find pairs of examples on samples at least `threshold` alike (by their stored vectors) whose expert labels
    differ: reviewers who disagree, or a mistake. Two reviewers' different labels on one sample count too."""
    rows = list(feedback.order_by("-created_at", "-id").values_list("pk", "sample_id", "label")[:CONFLICT_EXAMPLES])
    sample_ids = sorted({sample for _, sample, _ in rows})
    stored = dict(
        SampleVector.objects.filter(sample_id__in=sample_ids, scheme=sample_vectors.SCHEME).values_list(
            "sample_id", "vector"
        )
    )
    embedded = [s for s in sample_ids if s in stored]
    index = {s: i for i, s in enumerate(embedded)}
    by_sample: dict[int, list[tuple[int, str]]] = {}
    for pk, sample, label in rows:
        if sample in index:
            by_sample.setdefault(sample, []).append((pk, label))
    found: list[tuple[float, int, int]] = []  # (similarity, feedback id, feedback id)
    for examples_of_one in by_sample.values():  # one sample reviewed with different labels
        found += _differing(1.0, examples_of_one, examples_of_one, same=True)
    if len(embedded) > 1:
        matrix = np.stack([np.frombuffer(bytes(stored[s]), dtype="<f4") for s in embedded])
        for start in range(0, len(embedded), BLOCK):
            similar = matrix[start : start + BLOCK] @ matrix.T
            for i, j in zip(*np.nonzero(similar >= threshold)):
                a, b = start + int(i), int(j)
                if a < b:
                    found += _differing(
                        float(similar[i, j]), by_sample[embedded[a]], by_sample[embedded[b]], same=False
                    )
    found.sort(key=lambda row: (-row[0], row[1], row[2]))
    shown = found[:CONFLICTS_SHOWN]
    by_id = Feedback.objects.select_related("sample", "author").in_bulk({i for _, a, b in shown for i in (a, b)})
    pairs = [Conflict(by_id[a], by_id[b], round(min(s, 1.0), 4)) for s, a, b in shown]
    unembedded = sum(1 for _, sample, _ in rows if sample not in index)
    return Conflicts(pairs, len(found), len(rows) - unembedded, unembedded)


def _differing(similarity: float, first: list[tuple[int, str]], second: list[tuple[int, str]], same: bool):
    return [
        (similarity, min(a, b), max(a, b))
        for a, label_a in first
        for b, label_b in second
        if label_a != label_b and (not same or a < b)
    ]


def reviewers(project: Project, feedback: QuerySet[Feedback]) -> list[tuple[int, str, int]]:
    """Return (user id, username, examples) of everyone whose feedback is in `feedback`, by username."""
    return list(
        feedback.order_by()
        .values_list("author_id", "author__username")
        .annotate(n=Count("id"))
        .order_by("author__username")
    )
