"""The queue and the review page at their usual cost: a few queries each, whatever the page shows, once the
project's figures are cached — and the same positions, neighbours and claims as before.

These tests commit (transaction=True): inside a test's rolled-back transaction the figures cache is not used, and
the pages would count what the cache answers.
"""

from __future__ import annotations

import re

import pytest

from reviews import figures, overlap
from reviews.import_writing import write_batches
from reviews.models import ImportRun, QueuePriority, ReviewClaim, Sample
from tests.conftest import add_feedback, add_sample, build_personas

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(settings):
    # The tests store their own teaching order: a background ranking (queued by each new sample or label, run by
    # the session worker when an earlier test of this process started it) must not replace it meanwhile.
    settings.MEMALIGN_QUEUE_RANK_DELAY_SECONDS = 3600
    return build_personas()


def taught(project, ranked: int, unranked: int = 0) -> list[Sample]:
    """`ranked` samples with a stored teaching order (the reverse of their import order), then `unranked` ones
    imported since; return them in the teaching order."""
    samples = [add_sample(project, f"r{n:03d}") for n in range(ranked)]
    order = samples[::-1]
    QueuePriority.objects.bulk_create(
        [QueuePriority(sample=s, project=project, rank=rank) for rank, s in enumerate(order)]
    )
    figures.changed(project.pk)  # as judging.teaching.rank does
    return order + [add_sample(project, f"u{n:03d}") for n in range(unranked)]


def position(body: str) -> str:
    found = re.search(r'id="queue-position">(.*?) in “', body)
    assert found, body
    return re.sub(r"</?strong>", "", found.group(1))


def links(body: str) -> tuple[int | None, int | None]:
    found = re.search(r'data-next-url="([^"]*)" data-previous-url="([^"]*)"', body)
    assert found, body

    def sample_id(url: str) -> int | None:
        return int(url.split("/samples/")[1].split("/")[0]) if url else None

    return sample_id(found.group(2)), sample_id(found.group(1))


def test_the_queue_costs_four_queries_whatever_its_rows(client, people, django_assert_max_num_queries):
    """Session, user, membership, and the page's samples: the unfinished imports and whether a teaching order
    exists come from the figures cache, and "needs my review" holds none of the reviewer's own feedback."""
    taught(people.project, 60)
    client.force_login(people.reviewer)
    url = f"/p/{people.project.slug}/queue/"
    assert client.get(url).status_code == 200  # fills the figures cache
    with django_assert_max_num_queries(4):
        body = client.get(url).content.decode()
    assert body.count("data-sample-id=") == 50


def test_the_queue_still_shows_the_reviewers_own_labels_elsewhere(client, people, django_assert_max_num_queries):
    order = taught(people.project, 60)
    for sample in order[:55]:
        add_feedback(sample, people.reviewer, "fail", "Too curt: it never greets the customer.")
    client.force_login(people.reviewer)
    url = f"/p/{people.project.slug}/queue/?filter=mine"
    assert client.get(url).status_code == 200
    with django_assert_max_num_queries(5):  # and one query for the reviewer's feedback on the page's 50 rows
        body = client.get(url).content.decode()
    assert body.count("data-sample-id=") == 50 and body.count('class="badge disagree"') == 50
    todo = client.get(f"/p/{people.project.slug}/queue/").content.decode()
    assert todo.count("data-sample-id=") == 5 and 'class="badge disagree"' not in todo


def test_the_review_page_costs_a_fixed_number_of_queries(client, people, django_assert_max_num_queries):
    """Served from "needs my review" (it claims a slot): 12 at most, however long the queue."""
    order = taught(people.project, 80)
    client.force_login(people.reviewer)
    url = f"/p/{people.project.slug}/samples/{order[40].pk}/"
    assert client.get(url).status_code == 200
    # session, user, membership, the sample with its rank; the claim (begin, lock, what decides, renew,
    # commit); neighbours and position together; the sample's feedback; the judging panel's latest verdict
    with django_assert_max_num_queries(12):
        body = client.get(url).content.decode()
    assert position(body) == "41 of 80"
    assert links(body) == (order[39].pk, order[41].pk)


def test_the_review_page_walks_the_teaching_order_then_the_unranked_and_wraps(client, people):
    """In "needs my review": ranked samples by rank, then the unranked by id, then back to the first skipped."""
    order = taught(people.project, 4, unranked=2)
    add_feedback(order[1], people.owner, "pass")  # reviewed: not in the reviewer's queue any more
    waiting = [order[0], *order[2:]]
    client.force_login(people.reviewer)
    base = f"/p/{people.project.slug}/samples"
    seen = [(position(b), links(b)) for b in (client.get(f"{base}/{s.pk}/").content.decode() for s in waiting)]
    assert [p for p, _ in seen] == ["1 of 5", "2 of 5", "3 of 5", "4 of 5", "5 of 5"]
    nexts = [n for _, (_, n) in seen]
    assert nexts == [order[2].pk, order[3].pk, order[4].pk, order[5].pk, order[0].pk]  # the last wraps round
    previous = [p for _, (p, _) in seen]
    assert previous == [None, order[1].pk, order[2].pk, order[3].pk, order[4].pk]  # back through the project


def test_the_review_page_of_a_reviewed_sample_says_how_many_are_left(client, people):
    order = taught(people.project, 3)
    add_feedback(order[1], people.reviewer, "pass")
    client.force_login(people.reviewer)
    body = client.get(f"/p/{people.project.slug}/samples/{order[1].pk}/").content.decode()
    assert position(body) == "2 left" and links(body) == (order[0].pk, order[2].pk)


def test_a_claim_frees_expired_slots_and_refuses_a_taken_one(people):
    """The claim's checks, read in one query once the sample is locked."""
    from datetime import timedelta

    from django.utils import timezone

    sample = add_sample(people.project, "s1")
    other = add_sample(people.project, "s2")
    gone = timezone.now() - timedelta(seconds=1)
    ReviewClaim.objects.create(sample=sample, user=people.owner, expires_at=gone)
    assert overlap.claim(sample, people.reviewer) is True  # the owner's claim expired: its slot is free
    assert list(ReviewClaim.objects.filter(sample=sample).values_list("user", flat=True)) == [people.reviewer.pk]
    assert overlap.claim(sample, people.owner) is False  # the only slot is the reviewer's now
    assert overlap.claim(sample, people.reviewer) is True  # renewed
    add_feedback(other, people.owner, "pass")
    assert overlap.claim(other, people.reviewer) is False  # reviewed by enough people already
    assert overlap.claim(other, people.owner) is True  # their own review: they may edit it


def test_an_import_that_starts_writing_hides_its_samples_at_once(people):
    """The unfinished imports come from the figures cache: the run turning to "writing" forgets it."""
    add_sample(people.project, "s1")
    run = ImportRun.objects.create(project=people.project, created_by=people.owner, status=ImportRun.Status.READING)
    assert Sample.objects.writing_runs(people.project) == []  # cached
    seen = []

    def batches():
        seen.append(Sample.objects.writing_runs(people.project))
        yield from ()

    write_batches(people.project, batches(), 0, lambda message: None, people.owner, "f.jsonl", run)
    assert seen == [[run.pk]]
    assert Sample.objects.writing_runs(people.project) == []  # done
