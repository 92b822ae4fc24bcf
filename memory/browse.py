"""Browsing the episodic memory: the stored examples (one per learnable feedback), their label distribution, and
conflicts.

The database is the source of truth for what the episodic memory holds (Chroma is an index derived from it), so
the examples are read from `Feedback`, through `reviews.adjudication.learnable` as retrieval reads them
(memory.examples); overruled and left-out feedback is listed on request, marked as such. Conflicts compare the samples' stored vectors (memory.vectors): nothing
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
STATES = {"": "in the memory", "out": "left out (overruled or excluded)", "all": "all feedback"}
DEFAULT_SIMILARITY = 0.90
MIN_SIMILARITY = 0.50
CONFLICTS_SHOWN = 200
CONFLICT_EXAMPLES = 5_000  # conflicts are looked for among the most recent examples (a dense comparison)
BLOCK = 1_024  # rows of the similarity matrix computed at a time


def examples(
    feedback: QuerySet[Feedback], q: str = "", label: str = "", reviewer: int | None = None
) -> QuerySet[Feedback]:
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
    differ: reviewers who disagree, or a mistake. Two reviewers' different labels on one sample count too (their
    vectors are the same: similarity 1). Counted and ranked in numpy, block by block: a low threshold finds many
    pairs without a Python loop over them."""
    rows = list(feedback.order_by("-created_at", "-id").values_list("pk", "sample_id", "label")[:CONFLICT_EXAMPLES])
    stored = dict(
        SampleVector.objects.filter(
            sample_id__in={sample for _, sample, _ in rows}, scheme=sample_vectors.SCHEME
        ).values_list("sample_id", "vector")
    )
    kept = [(pk, sample, label) for pk, sample, label in rows if sample in stored]
    total, best = 0, []  # best: (similarity, feedback id, feedback id) of the most similar pairs so far
    if len(kept) > 1:
        ids = np.array([pk for pk, _, _ in kept])
        labels = np.unique([label for _, _, label in kept], return_inverse=True)[1]
        unique = {sample: np.frombuffer(bytes(stored[sample]), dtype="<f4") for _, sample, _ in kept}
        matrix = np.stack([unique[sample] for _, sample, _ in kept])
        columns = np.arange(len(kept))
        for start in range(0, len(kept), BLOCK):
            similar = matrix[start : start + BLOCK] @ matrix.T
            rows_here = np.arange(start, min(start + BLOCK, len(kept)))[:, None]
            mask = (similar >= threshold - 1e-6) & (columns > rows_here) & (labels[rows_here] != labels[columns])
            i, j = np.nonzero(mask)
            total += len(i)
            values = similar[i, j]
            if len(values) > CONFLICTS_SHOWN:  # only the most similar can be shown
                top = np.argpartition(-values, CONFLICTS_SHOWN)[:CONFLICTS_SHOWN]
                i, j, values = i[top], j[top], values[top]
            best += [
                (float(v), int(min(ids[start + a], ids[b])), int(max(ids[start + a], ids[b])))
                for a, b, v in zip(i, j, values)
            ]
            best = sorted(best, key=lambda row: (-row[0], row[1], row[2]))[:CONFLICTS_SHOWN]
    by_id = Feedback.objects.select_related("sample", "author").in_bulk({i for _, a, b in best for i in (a, b)})
    pairs = [Conflict(by_id[a], by_id[b], round(min(s, 1.0), 4)) for s, a, b in best]
    return Conflicts(pairs, total, len(kept), len(rows) - len(kept))


def reviewers(project: Project, feedback: QuerySet[Feedback]) -> list[tuple[int, str, int]]:
    """Return (user id, username, examples) of everyone whose feedback is in `feedback`, by username."""
    return list(
        feedback.order_by()
        .values_list("author_id", "author__username")
        .annotate(n=Count("id"))
        .order_by("author__username")
    )
