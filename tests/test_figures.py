"""Figures cached per project state (reviews.figures): after every kind of write, each cached figure equals the
same figure counted afresh, so no page shows a stale count.

Each test reads the cached figures first (filling the cache), writes one way, and compares every cached figure with
a fresh count; it also checks that the write changed the fresh figures, so the comparison could fail.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews import adjudication, figures, overlap, queue, stats
from reviews.feedback import delete_feedback, save_feedback, undo_save
from reviews.importers import import_samples
from reviews.models import Feedback, ImportRun, Membership, QueuePriority, ReviewClaim, Role, Sample
from reviews.projects import remove_member
from reviews.queue import QueueQuery
from tests.conftest import add_sample, make_user

QUERIES = [
    QueueQuery(filter="todo"),
    QueueQuery(filter="todo", order="teach"),
    QueueQuery(filter="disagree"),
    QueueQuery(filter="mine", label="fail"),
    QueueQuery(filter="all", judge="pass", order="teach"),
    QueueQuery(filter="reviewed", q="s0"),
    QueueQuery(filter="unreviewed", blind=True),
]


def cached(project, users) -> dict:
    """Every figure the overview, the queue and the review page read from the cache."""
    out: dict = {"overview": {k: v for k, v in stats.overview(project, _membership(project, users[0])).items()}}
    out["overview"].pop("recent_critiques")
    out["overview"]["progress"] = [(p["user"].pk, p["done"]) for p in out["overview"]["progress"]]
    for user in users:
        member = _membership(project, user)
        out[f"conflicts {user}"] = adjudication.open_conflict_count(project, member)
        for query in QUERIES:
            out[f"counts {user} {query}"] = queue.counts(project, user, query)
            found = queue.order(project, user, query)
            out[f"order {user} {query}"] = list(found.ids)
        for query in QUERIES[:2]:  # the review page's place in the queue, in both orders
            out[f"positions {user} {query}"] = [
                queue.position(project, user, query, s)[0]
                for s in Sample.objects.filter(project=project).values_list("id", flat=True)
            ]
    return out


def fresh(project, users) -> dict:
    """The same figures, counted again from the database."""
    counts = stats._counts(project)
    done = counts["done"]
    reviewers = Membership.objects.filter(project=project, role__in=[Role.REVIEWER, Role.OWNER]).select_related("user")
    progress = sorted(reviewers, key=lambda m: (-done.get(m.user_id, 0), m.user.username))
    out: dict = {
        "overview": {
            **{k: counts[k] for k in ("sample_count", "reviewed_count", "feedback_count", "disagreement_count")},
            "progress": [(m.user_id, done.get(m.user_id, 0)) for m in progress],
        }
    }
    for user in users:
        member = _membership(project, user)
        out[f"conflicts {user}"] = adjudication.open_conflicts(project, member).count()
        for query in QUERIES:
            out[f"counts {user} {query}"] = queue._counts(project, user, query)
            ids = list(queue.samples(project, user, query).values_list("id", flat=True))
            out[f"order {user} {query}"] = ids
        for query in QUERIES[:2]:
            ids = list(queue.samples(project, user, query).values_list("id", flat=True))
            out[f"positions {user} {query}"] = [
                ids.index(s) + 1 if s in ids else None
                for s in Sample.objects.filter(project=project).values_list("id", flat=True)
            ]
    return out


def _membership(project, user) -> Membership:
    return Membership.objects.get(project=project, user=user)


@pytest.fixture
def team(personas):
    """Ten samples, two reviewers and the owner; some reviews, one conflict."""
    project = personas.project
    second = make_user("rhea")
    Membership.objects.create(project=project, user=second, role=Role.REVIEWER)
    samples = [add_sample(project, f"s{n}", judge_value="pass" if n % 2 else "fail") for n in range(10)]
    save_feedback(samples[0], personas.reviewer, "pass", "Fine.")
    save_feedback(samples[0], second, "fail", "Curt.")  # a conflict (overlap 1: imported teams disagree too)
    save_feedback(samples[1], personas.reviewer, "fail", "Wrong.")
    return personas, second, samples


def check(personas, users, write) -> None:
    project = personas.project
    before = cached(project, users)
    assert before == fresh(project, users)
    write()
    after = fresh(project, users)
    assert after != before, "the write changed no figure: this test would not see a stale one"
    assert cached(project, users) == after


def users_of(personas, second):
    return [personas.reviewer, second, personas.owner]


def test_saving_editing_undoing_and_deleting_feedback(team):
    personas, second, samples = team
    users = users_of(personas, second)
    check(personas, users, lambda: save_feedback(samples[2], second, "fail", "Too short."))
    mine = Feedback.objects.get(sample=samples[2], author=second)
    check(
        personas,
        users,
        lambda: save_feedback(samples[2], second, "pass", "Fine after all.", loaded_revision=mine.revision),
    )
    edited = Feedback.objects.get(sample=samples[2], author=second)
    previous = {"label": "fail", "critique": "Too short."}
    check(personas, users, lambda: undo_save(samples[2], second, edited.revision, previous))
    check(personas, users, lambda: delete_feedback(Feedback.objects.get(sample=samples[2], author=second)))


def test_adjudication_and_its_undo(team):
    personas, second, samples = team
    users = users_of(personas, second)
    decision = []
    check(personas, users, lambda: decision.append(adjudication.decide(samples[0], "pass", "Polite.", personas.owner)))
    check(personas, users, lambda: adjudication.undo(personas.project, decision[0].pk))


def test_imports_and_an_unfinished_import(team):
    personas, second, samples = team
    users = users_of(personas, second)
    records = [
        {"external_id": "new1", "inputs": {"q": "x"}, "outputs": "y", "judge_value": "pass"},
        {"external_id": "new2", "inputs": {"q": "x"}, "outputs": "y", "judge_value": "fail", "expert_label": "pass"},
    ]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    check(
        personas,
        users,
        lambda: import_samples(personas.project, io.BytesIO(data), "more.jsonl", personas.owner),
    )
    # An import still writing hides its samples; marking it so changes no sample row.
    run = ImportRun.objects.create(project=personas.project, status=ImportRun.Status.DONE)
    Sample.objects.filter(external_id="new1").update(import_run=run)
    check(personas, users, lambda: ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.WRITING))


def test_bulk_writes_that_send_no_signals(team):
    personas, second, samples = team
    users = users_of(personas, second)
    project = personas.project

    def bulk_feedback():
        Feedback.objects.bulk_create(
            [
                Feedback(project=project, sample=s, author=second, label="fail", agrees_with_judge=False)
                for s in samples[4:7]
            ]
        )

    check(personas, users, bulk_feedback)
    check(personas, users, lambda: Feedback.objects.filter(author=second, sample__in=samples[4:6]).update(label="pass"))
    check(personas, users, lambda: Feedback.objects.filter(sample=samples[6]).update(agrees_with_judge=True))
    check(personas, users, lambda: Sample.objects.filter(pk=samples[9].pk).update(judge_value="fail"))
    check(personas, users, lambda: Sample.objects.filter(pk=samples[8].pk).delete())
    ranking = [QueuePriority(sample=s, project=project, rank=n) for n, s in enumerate(reversed(samples[:8]))]
    check(personas, users, lambda: QueuePriority.objects.bulk_create(ranking))
    check(personas, users, lambda: QueuePriority.objects.filter(sample=samples[3]).update(rank=100))


def test_members_and_settings(team):
    personas, second, samples = team
    users = [personas.reviewer, personas.owner]
    project = personas.project
    membership = _membership(project, second)
    check(personas, users, lambda: remove_member(project, membership.pk, unalign=True))

    def overlap_two():
        project.reviews_per_sample = 2
        project.save(update_fields=["reviews_per_sample"])

    check(personas, users, overlap_two)
    check(
        personas,
        users,
        lambda: Membership.objects.filter(project=project, user=personas.reviewer).update(role=Role.VIEWER),
    )


def test_claims_taken_expiring_and_renewed(team):
    personas, second, samples = team
    users = users_of(personas, second)
    check(personas, users, lambda: overlap.claim(samples[3], second))  # its only slot: gone from the others' queue
    check(personas, users, lambda: ReviewClaim.objects.update(expires_at=timezone.now() - timedelta(seconds=1)))
    check(personas, users, lambda: overlap.claim(samples[3], second))  # the same row renewed


def test_the_state_token_changes_with_each_write_and_not_with_a_read(team):
    personas, second, samples = team
    project = personas.project
    first = figures.token(project)
    queue.counts(project, second, QueueQuery())
    assert figures.token(project) == first
    save_feedback(samples[5], second, "pass", "")
    assert figures.token(project) != first
    other = figures.token(personas.other)
    save_feedback(samples[6], second, "pass", "Kind enough.")
    assert figures.token(personas.other) == other  # another project's figures stay cached


def test_pages_show_fresh_figures_after_a_save_and_its_undo(client, team):
    personas, second, samples = team
    client.force_login(second)
    overview = f"/p/{personas.project.slug}/"

    def reviewed() -> str:
        page = client.get(overview).content.decode()
        return page.split('data-stat="feedback">')[1].split("<")[0]

    assert reviewed() == "3"
    response = client.post(
        f"/p/{personas.project.slug}/samples/{samples[4].pk}/feedback/",
        {"label": "pass", "critique": "Answers the question.", "coached": "1"},
    )
    assert response.status_code == 302
    assert reviewed() == "4"
    feedback = Feedback.objects.get(sample=samples[4], author=second)
    client.post(f"/p/{personas.project.slug}/feedback/{feedback.pk}/undo/")
    assert reviewed() == "3"
    queue_page = client.get(f"/p/{personas.project.slug}/queue/?filter=mine").content.decode()
    assert "s4" not in queue_page and "s0" in queue_page


@pytest.mark.django_db
def test_state_triggers_dropped_by_a_table_rebuild_come_back_after_migrate(personas):
    # On SQLite a migration that alters a table rebuilds it, which drops its triggers: migrate restores them.
    from django.apps import apps
    from django.db import connection
    from django.db.models.signals import post_migrate

    from reviews import state_triggers

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER reviews_sample_state_insert ON reviews_sample")
        else:
            cursor.execute("DROP TRIGGER reviews_sample_state_insert")
    before = figures.token(personas.project)
    add_sample(personas.project, "unseen")
    assert figures.token(personas.project) == before  # the stale figure this guards against
    post_migrate.send(sender=apps.get_app_config("reviews"), app_config=apps.get_app_config("reviews"), using="default")
    add_sample(personas.project, "seen")
    assert figures.token(personas.project) != before
    assert len(state_triggers.names()) == 21
