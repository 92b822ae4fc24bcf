"""The one-writer rule of the semantic memory: every path that writes principles or versions holds the
project's regeneration lock (a Redis lock with expiry, so a killed holder cannot block the project forever).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from redis.exceptions import LockError
from redis.lock import Lock

from memory.redis_client import get_redis

log = logging.getLogger(__name__)


class MemoryBusy(Exception):
    """Another writer held the project's semantic memory for longer than the caller would wait."""


def lock_key(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}:regen-lock:{project_id}"


def regeneration_lock(project_id: int) -> Lock:
    """The project's lock object (redis-py Lock), not yet acquired."""
    lock: Lock = get_redis().lock(lock_key(project_id), timeout=settings.MEMALIGN_LOCK_SECONDS)
    return lock


@contextmanager
def memory_writer(project_id: int, wait: float | None) -> Iterator[None]:
    """Hold the project's regeneration lock for the block; wait up to `wait` seconds (None: as long as it takes)."""
    lock = regeneration_lock(project_id)
    if not lock.acquire(blocking=True, blocking_timeout=wait):
        raise MemoryBusy("The semantic memory is being regenerated right now; try again when the run has finished.")
    try:
        yield
    finally:
        release(lock)


def release(lock: Lock) -> None:
    try:
        lock.release()
    except LockError:
        log.warning("the lock %s expired before the run ended", lock.name)  # harmless: writes are transactional
