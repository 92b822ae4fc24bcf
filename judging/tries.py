"""Trying the judge from a web page: rate-limited per person, a provider slot taken or refused within seconds,
and a short provider timeout, so a web worker is never held for minutes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from judging import judge as aligned
from memory import budget
from memory.limiter import SlotTimeout, provider_slot
from memory.llm import anthropic_model, get_provider
from memory.llm.anthropic import judge_request
from memory.llm.base import WorkingMemory
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


def judge(project: Project, item: dict[str, Any], exclude_sample_id: int | None = None) -> aligned.AlignedVerdict:
    """Judge an item (inputs, output or output_a/output_b) within a provider slot and a short timeout."""
    principles = budget.principle_set(project)
    memory = aligned.working_memory(project, exclude_sample_id=exclude_sample_id, principles=principles, **item)
    return judge_memory(project, memory, principles)


def judge_memory(
    project: Project, memory: WorkingMemory, principles: budget.PrincipleSet | None = None
) -> aligned.AlignedVerdict:
    """Judge a working memory already built, within a provider slot and a short timeout. `principles`: the set
    the memory was built from, which names its version (else it is read)."""
    provider = get_provider(project, timeout=PROVIDER_TIMEOUT_SECONDS, max_retries=PROVIDER_RETRIES)
    version = principles.version if principles else aligned.version_number(project)
    try:
        with provider_slot(project.pk, project.provider_concurrency, timeout=SLOT_WAIT_SECONDS):
            verdict = aligned.decide(project, provider, memory)
    except SlotTimeout:
        raise Busy(
            "The project's provider calls are all in use (a judge run is going on): try again in a minute."
        ) from None
    return aligned.AlignedVerdict(verdict, memory, version, provider.name, provider.model)


@dataclass
class Prompt:
    """What the judge would be sent for an item: its working memory and the provider request built from it."""

    memory: WorkingMemory
    request: dict[str, Any]  # the Messages API request, as AnthropicProvider.judge sends it
    system: str
    user: str
    tools: str  # the tool definitions as JSON
    tokens: int  # an estimate of the request's input tokens

    @property
    def request_json(self) -> str:
        return json.dumps(self.request, indent=2, ensure_ascii=False)


def prompt(project: Project, item: dict[str, Any], exclude_sample_id: int | None = None) -> Prompt:
    """Build the item's working memory and the exact judge request for it; nothing is sent."""
    memory = aligned.working_memory(project, exclude_sample_id=exclude_sample_id, **item)
    request = judge_request(memory, anthropic_model(project))
    system, user = request["system"][0]["text"], request["messages"][0]["content"]
    tools = json.dumps(request["tools"], indent=2, ensure_ascii=False)
    tokens = (len(system) + len(user) + len(tools)) // budget.CHARS_PER_TOKEN + 1
    return Prompt(memory, request, system, user, tools, tokens)
