"""The memory engine through a real Celery worker, real Redis and real Chroma.

Feedback is saved as the review page saves it; the signals dispatch tasks on commit; the worker does the rest.
"""

from __future__ import annotations

import math

import pytest

from memory import distil, episodic
from memory.models import MemoryVersion, Principle
from reviews.feedback import delete_feedback
from tests.conftest import add_feedback, add_sample, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
DISTILL = "record_principles"


@pytest.fixture
def quick(settings):
    settings.MEMALIGN_DISTILL_DELAY_SECONDS = 0.05
    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 0.3


def test_a_critique_becomes_retrievable(celery_worker, personas):
    sample = add_sample(personas.project, "late", inputs={"customer_message": "My parcel is four days late"})
    feedback = add_feedback(sample, personas.reviewer, "fail", "Over-promises a delivery date.")
    wait_for(lambda: feedback.pk in episodic.entries(personas.project.pk), message="the feedback in Chroma")
    other = add_sample(personas.project, "late-2", inputs={"customer_message": "Where is my parcel? It is late"})
    found = episodic.query(personas.project.pk, other.inputs_text(), k=1)
    assert found[0].feedback_id == feedback.pk and found[0].label == "fail"


def test_deleting_a_critique_removes_it_and_retires_its_principle(celery_worker, personas, quick):
    sample = add_sample(personas.project, "grief")
    feedback = add_feedback(
        sample,
        personas.reviewer,
        "fail",
        "A cheerful generic sign-off to someone who just lost their mother ignores the emotional context of the message.",
    )
    wait_for(lambda: Principle.objects.filter(project=personas.project, retired=False).exists(), message="a principle")
    principle = Principle.objects.get(project=personas.project)
    assert principle.sources.get().feedback_id == feedback.pk
    delete_feedback(feedback)
    wait_for(lambda: feedback.pk not in episodic.entries(personas.project.pk), message="removal from Chroma")
    wait_for(lambda: Principle.objects.get(pk=principle.pk).retired, message="the principle retired")
    assert MemoryVersion.objects.filter(project=personas.project, trigger="unalign").exists()


def test_a_burst_of_100_critiques_costs_a_few_distillation_calls(celery_worker, personas, fake_anthropic, settings):
    """200 ms per call at the fake server; batches of 25: at most ceil(100 / 25) + 1 = 5 distillation calls."""
    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 1.5  # production's quiet period, which this bound is about
    fake_anthropic.latency = 0.2
    personas.project.provider = "anthropic"
    personas.project.save()
    samples = [add_sample(personas.project, f"b{i}") for i in range(100)]
    for i, sample in enumerate(samples):
        add_feedback(
            sample,
            personas.reviewer,
            "fail",
            f"Critique number {i}: the reply sounds robotic and ignores the customer's frustration.",
        )
    wait_for(lambda: not distil.pending_feedback(personas.project).exists(), timeout=90, message="all 100 distilled")
    calls = fake_anthropic.tool_counts.get(DISTILL, 0)
    bound = math.ceil(100 / settings.MEMALIGN_DISTILL_BATCH_SIZE) + 1
    assert 1 <= calls <= bound, f"{calls} distillation calls for a burst of 100 (bound {bound})"
    wait_for(lambda: len(episodic.entries(personas.project.pk)) == 100, message="100 episodic entries")


def test_a_429_is_retried_and_the_run_succeeds(celery_worker, personas, fake_anthropic, quick):
    personas.project.provider = "anthropic"
    personas.project.save()
    fake_anthropic.push_error(429, retry_after_ms=50)
    feedback = add_feedback(add_sample(personas.project, "r"), personas.reviewer, "fail", "Blames the customer.")
    wait_for(lambda: not distil.pending_feedback(personas.project).exists(), message="distillation after the 429")
    assert fake_anthropic.request_count == 2  # the 429, then the retry that succeeded
    version = MemoryVersion.objects.get(project=personas.project, trigger="distill")
    assert version.status == "ok" and version.usage["calls"] == 1
    assert Principle.objects.get(project=personas.project).sources.get().feedback_id == feedback.pk


def test_an_outage_is_recorded_then_retried_until_it_succeeds(celery_worker, personas, fake_anthropic, quick, settings):
    personas.project.provider = "anthropic"
    personas.project.save()
    fake_anthropic.push_error(500, times=4)  # the SDK's own attempts (max_retries=3) all fail: the task retries later
    add_feedback(add_sample(personas.project, "o"), personas.reviewer, "fail", "Too curt.")
    wait_for(lambda: not distil.pending_feedback(personas.project).exists(), timeout=30, message="recovery")
    triggers = list(
        MemoryVersion.objects.filter(project=personas.project).order_by("number").values_list("status", flat=True)
    )
    assert triggers == ["failed", "ok"]
    assert "500" in MemoryVersion.objects.get(project=personas.project, status="failed").error


def test_noted_feedback_is_stored_in_one_batch_and_put_back_when_storing_fails(personas, monkeypatch):
    from memory import tasks, vectors
    from memory.redis_client import get_redis
    from reviews.models import Feedback

    project = personas.project
    samples = [
        add_sample(project, f"n{i}", inputs={"customer_message": f"Question {i} about my order"}) for i in range(12)
    ]
    # bulk_create sends no signal: the ids are noted by hand, as request_episodic_update notes them.
    feedback = Feedback.objects.bulk_create(
        [
            Feedback(
                project=project,
                sample=s,
                author=personas.reviewer,
                label="fail",
                critique=f"Critique {i}.",
                agrees_with_judge=False,
            )
            for i, s in enumerate(samples)
        ]
    )
    vectors.embed_pending(project)  # the embedding run's work: the update stores the vectors it made
    key = tasks._key("episodic-pending", project.pk)
    redis = get_redis()
    redis.sadd(key, *[f.pk for f in feedback])
    upserts = []
    real_upsert = episodic.upsert
    monkeypatch.setattr(episodic, "upsert", lambda batch: upserts.append(len(batch)) or real_upsert(batch))

    gone = feedback.pop()
    gone.delete()  # deleted after it was noted: counted as gone, never stored
    assert tasks.update_episodic.run(project.pk) == {"stored": 11, "gone": 1, "waiting for their vectors": 0}
    assert upserts == [11]  # one Chroma upsert for the whole burst
    assert set(episodic.entries(project.pk)) == {f.pk for f in feedback}
    assert redis.scard(key) == 0

    redis.sadd(key, feedback[0].pk)
    monkeypatch.setattr(episodic, "upsert", lambda batch: (_ for _ in ()).throw(ConnectionError("Chroma is down")))
    with pytest.raises(ConnectionError):
        tasks.update_episodic.run(project.pk)
    assert redis.smembers(key) == {str(feedback[0].pk).encode()}  # put back for the retry: never lost
