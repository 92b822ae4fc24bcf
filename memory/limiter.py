"""A per-project limit on provider calls in flight, held across every worker process through Redis.

Each call takes a lease in a sorted set (member: a random token, score: when the lease expires) and gives it
back when it ends. A Lua script drops expired leases and adds a new one only while fewer than `limit` are held,
atomically, so two workers never both take the last slot; a worker killed mid-call loses its lease when it
expires instead of blocking the project forever.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from memalign_site.redis import get_redis

LEASE_SECONDS = 300  # longer than any provider call with its retries
POLL_SECONDS = 0.02

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""


class SlotTimeout(Exception):
    """No slot became free in time."""


def _key(project_id: int) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}:provider-slots:{project_id}"


@contextmanager
def provider_slot(project_id: int, limit: int, timeout: float | None = None) -> Iterator[None]:
    """Hold one of the project's `limit` provider slots for the duration of the block.

    Waits while all slots are taken; raises SlotTimeout after `timeout` seconds (None: wait as long as it takes).
    """
    redis = get_redis()
    acquire = redis.register_script(_ACQUIRE)
    token = uuid.uuid4().hex
    key = _key(project_id)
    give_up = None if timeout is None else time.monotonic() + timeout
    while not acquire(keys=[key], args=[time.time(), max(1, limit), LEASE_SECONDS, token]):
        if give_up is not None and time.monotonic() > give_up:
            raise SlotTimeout(f"all {limit} provider slots of project {project_id} stayed busy for {timeout:g} s")
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        redis.zrem(key, token)


def calls_in_flight(project_id: int) -> int:
    """Leases currently held (expired ones included until the next acquire drops them)."""
    return int(get_redis().zcard(_key(project_id)))
