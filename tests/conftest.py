"""Shared fixtures: an embedded Redis when REDIS_URL is unset, a real Celery worker, named personas."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.signals import task_received
from django.conf import settings

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright and the ORM share a test

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CHROMIUM = "/usr/bin/chromium"


def shared_dataset(name: str) -> Path:
    """Return a file of ../shared/datasets, or skip: a user's clone does not have that folder."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared datasets exist only on the team's machines")
    return path


# The modules that take longest (measured with --durations), longest first. `make test` runs them first
# (--no-loadscope-reorder keeps this order; xdist would order modules by their number of tests): a module of
# two minutes started last would leave the other process idle meanwhile.
LONG_FIRST = (
    "test_seen_items.py",
    "test_import_background.py",
    "test_semantic_memory.py",
    "test_judge_scale.py",
    "test_run_repair.py",
    "test_settings.py",
    "test_api_live.py",
    "test_browser_review.py",
    "test_memory_faults.py",
    "test_evaluation.py",
)


def pytest_collection_modifyitems(items):
    """Mark what a test needs, so that `-m "not browser and not worker"` is the quick loop while editing:
    `browser` for a test that drives Chromium (the `page` fixture), `worker` for one that needs a Celery worker,
    the session's (the `celery_worker` fixture); tests that start worker processes of their own carry the mark.
    Under pytest-xdist, order the modules: LONG_FIRST, then the others by their number of tests, most first (in
    one process pytest-django's order stays: each module's tests keep it under xdist too, the sort is stable)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        counts = Counter(str(item.path) for item in items)
        rank = {name: i for i, name in enumerate(LONG_FIRST)}
        items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -counts[str(item.path)], str(item.path)))
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "page" in fixtures:
            item.add_marker(pytest.mark.browser)
        if "celery_worker" in fixtures:
            item.add_marker(pytest.mark.worker)


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """Start the embedded Redis the settings point at, unless the environment names a Redis."""
    if os.environ.get("REDIS_URL"):
        yield settings.REDIS_URL
        return
    from memalign_site.launcher import start_embedded_redis, stop

    socket = Path(settings.REDIS_URL.removeprefix("unix://"))
    socket.parent.mkdir(parents=True, exist_ok=True)
    process = start_embedded_redis(socket)
    yield settings.REDIS_URL
    from memalign_site.celery import app

    # Stop the result backend's listener first, or it spends its retries reconnecting to a stopped server.
    consumer = getattr(app.backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
    app.close()
    stop([process])


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, in a thread of this process) on the real broker."""
    import celery.contrib.testing.tasks  # noqa: F401  (registers the ping task the start-up check sends)
    from celery.contrib.testing.worker import start_worker

    from memalign_site.celery import app

    # No remote control: the worker would answer other workers' broadcasts (a starting worker's "hello") through
    # this process's producer pool, which a test may have pointed at a broker it has stopped, and retry that
    # answer without end (a whole run hung so, in the worker's thread). Held tasks are revoked in process instead.
    app.conf.worker_enable_remote_control = False
    task_received.connect(_drop_while_a_test_ends, weak=False)
    _test_ending.clear()  # a session fixture starts before the test's own: its ping check must run
    with (
        django_db_blocker.unblock(),
        start_worker(app, pool="solo", perform_ping_check=True, shutdown_timeout=120, loglevel="WARNING") as worker,
    ):
        yield worker


@pytest.fixture(autouse=True)
def no_work_left_for_the_next_test(request):
    """A test that commits (transaction=True, live_server) leaves no memory work for the session worker: after
    the test, the task the worker is running finishes, and what the test queued but nobody ran is discarded.
    Otherwise that work runs during the database flush (a deadlock on PostgreSQL) or in a later test."""
    marker = request.node.get_closest_marker("django_db")
    commits = (marker is not None and marker.kwargs.get("transaction")) or {
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    _test_ending.clear()  # this test's work runs
    if not commits:
        yield
        return
    # Set up the database fixture first, so that this teardown runs before its flush.
    request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "_django_db_helper")
    yield
    quiesce_session_worker()
    # A task the last one sent (an embedding run queues the episodic update) may reach the worker after the purge:
    # dropped on arrival until the next test starts, or it would run during the flush (a deadlock in CI).
    _test_ending.set()
    quiesce_session_worker()


_test_ending = threading.Event()


def _drop_while_a_test_ends(sender=None, request=None, **kwargs) -> None:
    """celery's task_received, in the session worker: between a committing test's end and the next test, what
    arrives is revoked (the worker checks this set before it runs a task)."""
    from celery.worker import state

    if _test_ending.is_set() and request is not None:
        state.revoked.add(request.id)


def quiesce_session_worker() -> None:
    """The session worker (when this process runs one) finishes the task it is running, and what is queued or held
    for later is dropped. Also before a test points Celery at another broker: a task the worker ran meanwhile would
    send and store through the process's settings, so at a server the test then stops, retrying without end."""
    from celery.worker import state

    from memalign_site.celery import app

    deadline = time.monotonic() + 60
    while state.active_requests and time.monotonic() < deadline:
        time.sleep(0.05)
    for held in list(state.reserved_requests):  # countdown tasks the worker holds until their time
        state.revoked.add(held.id)  # this process's worker: it checks this set before it runs a task
    app.control.purge()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed: `make test` installs it (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost",
        ],
    }


PASSWORD = "correct horse battery staple"


def make_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)


def build_personas() -> SimpleNamespace:
    """An owner, a reviewer, a viewer and an outsider around one pass/fail project, plus a second project."""
    from reviews.models import Membership, Role
    from reviews.projects import create_project

    owner, reviewer, viewer, outsider = (make_user(n) for n in ("olivia", "rafael", "vera", "otto"))
    project = create_project(
        owner, name="Support tone", criterion="Is the reply's tone appropriate?", label_kind="pass_fail"
    )
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    Membership.objects.create(project=project, user=viewer, role=Role.VIEWER)
    other_owner = make_user("oscar")
    other = create_project(other_owner, name="Other team", criterion="Other criterion", label_kind="pass_fail")
    forget_reused_ids(project.pk, other.pk)
    return SimpleNamespace(
        owner=owner,
        reviewer=reviewer,
        viewer=viewer,
        outsider=outsider,
        project=project,
        other_owner=other_owner,
        other=other,
        password=PASSWORD,
    )


def forget_reused_ids(*project_ids: int) -> None:
    """Start with empty episodic stores for these projects, where that is not already certain.

    SQLite may reuse a rolled-back test's ids, and with them a Chroma collection that test filled, and the Redis
    flags of work that test queued (a "training queued" flag would hold back this project's first training):
    drop those. PostgreSQL never hands out an id twice in a run (rollbacks and flushes keep its sequences) and
    each run has its own Chroma namespace, so a new project's collection cannot exist yet there."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    from memory import episodic
    from memory.redis_client import get_redis

    for project_id in project_ids:
        episodic.drop(project_id)
        flags = list(get_redis().scan_iter(match=f"{settings.MEMALIGN_NAMESPACE}:*:{project_id}"))
        if flags:
            get_redis().delete(*flags)


@pytest.fixture
def personas(db):
    """An owner, a reviewer, a viewer and an outsider around one pass/fail project, plus a second project."""
    return build_personas()


def wait_for(condition, timeout: float = 30, message: str = "condition") -> None:
    """Wait until `condition()` is true (work done by a worker or another thread), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.05)


def add_sample(project, external_id: str = "s1", judge_value: str = "pass", **fields):
    from reviews.models import Sample

    defaults = {
        "inputs": {"question": f"question {external_id}"},
        "outputs": f"answer {external_id}",
        "judge_rationale": "Looks fine.",
    }
    return Sample.objects.create(
        project=project, external_id=external_id, judge_value=judge_value, **{**defaults, **fields}
    )


@pytest.fixture
def fake_anthropic(settings):
    """A fake Messages API on 127.0.0.1, and the site configured to send Anthropic calls to it."""
    from tests.fake_anthropic import FakeAnthropic

    with FakeAnthropic() as server:
        settings.ANTHROPIC_API_KEY = "test-key"
        settings.ANTHROPIC_BASE_URL = server.url
        yield server


def add_feedback(sample, author, label: str, critique: str = ""):
    from reviews.feedback import save_feedback

    return save_feedback(sample, author, label, critique)[0]


@pytest.fixture
def chroma_server(settings, tmp_path):
    """A `chroma run` server on 127.0.0.1, and the site's Chroma client pointed at it."""
    from memalign_site.launcher import free_port, start_local_chroma, stop
    from memory import episodic

    port = free_port()
    process = start_local_chroma(tmp_path / "chroma", port)
    settings.CHROMA_URL = f"http://127.0.0.1:{port}"
    episodic.reset_client()
    yield settings.CHROMA_URL
    stop([process])
    settings.CHROMA_URL = ""
    episodic.reset_client()
