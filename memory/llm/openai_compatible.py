"""Any OpenAI-compatible chat completions server (vLLM, Ollama, llama.cpp's server, hosted services).

The prompts (memory.llm.prompts), the tools (JSON schemas of the answers) and the validation of every reply
(memory.llm.tools) are shared with the Anthropic provider, whose operations this class inherits; only the
transport differs. Structured output comes one of two ways, whichever the server
supports: `tools` (a forced function call, the default) or `json_schema` (`response_format` with the tool's
schema, for servers that do guided decoding but no tool calling).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from .anthropic import AnthropicProvider
from .base import ProviderError, Usage
from .clients import openai_compatible_client
from .tools import MAX_TOKENS, expect_object

STRUCTURED_MODES = ("tools", "json_schema")


class OpenAICompatibleProvider(AnthropicProvider):
    """The Provider contract over `POST {base_url}/chat/completions`. Connection failures are retried
    `max_retries` times; an HTTP error or a reply that does not match what was asked raises ProviderError
    (a 429 or 503 marked overloaded, with the server's Retry-After, so judge runs back off)."""

    name = "openai_compatible"
    remote = True

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str = "",
        structured: str = "tools",
        max_retries: int = 2,
        timeout: float = 60,
    ) -> None:
        if structured not in STRUCTURED_MODES:
            raise ProviderError(
                f"Unknown structured-output mode {structured!r}; choose one of {', '.join(STRUCTURED_MODES)}."
            )
        self.model, self.structured = model, structured
        self.max_retries, self.timeout = max_retries, timeout
        self.usage = Usage()
        self._lock = threading.Lock()
        # Shared: one per process and settings, its connections kept open across calls (memory.llm.clients).
        self._client = openai_compatible_client(base_url, api_key, max_retries, timeout)  # type: ignore[assignment]

    def _call(self, system: str, user: str, tool) -> tuple[dict[str, Any], Usage]:
        name = tool["name"]
        reply = self._post(name, self._body(system, user, tool))
        usage = _usage(reply)
        with self._lock:
            self.usage.add(usage)
        return _answer(reply, name, self.structured), usage

    def _body(self, system: str, user: str, tool) -> dict[str, Any]:
        name = tool["name"]
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": MAX_TOKENS[name],
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if self.structured == "tools":
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": name, "description": tool["description"], "parameters": tool["input_schema"]},
                }
            ]
            body["tool_choice"] = {"type": "function", "function": {"name": name}}
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": tool["input_schema"]},
            }
        return body

    def _post(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post("/chat/completions", json=body)  # type: ignore[call-overload]
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{name}: the model server timed out ({self.timeout}s)") from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{name}: cannot reach the model server at {self._client.base_url} ({type(exc).__name__})"
            ) from exc
        # The reply's body is never quoted: whatever the server says stays out of pages and the API.
        if response.status_code >= 300:
            raise ProviderError(
                f"{name}: the model server answered HTTP {response.status_code}"
                + (" (overloaded: retry later)" if response.status_code in (429, 503) else "")
                + (" (a redirect, not followed)" if response.is_redirect else ""),
                overloaded=response.status_code in (429, 503),
                retry_after=_retry_after(response),
            )
        try:
            return expect_object(response.json(), f"{name} reply")
        except ValueError:
            raise ProviderError(f"{name}: the model server's reply is not JSON") from None


def _answer(reply: dict[str, Any], name: str, structured: str) -> dict[str, Any]:
    """Return the JSON answer of a chat completion: the forced function's arguments, or the message content."""
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError(f"{name}: the reply has no choices")
    choice = choices[0]
    if choice.get("finish_reason") == "length":
        raise ProviderError(f"{name}: reply cut off at max_tokens before the answer was complete")
    message = expect_object(choice.get("message"), f"{name} message")
    if structured == "tools":
        calls = message.get("tool_calls") or []
        if not calls:
            raise ProviderError(f"{name}: expected a tool call, got a text-only reply")
        function = expect_object(expect_object(calls[0], f"{name} tool call").get("function"), f"{name} function")
        if function.get("name") != name:
            raise ProviderError(f"{name}: the model called tool {function.get('name')!r} instead")
        text = function.get("arguments")
    else:
        text = message.get("content")
    if isinstance(text, dict):
        return text
    try:
        return expect_object(json.loads(text or ""), f"{name} input")
    except (TypeError, ValueError):
        raise ProviderError(f"{name}: the answer is not a JSON object") from None


def _usage(reply: dict[str, Any]) -> Usage:
    usage: dict[str, Any] = reply["usage"] if isinstance(reply.get("usage"), dict) else {}
    details: dict[str, Any] = (
        usage["prompt_tokens_details"] if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    )
    return Usage(
        calls=1,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_tokens=int(details.get("cached_tokens") or 0),
    )


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
