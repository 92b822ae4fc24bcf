"""Trying the judge from a web page: rate-limited per person, a provider slot taken or refused within seconds,
and a short provider timeout, so a web worker is never held for minutes."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from memory import judge as aligned
from memory.limiter import SlotTimeout, provider_slot
from memory.llm import get_provider
from memory.redis_client import get_redis
from reviews.models import Project

PER_MINUTE = 10
SLOT_WAIT_SECONDS = 5.0  # a run may hold every slot: say so rather than queue behind it
PROVIDER_TIMEOUT_SECONDS = 20.0
PROVIDER_RETRIES = 1


class Busy(Exception):
    """Every provider slot of the project stayed taken; the message says what to do."""


def allowed(project_id: int, user_id: int) -> bool:
    """Count one try for the person in this project; False once they passed PER_MINUTE in the current minute."""
    key = f"{settings.MEMALIGN_NAMESPACE}:tries:{project_id}:{user_id}"
    redis = get_redis()
    count = redis.incr(key)
    if count == 1:
        redis.expire(key, 60)
    return count <= PER_MINUTE


def judge(project: Project, item: dict[str, Any]) -> aligned.AlignedVerdict:
    """Judge an item (inputs, output or output_a/output_b) within a provider slot and a short timeout."""
    provider = get_provider(project, timeout=PROVIDER_TIMEOUT_SECONDS, max_retries=PROVIDER_RETRIES)
    try:
        with provider_slot(project.pk, project.provider_concurrency, timeout=SLOT_WAIT_SECONDS):
            return aligned.judge(project, provider=provider, **item)
    except SlotTimeout:
        raise Busy(
            "The project's provider calls are all in use (a judge run is going on): try again in a minute."
        ) from None
