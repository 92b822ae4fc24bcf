"""Runs that heal (judging/run_repair.py): a run whose chunk messages were lost is queued again by the watch,
a chunk another worker is judging is left to it, and a 20 s Redis outage in the middle of a run, with a real
worker process and a real beat process, delays the run by less than a minute, with nothing judged twice."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from judging import run_repair, runs
from judging.models import Judgement, JudgeRun
from judging.tasks import repair_runs
from memalign_site.celery import app
from tests.conftest import add_sample, wait_for
from tests.test_memory_faults import (
    database_url,
    embed_queue,
    start_beat_process,
    start_worker_process,
    wait_until_ready,
)
from tests.test_redis_outage import own_redis  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def samples(project, count: int) -> None:
    for i in range(count):
        add_sample(project, f"r{i}", inputs={"question": f"Where is my parcel number {i}?"})


def lost_run(personas, count: int, chunk_size: int) -> JudgeRun:
    """A running run none of whose chunks reached the broker (as when Redis restarted empty)."""
    samples(personas.project, count)
    run = runs.start(personas.project, personas.owner, JudgeRun.Scope.ALL, in_process=True, chunk_size=chunk_size)
    JudgeRun.objects.filter(pk=run.pk).update(dispatched_at=timezone.now() - timedelta(minutes=5))
    run.refresh_from_db()
    return run


def test_a_fresh_run_is_not_stalled_and_a_silent_one_is(personas, settings):
    run = lost_run(personas, count=4, chunk_size=2)
    now = timezone.now()
    assert run_repair.stalled(run, now) is True
    assert (
        run_repair.stalled(run, run.dispatched_at + timedelta(seconds=settings.MEMALIGN_RUN_STALL_SECONDS - 1)) is False
    )
    with run_repair.chunk_lease(run.pk, 1) as mine:
        assert mine is True
        assert run_repair.stalled(run, now) is False  # a worker is on it: slow, not lost
        with run_repair.chunk_lease(run.pk, 1) as also_mine:
            assert also_mine is False  # a second delivery of the chunk leaves it to the first
    assert run_repair.stalled(run, now) is True


def test_the_watch_requeues_only_unfinished_chunks_and_the_run_completes_once(personas, celery_worker):
    run = lost_run(personas, count=6, chunk_size=2)
    runs.judge_chunk(run.pk, 0)  # chunk 0 judged in this process; chunks 1 and 2 were lost
    assert run_repair.unfinished_chunks(run) == [1, 2]
    quiet = timezone.now() - timedelta(minutes=5)
    JudgeRun.objects.filter(pk=run.pk).update(started_at=quiet, progress_at=quiet)

    assert repair_runs.delay().get(timeout=30) == {"re-queued runs": [run.pk]}
    wait_for(lambda: JudgeRun.objects.get(pk=run.pk).finished, message="the healed run to finish")
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("done", 6, 0)
    assert sorted(Judgement.objects.filter(run=run).values_list("sample_id", flat=True)) == sorted(run.sample_ids)
    assert repair_runs.delay().get(timeout=30) == {"re-queued runs": []}  # a finished run is left alone


@pytest.mark.worker  # starts `celery worker` and `celery beat` processes of its own
def test_a_run_survives_a_20_second_redis_outage(personas, own_redis, chroma_server, fake_anthropic, settings):  # noqa: F811
    """Production's watch and stall settings; the worker and beat are processes of their own on the test's Redis."""
    total = 96
    samples(personas.project, total)
    personas.project.provider, personas.project.provider_concurrency = "anthropic", 2
    personas.project.save()
    fake_anthropic.latency = 0.25
    queue = f"heal-{os.getpid()}-{time.monotonic_ns()}"
    saved_queue, app.conf.task_default_queue = app.conf.task_default_queue, queue
    settings.MEMALIGN_EMBED_QUEUE = embed_queue(queue)
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "memalign_site.settings_test",
        "REDIS_URL": settings.REDIS_URL,
        "CHROMA_URL": chroma_server,
        "MEMALIGN_TEST_QUEUE": queue,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake_anthropic.url,
        "MEMALIGN_REPAIR_ON_CONNECT": "1",  # what production does
    }
    worker, beat = start_worker_process(queue, env, name=f"heal-{queue}"), start_beat_process(env)
    try:
        wait_until_ready(f"heal-{queue}")  # start-up takes long on a busy machine: not what is measured
        run = runs.start(personas.project, personas.owner, JudgeRun.Scope.ALL, chunk_size=8)
        wait_for(lambda: Judgement.objects.filter(run=run).count() >= 16, timeout=120, message="the first verdicts")
        own_redis.stop()
        time.sleep(20)
        stopped_at = Judgement.objects.filter(run=run).count()
        own_redis.start()  # empty: the run's queued chunks are gone
        back = time.monotonic()
        wait_for(lambda: JudgeRun.objects.get(pk=run.pk).finished, timeout=120, message="the run to end")
        after_recovery = time.monotonic() - back
    finally:
        app.conf.task_default_queue = saved_queue
        for process in (worker, beat):
            process.terminate()
            process.wait(20)
    run.refresh_from_db()
    calls = sum(1 for r in fake_anthropic.requests if r.path.endswith("/messages"))
    print(f"stopped at {stopped_at} of {total}; finished {after_recovery:.1f} s after Redis came back; {calls} calls")
    assert stopped_at < total
    assert (run.status, run.done, run.failed) == ("done", total, 0)
    judged = list(Judgement.objects.filter(run=run).values_list("sample_id", flat=True))
    assert sorted(judged) == sorted(run.sample_ids)  # every sample exactly once
    # Judging what was left takes about (total - stopped_at) / 2 * 0.25 s: the rest is the delay.
    assert after_recovery < 60
