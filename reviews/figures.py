"""Figures of a project that cost a pass over its samples (counts, the queue's order), cached per project state.

Each figure is cached under the project's state token (reviews.models.ProjectState), which database triggers
change in the same transaction as any write to what the figures rest on. A page reads the token (one primary-key
lookup), then the figure; after a write the first page to ask recomputes it. The token is read before the
figure is computed, so a figure computed while a write commits is filed under the token of before that write,
which no later reader asks for.

The cache is the process's own memory ("figures" in settings.CACHES): nothing to reach over the network, and
nothing kept across a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import TypeVar

from django.core.cache import caches

from reviews.models import Project, ProjectState

T = TypeVar("T")
MISSING = object()


def token(project: Project) -> int:
    """The project's state token: it changes with every write to the project's data (0 before the first)."""
    return ProjectState.objects.filter(project_id=project.pk).values_list("token", flat=True).first() or 0


def cached(project: Project, name: str, parts: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """Return `compute()`, from the cache when it was computed for the same project state and `parts`.

    `parts` names everything else the figure depends on (the user, the query, the time-dependent state).
    """
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:24]
    key = f"figures:{project.pk}:{token(project)}:{name}:{digest}"
    store = caches["figures"]
    found = store.get(key, MISSING)
    if found is not MISSING:
        return found
    value = compute()
    store.set(key, value, timeout=None)
    return value
