"""Runs that heal: a chunk holds a lease while a worker judges it, and a watch re-queues the chunks of a run that
stopped moving.

A chunk's messages can be lost (a Redis restart empties the queue) or held by a dead worker until the broker's
visibility timeout. While a worker judges a chunk it keeps a short lease in Redis, renewed every few seconds; a
run with no lease held and no verdict for `MEMALIGN_RUN_STALL_SECONDS` has nobody working on it, so its
unfinished chunks are queued again. A second delivery of a chunk finds the lease held and leaves, or finds its
samples judged and skips them (`runs.judge_chunk`), so nothing is judged twice.

The watch (`judging.tasks.repair_runs`) is sent by Celery beat every `MEMALIGN_RUN_WATCH_SECONDS` (one query
when no run is running) and by a worker when it (re)connects to the broker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from judging import dispatch
from judging.models import JudgeRun
from memory.dispatch import key
from memory.redis_client import get_redis

log = logging.getLogger(__name__)
LEASE_SECONDS = 15  # a dead worker's chunk is free again after this long
RENEW_SECONDS = 3


def _lease(run_id: int, index: int) -> Lock:
    # thread_local=False: the renewing thread must see the token the judging thread got.
    lock: Lock = get_redis().lock(key(f"run-chunk-{index}", run_id), timeout=LEASE_SECONDS, thread_local=False)
    return lock


@contextmanager
def chunk_lease(run_id: int, index: int) -> Iterator[bool]:
    """Hold the chunk's lease for the block, renewed while it runs; yield False when another worker holds it."""
    lease = _lease(run_id, index)
    if not lease.acquire(blocking=False):
        yield False
        return
    done = threading.Event()

    def renew() -> None:
        while not done.wait(RENEW_SECONDS):
            try:
                lease.reacquire()
            except LockError:
                return
            except RedisError:  # Redis briefly away: the next beat tries again
                continue

    keeper = threading.Thread(target=renew, name=f"lease-run-{run_id}-{index}", daemon=True)
    keeper.start()
    try:
        yield True
    finally:
        done.set()
        keeper.join()
        with contextlib.suppress(LockError, RedisError):  # expired, or Redis away: it runs out by itself
            lease.release()


def _leased(run: JudgeRun) -> bool:
    redis = get_redis()
    names = [key(f"run-chunk-{index}", run.pk) for index in range(run.chunk_count)]
    return any(redis.exists(*names[i : i + 500]) for i in range(0, len(names), 500))


def unfinished_chunks(run: JudgeRun) -> list[int]:
    """Return the indexes of the run's chunks with a sample not yet judged."""
    judged = set(run.judgements.values_list("sample_id", flat=True))
    return [index for index in range(run.chunk_count) if any(i not in judged for i in run.chunk(index))]


def stalled(run: JudgeRun, now: datetime) -> bool:
    """Whether nobody is working on a running run: no chunk leased and no sign of life for the stall time."""
    moments = [m for m in (run.dispatched_at, run.started_at, run.progress_at) if m is not None]
    if moments and now - max(moments) < timedelta(seconds=settings.MEMALIGN_RUN_STALL_SECONDS):
        return False
    return not _leased(run)


def heal(now: datetime | None = None) -> list[int]:
    """Queue again the unfinished chunks of every stalled run; return the ids of the runs re-queued."""
    now = now or timezone.now()
    healed = []
    for run in JudgeRun.objects.filter(status=JudgeRun.Status.RUNNING).order_by("pk"):
        if not stalled(run, now):
            continue
        # With every sample judged, chunk 0 only recounts and finishes the run.
        chunks = unfinished_chunks(run) or [0]
        # Conditional: of two watches at once only one re-queues, and a run that ended meanwhile is left alone.
        if JudgeRun.objects.filter(pk=run.pk, status=JudgeRun.Status.RUNNING, dispatched_at=run.dispatched_at).update(
            dispatched_at=now
        ):
            log.warning("run %s made no progress: re-queueing %d chunk(s)", run.pk, len(chunks))
            dispatch.judge_chunks(run.pk, chunks)
            healed.append(run.pk)
    return healed
