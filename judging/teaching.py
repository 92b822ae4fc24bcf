"""The review queue's teaching order: which samples a review would teach the judge most, ranked in the background.

Each sample is scored from stored sample vectors (memory/vectors.py) against the project's reviewed examples,
the way the offline judge votes (memory/llm/offline.py), without Chroma or a provider call:

- uncertainty: 1 - the vote's margin (the top label's weight minus the runner-up's, over all the weight); 1 when
  no reviewed example is similar at all;
- neighbours split: the share of the k nearest reviewed examples that do not carry the most common label;
- disagreement: the vote, or the aligned judge's latest verdict, differs from the imported judge's verdict.

Unreviewed samples whose latest verdict was escalated (judging.confidence: below the run's guaranteed threshold,
an abstention, or a pairwise flip) come first, marked "Needs an expert", most uncertain first.

A fixed share of samples (the project's `audit_percent`) is drawn at random (a hash of project and sample, so
the draw is stable) and interleaved evenly through the order as the audit slice: agreement measured on those
reviews is not biased toward hard samples. The result is stored in `reviews.QueuePriority`, which the queue
orders by, so the queue page never computes a score.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from django.db import transaction
from django.db.models import OuterRef, Subquery

from judging.models import Judgement
from memory import vectors
from memory.llm.offline import vote
from reviews import figures
from reviews.models import Feedback, Project, QueuePriority, Sample

T = TypeVar("T")

CHUNK = 2_048  # samples scored per matrix product: bounds memory at 100k samples
UNCERTAIN = 0.5  # an uncertainty above this is named among the reasons


@dataclass
class Score:
    sample_id: int
    value: float = 0.0
    reasons: list[str] = field(default_factory=list)


def audit_draw(project_id: int, sample_id: int) -> float:
    """Return a stable uniform draw in [0, 1) for the sample: below the audit share, it is in the audit slice."""
    digest = hashlib.sha256(f"memalign-audit:{project_id}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def rank(project: Project) -> int:
    """Score the project's samples and store their teaching order; return how many were ranked.

    Without reviewed examples there is nothing to learn from: the ranking is cleared (the queue's "auto" order
    then stays in import order).
    """
    samples = list(Sample.objects.visible(project).order_by("id"))
    examples = list(Feedback.objects.filter(project=project).order_by("id").values_list("sample_id", "label"))
    if not samples or not examples:
        QueuePriority.objects.filter(project=project).delete()
        figures.changed(project.pk)  # the overview's audit slice
        return 0
    scores = score(project, samples, examples)
    share = min(max(project.audit_percent, 0), 100) / 100
    escalated = _escalated(project, {sample_id for sample_id, _ in examples})
    first = sorted((s for s in scores if s.sample_id in escalated), key=lambda s: -s.value)
    rest = [s for s in scores if s.sample_id not in escalated]
    audit = sorted((s for s in rest if audit_draw(project.pk, s.sample_id) < share), key=_draw(project))
    teach = sorted((s for s in rest if audit_draw(project.pk, s.sample_id) >= share), key=lambda s: -s.value)
    audit_ids = {s.sample_id for s in audit}
    rows = [
        QueuePriority(
            sample_id=s.sample_id,
            project=project,
            rank=position,
            score=round(s.value, 6),
            audit=s.sample_id in audit_ids,
            needs_expert=s.sample_id in escalated,
            reasons=_reasons(s, audit_ids, escalated),
        )
        for position, s in enumerate(first + interleave(teach, audit, share))
    ]
    with transaction.atomic():
        QueuePriority.objects.filter(project=project).delete()
        QueuePriority.objects.bulk_create(rows, batch_size=2_000)
        figures.changed(project.pk)  # the overview's audit slice
    return len(rows)


def _reasons(s: Score, audit_ids: set[int], escalated: dict[int, str]) -> list[str]:
    if s.sample_id in escalated:
        return [f"needs an expert: {escalated[s.sample_id]}", *s.reasons]
    return ["audit slice (drawn at random)"] if s.sample_id in audit_ids else s.reasons


def _escalated(project: Project, reviewed: set[int]) -> dict[int, str]:
    """Unreviewed samples whose latest verdict was escalated, with why in words."""
    latest = Judgement.objects.filter(sample=OuterRef("sample_id"), error="").order_by("-id").values("id")[:1]
    rows = Judgement.objects.filter(project=project, id=Subquery(latest), escalated=True).values_list(
        "sample_id", "value", "confidence", "checks"
    )
    result = {}
    for sample_id, value, confidence, checks in rows:
        if sample_id in reviewed:
            continue
        if not value:
            result[sample_id] = "the judge abstained"
        elif (checks or {}).get("order") == "flipped":
            result[sample_id] = "the verdict flipped when the outputs were swapped"
        else:
            result[sample_id] = f"the judge's confidence {confidence or 0:.2f} is below the guaranteed threshold"
    return result


def _draw(project: Project) -> Callable[[Any], float]:
    return lambda s: audit_draw(project.pk, s.sample_id)


def interleave(teach: list[T], audit: list[T], share: float) -> list[T]:
    """Merge the two lists so that every prefix holds about `share` audit items, evenly spread (every fifth at
    20 %); when one list runs out, the other's rest follows."""
    merged, t, a = [], 0, 0
    for position in range(len(teach) + len(audit)):
        wants_audit = math.floor((position + 1) * share) > math.floor(position * share)
        if a < len(audit) and (wants_audit or t >= len(teach)):
            merged.append(audit[a])
            a += 1
        else:
            merged.append(teach[t])
            t += 1
    return merged


def score(project: Project, samples: list[Sample], examples: list[tuple[int, str]]) -> list[Score]:
    """Return each sample's score: uncertainty + neighbours split + disagreement with the imported judge."""
    matrix = vectors.for_samples(samples)
    row_of = {s.pk: row for row, s in enumerate(samples)}
    examples = [(sample_id, label) for sample_id, label in examples if sample_id in row_of]
    example_samples = np.array([sample_id for sample_id, _ in examples])
    example_labels = [label for _, label in examples]
    example_matrix = matrix[[row_of[sample_id] for sample_id, _ in examples]]
    choices = project.label_choices
    k = max(project.retrieval_k, 1)
    aligned = _latest_aligned(project)
    scores = []
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start : start + CHUNK]
        similarities = matrix[start : start + len(chunk)] @ example_matrix.T
        for offset, sample in enumerate(chunk):
            row = similarities[offset].copy()
            row[example_samples == sample.pk] = -np.inf  # its own reviews are not neighbours
            nearest = [i for i in np.argsort(-row, kind="stable")[:k] if np.isfinite(row[i])]
            labels = [example_labels[i] for i in nearest]
            scores.append(_score(sample, labels, [float(row[i]) for i in nearest], choices, aligned.get(sample.pk)))
    return scores


def _score(
    sample: Sample, labels: list[str], similarities: list[float], choices: list[str], aligned: str | None
) -> Score:
    result = Score(sample.pk)
    weights = sorted(vote(labels, similarities, choices).values(), reverse=True)
    total = sum(weights)
    margin = (weights[0] - (weights[1] if len(weights) > 1 else 0.0)) / total if total > 0 else 0.0
    uncertainty = 1.0 - margin
    result.value += uncertainty
    if total <= 0:
        result.reasons.append("no similar reviewed example")
    elif uncertainty > UNCERTAIN:
        result.reasons.append(f"the judge is unsure (vote margin {margin:.2f})")
    if labels:
        majority = max(labels.count(label) for label in set(labels))
        split = 1.0 - majority / len(labels)
        result.value += split
        if split > 0:
            result.reasons.append(
                f"its nearest reviewed neighbours disagree ({len(labels) - majority} of {len(labels)})"
            )
    if sample.judge_value:
        votes = vote(labels, similarities, choices)
        winner = max(votes.items(), key=lambda item: item[1])[0] if votes else None
        if aligned and aligned != sample.judge_value:
            result.value += 1.0
            result.reasons.append(f"the aligned judge said {aligned}, the imported judge {sample.judge_value}")
        elif winner and winner != sample.judge_value:
            result.value += 1.0
            result.reasons.append(f"the memory's vote ({winner}) disagrees with the imported judge")
    return result


def _latest_aligned(project: Project) -> dict[int, str]:
    """The aligned judge's latest verdict per sample (abstentions and failures left out)."""
    latest = Judgement.objects.filter(sample=OuterRef("sample_id")).order_by("-id").values("id")[:1]
    rows = (
        Judgement.objects.filter(project=project, id=Subquery(latest))
        .exclude(value="")
        .values_list("sample_id", "value")
    )
    return dict(rows)
