"""Faults: a worker killed in the middle of a distillation, and the episodic store as a Chroma server.

These tests run real `celery worker` processes and a real `chroma run` server, as at scale.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from memalign_site.celery import app
from memory import distil, episodic
from memory.dispatch import repair_queued_key
from memory.models import DistilledFeedback, MemoryVersion, Principle
from memory.redis_client import get_redis
from tests.conftest import add_feedback, add_sample, wait_for

ROOT = Path(__file__).resolve().parents[1]
DISTILL = "record_principles"


def database_url() -> str:
    db = connection.settings_dict  # the test database, once pytest-django has created it
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def embed_queue(queue: str) -> str:
    """The embedding queue that goes with a test's own default queue (memalign_site/settings_test.py)."""
    return f"{queue}-embed"


def worker_process_env(queue: str, chroma_url: str, model_url: str) -> dict[str, str]:
    """The environment of a worker process on this test's queue, database, Chroma server and fake model."""
    return {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "memalign_site.settings_test",
        "MEMALIGN_TEST_QUEUE": queue,
        "CHROMA_URL": chroma_url,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": model_url,
    }


def worker_log(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"memalign-worker-{name}.log"


def start_worker_process(
    queue: str, env: dict[str, str], name: str | None = None, serves: list[str] | None = None
) -> subprocess.Popen:
    """A `celery worker` process serving the test's queue and its embedding queue (the tasks routed there would
    never run otherwise), or only the queues in `serves`; `env` must give it MEMALIGN_TEST_QUEUE=queue. A named
    worker logs to worker_log(name), where wait_until_ready looks for Celery's start-up line."""
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
        ",".join(serves or [queue, embed_queue(queue)]),
        "--loglevel",
        "INFO" if name else "WARNING",
        *(["-n", f"{name}@%h"] if name else []),
    ]
    if not name:
        return subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
    with worker_log(name).open("wb") as output:  # the child keeps its own copy of the file
        return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)


def wait_until_ready(name: str, timeout: float = 180) -> None:
    """Wait until the worker process started with `name` is connected and consuming: Celery's " ready." line in
    its log. (Not a broadcast ping: a ping publishes through this process's producer pool, and a publish to a
    broker that refuses retries without end, so one broken connection would hang the test instead of failing it.)"""
    log = worker_log(name)
    wait_for(lambda: b" ready." in log.read_bytes(), timeout=timeout, message=f"{name} ready")


def start_beat_process(env: dict[str, str]) -> subprocess.Popen:
    schedule = Path(tempfile.mkdtemp(prefix="beat-")) / "schedule"
    command = [sys.executable, "-m", "celery", "-A", "memalign_site", "beat", "--schedule", str(schedule)]
    return subprocess.Popen(
        [*command, "--loglevel", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.django_db(transaction=True)
def test_the_episodic_store_works_against_a_chroma_server(personas, chroma_server):
    sample = add_sample(personas.project, "srv", inputs={"customer_message": "refund for a broken kettle"})
    feedback = add_feedback(sample, personas.reviewer, "fail", "Ignores the refund request.")
    episodic.upsert([feedback])
    assert episodic.get_client().get_settings().chroma_api_impl == "chromadb.api.fastapi.FastAPI"  # HTTP, not embedded
    found = episodic.query(personas.project.pk, "my kettle broke, I want my money back", k=1)
    assert found[0].feedback_id == feedback.pk
    episodic.delete(personas.project.pk, [feedback.pk])
    assert episodic.entries(personas.project.pk) == {}


@pytest.mark.worker  # starts `celery worker` processes of its own
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_distillation_leaves_a_consistent_memory(personas, chroma_server, fake_anthropic, settings):
    queue = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    saved_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue  # only this test's worker processes consume it
    settings.MEMALIGN_EMBED_QUEUE = embed_queue(queue)
    settings.MEMALIGN_DISTILL_DELAY_SECONDS = 0.05
    env = {
        **worker_process_env(queue, chroma_server, fake_anthropic.url),
        # No short visibility timeout: the new worker resumes at once because it queues the repair when it
        # connects (even seconds after the first worker queued one: memory.tasks.repair_all clears the flag),
        # and the killed worker's regeneration lease runs out within seconds (memory/locks.py).
        "MEMALIGN_REPAIR_ON_CONNECT": "1",
        "MEMALIGN_DISTILL_QUIET_MS": "200",
    }
    personas.project.provider = "anthropic"
    personas.project.save()
    fake_anthropic.latency = 5.0
    # A worker an earlier test stopped may have left the "repair queued" flag (30 s) without running its repair:
    # this test's workers would then queue none, and the killed worker's work would wait for its lease.
    get_redis().delete(repair_queued_key())
    first = start_worker_process(queue, env, name=f"first-{queue}")
    second = None
    try:
        wait_until_ready(f"first-{queue}")  # start-up takes long on a busy machine: not what is measured
        feedback = [
            add_feedback(
                add_sample(personas.project, f"k{i}"), personas.reviewer, "fail", f"Critique {i}: sounds robotic."
            )
            for i in range(3)
        ]
        wait_for(lambda: fake_anthropic.request_count >= 1, timeout=60, message="the distillation call to start")
        first.send_signal(signal.SIGKILL)  # in the middle of the provider call
        first.wait(10)
        # Nothing was half-written: no principle, nothing marked distilled, no version.
        assert not Principle.objects.filter(project=personas.project).exists()
        assert not DistilledFeedback.objects.filter(feedback__in=feedback).exists()
        assert not MemoryVersion.objects.filter(project=personas.project).exists()
        fake_anthropic.latency = 0.0
        second = start_worker_process(queue, env, name=f"second-{queue}")
        wait_until_ready(f"second-{queue}")  # start-up takes long on a busy machine: not what is measured
        restarted = time.monotonic()
        # The killed worker's tasks wait for the visibility timeout; the new worker's repair does their work.
        wait_for(
            lambda: not distil.pending_feedback(personas.project).exists(),
            timeout=90,
            message="distillation after the restart",
        )
        print(f"distilled {time.monotonic() - restarted:.1f} s after the new worker was ready")
        assert time.monotonic() - restarted < 60
        wait_for(lambda: len(episodic.entries(personas.project.pk)) == 3, timeout=30, message="three episodic entries")
        assert MemoryVersion.objects.filter(project=personas.project, trigger="distill", status="ok").count() >= 1
        call_command("check_memory", personas.project.slug)  # exits 0: the database and Chroma agree
    finally:
        app.conf.task_default_queue = saved_queue
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)
