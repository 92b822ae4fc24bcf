"""One SDK client per process and settings, shared by every provider built with them.

A new `anthropic.Anthropic` builds a fresh SSL context and connection pool: measured at 39 ms of a 110 ms judge
call (issue 23). Sharing it keeps the pool's connections open across calls. The SDK client is thread-safe; a
forked child (Celery prefork) builds its own rather than reuse its parent's sockets.
"""

from __future__ import annotations

import os
import threading

import anthropic

_lock = threading.Lock()
_anthropic: dict[tuple[int, str | None, str | None, int, float], anthropic.Anthropic] = {}


def anthropic_client(
    api_key: str | None, base_url: str | None, max_retries: int, timeout: float
) -> anthropic.Anthropic:
    """Return this process's Anthropic client for these settings, built on first use."""
    key = (os.getpid(), api_key, base_url, max_retries, timeout)
    with _lock:
        client = _anthropic.get(key)
        if client is None:
            client = _anthropic[key] = anthropic.Anthropic(
                api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
            )
        return client
