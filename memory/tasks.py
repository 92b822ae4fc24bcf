"""Celery tasks: they take ids, re-read the database, and are safe to run twice or after a crash.

Episodic updates and principle regeneration are coalesced per project: a Redis flag keeps at most one run
queued (saved feedback ids wait in a Redis set for the episodic one), and a Redis lock keeps at most one
regeneration running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis import exceptions as redis_errors
from redis.lock import Lock

from memory import consolidate, distil, episodic, events, principle_vectors, semantic, sync, vectors
from memory.dispatch import key as _key
from memory.dispatch import (
    repair_queued_key,
    request_episodic_run,
    request_principle_embedding,
    request_regeneration,
    request_sample_embedding,
    sample_embedding_underway,
)
from memory.llm.base import ProviderError
from memory.locks import kept, regeneration_lock, release
from memory.models import MemoryVersion
from memory.redis_client import get_redis
from reviews.adjudication import learnable
from reviews.import_writing import discard_unfinished
from reviews.models import Feedback, Project

log = logging.getLogger(__name__)
T = TypeVar("T")
SYNC_CHUNK = 1_000  # entries embedded per sync run: about 10-60 s of CPU on two cores
RUN_SECONDS = 120  # a regeneration run stops after this long and queues its continuation
EMBED_WAIT_SECONDS = 3  # an embedding run that finds another one going tries again after this long
EPISODIC_BATCH = 500  # noted feedback stored per Chroma upsert
# Failures that pass by themselves: the database, Redis or the Chroma server briefly unreachable or locked. A
# programming error is not retried: it would fail the same way eight times.
TRANSIENT = (
    OperationalError,
    InterfaceError,
    OSError,  # ConnectionError, TimeoutError, episodic.StoreUnavailable
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    httpx.TransportError,
)
RETRY: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(acks_late=True, **RETRY)
def update_episodic(project_id: int) -> dict[str, Any]:
    """Store every feedback noted for the project since the last run, EPISODIC_BATCH per Chroma upsert, with
    the samples' stored vectors: a burst of saves costs a few tasks, not one each. Notes taken but not stored
    (an error) are put back for the retry; a note lost with its process is caught by the periodic repair.

    Feedback whose sample the embedding run has yet to embed waits for it (its note is put back, and the run
    queues this task again as it stores vectors): the vectors are computed once, there, and this task, which
    shares its queue with the distillations, stays free of CPU-bound work. With no run queued or going (it was
    lost), this task embeds what is missing itself."""
    redis = get_redis()
    redis.delete(_key("episodic-queued", project_id))  # feedback saved from now on queues the next run
    key = _key("episodic-pending", project_id)
    stored = gone = 0
    waiting: list[int] = []
    while ids := [int(i) for i in redis.spop(key, EPISODIC_BATCH) or []]:
        try:
            # Overruled feedback (reviews.adjudication) is left out, as if deleted.
            feedback = list(
                learnable(Feedback.objects.select_related("sample").filter(pk__in=ids, project_id=project_id))
            )
            unembedded = {s.pk for s in vectors.without_vector([f.sample for f in feedback])}
            if unembedded and sample_embedding_underway(project_id):
                later = [f.pk for f in feedback if f.sample_id in unembedded]
                feedback = [f for f in feedback if f.sample_id not in unembedded]
            else:
                later = []
            episodic.upsert(feedback)
            kept = set(learnable(Feedback.objects.filter(pk__in=[f.pk for f in feedback])).values_list("pk", flat=True))
            # deleted or overruled meanwhile
            episodic.delete(project_id, [i for i in ids if i not in kept and i not in later])
        except Exception:
            redis.sadd(key, *ids)
            raise
        stored, gone, waiting = stored + len(kept), gone + len(ids) - len(kept) - len(later), waiting + later
    if waiting:
        redis.sadd(key, *waiting)
        # Checked after the notes are back: a run that ended meanwhile no longer queues this task (it looks for
        # notes only after letting go of its lock), so queue it here; it finds the vectors stored.
        if not sample_embedding_underway(project_id):
            request_episodic_run(project_id)
    return {"stored": stored, "gone": gone, "waiting for their vectors": len(waiting)}


@shared_task(acks_late=True, **RETRY)
def remove_feedback(project_id: int, feedback_id: int) -> str:
    """Remove deleted feedback from the episodic store (unalign)."""
    if Feedback.objects.filter(pk=feedback_id).exists():
        return "still exists"
    episodic.delete(project_id, [feedback_id])
    return "removed"


@shared_task(acks_late=True, **RETRY)
def sync_sample(project_id: int, sample_id: int) -> dict[str, Any]:
    """Make one sample's episodic entries match the database: after a decision on it is made or undone, the
    overruled feedback leaves the store or comes back (reviews.adjudication)."""
    rows = list(Feedback.objects.select_related("sample").filter(project_id=project_id, sample_id=sample_id))
    keep = set(learnable(Feedback.objects.filter(pk__in=[f.pk for f in rows])).values_list("pk", flat=True))
    episodic.upsert([f for f in rows if f.pk in keep])
    episodic.delete(project_id, [f.pk for f in rows if f.pk not in keep])
    return {"stored": len(keep), "left_out": len(rows) - len(keep)}


@shared_task(acks_late=True, **RETRY)
def sync_project(project_id: int) -> dict[str, Any]:
    """Make a project's episodic store match the database (after a bulk import, or to repair drift)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        episodic.drop(project_id)
        return {"project": "gone"}
    drift = sync.repair(project, limit=SYNC_CHUNK)
    left = len(drift.missing) + len(drift.outdated) - SYNC_CHUNK
    if left > 0:
        sync_project.delay(project_id)  # the rest in the next run: each stays well inside the time limit
    return {"missing": len(drift.missing), "outdated": len(drift.outdated), "orphaned": len(drift.orphaned)}


@shared_task(acks_late=True, **RETRY)
def embed_samples(project_id: int) -> dict[str, Any]:
    """Embed the project's samples that have no vector yet, in batches; continue in a new task after a while.

    One run per project at a time: two would take the same pending samples and embed them twice, each with
    half the cores. A run that finds another one going comes back after it (its samples may have arrived after
    the other's last look)."""
    redis = get_redis()
    running = redis.lock(_key("embed-running", project_id), timeout=RUN_SECONDS + settings.MEMALIGN_LOCK_SECONDS)
    if not running.acquire(blocking=False):
        embed_samples.apply_async((project_id,), countdown=EMBED_WAIT_SECONDS)
        return {"skipped": "another run is embedding this project"}
    finished = False
    try:
        redis.delete(_key("embed-queued", project_id))  # samples created from now on queue the next run
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return {"project": "gone"}
        deadline, embedded = time.monotonic() + RUN_SECONDS, 0
        while time.monotonic() < deadline:
            count = vectors.embed_pending(project)
            embedded += count
            if count < vectors.BATCH:
                finished = True
                break
            _episodic_waits(project_id)  # feedback on this batch's samples becomes retrievable now
    finally:
        release(running)
        # After letting go: feedback that update_episodic put back while it saw this run going is stored now.
        _episodic_waits(project_id)
    if finished:
        return {"embedded": embedded}
    request_sample_embedding(project_id)  # the rest in the next run: each stays inside the time limit
    return {"embedded": embedded, "continued": True}


def _episodic_waits(project_id: int) -> None:
    """Queue the episodic update if feedback is noted for the project: some may have waited for the vectors."""
    if get_redis().scard(_key("episodic-pending", project_id)):
        request_episodic_run(project_id)


@shared_task(acks_late=True, **RETRY)
def embed_principles(project_id: int) -> dict[str, Any]:
    """Store the vectors of the project's active principle texts that have none (after a version was written),
    so that no process embeds them while a verdict waits."""
    get_redis().delete(_key("principle-embed-queued", project_id))  # a version written from now on queues the next
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    return {"embedded": principle_vectors.embed_missing(project)}


@shared_task(
    bind=True, acks_late=True, max_retries=8, autoretry_for=(OperationalError,), retry_backoff=1, retry_jitter=True
)
def regenerate_principles(self: Task[Any, Any], project_id: int) -> dict[str, Any]:
    """Distil the project's pending feedback and re-derive principles that lost sources, one run at a time."""
    redis = get_redis()
    redis.delete(_key("regen-queued", project_id))  # feedback saved from now on queues the next run
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    lock = regeneration_lock(project_id)
    if not lock.acquire(blocking=False):
        request_regeneration(project_id, delay=1.0)  # the running one may miss what arrived: run again after it
        return {"skipped": "another run holds the lock"}

    def work() -> tuple[semantic.Outcome, bool]:
        outcome = semantic.regenerate(project, deadline=time.monotonic() + RUN_SECONDS)
        return outcome, _announce(project, outcome.versions)  # under the lock: no version is written meanwhile

    outcome, held = _holding(self, lock, project_id, work)
    if outcome.wait_seconds:
        request_regeneration(project_id, delay=outcome.wait_seconds)
    return {
        "versions": [v.number for v in outcome.versions],
        "waiting": round(outcome.wait_seconds, 2),
        "held": held,
    }


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=1, max_retries=5)
def repair_all() -> dict[str, Any]:
    """Periodic (Celery beat), and whenever a worker connects: queue one repair task per project, so a slow
    project never keeps the others from their repair (one task for all of them ran past its time limit)."""
    get_redis().delete(repair_queued_key())  # a worker connecting from now on queues the next repair
    project_ids = list(Project.objects.order_by("pk").values_list("pk", flat=True))
    for project_id in project_ids:
        repair_project.delay(project_id)
    return {"projects": len(project_ids), "principle_vectors_pruned": principle_vectors.prune()}


@shared_task(acks_late=True, **RETRY)
def repair_project(project_id: int) -> dict[str, Any]:
    """Undo the project's dead imports, repair drift between the database and Chroma, restart stalled
    distillation, and embed samples and principles whose embedding was never dispatched (the broker was down)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    discard_unfinished(project)  # imports whose process died while writing: undo them
    drift = sync.repair(project, limit=SYNC_CHUNK)
    if len(drift.missing) + len(drift.outdated) > SYNC_CHUNK:
        sync_project.delay(project_id)  # the rest in runs of their own, each inside the time limit
    # Forced: a flag saying "queued" may belong to a message that a dead worker holds until the visibility timeout.
    if distil.pending_feedback(project).exists() or distil.stale_principles(project).exists():
        request_regeneration(project.pk, force=True)
    if vectors.pending(project).exists():
        request_sample_embedding(project.pk, force=True)
    if principle_vectors.missing_texts(project):
        request_principle_embedding(project.pk, force=True)
    return {"drift": drift.lines()} if drift else {}


def _announce(project: Project, versions: list[MemoryVersion]) -> bool:
    """Tell the apps above that new versions were written (the regression gate checks them); return whether
    one of them held the newest version back."""
    if not versions:
        return False
    answers = events.versions_written.send(sender=Project, project=project, versions=versions)
    return any(bool(getattr(answer, "held", False)) for _, answer in answers)


@shared_task(bind=True, acks_late=True, max_retries=5)
def consolidate_memory(self: Task[Any, Any], project_id: int) -> dict[str, Any]:
    """Merge near-duplicate principles and flag contradictions (on demand; regeneration also does it)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    lock = regeneration_lock(project_id)
    if not lock.acquire(blocking_timeout=60):
        raise self.retry(countdown=5)

    def work() -> MemoryVersion | None:
        version = consolidate.consolidate(project)
        if version:
            _announce(project, [version])
        return version

    version = _holding(self, lock, project_id, work)
    return {"version": version.number if version else None}


def _holding(task: Task[Any, Any], lock: Lock, project_id: int, work: Callable[[], T]) -> T:
    """Run `work` while holding the project's regeneration lock, then release it; a provider failure retries
    the task after 2, 4, 8 ... seconds (a minute at most)."""
    try:
        with kept(lock):
            return work()
    except ProviderError as error:
        log.warning("%s of project %s failed: %s", task.name, project_id, error)
        raise task.retry(exc=error, countdown=min(60, 2 ** (task.request.retries + 1))) from error
    finally:
        release(lock)
