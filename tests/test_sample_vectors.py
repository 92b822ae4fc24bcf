"""Embed once, reuse everywhere: samples get their vector in background batches; saving feedback and judging
reuse it; changed content is embedded again."""

import io

import numpy as np
import pytest

from judging import judge
from memory import episodic, vectors
from memory.embeddings import example_vectors
from memory.models import SampleVector
from reviews.importers import import_samples
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample, wait_for


def no_embedding(*args, **kwargs):
    raise AssertionError("embedded again although the vector was stored")


@pytest.mark.django_db
def test_a_stored_vector_is_reused_for_the_episodic_entry_and_for_judging(personas, monkeypatch):
    samples = [
        add_sample(personas.project, f"v{i}", inputs={"q": f"Where is parcel {i}?"}, outputs=f"Sent {i}.")
        for i in range(4)
    ]
    assert vectors.embed_pending(personas.project) == 4 and not vectors.pending(personas.project).exists()
    stored = vectors.for_samples(samples)
    fresh = example_vectors([vectors.sample_vector_parts(s) for s in samples])
    assert np.all(np.sum(stored * fresh, axis=1) > 0.999)  # the vector of the whole sample, as stored
    monkeypatch.setattr(vectors, "embed_cached", no_embedding)
    feedback = add_feedback(samples[0], personas.reviewer, "fail", "Curt.")
    episodic.upsert([feedback])  # what update_episodic does when a critique is saved: no embedding work
    memory = judge.working_memories(personas.project, samples[1:])
    assert [m.examples[0].feedback_id for m in memory] == [feedback.pk] * 3


@pytest.mark.django_db
def test_a_part_that_samples_share_is_embedded_once(personas, monkeypatch):
    from memory import embeddings

    question = "How do I renew a temporary visa after losing my job?"  # asked of three systems
    samples = [
        add_sample(personas.project, f"s{i}", inputs={"q": question}, outputs=f"Answer number {i}.") for i in range(3)
    ]
    embedded: list[str] = []
    real_embed = embeddings.embed

    def counting_embed(texts):
        embedded.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(embeddings, "embed", counting_embed)
    monkeypatch.setattr(embeddings, "_CACHE", {})
    first = vectors.for_samples(samples)
    parts = [vectors.sample_vector_parts(s) for s in samples]
    assert len({p[0] for p in parts}) == 1  # the shared question
    assert sorted(embedded) == sorted({part for sample_parts in parts for part in sample_parts})  # 4 of 6 parts
    again = add_sample(personas.project, "s3", inputs={"q": question}, outputs="Answer number 0.")
    embedded.clear()
    assert np.allclose(vectors.for_samples([again])[0], first[0])  # same parts, same vector
    assert embedded == []  # both parts were met before in this process


@pytest.mark.django_db
def test_changed_content_is_embedded_again(personas):
    sample = add_sample(personas.project, "edit", outputs="First answer.")
    before = vectors.for_samples([sample])[0]
    sample.outputs = "A completely different answer about refunds."
    sample.save()
    after = vectors.for_samples([sample])[0]
    assert float(before @ after) < 0.99
    assert SampleVector.objects.get(sample=sample).fingerprint == vectors.sample_fingerprint(sample)


@pytest.mark.django_db(transaction=True)
def test_imported_samples_are_embedded_in_the_background(celery_worker, personas):
    lines = "\n".join(
        f'{{"external_id": "imp{i}", "inputs": {{"q": "Question {i}?"}}, "outputs": "Answer {i}."}}' for i in range(40)
    )
    import_samples(personas.project, io.BytesIO(lines.encode()), "rows.jsonl", personas.owner)
    wait_for(
        lambda: SampleVector.objects.filter(project=personas.project).count() == 40,
        timeout=90,
        message="40 sample vectors",
    )  # the session worker may still be finishing an earlier test's tasks
    assert not vectors.pending(personas.project).exists()
    assert not Feedback.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_one_embedding_run_per_project_and_a_run_that_meets_another_comes_back_after_it(celery_worker, personas):
    from memory import tasks
    from memory.redis_client import get_redis

    for i in range(3):
        add_sample(personas.project, f"wait{i}", inputs={"q": f"Question {i}?"}, outputs=f"Answer {i}.")
    wait_for(lambda: not vectors.pending(personas.project).exists(), timeout=90, message="the first vectors")
    running = get_redis().lock(tasks._key("embed-running", personas.project.pk), timeout=60)
    # Another worker's run; the session worker's last run (queued by a later sample) may still hold the lock, or
    # still be queued: the vectors are deleted only once the lock is held, so that no such run embeds them again.
    wait_for(lambda: running.acquire(blocking=False), timeout=30, message="the session worker's runs to end")
    try:
        SampleVector.objects.filter(project=personas.project).delete()  # as if new samples had just arrived
        assert tasks.embed_samples(personas.project.pk) == {"skipped": "another run is embedding this project"}
        assert vectors.pending(personas.project).count() == 3  # nothing embedded twice meanwhile
    finally:
        running.release()
    wait_for(
        lambda: not vectors.pending(personas.project).exists(), timeout=60, message="the run that came back after it"
    )


@pytest.mark.django_db
def test_a_sample_listed_twice_is_stored_once(personas):
    """Two reviewers' feedback on one sample bring the sample twice (PostgreSQL refuses an upsert of a row twice)."""
    sample = add_sample(personas.project, "twice", inputs={"q": "Twice?"}, outputs="Once.")
    rows = vectors.for_samples([sample, sample])
    assert np.allclose(rows[0], rows[1]) and SampleVector.objects.filter(sample=sample).count() == 1
