"""/health/: is each part of the site up? Database, broker, a round trip through a worker, the Chroma store.

The checks run side by side under one deadline, so the page answers within about two seconds whatever is down
(a hung part is reported as not answering in time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from memalign_site.celery import ping
from memory.redis_client import get_redis

WORKER_TIMEOUT_SECONDS = 1.5
DEADLINE_SECONDS = 1.8


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor}"


def check_broker() -> str:
    get_redis().ping()
    return "redis answers"


def check_worker(queue: str | None = None, timeout: float = WORKER_TIMEOUT_SECONDS) -> str:
    result = ping.apply_async(expires=timeout, queue=queue)  # type: ignore[arg-type]  # None: the default queue
    try:
        answer = result.get(timeout=timeout)
    except CeleryTimeout:
        raise RuntimeError(f"no worker answered within {timeout:g} s: is a Celery worker running?") from None
    finally:
        result.forget()
    if answer != "pong":
        raise RuntimeError(f"unexpected answer {answer!r}")
    return "a worker answered"


def check_chroma() -> str:
    from memory.episodic import get_client

    get_client().heartbeat()
    return f"server at {settings.CHROMA_URL}" if settings.CHROMA_URL else "embedded store"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "worker": check_worker,
    "chroma": check_chroma,
}


def run_checks(deadline: float = DEADLINE_SECONDS) -> list[dict]:
    """Run every check at once; a failing one reports its reason, a hung one that it did not answer in time."""
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    futures = {name: pool.submit(_timed, check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=deadline)
    pool.shutdown(wait=False)  # a hung check finishes (or times out) in the background
    results = []
    for name, future in futures.items():
        if future.done():
            ok, detail, ms = future.result()
        else:
            ok, detail, ms = False, f"no answer within {deadline:g} s", (time.perf_counter() - started) * 1000
        results.append({"name": name, "ok": ok, "detail": detail, "ms": round(ms, 1)})
    return results


def _timed(check: Callable[[], str]) -> tuple[bool, str, float]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as error:  # a health page reports any failure, whatever its kind
        detail, ok = f"{type(error).__name__}: {error}", False
    finally:
        connection.close()  # this thread's own database connection
    return ok, detail, (time.perf_counter() - started) * 1000


@never_cache
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    results = run_checks()
    ok = all(r["ok"] for r in results)
    if not (settings.DEBUG or request.user.is_staff):
        # Details name engines, hosts and paths: only staff see them on a production site, passing or not.
        for r in results:
            r["detail"] = "" if r["ok"] else "failing (details for staff only)"
    return render(request, "health.html", {"results": results, "ok": ok}, status=200 if ok else 503)
