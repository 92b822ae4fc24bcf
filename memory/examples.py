"""What the episodic memory holds, read from the database: one example per reviewed sample.

A sample reviewed by several experts is one example, not one per review: it carries the sample's final label (the
experts' consensus, or the decision that settled their conflict) and every learnable review's critique. Retrieval
(judging.judge), the episodic browser, its Conflicts and the unalign preview all read this module and
`reviews.adjudication.learnable`, so what they list is what the judge can retrieve. Chroma holds an entry per
learnable feedback (memory.episodic) and retrieval keeps the most similar entry of each sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import F, QuerySet

from reviews.adjudication import learnable, overruled
from reviews.models import Feedback


class Status:
    """Where a feedback stands in the memory (its label counts in agreement figures in every case)."""

    IN_MEMORY = "in memory"
    OVERRULED = "overruled"  # a decision on its sample chose another label
    EXCLUDED = "left out"  # an owner left it out of the memory (reviews.exclusions)


@dataclass
class SampleExample:
    """A reviewed sample as the judge sees it."""

    sample_id: int
    feedback: Feedback  # the review that speaks for the sample: the decision's, else the earliest learnable one
    label: str  # the final label: the decision's or the consensus (for a dispute, that review's label)
    others: list[Feedback] = field(default_factory=list)  # the sample's other learnable reviews
    disputed: list[str] = field(default_factory=list)  # the labels, when experts disagree and no one decided

    @property
    def critiques(self) -> list[str]:
        """The other reviews' critiques, attached to the example (empty ones left out)."""
        return [f.critique for f in self.others if f.critique.strip()]


def by_sample(sample_ids: Iterable[int]) -> dict[int, SampleExample]:
    """Return the example of each of these samples that has learnable feedback (the others are not in memory)."""
    wanted = set(sample_ids)
    rows = (
        learnable(Feedback.objects.filter(sample_id__in=wanted))
        .select_related("sample")
        # A sample has one decision at most (its feedback may be gone): joined, it adds no rows
        .annotate(sample_decision=F("sample__decision__id"), decided=F("sample__decision__feedback"))
        .order_by("created_at", "id")
    )
    grouped: dict[int, list[Feedback]] = {}
    decided: dict[int, int | None] = {}
    for feedback in rows:
        grouped.setdefault(feedback.sample_id, []).append(feedback)
        if feedback.sample_decision is not None:
            decided[feedback.sample_id] = feedback.decided
    result = {}
    for sample_id, reviews in grouped.items():
        speaker = next((f for f in reviews if f.pk == decided.get(sample_id)), reviews[0])
        labels = sorted({f.label for f in reviews})
        disputed = labels if len(labels) > 1 and sample_id not in decided else []
        others = [f for f in reviews if f.pk != speaker.pk]
        result[sample_id] = SampleExample(sample_id, speaker, speaker.label, others, disputed)
    return result


def with_status(feedback: QuerySet[Feedback]) -> QuerySet[Feedback]:
    """Annotate each feedback with `is_overruled`, so pages can say where it stands (`status`)."""
    return feedback.annotate(is_overruled=overruled())


def status(feedback: Feedback) -> str:
    """Where a feedback annotated by `with_status` stands in the memory."""
    if getattr(feedback, "excluded_from_memory", False):
        return Status.EXCLUDED
    if getattr(feedback, "is_overruled", False):
        return Status.OVERRULED
    return Status.IN_MEMORY
