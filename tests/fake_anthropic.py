"""A fake Anthropic Messages API on 127.0.0.1, for tests, benchmarks and offline demos.

The real `anthropic` SDK talks to it over real HTTP, so retries, headers and reply parsing are the SDK's own:

    with FakeAnthropic() as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="test")
        server.push_error(429)                           # the next request gets a 429 ...
        server.push_tool({"value": "pass", "rationale": "ok"})  # ... and the retry this tool call
        client.messages.create(...)
        assert server.request_count == 2

Replies come from a queue of scripted replies (`push_*`); when it is empty, `server.responder(request_json)`
returns the tool input (by default `default_responder`, which answers any forced tool call from its schema).
Every request is recorded (`requests`, `tool_counts`). Prompt caching is simulated: the first request with a
given `cache_control` prefix reports `cache_creation_input_tokens`, later identical ones `cache_read_input_tokens`.

As a script, for benchmarks and demos (point ANTHROPIC_BASE_URL at the printed URL):

    python tests/fake_anthropic.py --port 8765 --latency 0.2

Standard library only: no Django, no project imports.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], Any]
SERVER_DEFAULT = object()  # "use the server's setting", where None already means "none"

# Error `type`s the real API puts in its error envelope, by HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ToolReply:
    """A `tool_use` reply. `input` may be any JSON value: one that breaks the tool's schema scripts a malformed
    reply. `name` None means the tool the request forced."""

    input: Any
    name: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class TextReply:
    """A text-only reply (no tool call), as a model that ignores `tool_choice` would send."""

    text: str
    delay: float = 0.0


@dataclass(frozen=True)
class RawReply:
    """Any HTTP reply: `body` is JSON-encoded unless it is already `str` or `bytes`."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Scripted = ToolReply | TextReply | RawReply


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. Header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None when the body was not JSON
    received_at: float

    @property
    def tool_name(self) -> str | None:
        """Return the tool the request forced, else its first tool's name, else None."""
        return forced_tool(self.body)[0] if isinstance(self.body, dict) else None


def error_reply(status: int, *, retry_after_ms: float | None = None, message: str | None = None) -> RawReply:
    """Return an error in the API's envelope; `retry_after_ms` adds `retry-after-ms` and `retry-after` headers."""
    error_type = ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": error_type, "message": message or f"fake {error_type}"}}
    headers: dict[str, str] = {}
    if retry_after_ms is not None:
        # The SDK prefers the precise `retry-after-ms`; `retry-after` (whole seconds) is what the API documents.
        headers["retry-after-ms"] = str(retry_after_ms)
        headers["retry-after"] = str(max(1, math.ceil(retry_after_ms / 1000)))
    return RawReply(status, body, headers)


# ---------------------------------------------------------------------------------------------------------------
# Reading requests


def forced_tool(request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Return (name, input_schema) of the tool the request forces, falling back to its first tool."""
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict)]
    choice = request.get("tool_choice") or {}
    wanted = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
    for tool in tools:
        if wanted is None or tool.get("name") == wanted:
            return tool.get("name"), tool.get("input_schema") or {}
    return wanted, {}


def _blocks_text(content: Any) -> list[tuple[str, bool]]:
    """Return (text, has_cache_control) for each block of a `system` or message `content` value."""
    if isinstance(content, str):
        return [(content, False)]
    if not isinstance(content, list):
        return []
    out = []
    for block in content:
        if isinstance(block, dict):
            text = block["text"] if isinstance(block.get("text"), str) else json.dumps(block, sort_keys=True)
            out.append((str(text), "cache_control" in block))
    return out


def prompt_parts(request: dict[str, Any]) -> list[tuple[str, bool]]:
    """Return the prompt as (text, has_cache_control) parts in the API's cache order: tools, system, messages."""
    parts = [
        (json.dumps(t, sort_keys=True), isinstance(t, dict) and "cache_control" in t)
        for t in request.get("tools") or []
    ]
    parts += _blocks_text(request.get("system"))
    for message in request.get("messages") or []:
        if isinstance(message, dict):
            parts += _blocks_text(message.get("content"))
    return parts


def messages_text(request: dict[str, Any]) -> str:
    """Return the text of all messages (not the system prompt), joined."""
    return "\n".join(
        t for m in request.get("messages") or [] if isinstance(m, dict) for t, _ in _blocks_text(m.get("content"))
    )


def count_tokens(text: str) -> int:
    """Return a rough token count (4 characters a token), enough for usage accounting in tests."""
    return max(1, len(text) // 4) if text else 0


# ---------------------------------------------------------------------------------------------------------------
# The default responder: a plausible answer to any forced tool call


def _ids_in(text: str) -> list[int]:
    return [int(m) for m in re.findall(r'\bid="(\d+)"', text)]


def _example(schema: dict[str, Any], key: str, ids: list[int], serial: int) -> Any:
    """Return a minimal value valid for a JSON schema: first enum value, one-item arrays, required keys."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        keys = schema.get("required") or list(props)
        return {k: _example(props.get(k) or {}, k, ids, serial) for k in keys}
    if kind == "array":
        item = schema.get("items") or {}
        if item.get("type") == "integer" and "enum" not in item:
            return ids[:1]  # cite the first id found in the prompt, or none
        return [_example(item, key, ids, serial)]
    if kind == "integer":
        return ids[0] if ids else 0
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return False
    return f"Fake {key} #{serial}."


_serial = itertools.count(1)


def default_responder(request: dict[str, Any]) -> Any:
    """Answer the forced tool call with a minimal schema-valid input.

    Enum fields get their first value (a verdict: the first allowed label); arrays of ids cite the first
    `id="N"` found in the messages (a distillation: one principle citing the first feedback); a
    consolidation-like tool (name containing "consolidat") gets empty lists, i.e. nothing to merge.
    """
    name, schema = forced_tool(request)
    serial = next(_serial)
    if name and "consolidat" in name:
        props = schema.get("properties") or {}
        return {k: [] for k, v in props.items() if v.get("type") == "array"}
    ids = _ids_in(messages_text(request)) or _ids_in(json.dumps(request.get("system")))
    return _example(schema, "text", ids, serial)


# ---------------------------------------------------------------------------------------------------------------
# The server


class FakeAnthropic:
    """A fake Messages API server on a background thread. Use as a context manager, or `start()`/`stop()`.

    Attributes tests may set at any time: `responder`, `latency` (seconds added to every request),
    `retry_after_ms` (sent with every pushed error unless overridden), `error_rate` (fraction of unscripted
    requests answered 529 overloaded, for benchmarks), `min_cache_tokens` (prefixes shorter than this are not
    cached, as the real API's minimum).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        retry_after_ms: float | None = 10,
        error_rate: float = 0.0,
        min_cache_tokens: int = 0,
        seed: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.latency = latency
        self.responder: Responder = responder or default_responder
        self.retry_after_ms = retry_after_ms
        self.error_rate = error_rate
        self.min_cache_tokens = min_cache_tokens
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._queue: list[Scripted] = []
        self._requests: list[RecordedRequest] = []
        self._tool_counts: Counter[str] = Counter()
        self._cache: set[str] = set()
        self._ids = itertools.count(1)
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests the server was answering at once (concurrency limits)
        self.connections: set[tuple[str, int]] = set()  # the client addresses seen: one per TCP connection
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL to give the SDK (`base_url=` or ANTHROPIC_BASE_URL)."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def bind(self) -> ThreadingHTTPServer:
        """Bind the socket (a free port when `port` is 0) and return the HTTP server, not yet serving."""
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True  # a keep-alive connection left open must not block shutdown
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        return httpd

    def start(self) -> FakeAnthropic:
        """Start serving on a background thread; return self."""
        httpd = self.bind()
        # A short poll interval: shutdown() waits up to one interval, and tests stop a server each.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------------------------

    def push(self, *replies: Scripted) -> None:
        """Queue replies; each request takes the oldest one, and the responder answers when none is left."""
        with self._lock:
            self._queue.extend(replies)

    def push_tool(self, tool_input: Any, *, name: str | None = None, times: int = 1, delay: float = 0.0) -> None:
        """Queue `times` tool_use replies with this input (a malformed one too: it is sent as given)."""
        self.push(*[ToolReply(tool_input, name, delay)] * times)

    def push_text(self, text: str = "I would rather not use the tool.", *, times: int = 1) -> None:
        """Queue `times` text-only replies."""
        self.push(*[TextReply(text)] * times)

    def push_error(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after_ms: float | object | None = SERVER_DEFAULT,
        message: str | None = None,
    ) -> None:
        """Queue `times` error replies (429, 500, 529...). `retry_after_ms` defaults to the server's; None sends
        no retry-after headers (the SDK then backs off exponentially from 0.5 s)."""
        wait = self.retry_after_ms if retry_after_ms is SERVER_DEFAULT else retry_after_ms
        assert wait is None or isinstance(wait, (int, float))
        self.push(*[error_reply(status, retry_after_ms=wait, message=message)] * times)

    def push_raw(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Queue one arbitrary HTTP reply."""
        self.push(RawReply(status, body, headers or {}))

    def reset(self) -> None:
        """Forget scripted replies, recorded requests, counters and the prompt cache."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._tool_counts.clear()
            self._cache.clear()
            self.connections.clear()
            self.max_in_flight = self._in_flight

    # -- inspection --------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def tool_counts(self) -> dict[str, int]:
        """Return how many requests forced each tool name (retries included)."""
        with self._lock:
            return dict(self._tool_counts)

    @property
    def pending(self) -> int:
        """Return how many scripted replies are still queued."""
        with self._lock:
            return len(self._queue)

    # -- handling ----------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: return (status, headers, body). Called on the server's handler threads."""
        body = _parse_json(raw)
        recorded = RecordedRequest(method, path, headers, body, time.time())
        with self._lock:
            self._requests.append(recorded)
            if recorded.tool_name:
                self._tool_counts[recorded.tool_name] += 1
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            reply = self._reply_for(method, path, headers, body)
            delay = self.latency + getattr(reply, "delay", 0.0)
            if delay > 0:
                time.sleep(delay)  # outside the lock: concurrent requests overlap as they would against the API
            return self._render(reply, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _reply_for(self, method: str, path: str, headers: dict[str, str], body: Any) -> Scripted:
        """Return the reply: a request error, else the next scripted reply, else the responder's."""
        if (method, path.split("?")[0]) != ("POST", "/v1/messages"):
            return error_reply(404, message=f"no route {method} {path}")
        if not (headers.get("x-api-key") or headers.get("authorization")):
            return error_reply(401, message="missing x-api-key or authorization header")
        problem = _request_problem(body)
        if problem:
            return error_reply(400, message=problem)
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            overloaded = self.error_rate > 0 and self._random.random() < self.error_rate
        if overloaded:
            return error_reply(529, retry_after_ms=self.retry_after_ms)
        try:
            return ToolReply(self.responder(body))
        except Exception as exc:  # a broken responder is a test bug: report it at once, without SDK retries
            reply = error_reply(500, message=f"fake responder failed: {exc!r}")
            return RawReply(reply.status, reply.body, {**reply.headers, "x-should-retry": "false"})

    def _render(self, reply: Scripted, request: Any) -> tuple[int, dict[str, str], bytes]:
        n = next(self._ids)
        headers = {"content-type": "application/json", "request-id": f"req_fake_{n:06d}"}
        if isinstance(reply, RawReply):
            body = (
                reply.body
                if isinstance(reply.body, bytes)
                else (reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode())
            )
            return reply.status, {**headers, **reply.headers}, body
        if isinstance(reply, ToolReply):
            name = reply.name or forced_tool(request)[0] or "tool"
            content = [{"type": "tool_use", "id": f"toolu_fake_{n:06d}", "name": name, "input": reply.input}]
            stop, output = "tool_use", json.dumps(reply.input)
        else:
            content, stop, output = [{"type": "text", "text": reply.text}], "end_turn", reply.text
        message = {
            "id": f"msg_fake_{n:06d}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(request, count_tokens(output)),
        }
        return 200, headers, json.dumps(message).encode()

    def _usage(self, request: dict[str, Any], output_tokens: int) -> dict[str, int]:
        """Return usage, simulating the prompt cache: the prefix up to the last `cache_control` breakpoint is
        written on first sight (cache_creation) and read afterwards (cache_read); `input_tokens` is the rest."""
        parts = prompt_parts(request)
        total = sum(count_tokens(text) for text, _ in parts)
        marked = [i for i, (_, cached) in enumerate(parts) if cached]
        created = read = 0
        if marked:
            prefix = parts[: marked[-1] + 1]
            prefix_tokens = sum(count_tokens(text) for text, _ in prefix)
            if prefix_tokens >= self.min_cache_tokens:
                key = hashlib.sha256(json.dumps([request["model"], prefix]).encode()).hexdigest()
                with self._lock:
                    hit = key in self._cache
                    self._cache.add(key)
                read, created = (prefix_tokens, 0) if hit else (0, prefix_tokens)
        return {
            "input_tokens": total - created - read,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _request_problem(body: Any) -> str | None:
    """Return why the API would reject this request with a 400, or None: the checks that catch client bugs."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: must be a positive integer"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: at least one message is required"
    if body.get("stream"):
        return "stream: the fake server does not stream"
    choice = body.get("tool_choice")
    names = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name") not in names:
        return f"tool_choice: tool {choice.get('name')!r} is not in tools"
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    timeout = 30  # an idle keep-alive connection frees its thread after this
    server_version = "FakeAnthropic/1"
    verbose = False

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake: FakeAnthropic = self.server.fake  # type: ignore[attr-defined]
        with fake._lock:
            fake.connections.add(self.client_address)
        status, reply_headers, body = fake.handle(self.command, self.path, headers, raw)
        try:
            self.send_response(status)
            for key, value in reply_headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout was shorter than our latency): nothing to answer.
            self.close_connection = True

    do_POST = do_GET = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.verbose:
            super().log_message(format, *args)


# ---------------------------------------------------------------------------------------------------------------
# Script mode


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted, printing the base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description="A fake Anthropic Messages API on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered 529")
    parser.add_argument("--retry-after-ms", type=float, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    fake = FakeAnthropic(
        args.host,
        args.port,
        latency=args.latency,
        error_rate=args.error_rate,
        retry_after_ms=args.retry_after_ms,
        seed=args.seed,
    )
    _Handler.verbose = args.verbose
    httpd = fake.bind()
    print(f"fake Anthropic API listening on {fake.url}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
