"""Per-project figures kept in the shared cache, so the overview, queue and review page need not count 100k rows.

Each project has a version token in the "figures" cache (Redis, shared by the web and worker processes). A
figure is stored under the token current when its computation began; every write path that changes what the
figures count calls `changed(project_id)`, which replaces the token once the transaction commits, so a figure
computed before the write is never read after it, and the writer's own next page shows the write. Nothing is written to the database: the token lives in the cache
only, so concurrent writers never contend for a row (a per-project counter updated inside every write
transaction deadlocked a feedback save against a background import on PostgreSQL).

Writes reach `changed` through signals (`connect`: Feedback, Decision, Sample saves, Project saves, ImportRun
saves and deletes, and the bulk imports' `feedback_imported` / `samples_imported`) and explicit calls where
bulk writes send no signal (import batches and their undo, the teaching order's rows, unalign, the admin's
sample deletes).

Inside a transaction (an atomic block) figures are computed and not cached: what an open transaction sees may
yet be rolled back. With Redis unreachable, figures are computed every time for a while (`DOWN_SECONDS`), and
tokens this process failed to replace are replaced as soon as Redis answers again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import caches
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save

from reviews.signals import feedback_imported, samples_imported

T = TypeVar("T")

TIMEOUT = 600  # a figure is kept this long at most (a bound on what a write lost in a Redis outage can leave)
DOWN_SECONDS = 10  # after a cache error, figures are computed without the cache for this long
_MISSING = object()

_lock = threading.Lock()
_down_until = 0.0
_unbumped: set[int] = set()  # projects whose token a failed cache write left in place


def _cache():
    return caches["figures"]


def _token_key(project_id: int) -> str:
    return f"figures:{project_id}:token"


def _available() -> bool:
    return time.monotonic() >= _down_until


def _failed() -> None:
    global _down_until
    _down_until = time.monotonic() + DOWN_SECONDS


def _replace_token(project_id: int) -> None:
    try:
        _cache().set(_token_key(project_id), uuid.uuid4().hex, timeout=None)
    except Exception:
        with _lock:
            _unbumped.add(project_id)
        _failed()
    else:
        with _lock:
            _unbumped.discard(project_id)


def _flush_unbumped() -> bool:
    """Replace the tokens a cache outage left in place; return whether the cache answers."""
    with _lock:
        pending = list(_unbumped)
    for project_id in pending:
        _replace_token(project_id)
    with _lock:
        return not _unbumped


class _Replace:
    """The after-commit replacement of a project's token (one per project and transaction: see `changed`)."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id

    def __call__(self) -> None:
        _replace_token(self.project_id)


def changed(project_id: int | None) -> None:
    """The project's figures changed (or will, when the current transaction commits): forget the cached ones."""
    if project_id is None:
        return
    # A transaction writing many rows (an unalign, a restore) replaces the token once: a replacement already
    # waiting for this commit covers this write too (one inside a savepoint rolled back is gone by now).
    pending = connection.run_on_commit if connection.in_atomic_block else []
    if any(isinstance(job, _Replace) and job.project_id == project_id for _, job, _ in pending):
        return
    # After the commit: a figure computed from what was there before is stored under the old token. (Readers
    # inside the writing transaction do not use the cache at all.)
    transaction.on_commit(_Replace(project_id))


def cached(project_id: int, name: str, compute: Callable[[], T], timeout: int = TIMEOUT) -> T:
    """The figure `name` of the project: from the cache under its current token, else computed and stored."""
    if connection.in_atomic_block or not _available() or not _flush_unbumped():
        return compute()
    cache = _cache()
    try:
        key = f"figures:{project_id}:{_current_token(project_id)}:{name}"
        value: Any = cache.get(key, _MISSING)
    except Exception:
        _failed()
        return compute()
    if value is not _MISSING:
        return value
    value = compute()
    try:
        cache.set(key, value, timeout=timeout)
    except Exception:
        _failed()
    return value


def token(project_id: int) -> str:
    """The project's current token: changes whenever its figures do (the review page's preload links carry it).
    Inside a transaction or without the cache, a token of its own, so nothing is taken for unchanged."""
    if connection.in_atomic_block or not _available() or not _flush_unbumped():
        return uuid.uuid4().hex
    try:
        return _current_token(project_id)
    except Exception:
        _failed()
        return uuid.uuid4().hex


def _current_token(project_id: int) -> str:
    cache, key = _cache(), _token_key(project_id)
    value = cache.get(key)
    if value is None:  # never set, or Redis lost it: a new one (add: the first of two concurrent makers wins)
        cache.add(key, uuid.uuid4().hex, timeout=None)
        value = cache.get(key)
    return value or uuid.uuid4().hex


def _project_of(sender, instance, **kwargs) -> None:
    changed(getattr(instance, "project_id", None))


def _project_saved(sender, instance, **kwargs) -> None:
    changed(instance.pk)


def _imported(sender, project_id: int, **kwargs) -> None:
    changed(project_id)


def connect() -> None:
    from reviews.models import Decision, Feedback, ImportRun, Project, Sample

    for model in (Feedback, Decision):
        post_save.connect(_project_of, sender=model, dispatch_uid=f"reviews.figures.{model.__name__}.saved")
        post_delete.connect(_project_of, sender=model, dispatch_uid=f"reviews.figures.{model.__name__}.deleted")
    # Samples: saves only. A delete receiver would make Django fetch every sample row it deletes (a project's
    # deletion, an import's undo); their deleters call `changed` themselves.
    post_save.connect(_project_of, sender=Sample, dispatch_uid="reviews.figures.Sample.saved")
    post_save.connect(_project_of, sender=ImportRun, dispatch_uid="reviews.figures.ImportRun.saved")
    post_delete.connect(_project_of, sender=ImportRun, dispatch_uid="reviews.figures.ImportRun.deleted")
    post_save.connect(_project_saved, sender=Project, dispatch_uid="reviews.figures.Project.saved")
    feedback_imported.connect(_imported, dispatch_uid="reviews.figures.feedback_imported")
    samples_imported.connect(_imported, dispatch_uid="reviews.figures.samples_imported")
