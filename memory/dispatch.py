"""Queueing the memory's background work, coalesced per project: domain modules and signal handlers call these;
the tasks themselves live in memory/tasks.py (the app's top layer) and are sent by name, so nothing below the
tasks imports them.

A Redis flag keeps at most one run of each kind queued per project; the task clears it when it starts, so work
arriving while it runs queues the next one.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.conf import settings
from redis.exceptions import RedisError

from memory.locks import lock_key
from memory.redis_client import get_redis


def key(kind: str, project_id: int) -> str:
    """The Redis key of a project's coalescing flag (or pending set) of one kind of work."""
    return f"{settings.MEMALIGN_NAMESPACE}:{kind}:{project_id}"


def repair_queued_key() -> str:
    """The flag of a repair queued by a worker that connected; memory.tasks.repair_all clears it when it starts."""
    return f"{settings.MEMALIGN_NAMESPACE}:repair-on-connect"


def _flag(name: str, force: bool) -> bool:
    """Set a coalescing flag; whether the caller should queue its task (the flag was free, or `force`)."""
    return bool(get_redis().set(name, 1, nx=not force, ex=settings.MEMALIGN_LOCK_SECONDS))


def send(task: str, *args: Any, countdown: float | None = None) -> None:
    """Queue a task by its name."""
    current_app.send_task(task, args=args, countdown=countdown)


def request_episodic_update(project_id: int, feedback_id: int) -> bool:
    """Note a saved feedback (new or edited) for its project's episodic store, and queue the task that stores
    the project's noted feedback unless it is already queued; return whether queued."""
    get_redis().sadd(key("episodic-pending", project_id), feedback_id)
    return request_episodic_run(project_id)


def request_episodic_run(project_id: int) -> bool:
    """Queue the task that stores the project's noted feedback unless it is already queued (the embedding run
    calls this when it stored vectors that noted feedback waits for); return whether queued."""
    if not get_redis().set(key("episodic-queued", project_id), 1, nx=True, ex=settings.MEMALIGN_LOCK_SECONDS):
        return False
    send("memory.tasks.update_episodic", project_id)
    return True


def sample_embedding_underway(project_id: int) -> bool:
    """Whether a run embedding the project's samples is queued or running (memory.tasks.embed_samples): it will
    store the vectors, so nobody else needs to compute them. False when Redis cannot say."""
    try:
        return bool(get_redis().exists(key("embed-queued", project_id), key("embed-running", project_id)))
    except RedisError:
        return False


def request_sample_embedding(project_id: int, force: bool = False) -> bool:
    """Queue the embedding of the project's new samples unless it is already queued; return whether queued.
    `force` (the repair) queues it even then: the queued message may be held by a worker that died."""
    if not _flag(key("embed-queued", project_id), force):
        return False
    send("memory.tasks.embed_samples", project_id)
    return True


def request_principle_embedding(project_id: int, force: bool = False) -> bool:
    """Queue storing the vectors of the project's new principle texts unless it is already queued; return
    whether queued. `force`: as for the others."""
    if not _flag(key("principle-embed-queued", project_id), force):
        return False
    send("memory.tasks.embed_principles", project_id)
    return True


def request_regeneration(project_id: int, delay: float | None = None, force: bool = False) -> bool:
    """Queue a regeneration of the project's principles unless one is already queued; return whether queued.
    `force` (the repair) queues it even then: the queued message may be held by a worker that died, and would
    only come back after the broker's visibility timeout (an hour). A run too many finds nothing to do."""
    countdown = settings.MEMALIGN_DISTILL_DELAY_SECONDS if delay is None else delay
    if not _flag(key("regen-queued", project_id), force):
        return False
    send("memory.tasks.regenerate_principles", project_id, countdown=countdown)
    return True


def regeneration_pending(project_id: int) -> bool:
    """Whether a regeneration of the project is queued or running (False when Redis cannot say)."""
    try:
        return bool(get_redis().exists(key("regen-queued", project_id), lock_key(project_id)))
    except RedisError:
        return False


def sync_project(project_id: int) -> None:
    """Queue making the project's episodic store match the database (a bulk import, a deleted project)."""
    send("memory.tasks.sync_project", project_id)


def sync_sample(project_id: int, sample_id: int) -> None:
    """Queue making one sample's episodic entries match the database (a decision made or undone)."""
    send("memory.tasks.sync_sample", project_id, sample_id)


def remove_feedback(project_id: int, feedback_id: int) -> None:
    """Queue removing deleted feedback from the episodic store."""
    send("memory.tasks.remove_feedback", project_id, feedback_id)


def consolidate(project_id: int) -> None:
    """Queue merging near-duplicate principles and flagging contradictions."""
    send("memory.tasks.consolidate_memory", project_id)
