"""Issue 23: a CPU-bound embedding backlog never delays a distillation (the embedding queue has a worker process of
its own, as `make run` starts them), and each text is embedded once: whoever meets the embedding run on the same
samples takes its vectors instead of computing them again."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from memalign_site.celery import app
from memory import distil, embeddings, episodic, tasks, vectors
from memory.redis_client import get_redis
from reviews.projects import create_project
from tests.conftest import add_feedback, add_sample, wait_for
from tests.test_memory_faults import embed_queue, start_worker_process, wait_until_ready, worker_process_env


@pytest.fixture
def own_queues(settings):
    """Queues of this test's own: the suite's worker never takes its tasks. Emptied afterwards."""
    queue = f"lanes-{os.getpid()}-{time.monotonic_ns()}"
    saved = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    settings.MEMALIGN_EMBED_QUEUE = embed_queue(queue)
    yield queue
    app.conf.task_default_queue = saved
    get_redis().delete(queue, embed_queue(queue))


@pytest.fixture
def counted_embedding(monkeypatch):
    """Every text the model embeds in this process, counted; each embed() call takes 2 s longer (a long batch, so
    the paths overlap), and no vector is remembered from one call to the next (a repeat would be hidden)."""
    embedded: Counter[str] = Counter()
    guard = threading.Lock()
    real = embeddings.embed

    def slow_counting_embed(texts):
        with guard:
            embedded.update(texts)
        time.sleep(2)
        return real(texts)

    monkeypatch.setattr(embeddings, "embed", slow_counting_embed)
    monkeypatch.setattr(embeddings, "_CACHE", {})
    monkeypatch.setattr(embeddings, "_CACHE_LIMIT", 0)
    return embedded


def in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def distinct_parts(samples) -> set[str]:
    return {text or " " for sample in samples for text in vectors.sample_part_texts(sample)}


@pytest.mark.worker  # starts `celery worker` processes of its own, one per queue as `make run` does
@pytest.mark.django_db(transaction=True)
def test_an_embedding_backlog_does_not_delay_a_distillation(personas, chroma_server, fake_anthropic, own_queues):
    queue = own_queues
    env = worker_process_env(queue, chroma_server, fake_anthropic.url)
    names = {f"embed-{queue}": [embed_queue(queue)], f"memory-{queue}": [queue]}
    workers = [start_worker_process(queue, env, name=name, serves=serves) for name, serves in names.items()]
    backlog = [
        create_project(personas.owner, name=f"Import {n}", criterion="Helpful?", label_kind="pass_fail") for n in (1, 2)
    ]
    try:
        for name in names:
            wait_until_ready(name)  # start-up takes long on a busy machine: not what is measured
        # Two embedding runs queued, each as long as the test wants: the first one waits for its project's
        # embedding lock (held here, as a long batch would hold it), the second waits behind it.
        with vectors.embedding_lock(backlog[0].pk), vectors.embedding_lock(backlog[1].pk):
            for project in backlog:
                for i in range(3):
                    add_sample(project, f"imp{i}", inputs={"q": f"Imported question {i}?"})
            wait_for(
                lambda: get_redis().exists(tasks._key("embed-running", backlog[0].pk)),
                timeout=60,
                message="the first embedding run to start",
            )
            personas.project.provider = "anthropic"
            personas.project.save()
            feedback = add_feedback(add_sample(personas.project, "new"), personas.reviewer, "fail", "Too curt.")
            wait_for(
                lambda: not distil.pending_feedback(personas.project).exists(),
                timeout=90,
                message="the distillation, with the embedding queue busy",
            )
            assert fake_anthropic.tool_counts["record_principles"] >= 1
            # Distilled while the embedding backlog still waits: no sample of either import has a vector yet.
            assert all(vectors.pending(project).count() == 3 for project in backlog)
            assert feedback.pk not in episodic.entries(personas.project.pk)  # its sample is in the backlog too
        # The backlog runs once let go; the critique's entry is stored when its sample's vector is.
        wait_for(
            lambda: not any(vectors.pending(p).exists() for p in [*backlog, personas.project]),
            timeout=120,
            message="the embedding backlog",
        )
        wait_for(lambda: feedback.pk in episodic.entries(personas.project.pk), timeout=60, message="the episodic entry")
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(30)


@pytest.mark.django_db(transaction=True)
def test_the_episodic_update_takes_the_vectors_of_the_embedding_run(personas, own_queues, counted_embedding):
    """The embedding run and the episodic update meet on samples created just before their critiques (the burst
    of issue 23): the update leaves them to the run, and the run's vectors serve the episodic store and the
    learned judge's features. Nothing consumes the test's queues: the tasks run here, as a worker would run them."""
    samples = [
        add_sample(personas.project, f"b{i}", inputs={"q": f"Where is parcel {i}?"}, outputs=f"Sent on day {i % 3}.")
        for i in range(12)
    ]
    feedback = [add_feedback(sample, personas.reviewer, "fail", f"Curt {i}.") for i, sample in enumerate(samples)]
    run = in_thread(lambda: tasks.embed_samples(personas.project.pk))
    wait_for(
        lambda: counted_embedding.total() > 0, timeout=30, message="the embedding run to be embedding"
    )  # its embed() call takes 2 s
    assert tasks.update_episodic(personas.project.pk) == {"stored": 0, "gone": 0, "waiting for their vectors": 12}
    run.join(60)
    assert not run.is_alive()
    assert get_redis().exists(tasks._key("episodic-queued", personas.project.pk))  # the run queued the update again
    assert tasks.update_episodic(personas.project.pk) == {"stored": 12, "gone": 0, "waiting for their vectors": 0}
    assert set(episodic.entries(personas.project.pk)) == {f.pk for f in feedback}
    vectors.part_vectors(samples)  # the learned judge's features: stored with the vectors
    assert set(counted_embedding) == distinct_parts(samples)
    assert max(counted_embedding.values()) == 1  # each text embedded exactly once


@pytest.mark.django_db(transaction=True)
def test_a_caller_that_meets_the_embedding_run_waits_for_its_vectors(personas, own_queues, counted_embedding):
    """Judging, ranking or the learned judge asking for vectors the background run is computing right now."""
    samples = [
        add_sample(personas.project, f"w{i}", inputs={"q": f"Can I change flight {i}?"}, outputs=f"Yes, fee {i}.")
        for i in range(6)
    ]
    run = in_thread(lambda: vectors.embed_pending(personas.project))
    wait_for(lambda: counted_embedding.total() > 0, timeout=30, message="the run to be embedding")
    assert get_redis().exists(vectors.embedding_lock_key(personas.project.pk))
    rows = vectors.for_samples(samples)  # waits for the run's batch, then reads what it stored
    run.join(60)
    assert rows.shape == (6, embeddings.DIMENSIONS) and all(abs(float(row @ row) - 1) < 1e-4 for row in rows)
    assert set(counted_embedding) == distinct_parts(samples)
    assert max(counted_embedding.values()) == 1
