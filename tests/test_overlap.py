"""Overlap: reviews per sample, the queue's "needs my review" with claims, and no sample over-reviewed when
reviewers race for its last slot on real threads."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from reviews import overlap, queue
from reviews.feedback import save_feedback
from reviews.models import Feedback, Membership, ReviewClaim, Role
from reviews.queue import QueueQuery
from tests.conftest import add_sample, make_user

TODO = QueueQuery(filter="todo")


def todo(personas, user) -> list[str]:
    return [s.external_id for s in queue.samples(personas.project, user, TODO)]


def set_overlap(project, n: int) -> None:
    project.reviews_per_sample = n
    project.save(update_fields=["reviews_per_sample"])


def test_a_sample_stays_in_the_queue_until_it_has_its_reviews(personas):
    a, b, c = (add_sample(personas.project, name) for name in "abc")
    second = make_user("rhea")
    Membership.objects.create(project=personas.project, user=second, role=Role.REVIEWER)
    save_feedback(a, personas.reviewer, "pass", "")
    assert todo(personas, personas.owner) == ["b", "c"]  # one review per sample (the default): a is done
    set_overlap(personas.project, 2)
    assert todo(personas, personas.owner) == ["a", "b", "c"]  # a needs a second review
    assert todo(personas, personas.reviewer) == ["b", "c"]  # never my own again
    save_feedback(a, second, "fail", "Rude.")
    assert todo(personas, personas.owner) == ["b", "c"]
    counts = queue.counts(personas.project, personas.owner, TODO)
    assert counts["todo"] == 2 and counts["all"] == 3


def test_a_claim_holds_a_slot_until_it_expires_or_the_review_is_saved(personas):
    sample = add_sample(personas.project, "only")
    assert overlap.claim(sample, personas.reviewer) is True
    assert todo(personas, personas.owner) == []  # its only slot is taken meanwhile
    assert overlap.claim(sample, personas.owner) is False
    assert todo(personas, personas.reviewer) == ["only"]  # my own claim keeps it in my queue
    ReviewClaim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert todo(personas, personas.owner) == ["only"]  # an abandoned claim frees the slot
    assert overlap.claim(sample, personas.owner) is True
    save_feedback(sample, personas.owner, "pass", "")
    assert not ReviewClaim.objects.exists()  # the saved review filled the slot
    assert overlap.claim(sample, personas.owner) is True  # they may come back to edit their review


def test_the_review_page_claims_from_the_todo_queue_only(client, personas):
    sample = add_sample(personas.project, "page")
    client.force_login(personas.reviewer)
    client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=all")
    assert not ReviewClaim.objects.exists()
    client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/")  # a reviewer's default filter is todo
    assert ReviewClaim.objects.filter(sample=sample, user=personas.reviewer).exists()
    client.force_login(personas.owner)
    response = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=todo")
    assert "has all the reviewers it needs" in response.content.decode()
    client.force_login(personas.viewer)
    client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=todo")
    assert ReviewClaim.objects.count() == 1  # viewers do not review


def test_lowering_overlap_while_reviews_are_in_flight_loses_nothing(personas):
    set_overlap(personas.project, 3)
    sample = add_sample(personas.project, "busy")
    save_feedback(sample, personas.reviewer, "pass", "")
    assert overlap.claim(sample, personas.owner) is True
    set_overlap(personas.project, 1)  # the owner has the page open
    assert todo(personas, personas.owner) == ["busy"]  # still theirs to finish… but no one else's
    other = make_user("rhea")
    Membership.objects.create(project=personas.project, user=other, role=Role.REVIEWER)
    assert todo(personas, other) == [] and overlap.claim(sample, other) is False
    assert overlap.claim(sample, personas.owner) is True  # reopening the page renews the owner's slot
    feedback, created = save_feedback(sample, personas.owner, "fail", "Dismissive.")
    assert created and Feedback.objects.filter(sample=sample).count() == 2


def test_the_settings_form_bounds_overlap(client, personas):
    client.force_login(personas.owner)
    data = {"name": "Support tone", "criterion": "c", "label_kind": "pass_fail", "retrieval_k": "5"}
    for value in ("0", "6"):
        response = client.post(f"/p/{personas.project.slug}/settings/", {**data, "reviews_per_sample": value})
        assert response.status_code == 400 and "between 1 and 5 reviews per sample" in response.content.decode()
    client.post(f"/p/{personas.project.slug}/settings/", {**data, "reviews_per_sample": "3"})
    personas.project.refresh_from_db()
    assert personas.project.reviews_per_sample == 3
    client.post(f"/p/{personas.project.slug}/settings/", data)  # an old form without the field keeps it
    personas.project.refresh_from_db()
    assert personas.project.reviews_per_sample == 3


@pytest.fixture
def quiet_memory(monkeypatch):
    """The race is about the database: saves queue no memory work here."""
    from memory import dispatch

    for name in ("request_regeneration", "request_episodic_update"):
        monkeypatch.setattr(dispatch, name, lambda *args, **kwargs: False)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_over_review_a_sample(personas, quiet_memory):
    """Six reviewers on real threads work through the queue at once; each sample ends with exactly its two."""
    set_overlap(personas.project, 2)
    samples = [add_sample(personas.project, f"r{n}") for n in range(12)]
    reviewers = [make_user(f"rev{n}") for n in range(6)]
    Membership.objects.bulk_create(Membership(project=personas.project, user=u, role=Role.REVIEWER) for u in reviewers)
    start = threading.Barrier(len(reviewers))
    errors: list[BaseException] = []
    refused = Counter()

    def work(user) -> None:
        try:
            start.wait()
            while True:
                candidates = list(queue.samples(personas.project, user, TODO)[:3])
                if not candidates:
                    return
                for sample in candidates:  # the first is the one the queue serves; others race for it too
                    if overlap.claim(sample, user):
                        save_feedback(sample, user, "pass" if user.pk % 2 else "fail", "Because.")
                        break
                    refused[user.pk] += 1
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    per_sample = Counter(Feedback.objects.filter(project=personas.project).values_list("sample_id", flat=True))
    assert per_sample == {s.pk: 2 for s in samples}  # every sample has its two reviews, none a third
    assert sum(refused.values()) > 0  # reviewers did race for the same slots
