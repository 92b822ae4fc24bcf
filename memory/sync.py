"""Drift between the database (the truth) and Chroma (the index): find it, and repair it."""

from __future__ import annotations

from dataclasses import dataclass, field

from memory import episodic
from reviews.adjudication import learnable
from reviews.models import Feedback, Project

EMBED_CHUNK = 256


@dataclass
class Drift:
    # "The database" is the feedback the memory learns from: overruled feedback (reviews.adjudication) is not.
    missing: list[int] = field(default_factory=list)  # in the database, not in Chroma
    outdated: list[int] = field(default_factory=list)  # in Chroma at an older revision
    orphaned: list[int] = field(default_factory=list)  # in Chroma, no longer in the database

    def __bool__(self) -> bool:
        return bool(self.missing or self.outdated or self.orphaned)

    def lines(self) -> list[str]:
        return [
            f"{name}: {len(ids)} feedback id(s) {ids[:20]}{' …' if len(ids) > 20 else ''}"
            for name, ids in (
                ("missing from Chroma", self.missing),
                ("outdated in Chroma", self.outdated),
                ("orphaned in Chroma", self.orphaned),
            )
            if ids
        ]


def diff(project: Project) -> Drift:
    """Compare the project's feedback with its Chroma collection."""
    truth = dict(learnable(Feedback.objects.filter(project=project)).values_list("pk", "revision"))
    stored = episodic.entries(project.pk)
    return Drift(
        missing=sorted(set(truth) - set(stored)),
        outdated=sorted(i for i in set(truth) & set(stored) if stored[i] != truth[i]),
        orphaned=sorted(set(stored) - set(truth)),
    )


def repair(project: Project, limit: int | None = None) -> Drift:
    """Make Chroma match the database, embedding at most `limit` entries; return the drift found.

    With a limit, a large backlog (a big import with expert reviews) is worked off over several runs, each
    short enough for a task's time limit.
    """
    drift = diff(project)
    episodic.delete(project.pk, drift.orphaned)
    embed_feedback_ids(project, (drift.missing + drift.outdated)[:limit])
    return drift


def rebuild(project: Project) -> int:
    """Drop the project's collection and re-embed all its feedback from the database; return the count."""
    episodic.drop(project.pk)
    ids = list(learnable(Feedback.objects.filter(project=project)).values_list("pk", flat=True))
    embed_feedback_ids(project, ids)
    return len(ids)


def embed_feedback_ids(project: Project, ids: list[int]) -> None:
    for start in range(0, len(ids), EMBED_CHUNK):
        chunk = learnable(Feedback.objects.filter(project=project, pk__in=ids[start : start + EMBED_CHUNK]))
        chunk = chunk.select_related("sample")
        episodic.upsert(list(chunk))
