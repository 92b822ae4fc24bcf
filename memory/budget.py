"""The active memory version's principles, and which of them fit the project's working-memory budget."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from django.db import connection

from memory import principle_vectors, versions
from memory.llm.base import PrincipleText
from memory.models import MemoryVersion, Principle
from reviews.models import Project

CHARS_PER_TOKEN = 4  # a rough average for English text: the budget bounds the prompt, it does not bill it
# Per process: each project's principle set with the state of the memory it was read at. Every judgment reads
# the state (one small query) instead of 1,200 principles, their vectors and their token counts (issue 23).
_sets: dict[int, tuple[tuple[Any, ...], PrincipleSet]] = {}
_sets_lock = threading.Lock()


@dataclass
class PrincipleSet:
    """Principles a verdict may see; what the budget choice needs of them is computed once per set."""

    principles: list[PrincipleText]  # every active principle, in id order
    pinned: set[int]
    # The active version's number (latest_version's) in the memory state the set was read at: a verdict names
    # it without one more query.
    version: int | None = None

    @cached_property
    def token_counts(self) -> np.ndarray:
        return np.array([principle_tokens(p) for p in self.principles], dtype=np.int64)

    @cached_property
    def tokens(self) -> int:
        return int(self.token_counts.sum())

    @cached_property
    def pinned_mask(self) -> np.ndarray:
        return np.array([p.id in self.pinned for p in self.principles], dtype=bool)

    @cached_property
    def matrix(self) -> np.ndarray:
        """The principles' vectors, one row each: stored once per text (memory.principle_vectors)."""
        return principle_vectors.vectors_of([p.text for p in self.principles])


def principle_tokens(principle: PrincipleText) -> int:
    return len(principle.text) // CHARS_PER_TOKEN + 1


def principle_set(project: Project) -> PrincipleSet:
    """The principles of the active version: the live set, unless the regression gate holds a newer version,
    in which case the last good version's (evaluation.gate). Kept per process until the memory changes."""
    state = _memory_state(project)
    with _sets_lock:
        cached = _sets.get(project.pk)
    if cached is not None and cached[0] == state:
        return cached[1]
    principles = _read_principle_set(project, held=bool(state[1]))
    principles.version = state[2]
    with _sets_lock:
        _sets[project.pk] = (state, principles)
    return principles


def _memory_state(project: Project) -> tuple[Any, ...]:
    """What changes whenever the principles a verdict sees may change: a version written, held or released, and
    the active principles added, retired or edited (with or without a version); and the active version's number.

    Read on every judgment, so in one plain SQL query: the ORM took 1.5 ms per query here only to build the SQL
    (three queries: 4.5 ms; this one 0.4 ms, at load 3 on 2 cores)."""
    sql = (
        "SELECT v.number, v.held, v.active, p.count, p.last, p.changed FROM "
        "(SELECT MAX(number) AS number, SUM(CASE WHEN status = %s THEN 1 ELSE 0 END) AS held, "
        f"MAX(CASE WHEN status = %s THEN number END) AS active FROM {MemoryVersion._meta.db_table} "
        "WHERE project_id = %s) v, "
        "(SELECT COUNT(*) AS count, MAX(id) AS last, MAX(updated_at) AS changed "
        f"FROM {Principle._meta.db_table} WHERE project_id = %s AND NOT retired) p"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [MemoryVersion.Status.HELD, MemoryVersion.Status.OK, project.pk, project.pk])
        return tuple(cursor.fetchone())


def _read_principle_set(project: Project, held: bool) -> PrincipleSet:
    if held:
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
    listed, matrix = principles.principles, principles.matrix
    similarity = np.asarray(vectors, dtype=np.float32).reshape(-1, matrix.shape[1]) @ matrix.T
    picked = principles.pinned_mask.copy()
    tokens = principles.token_counts
    used = int(tokens[picked].sum())
    if len(similarity):
        ranks = np.argsort(np.argsort(-similarity, axis=1, kind="stable"), axis=1, kind="stable")
        order = np.lexsort((-similarity.max(axis=0), ranks.min(axis=0)))
        smallest = int(tokens.min())
        for i, cost in zip(order.tolist(), tokens[order].tolist()):
            if budget - used < smallest:
                break  # nothing more fits
            if not picked[i] and used + cost <= budget:
                picked[i] = True
                used += cost
    return [listed[i] for i in np.flatnonzero(picked).tolist()]


def latest_version(project: Project) -> MemoryVersion | None:
    """The active version: the newest that succeeded and is not held by the regression gate."""
    return MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()
