"""The per-project figures cache (reviews.figures): pages read their counts from it, and every write path makes
the next page show the write — a user never sees a figure from before their own save, delete or import.

These tests commit (transaction=True): inside a test's rolled-back transaction the cache is not used at all."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.db import transaction

from reviews import figures, queue
from reviews.importers import import_samples
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample, build_personas

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people():
    return build_personas()


def stat(client, project, name: str) -> int:
    body = client.get(f"/p/{project.slug}/").content.decode()
    found = re.search(rf'data-stat="{name}">(\d+)<', body)
    assert found, body
    return int(found.group(1))


def queue_counts(client, project) -> dict[str, int]:
    body = client.get(f"/p/{project.slug}/queue/?filter=all").content.decode()
    return {name: int(n) for name, n in re.findall(r'data-filter="(\w+)">[^<]*<span class="count">(\d+)</span>', body)}


def test_a_figure_is_computed_once_until_the_project_changes(people):
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    pid = people.project.pk
    assert figures.cached(pid, "probe", compute) == 1
    assert figures.cached(pid, "probe", compute) == 1  # from the cache
    assert figures.cached(people.other.pk, "probe", compute) == 2  # another project's own
    figures.changed(pid)
    assert figures.cached(pid, "probe", compute) == 3


def test_inside_a_transaction_figures_are_computed_and_not_kept(people):
    pid, calls = people.project.pk, []
    with transaction.atomic():
        assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 1
        assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 2
    # What the transaction saw was not stored: outside, computed afresh (then kept).
    assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 3
    assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 3


def test_a_change_counts_only_once_committed(people):
    pid, calls = people.project.pk, []
    assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 1
    before = figures.token(pid)
    with transaction.atomic():
        figures.changed(pid)
        figures.changed(pid)  # one deletion per transaction and project
        assert sum(isinstance(job, figures._Forget) for _, job, _ in transaction.get_connection().run_on_commit) == 1
        # Until the commit, others still read the figure of what they can see.
        assert figures._client().hget(figures._key(pid), figures.TOKEN).decode() == before
    assert figures.token(pid) != before
    assert figures.cached(pid, "probe", lambda: calls.append(1) or len(calls)) == 2


def test_a_figure_computed_before_a_write_is_not_stored_after_it(people):
    """The race the token is for: a page began counting, a write committed, then the page stored its count."""
    pid = people.project.pk

    def compute_while_someone_writes():
        figures.changed(pid)  # committed at once (no transaction): the hash is gone
        figures.token(pid)  # and another reader started a new one
        return "counted before the write"

    assert figures.cached(pid, "probe", compute_while_someone_writes) == "counted before the write"
    assert figures.cached(pid, "probe", lambda: "counted after") == "counted after"


def test_a_figure_expires(people):
    pid = people.project.pk
    assert figures.cached(pid, "probe", lambda: 1, timeout=0) == 1
    assert figures.cached(pid, "probe", lambda: 2) == 2


def test_the_overview_shows_a_saved_label_at_once(client, people):
    sample = add_sample(people.project, "s1", judge_value="pass")
    add_sample(people.project, "s2")
    client.force_login(people.reviewer)
    assert (stat(client, people.project, "feedback"), stat(client, people.project, "disagreements")) == (0, 0)
    response = client.post(
        f"/p/{people.project.slug}/samples/{sample.pk}/feedback/",
        {"label": "fail", "critique": "Curt: it never greets the customer by name.", "revision": "0", "coached": "1"},
    )
    assert response.status_code == 302
    assert stat(client, people.project, "feedback") == 1
    assert stat(client, people.project, "reviewed") == 1
    assert stat(client, people.project, "disagreements") == 1


def test_the_overview_and_queue_follow_a_deleted_label(client, people):
    sample = add_sample(people.project, "s1")
    feedback = add_feedback(sample, people.reviewer, "pass")
    client.force_login(people.owner)
    assert stat(client, people.project, "feedback") == 1
    assert queue_counts(client, people.project)["reviewed"] == 1
    response = client.post(f"/p/{people.project.slug}/feedback/{feedback.pk}/delete/")
    assert response.status_code == 302
    assert stat(client, people.project, "feedback") == 0
    assert queue_counts(client, people.project)["reviewed"] == 0


def test_the_queue_counts_follow_the_reviewers_own_save(client, people):
    samples = [add_sample(people.project, f"s{n}") for n in range(3)]
    client.force_login(people.reviewer)
    assert queue_counts(client, people.project)["mine"] == 0
    assert queue.counts(people.project, people.reviewer, queue.QueueQuery(filter="todo"))["todo"] == 3
    client.post(
        f"/p/{people.project.slug}/samples/{samples[0].pk}/feedback/",
        {"label": "pass", "critique": "", "revision": "0"},
    )
    assert queue_counts(client, people.project)["mine"] == 1
    assert queue.counts(people.project, people.reviewer, queue.QueueQuery(filter="todo"))["todo"] == 2


def test_an_import_shows_its_samples_and_reviews_at_once(client, people):
    add_sample(people.project, "s0")
    client.force_login(people.owner)
    assert (stat(client, people.project, "samples"), stat(client, people.project, "feedback")) == (1, 0)
    rows = [
        {"external_id": f"i{n}", "inputs": {"q": f"question {n}"}, "outputs": f"answer {n}", "judge_value": "pass"}
        for n in range(3)
    ]
    rows[0].update(expert_label="fail", expert_critique="It answers a different question entirely.")
    data = "\n".join(json.dumps(r) for r in rows).encode()
    import_samples(people.project, io.BytesIO(data), "more.jsonl", people.owner)
    assert stat(client, people.project, "samples") == 4
    assert stat(client, people.project, "feedback") == 1
    assert stat(client, people.project, "disagreements") == 1


def test_bulk_writes_that_send_no_signal_still_change_the_figures(client, people):
    """Feedback written with bulk_create (as imports and restores do) announces itself with feedback_imported."""
    from reviews.signals import feedback_imported

    sample = add_sample(people.project, "s1")
    client.force_login(people.owner)
    assert stat(client, people.project, "feedback") == 0
    with transaction.atomic():
        Feedback.objects.bulk_create(
            [Feedback(project=people.project, sample=sample, author=people.reviewer, label="pass")]
        )
        transaction.on_commit(lambda: feedback_imported.send(sender=None, project_id=people.project.pk))
    assert stat(client, people.project, "feedback") == 1


def test_with_redis_unreachable_figures_are_computed(people, settings):
    sample = add_sample(people.project, "s1")
    reachable = settings.REDIS_URL
    assert figures.cached(people.project.pk, "probe", lambda: "kept") == "kept"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    figures._client.cache_clear()
    try:
        assert figures.cached(people.project.pk, "probe", lambda: "computed") == "computed"
        figures._down_until = 0.0
        add_feedback(sample, people.reviewer, "pass")  # forgetting fails: remembered for when Redis is back
        assert people.project.pk in figures._unbumped
    finally:
        settings.REDIS_URL = reachable
        figures._client.cache_clear()
        figures._down_until = 0.0
    assert figures.cached(people.project.pk, "probe", lambda: "fresh") == "fresh"
    assert not figures._unbumped


def test_a_page_reads_the_hash_once_and_sees_its_own_writes(people):
    pid = people.project.pk
    figures.cached(pid, "probe", lambda: "before")
    with figures.snapshot():
        assert figures.cached(pid, "probe", lambda: "computed") == "before"
        figures.changed(pid)  # a save on this page, committed at once
        assert figures.cached(pid, "probe", lambda: "after") == "after"
        assert figures.cached(pid, "probe", lambda: "again") == "after"
