"""What a judgment reuses (issue 23): one provider client per process, its connection kept across calls; the
principles' vectors stored once per text and read after a restart; the principle set read once per memory
state. Speed itself is measured by bench/judge_api.py."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest
from django.test import Client

from api import tokens
from memory import budget, dispatch, embeddings, principle_vectors, versions
from memory.llm import clients
from memory.models import Principle, PrincipleVector
from tests.conftest import add_feedback, add_sample
from tests.fake_openai import FakeOpenAI

TOPICS = ["a refund for a broken kettle", "a parcel that is late", "a password reset email", "thanks for kind service"]


def judge_three_times(personas) -> None:
    _, raw = tokens.create_token(personas.owner, "ci")
    for n in range(3):
        response = Client().post(
            f"/api/v1/projects/{personas.project.slug}/judge",
            json.dumps({"inputs": f"Where is my refund {n}?", "outputs": "It is on its way."}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )
        assert response.status_code == 200, response.content


def test_the_judge_api_builds_one_anthropic_client_and_keeps_its_connection(
    personas, fake_anthropic, monkeypatch: pytest.MonkeyPatch
):
    built: list[dict[str, Any]] = []

    class CountingAnthropic(anthropic.Anthropic):
        def __init__(self, **options: Any) -> None:
            built.append(options)
            super().__init__(**options)

    monkeypatch.setattr(anthropic, "Anthropic", CountingAnthropic)  # clients imports the SDK when it builds one
    monkeypatch.setattr(clients, "_anthropic", {})
    personas.project.provider = "anthropic"
    personas.project.save(update_fields=["provider"])

    judge_three_times(personas)

    assert len(built) == 1
    assert fake_anthropic.request_count == 3 and len(fake_anthropic.connections) == 1


def test_the_judge_api_builds_one_client_per_openai_compatible_server_and_keeps_its_connection(
    personas, settings, monkeypatch: pytest.MonkeyPatch
):
    built: list[str] = []

    class CountingClient(httpx.Client):
        def __init__(self, **options: Any) -> None:
            built.append(options["base_url"])
            super().__init__(**options)

    monkeypatch.setattr(clients.httpx, "Client", CountingClient)
    monkeypatch.setattr(clients, "_openai_compatible", {})
    with FakeOpenAI() as server:
        settings.OPENAI_COMPATIBLE_BASE_URL = server.url
        settings.OPENAI_COMPATIBLE_API_KEY = "local-key"
        personas.project.provider, personas.project.model_name = "openai_compatible", "qwen2.5-7b-instruct"
        personas.project.provider_base_url = server.url
        personas.project.save()

        judge_three_times(personas)

        assert built == [server.url] and len(server.requests) == 3 and len(server.connections) == 1


@pytest.fixture
def over_budget(personas):
    """Twelve principles (the last pinned) written as a version, and a budget that holds only a few."""
    project = personas.project
    Principle.objects.filter(project=project).update(retired=True)
    for topic in TOPICS:
        for n in range(3):
            Principle.objects.create(project=project, text=f"When the customer writes about {topic}, rule {n}.")
    versions.add_manual_principle(project, "Never promise what policy forbids.", "olivia")
    project.principle_budget_tokens = 60
    project.save(update_fields=["principle_budget_tokens"])
    add_feedback(add_sample(project, "s1"), personas.reviewer, "pass", "Fine.")
    return project


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every principle text embedded from now on (the store's own embedding function, counted)."""
    texts: list[str] = []
    real = principle_vectors.embed

    def counting(batch):
        texts.extend(batch)
        return real(batch)

    monkeypatch.setattr(principle_vectors, "embed", counting)
    return texts


def restart() -> None:
    """What a new process starts without: the per-process caches of principle sets and embedded texts."""
    budget._sets.clear()
    embeddings._CACHE.clear()


def test_principle_vectors_are_stored_once_per_text_and_read_after_a_restart(over_budget, embedded):
    project = over_budget
    active = list(versions.active_principles(project).values_list("text", flat=True))
    restart()

    assert principle_vectors.embed_missing(project) == len(active)  # what the background task does
    assert sorted(embedded) == sorted(active)
    assert PrincipleVector.objects.filter(text_hash__in=[principle_vectors.text_hash(t) for t in active]).count() == 13
    assert principle_vectors.embed_missing(project) == 0

    for _ in range(2):
        restart()
        query = embeddings.example_vectors([embeddings.sample_parts("Where is my parcel?", "It is late.")])
        chosen = budget.within_budget(project, budget.principle_set(project), query)
        assert 0 < len(chosen) < len(active) and any("parcel" in p.text for p in chosen)
    assert len(embedded) == len(active)  # nothing embedded again, in either "process"


def test_stored_principle_vectors_are_not_read_under_another_embedding_model(over_budget, embedded, monkeypatch):
    project = over_budget
    active = list(versions.active_principles(project).values_list("text", flat=True))
    assert principle_vectors.embed_missing(project) == len(active)

    monkeypatch.setattr(principle_vectors, "MODEL_ID", "another-model")
    embedded.clear()
    assert sorted(principle_vectors.missing_texts(project)) == sorted(active)
    assert principle_vectors.embed_missing(project) == len(active)
    assert sorted(embedded) == sorted(active)


def test_the_repair_prunes_vectors_that_no_active_principle_has(over_budget, embedded):
    project = over_budget
    active = list(versions.active_principles(project))
    principle_vectors.embed_missing(project)
    Principle.objects.filter(pk=active[0].pk).update(retired=True)

    assert principle_vectors.prune() == 1
    kept = set(PrincipleVector.objects.values_list("text_hash", flat=True))
    assert principle_vectors.text_hash(active[0].text) not in kept
    assert {principle_vectors.text_hash(p.text) for p in active[1:]} <= kept
    assert principle_vectors.prune() == 0


def test_a_new_principle_is_seen_at_once_and_only_its_text_is_embedded(over_budget, embedded):
    project = over_budget
    principle_vectors.embed_missing(project)
    first = budget.principle_set(project)
    assert budget.principle_set(project) is first  # kept while the memory stays as it is
    first.matrix  # noqa: B018  (its vectors, as a verdict over the budget reads them)
    embedded.clear()

    added = versions.add_manual_principle(project, "Always give the parcel's tracking number.", "olivia")

    second = budget.principle_set(project)
    assert second is not first and added.pk in [p.id for p in second.principles]
    assert second.matrix.shape == (len(second.principles), embeddings.DIMENSIONS)
    assert embedded == [added.text]


def test_a_version_written_queues_the_embedding_of_its_principles(
    personas, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "request_principle_embedding", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        versions.add_manual_principle(personas.project, "Answer the question that was asked.", "olivia")
    assert queued == [personas.project.pk]
