"""One redis-py client per process, on REDIS_URL (the embedded socket by default): the broker's server also
holds the per-project locks, flags and limiter leases of the memory engine."""

from functools import cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


@cache
def get_redis() -> redis.Redis:
    # Fail fast when Redis is down (one quick retry, a one-second connect): a web request must not hang on it.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
