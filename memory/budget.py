"""The active memory version's principles, and which of them fit the project's working-memory budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memory import versions
from memory.embeddings import embed
from memory.llm.base import PrincipleText
from memory.models import MemoryVersion
from reviews.models import Project

CHARS_PER_TOKEN = 4  # a rough average for English text: the budget bounds the prompt, it does not bill it
_principle_vectors: dict[tuple[int, str], np.ndarray] = {}  # per process; principles change rarely


@dataclass
class PrincipleSet:
    principles: list[PrincipleText]  # every active principle, in id order
    pinned: set[int]

    @property
    def tokens(self) -> int:
        return sum(principle_tokens(p) for p in self.principles)


def principle_tokens(principle: PrincipleText) -> int:
    return len(principle.text) // CHARS_PER_TOKEN + 1


def principle_set(project: Project) -> PrincipleSet:
    """The principles of the active version: the live set, unless the regression gate holds a newer version,
    in which case the last good version's (evaluation.gate)."""
    if MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD).exists():
        good = latest_version(project)
        snapshot = good.principles if good else []
        pinned = set(versions.active_principles(project).filter(pinned=True).values_list("pk", flat=True))
        return PrincipleSet([PrincipleText(p["id"], p["text"]) for p in snapshot], pinned)
    active = list(versions.active_principles(project).values_list("id", "text", "pinned"))
    return PrincipleSet([PrincipleText(pk, text) for pk, text, _ in active], {pk for pk, _, pinned in active if pinned})


def over_budget(project: Project) -> bool:
    """Whether the active principles exceed the working-memory budget: consolidation is due."""
    return principle_set(project).tokens > project.principle_budget_tokens


def within_budget(project: Project, principles: PrincipleSet, vectors: np.ndarray) -> list[PrincipleText]:
    """Return the principles of the working memory shared by the items whose vectors are given (a run's chunk,
    or one item), so that every verdict among them sends one byte-identical, cacheable prompt prefix.

    Within the budget that is every principle. Over it: the pinned principles, then every item's most similar
    principle, then every item's second most similar, and so on (the closer first within a rank), as many as
    fit; kept in id order. For one item that is simply its most similar principles.
    """
    budget = project.principle_budget_tokens
    if principles.tokens <= budget:
        return principles.principles
    listed = principles.principles
    matrix = _vectors_of(listed)
    similarity = np.asarray(vectors, dtype=np.float32).reshape(-1, matrix.shape[1]) @ matrix.T
    picked = [i for i, p in enumerate(listed) if p.id in principles.pinned]
    used = sum(principle_tokens(listed[i]) for i in picked)
    if len(similarity):
        ranks = np.argsort(np.argsort(-similarity, axis=1, kind="stable"), axis=1, kind="stable")
        for i in np.lexsort((-similarity.max(axis=0), ranks.min(axis=0))):
            i = int(i)
            if listed[i].id not in principles.pinned and used + principle_tokens(listed[i]) <= budget:
                picked.append(i)
                used += principle_tokens(listed[i])
    return [listed[i] for i in sorted(picked)]


def _vectors_of(principles: list[PrincipleText]) -> np.ndarray:
    missing = [p for p in principles if (p.id, p.text) not in _principle_vectors]
    if missing:
        if len(_principle_vectors) > 50_000:
            _principle_vectors.clear()
        for p, vector in zip(missing, embed([p.text for p in missing])):
            _principle_vectors[(p.id, p.text)] = vector
    return np.array([_principle_vectors[(p.id, p.text)] for p in principles])


def latest_version(project: Project) -> MemoryVersion | None:
    """The active version: the newest that succeeded and is not held by the regression gate."""
    return MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()
