"""The Anthropic provider: Claude through the official SDK's Messages API.

Every operation is one request with one tool that the model is forced to call (`tool_choice` names it); the
prompts are memory.llm.prompts, the tools and the validation of their input memory.llm.tools. The system prompt
is marked `cache_control: ephemeral`, so the part of a prompt that is stable across a batch is cached.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .base import (
    Consolidation,
    Distillation,
    Example,
    LabelSchema,
    PrincipleText,
    ProviderError,
    Rederivation,
    Usage,
    Verdict,
    WorkingMemory,
)
from .clients import anthropic_client
from .prompts import (
    consolidate_system,
    distill_system,
    feedback_user,
    judge_system,
    judge_user,
    principles_block,
    rederive_system,
    tag,
)
from .tools import (
    CONSOLIDATE_TOOL,
    DISTILL_TOOL,
    JUDGE_TOOL,
    REDERIVE_TOOL,
    consolidate_tool,
    parse_consolidation,
    parse_principles,
    parse_rederivation,
    parse_verdict,
    principles_tool,
    rederive_tool,
    request_params,
    tool_input,
    usage_of,
    verdict_tool,
)

if TYPE_CHECKING:  # the SDK takes seconds to import: it is imported when a provider first calls it
    import anthropic
    from anthropic.types import Message, ToolParam

# A current model from the SDK's model list (claude-sonnet-4-5 is deprecated there).
DEFAULT_MODEL = "claude-sonnet-4-6"


def judge_request(memory: WorkingMemory, model: str) -> dict[str, Any]:
    """Return the request `AnthropicProvider.judge` sends for `memory` (the playground shows it)."""
    return request_params(model, judge_system(memory), judge_user(memory), verdict_tool(memory.schema.choices))


class AnthropicProvider:
    """The Provider contract (memory/llm/base.py) on Claude.

    `api_key` and `base_url` default to the SDK's own (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL). Transient
    failures (408, 409, 429, 5xx, 529, connection errors, timeouts) are retried by the SDK up to `max_retries`
    times with back-off, honouring retry-after; `timeout` is in seconds per attempt. Any failure left after
    that, and any reply that does not match what was asked, raises ProviderError. `usage` sums every call.
    Thread-safe: one instance may serve concurrent calls.
    """

    name = "anthropic"
    remote = True  # calls wait on the network: a backlog's batches run concurrently

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 3,
        timeout: float = 60,
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self.timeout = timeout
        self.usage = Usage()
        self._lock = threading.Lock()
        self._client = anthropic_client(api_key, base_url, max_retries, timeout)  # shared: one per process

    # -- the contract -----------------------------------------------------------------------------------------

    def judge(self, memory: WorkingMemory) -> Verdict:
        """Return a verdict whose value is one of `memory.schema.choices` (never None: the model always answers)."""
        if not memory.schema.choices:
            raise ProviderError(f"{JUDGE_TOOL}: the label schema has no choices")
        request = judge_request(memory, self.model)
        data, usage = self._call(request["system"][0]["text"], request["messages"][0]["content"], request["tools"][0])
        value, rationale = parse_verdict(data, memory.schema.choices)
        return Verdict(value=value, rationale=rationale, usage=usage)

    def distill(
        self, criterion: str, schema: LabelSchema, existing: list[PrincipleText], feedback: list[Example]
    ) -> Distillation:
        """Return new principles citing only ids of `feedback`; no call (and none) when `feedback` is empty."""
        if not feedback:
            return Distillation(principles=[])
        user = feedback_user(feedback, f"Distil new principles from this feedback and call {DISTILL_TOOL}.")
        data, usage = self._call(distill_system(criterion, schema, existing), user, principles_tool(schema.choices))
        principles = parse_principles(data, {e.feedback_id for e in feedback}, schema.choices)
        return Distillation(principles=principles, usage=usage)

    def rederive(self, criterion: str, principle: str, sources: list[Example]) -> Rederivation:
        """Return the principle as `sources` support it; retired (None) without a call when none remain."""
        if not sources:
            return Rederivation(text=None)
        user = feedback_user(
            sources, f"Decide what becomes of the principle and call {REDERIVE_TOOL}.", head=tag("principle", principle)
        )
        data, usage = self._call(rederive_system(criterion), user, rederive_tool())
        return Rederivation(text=parse_rederivation(data, principle), usage=usage)

    def consolidate(self, criterion: str, principles: list[PrincipleText], budget: int | None = None) -> Consolidation:
        """Return merges and contradictions among `principles` (known ids only); no call with fewer than two."""
        if len(principles) < 2:
            return Consolidation(merges=[], contradictions=[])
        ask = f"Find near-duplicates and contradictions and call {CONSOLIDATE_TOOL}."
        if budget is not None and len(principles) > budget:
            ask = (
                f"There are {len(principles)} principles and at most {budget} may remain: merge groups that lead "
                f"to the same label into one general rule each until no more than {budget} remain. {ask}"
            )
        user = "\n\n".join([principles_block(principles), ask])
        data, usage = self._call(consolidate_system(criterion), user, consolidate_tool())
        known = {p.id for p in principles}
        merges, contradictions = parse_consolidation(data, known)
        return Consolidation(merges=merges, contradictions=contradictions, usage=usage)

    # -- one request --------------------------------------------------------------------------------------------

    def _call(self, system: str, user: str, tool: ToolParam) -> tuple[dict[str, Any], Usage]:
        """Send one forced tool call; return its input and usage. Usage is recorded even if the input is bad:
        the tokens were spent."""
        response = self._create(system, user, tool)
        usage = usage_of(response)
        with self._lock:
            self.usage.add(usage)
        return tool_input(response, tool["name"]), usage

    def _create(self, system: str, user: str, tool: ToolParam) -> Message:
        """Return the SDK's Message, turning every SDK failure (after its retries) into ProviderError."""
        if self._client.api_key is None and self._client.auth_token is None:
            raise ProviderError("no Anthropic API key: pass api_key or set ANTHROPIC_API_KEY")
        import anthropic  # loaded by now: the client was built through it

        name, attempts = tool["name"], self.max_retries + 1
        try:
            return self._client.messages.create(**request_params(self.model, system, user, tool))
        except anthropic.APITimeoutError as exc:
            raise ProviderError(f"{name}: Anthropic API timed out ({attempts} attempts, {self.timeout}s each)") from exc
        except anthropic.APIConnectionError as exc:
            raise ProviderError(f"{name}: cannot reach the Anthropic API ({attempts} attempts): {exc}") from exc
        except anthropic.APIStatusError as exc:
            raise ProviderError(
                f"{name}: Anthropic API answered HTTP {exc.status_code}"
                f"{_retried(exc.status_code, attempts)}: {_error_message(exc)}",
                overloaded=exc.status_code in (429, 529),
                retry_after=_retry_after(exc),
            ) from exc
        except anthropic.AnthropicError as exc:
            raise ProviderError(f"{name}: Anthropic SDK error: {exc}") from exc


def _retried(status: int, attempts: int) -> str:
    """Return ' after N attempts' for statuses the SDK retries, '' for those it gives up on at once."""
    retryable = status in (408, 409, 429) or status >= 500
    return f" after {attempts} attempts" if retryable and attempts > 1 else ""


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    """Return the server's retry-after hint in seconds (`retry-after-ms` first, as the SDK reads it)."""
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
    return None


def _error_message(exc: anthropic.APIStatusError) -> str:
    """Return 'type: message' from the API's error envelope, or the SDK's message."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('type', 'error')}: {error['message']}"
    return str(exc.message)
