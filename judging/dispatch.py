"""Queueing the judging app's background work: its domain modules and signal handlers call these, and the tasks
(judging/tasks.py, the app's top layer) are sent by name, so nothing below the tasks imports them."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

from memory.dispatch import key, send
from memory.redis_client import get_redis


def request_queue_ranking(project_id: int) -> bool:
    """Queue a re-ranking of the project's review queue unless one is already queued; return whether queued.
    Coalesced like the memory's tasks, and delayed a little so a burst of saves costs one ranking."""
    if not get_redis().set(key("rank-queued", project_id), 1, nx=True, ex=settings.MEMALIGN_LOCK_SECONDS):
        return False
    send("judging.tasks.rank_queue", project_id, countdown=settings.MEMALIGN_QUEUE_RANK_DELAY_SECONDS)
    return True


def request_training(project_id: int) -> bool:
    """Queue a training of the project's learned judge unless one is already queued; return whether queued.
    Delayed a little, so a burst of labels (or a label and the memory version it starts) costs one training."""
    if not get_redis().set(key("learned-queued", project_id), 1, nx=True, ex=settings.MEMALIGN_LOCK_SECONDS):
        return False
    send("judging.tasks.train_learned_judge", project_id, countdown=settings.MEMALIGN_LEARNED_TRAIN_DELAY_SECONDS)
    return True


def judge_chunks(run_id: int, chunks: int | Iterable[int]) -> None:
    """Queue a run's chunks (a count: every chunk; or their indexes): any worker may take any of them."""
    for index in range(chunks) if isinstance(chunks, int) else chunks:
        send("judging.tasks.judge_chunk", run_id, index)
