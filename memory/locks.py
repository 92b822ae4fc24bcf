"""The one-writer rule of the semantic memory: every path that writes principles or versions holds the
project's regeneration lock (a Redis lock with expiry, so a killed holder cannot block the project forever).

The lock is a short lease that a thread of the holder keeps renewing while the work runs: a killed holder's
lease runs out within `LEASE_SECONDS`, so a restarted worker resumes distillation at once, not after the task's
whole time limit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from memory.redis_client import get_redis

log = logging.getLogger(__name__)
LEASE_SECONDS = 30  # a killed holder blocks the project this long at most
RENEW_SECONDS = 5


class MemoryBusy(Exception):
    """Another writer held the project's semantic memory for longer than the caller would wait."""


def lock_key(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}:regen-lock:{project_id}"


def regeneration_lock(project_id: int) -> Lock:
    """The project's lock object (redis-py Lock), not yet acquired; `kept` renews it while it is held."""
    # thread_local=False: the renewing thread must see the token the acquiring thread got.
    lock: Lock = get_redis().lock(
        lock_key(project_id), timeout=min(LEASE_SECONDS, settings.MEMALIGN_LOCK_SECONDS), thread_local=False
    )
    return lock


@contextmanager
def kept(lock: Lock) -> Iterator[None]:
    """Renew an acquired lease every few seconds for the block, so it only runs out when its holder dies."""
    done = threading.Event()

    def renew() -> None:
        interval = min(RENEW_SECONDS, (lock.timeout or LEASE_SECONDS) / 3)
        while not done.wait(interval):
            try:
                lock.reacquire()
            except LockError:
                log.warning("the lock %s was lost while held", lock.name)
                return
            except RedisError:  # Redis briefly away: try again at the next beat
                continue

    keeper = threading.Thread(target=renew, name=f"keep-{lock.name}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


@contextmanager
def memory_writer(project_id: int, wait: float | None) -> Iterator[None]:
    """Hold the project's regeneration lock for the block; wait up to `wait` seconds (None: as long as it takes)."""
    lock = regeneration_lock(project_id)
    if not lock.acquire(blocking=True, blocking_timeout=wait):
        raise MemoryBusy("The semantic memory is being regenerated right now; try again when the run has finished.")
    try:
        with kept(lock):
            yield
    finally:
        release(lock)


def release(lock: Lock) -> None:
    try:
        lock.release()
    except LockError:
        log.warning("the lock %s expired before the run ended", lock.name)  # harmless: writes are transactional
