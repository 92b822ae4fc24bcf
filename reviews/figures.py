"""Per-project figures kept in Redis, so the overview, queue and review page need not count 100k rows per request.

Each project has one Redis hash (shared by the web and worker processes) holding a token and its figures. A
figure is stored only if the hash still holds the token read when its computation began. Every write path that
changes what the figures count calls `changed(project_id)`, which deletes the hash once the transaction commits:
a figure computed before the write is never read after it, and the writer's own next page shows the write.
Nothing is written to the database, so concurrent writers never contend for a row (a per-project counter updated
inside every write transaction deadlocked a feedback save against a background import on PostgreSQL).

Writes reach `changed` through signals (`connect`: Feedback and Decision saves and deletes, Sample, Project and
ImportRun saves, ImportRun deletes, and the bulk imports' `feedback_imported` / `samples_imported`) and explicit
calls where bulk writes send no signal (import batches, their undo and end, the teaching order's rows, the
admin's sample deletes).

Inside a transaction (an atomic block) figures are computed and not cached: what an open transaction sees may
yet be rolled back. With Redis unreachable, figures are computed every time for a while (`DOWN_SECONDS`), and
the figures this process failed to forget are forgotten before it next reads any.
"""

from __future__ import annotations

import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import TypeVar, cast

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from redis.backoff import NoBackoff
from redis.retry import Retry

from reviews.signals import feedback_imported, samples_imported

T = TypeVar("T")

TIMEOUT = 600  # a project's figures are kept this long at most (a bound on what a write lost in an outage leaves)
DOWN_SECONDS = 10  # after a Redis error, figures are computed without the cache for this long
TOKEN = "token"

# Store a figure only if the hash still holds the token its computation began under (a write meanwhile deleted it).
_STORE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
return 0
"""

# Within a page (`snapshot`): each project's hash as read at its first figure, so a page costs one round trip.
_pages: ContextVar[dict[int, dict[bytes, bytes]] | None] = ContextVar("figures_snapshot", default=None)

_lock = threading.Lock()
_down_until = 0.0
_unbumped: set[int] = set()  # projects whose figures a failed delete left in place


@cache
def _client() -> redis.Redis:
    # One client per process (its pool survives between requests); fail fast when Redis is down.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def _key(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}:figures:{project_id}"


def _available() -> bool:
    return time.monotonic() >= _down_until


def _failed() -> None:
    global _down_until
    _down_until = time.monotonic() + DOWN_SECONDS


def _forget(project_id: int) -> None:
    page = _pages.get()
    if page is not None:
        page.pop(project_id, None)  # the writer's own page reads its write
    try:
        _client().delete(_key(project_id))
    except redis.RedisError:
        with _lock:
            _unbumped.add(project_id)
        _failed()
    else:
        with _lock:
            _unbumped.discard(project_id)


def _usable() -> bool:
    """Whether to use the cache now: outside any transaction, Redis answering, and what an outage left undone
    (figures this process could not forget) done first."""
    if connection.in_atomic_block or not _available():
        return False
    with _lock:
        pending = list(_unbumped)
    for project_id in pending:
        _forget(project_id)
    with _lock:
        return not _unbumped


class _Forget:
    """The after-commit deletion of a project's figures (one per project and transaction: see `changed`)."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id

    def __call__(self) -> None:
        _forget(self.project_id)


def changed(project_id: int | None) -> None:
    """The project's figures changed (or will, when the current transaction commits): forget the cached ones."""
    if project_id is None:
        return
    # A transaction writing many rows (an unalign, a restore) forgets once: a deletion already waiting for this
    # commit covers this write too (one inside a savepoint rolled back is gone by now).
    pending = connection.run_on_commit if connection.in_atomic_block else []
    if any(isinstance(entry[1], _Forget) and entry[1].project_id == project_id for entry in pending):
        return
    # After the commit: a figure computed from what was there before is stored under the old token, which is
    # gone by then. (Readers inside the writing transaction do not use the cache at all.)
    transaction.on_commit(_Forget(project_id))


def cached(project_id: int, name: str, compute: Callable[[], T], timeout: int = TIMEOUT) -> T:
    """The figure `name` of the project: from the cache, else computed (and kept at most `timeout` seconds)."""
    if not _usable():
        return compute()
    try:
        token, stored = _read(project_id, name)
        if token is None:
            token = _new_token(project_id)
        if stored is not None:
            expires, value = pickle.loads(stored)
            if expires > time.time():
                return value
    except redis.RedisError:
        _failed()
        return compute()
    value = compute()
    stored = pickle.dumps((time.time() + timeout, value))
    try:
        kept = _client().eval(_STORE, 1, _key(project_id), token, name, stored)
    except redis.RedisError:
        _failed()
        return value
    page = _pages.get()
    if page is not None and kept:
        page.setdefault(project_id, {}).update({TOKEN.encode(): token, name.encode(): stored})
    return value


@contextmanager
def snapshot() -> Iterator[None]:
    """Read each project's figures once in the block (a page): the first figure fetches the whole hash."""
    reset = _pages.set({})
    try:
        yield
    finally:
        _pages.reset(reset)


def _read(project_id: int, name: str) -> tuple[bytes | None, bytes | None]:
    page = _pages.get()
    if page is None:
        token, stored = _client().hmget(_key(project_id), [TOKEN, name])
        return cast(bytes | None, token), cast(bytes | None, stored)
    fields = page.get(project_id)
    if fields is None:
        fields = page[project_id] = cast(dict[bytes, bytes], _client().hgetall(_key(project_id)))
    return fields.get(TOKEN.encode()), fields.get(name.encode())


def _new_token(project_id: int) -> bytes:
    """Start the project's hash (the first of two concurrent starters wins); it expires with its figures."""
    key, client = _key(project_id), _client()
    if client.hsetnx(key, TOKEN, uuid.uuid4().hex):
        client.expire(key, TIMEOUT)
    return cast(bytes, client.hget(key, TOKEN) or b"")


def token(project_id: int) -> str:
    """The project's current token: changes whenever its figures do (the review page's preload links carry it).
    Inside a transaction or without Redis, a token of its own, so nothing is taken for unchanged."""
    if not _usable():
        return uuid.uuid4().hex
    try:
        value = _read(project_id, TOKEN)[0] or _new_token(project_id)
    except redis.RedisError:
        _failed()
        return uuid.uuid4().hex
    return value.decode() if value else uuid.uuid4().hex


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
