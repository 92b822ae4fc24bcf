"""A Redis outage (broker, results and locks) costs a save at most about a second, and /health/ answers fast.

A real redis-server of the test's own is started, stopped and started again; the session's Redis is untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

import memalign_site.settings as production
import memalign_site.settings_test as test_settings
from memalign_site.celery import app
from memalign_site.launcher import start_embedded_redis, stop
from memalign_site.settings import celery_url
from memory.redis_client import get_redis
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample, quiesce_session_worker


def point_celery_at(url: str) -> None:
    app.conf.broker_url = app.conf.result_backend = celery_url(url)
    # Celery caches its connection pools and (per thread) its result backend: forget them.
    app._pool = None
    app.amqp._producer_pool = None
    if hasattr(app._local, "backend"):
        del app._local.backend


@pytest.fixture
def own_redis(settings):
    """A redis-server on a socket of this test's own, with the site (broker, results, locks) pointed at it."""
    folder = Path(tempfile.mkdtemp(prefix="mr-"))  # short: unix socket paths are limited
    socket = folder / "redis.sock"
    saved = app.conf.broker_url, app.conf.result_backend
    assert not hasattr(test_settings, "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS") or (
        test_settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS == production.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS
    ), "the suite must run with the production reconnect policy, or this test proves nothing"
    quiesce_session_worker()  # the fixtures before this one (personas) queued memory work: not to run meanwhile
    server = {"process": start_embedded_redis(socket)}
    settings.REDIS_URL = f"unix://{socket}"
    get_redis.cache_clear()
    point_celery_at(settings.REDIS_URL)

    def restart() -> None:
        server["process"] = start_embedded_redis(socket)

    def halt() -> None:
        stop([server["process"]])

    yield type("Server", (), {"socket": socket, "start": staticmethod(restart), "stop": staticmethod(halt)})
    halt()
    app.conf.broker_url, app.conf.result_backend = saved
    point_celery_at_saved(saved)
    get_redis.cache_clear()
    shutil.rmtree(folder, ignore_errors=True)


def point_celery_at_saved(saved) -> None:
    app.conf.broker_url, app.conf.result_backend = saved
    app._pool = None
    app.amqp._producer_pool = None
    if hasattr(app._local, "backend"):
        del app._local.backend


def queued(socket: Path) -> int:
    from django.conf import settings

    return redis.Redis(unix_socket_path=str(socket)).llen(settings.CELERY_TASK_DEFAULT_QUEUE)


def timed_save(sample, author, label: str, critique: str) -> float:
    started = time.monotonic()
    add_feedback(sample, author, label, critique)
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_saves_and_health_stay_fast_while_redis_is_stopped_and_dispatch_resumes(personas, own_redis, client):
    project = personas.project
    assert timed_save(add_sample(project, "up"), personas.reviewer, "fail", "Before the outage.") < 2
    assert queued(own_redis.socket) >= 1  # the memory work reached the broker

    own_redis.stop()
    durations = [
        timed_save(add_sample(project, f"down-{n}"), personas.reviewer, "fail", f"During the outage {n}.")
        for n in range(3)
    ]
    assert Feedback.objects.filter(sample__external_id__startswith="down-").count() == 3  # nothing lost
    print("saves with Redis stopped took", [round(d, 2) for d in durations])
    assert max(durations) < 2, durations

    started = time.monotonic()
    response = client.get("/health/")
    assert response.status_code == 503
    print("health with Redis stopped took", round(time.monotonic() - started, 2))
    assert time.monotonic() - started < 2.5

    own_redis.start()
    before = queued(own_redis.socket)
    assert timed_save(add_sample(project, "back"), personas.reviewer, "fail", "After the outage.") < 2
    assert queued(own_redis.socket) > before  # dispatch works again once Redis is back


@pytest.mark.django_db
def test_health_answers_within_two_seconds_when_no_worker_answers(monkeypatch):
    from functools import partial

    from memalign_site import health

    # A broker that works and no worker on the queue: the round trip can only time out.
    monkeypatch.setitem(health.CHECKS, "worker", partial(health.check_worker, queue="memalign-test-nobody-listens"))

    started = time.monotonic()
    results = {r["name"]: r for r in health.run_checks()}
    assert time.monotonic() - started < 2.5
    assert results["worker"]["ok"] is False and results["database"]["ok"] is True


@pytest.mark.django_db
def test_health_details_are_for_staff_only_in_production(client, settings):
    settings.DEBUG = False
    body = client.get("/health/").content.decode()
    assert "sqlite" not in body and "postgresql" not in body and "redis answers" not in body
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("staff", "s@example.com", "pw", is_staff=True))
    from django.db import connection

    assert connection.vendor in client.get("/health/").content.decode()


@pytest.mark.worker  # starts `celery worker` processes of its own
@pytest.mark.django_db(transaction=True)
def test_the_repair_runs_as_soon_as_the_broker_is_back(personas, own_redis, chroma_server, settings):
    """A real worker process on the test's Redis: a critique saved while Redis is stopped is embedded once it
    restarts. A process of its own, so the suite's in-process worker never follows the test's broker."""
    from memory import episodic
    from tests.test_memory_faults import ROOT, database_url, embed_queue

    queue = f"outage-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "memalign_site.settings_test",
        "REDIS_URL": settings.REDIS_URL,
        "CHROMA_URL": chroma_server,
        "MEMALIGN_TEST_QUEUE": queue,
        "MEMALIGN_REPAIR_ON_CONNECT": "1",  # what production does; the suite's own workers leave it off
    }
    log = Path(tempfile.mkdtemp(prefix="outage-log-")) / "worker.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "memalign_site",
        "worker",
        "--pool",
        "solo",
        "-Q",
        f"{queue},{embed_queue(queue)}",
        "--loglevel",
        "INFO",
    ]
    with log.open("wb") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while b" ready." not in log.read_bytes():  # Celery's own start-up line: connected and consuming
            assert worker.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the worker process never became ready"
            time.sleep(0.5)
        own_redis.stop()
        feedback = add_feedback(
            add_sample(personas.project, "outage"), personas.reviewer, "fail", "Saved while Redis was down."
        )
        time.sleep(1)
        own_redis.start()  # empty: nothing queued survived, only a repair can embed the critique
        deadline = time.monotonic() + 60
        while feedback.pk not in episodic.entries(personas.project.pk):
            assert time.monotonic() < deadline, "the critique saved during the outage was not repaired within 60 s"
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(30)
