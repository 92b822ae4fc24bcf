"""With the broker unreachable, a saved critique stays saved, and the periodic repair catches up later."""

from types import SimpleNamespace

import pytest

from memalign_site.celery import RepairOnConnect, app
from memory import dispatch, distil, episodic
from memory.redis_client import get_redis
from memory.tasks import repair_all, repair_project
from reviews.models import Feedback, Project
from tests.conftest import add_feedback, add_sample, quiesce_session_worker, wait_for

DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker_down(settings):
    quiesce_session_worker()
    saved = app.conf.broker_url, app.conf.broker_connection_max_retries
    app.conf.broker_url, app.conf.broker_connection_max_retries = DEAD, 0
    reset_connections()
    settings.REDIS_URL = DEAD
    get_redis.cache_clear()
    yield
    app.conf.broker_url, app.conf.broker_connection_max_retries = saved
    reset_connections()
    get_redis.cache_clear()


def reset_connections() -> None:
    # Celery caches its connection and producer pools: forget them so the next send uses the current URL.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_a_critique_saved_while_the_broker_is_down_is_kept_and_repaired(personas, broker_down, settings):
    feedback = add_feedback(add_sample(personas.project, "down"), personas.reviewer, "fail", "Saved during an outage.")
    assert Feedback.objects.filter(pk=feedback.pk).exists()  # the save succeeded; dispatch failed quietly
    assert feedback.pk not in episodic.entries(personas.project.pk)
    assert distil.pending_feedback(personas.project).filter(pk=feedback.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_periodic_repair_embeds_what_an_outage_missed(personas, celery_worker):
    sample = add_sample(personas.project, "missed")
    # bulk_create sends no signal: the feedback is in the database and no task was dispatched, as in an outage.
    [feedback] = Feedback.objects.bulk_create(
        [
            Feedback(
                project=personas.project,
                sample=sample,
                author=personas.reviewer,
                label="fail",
                critique="Missed.",
                agrees_with_judge=False,
            )
        ]
    )
    assert repair_all.delay().get(timeout=30)["projects"] == Project.objects.count()  # one repair task per project
    wait_for(lambda: feedback.pk in episodic.entries(personas.project.pk), message="the repaired episodic entry")


@pytest.mark.django_db
def test_the_repair_queues_work_whose_queued_flag_belongs_to_a_dead_worker(personas, monkeypatch):
    # A regeneration and an embedding were queued (their flags are set), then the worker holding both messages
    # died: the broker hands them out again only after its visibility timeout, an hour. The repair must not
    # trust the flags.
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args, **kw: sent.append(name))
    sample = add_sample(personas.project, "held")
    [feedback] = Feedback.objects.bulk_create(
        [Feedback(project=personas.project, sample=sample, author=personas.reviewer, label="fail", critique="Held.")]
    )
    add_sample(personas.project, "unreviewed")  # no feedback: nothing but the embedding run gives it a vector
    redis = get_redis()
    for kind in ("regen-queued", "embed-queued"):
        redis.set(dispatch.key(kind, personas.project.pk), 1)
    assert distil.pending_feedback(personas.project).filter(pk=feedback.pk).exists()
    repair_project(personas.project.pk)
    assert "memory.tasks.regenerate_principles" in sent
    assert "memory.tasks.embed_samples" in sent


@pytest.mark.django_db
def test_a_worker_that_connects_after_the_repair_started_queues_the_next_one(personas, monkeypatch, settings):
    # Workers connecting together queue one repair; a worker replacing a killed one seconds later must queue its
    # own, or the dead worker's distillation waits for the periodic repair.
    settings.MEMALIGN_REPAIR_ON_CONNECT = True
    queued = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: queued.append(name))
    monkeypatch.setattr(repair_project, "delay", lambda project_id: None)
    consumer = SimpleNamespace(app=app)  # all the bootstep reads of the worker's consumer
    connect = RepairOnConnect(consumer).start
    get_redis().delete(dispatch.repair_queued_key())
    connect(consumer)
    connect(consumer)  # a second worker of the same start: coalesced
    assert queued == settings.MEMALIGN_REPAIR_TASKS
    repair_all()  # the repair starts
    connect(consumer)  # the replacement worker
    assert queued == settings.MEMALIGN_REPAIR_TASKS * 2
