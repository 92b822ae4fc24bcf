"""A per-project limit on provider calls in flight, held across every worker process through Redis.

Each call takes a lease in a sorted set (member: a random token, score: when the lease expires) and gives it
back when it ends. A Lua script drops expired leases and adds a new one only while fewer than `limit` are held,
atomically, so two workers never both take the last slot. A lease is short and renewed by a heartbeat while
its call runs, so a call may last as long as it needs, and a worker killed mid-call frees its slots within
LEASE_SECONDS instead of blocking the project's runs for minutes.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.conf import settings
from redis import Redis

from memory.redis_client import get_redis

LEASE_SECONDS = 30
RENEW_SECONDS = LEASE_SECONDS / 3  # a heartbeat may miss a beat (a busy machine) without losing the lease
POLL_SECONDS = 0.02

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
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
    stop = threading.Event()
    heartbeat = threading.Thread(target=_renew, args=(redis, key, token, stop), daemon=True, name="provider-slot")
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        redis.zrem(key, token)


A = TypeVar("A")
R = TypeVar("R")


def in_slots(project_id: int, limit: int, call: Callable[[A], R]) -> Callable[[A], R]:
    """`call`, each time in one of the project's provider slots: for callers that ask the provider one item at a
    time (evaluations, the regression gate) and must share the owner's limit with the runs."""

    def slotted(argument: A) -> R:
        with provider_slot(project_id, limit):
            return call(argument)

    return slotted


def _renew(redis: Redis, key: str, token: str, stop: threading.Event) -> None:
    """Push the lease's expiry forward until the call ends (XX: never re-add a lease already given back)."""
    while not stop.wait(RENEW_SECONDS):
        try:
            redis.zadd(key, {token: time.time() + LEASE_SECONDS}, xx=True)
            redis.expire(key, math.ceil(LEASE_SECONDS))
        except Exception:  # a Redis blip: the next beat tries again, and the lease outlives one miss
            continue
