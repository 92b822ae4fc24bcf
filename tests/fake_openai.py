"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for tests (the stand-in for vLLM or Ollama).

    with FakeOpenAI() as server:                  # base URL: server.url (ends in /v1)
        server.push_error(503, "model is loading")   # the next request gets this error ...
        server.push_answer({"value": "pass", "rationale": "ok"})  # ... the one after it this answer
        assert server.requests[0]["tool_choice"]["function"]["name"] == "record_verdict"

Unscripted requests are answered from the request's own schema (the forced function's `parameters`, or
`response_format.json_schema.schema`) by the fake Anthropic server's default responder, as a function call
or as JSON content, whichever the request asked for. Every request body and its headers are recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_anthropic import default_responder


def as_anthropic(request: dict[str, Any]) -> dict[str, Any]:
    """The same request in the Messages API's shape, for the fake Anthropic server's default responder."""
    if request.get("tools"):
        function = request["tools"][0]["function"]
        tool = {"name": function["name"], "input_schema": function["parameters"]}
    else:
        spec = request["response_format"]["json_schema"]
        tool = {"name": spec["name"], "input_schema": spec["schema"]}
    messages = request.get("messages") or []
    return {
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": tool["name"]},
        "system": [m["content"] for m in messages if m.get("role") == "system"],
        "messages": [m for m in messages if m.get("role") != "system"],
    }


class FakeOpenAI:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._queue: list[tuple[int, Any, dict[str, str]]] = []
        self.connections: set[tuple[str, int]] = set()  # the client addresses seen: one per TCP connection
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._httpd = ThreadingHTTPServer((self.host, 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def push_answer(self, answer: Any, *, as_text: bool = False) -> None:
        """Script the next reply's answer (`as_text`: in the message content although a tool was forced)."""
        self._queue.append((200, ("text" if as_text else "answer", answer), {}))

    def push_error(self, status: int, message: str, retry_after: int | None = None) -> None:
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        self._queue.append((status, {"error": {"message": message, "type": "error", "code": status}}, headers))

    def push_raw(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Script the next reply byte for byte (an HTML error page, a redirect, ...)."""
        self._queue.append((status, body, headers or {}))

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        if path != "/v1/chat/completions":
            return 404, {}, json.dumps({"error": {"message": f"no route {path}"}}).encode()
        request = json.loads(raw)
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
            scripted = self._queue.pop(0) if self._queue else None
        if scripted and isinstance(scripted[1], bytes):
            return scripted[0], scripted[2], scripted[1]
        if scripted and scripted[0] != 200:
            status, body, extra = scripted
            return status, {"content-type": "application/json", **extra}, json.dumps(body).encode()
        kind, answer = scripted[1] if scripted else ("answer", default_responder(as_anthropic(request)))
        return 200, {"content-type": "application/json"}, json.dumps(self._completion(request, kind, answer)).encode()

    def _completion(self, request: dict[str, Any], kind: str, answer: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if request.get("tools") and kind == "answer":
            name = request["tools"][0]["function"]["name"]
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(answer)},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = answer if isinstance(answer, str) else json.dumps(answer)
            finish = "stop"
        prompt = sum(len(str(m.get("content") or "")) for m in request.get("messages") or []) // 4
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "model": request.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": 20,
                "total_tokens": prompt + 20,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a client's connection pool expects
    timeout = 30  # an idle keep-alive connection frees its thread after this

    def do_POST(self) -> None:
        self.server.fake.connections.add(self.client_address)  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        status, headers, body = self.server.fake.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)  # type: ignore[attr-defined]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
