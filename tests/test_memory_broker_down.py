"""With the broker unreachable, a saved critique stays saved, and the periodic repair catches up later."""

import pytest

from memalign_site.celery import app
from memory import distil, episodic
from memory.redis_client import get_redis
from memory.tasks import repair_all
from reviews.models import Feedback, Project
from tests.conftest import add_feedback, add_sample, wait_for

DEAD = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def broker_down(settings):
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
    assert repair_all.delay().get(timeout=30) == {"projects": Project.objects.count()}  # one repair task per project
    wait_for(lambda: feedback.pk in episodic.entries(personas.project.pk), message="the repaired episodic entry")
