"""Unalign in bulk: the preview says what will change in both memories, and the confirmation changes exactly that
(the selected feedback, its episodic entries, the principles learned only from it) and nothing else."""

from __future__ import annotations

import re

import pytest

from memory import distil, episodic, semantic
from memory.models import MemoryVersion, Principle, PrincipleSource
from memory.unalign import token as unalign_token
from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user


def principle(project, text, feedback, **fields):
    made = Principle.objects.create(project=project, text=text, label=feedback[0].label, **fields)
    PrincipleSource.objects.bulk_create(
        PrincipleSource(principle=made, feedback=f, feedback_revision=f.revision) for f in feedback
    )
    return made


@pytest.fixture
def memory(personas):
    """Two reviewers' feedback in both memories, and principles learned from one, the other, or both."""
    project = personas.project
    second = make_user("sofia")
    Membership.objects.create(project=project, user=second, role=Role.REVIEWER)
    rafael = [
        add_feedback(add_sample(project, f"r{i}"), personas.reviewer, "fail", f"Curt reply number {i}.")
        for i in range(3)
    ]
    sofia = [add_feedback(add_sample(project, f"s{i}"), second, "fail", f"Cold reply number {i}.") for i in range(2)]
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    return {
        "rafael": rafael,
        "sofia": sofia,
        "second": second,
        "only_rafael": principle(project, "Curt replies fail.", rafael[:2]),
        "both": principle(project, "Cold or curt replies fail.", [rafael[2], sofia[0]]),
        "only_sofia": principle(project, "Cold replies fail.", sofia),
        "pinned": principle(project, "Always greet.", rafael[:1], origin="manual", pinned=True),
    }


def url(personas):
    return f"/p/{personas.project.slug}/memory/unalign/"


def test_a_reviewers_feedback_leaves_both_memories_and_nothing_else(
    client, personas, memory, django_capture_on_commit_callbacks
):
    """The owner previews one reviewer's feedback, confirms, and exactly that feedback is gone everywhere."""
    client.force_login(personas.owner)
    page = client.get(url(personas), {"reviewer": personas.reviewer.pk})
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-count="3"' in body and "<span data-in-store>3</span>" in body
    assert f'data-retire="{memory["only_rafael"].pk}"' in body
    assert f'data-rederive="{memory["both"].pk}"' in body
    assert f'data-keep="{memory["pinned"].pk}"' in body
    assert (
        f'data-retire="{memory["only_sofia"].pk}"' not in body
        and f'data-rederive="{memory["only_sofia"].pk}"' not in body
    )
    for f in memory["sofia"]:
        assert f'data-feedback-id="{f.pk}"' not in body
    assert Feedback.objects.filter(project=personas.project).count() == 5  # the preview changed nothing

    token = re.search(r'name="token" value="(\w+)"', body).group(1)
    before = MemoryVersion.objects.filter(project=personas.project).count()
    assert set(episodic.entries(personas.project.pk)) == {f.pk for f in memory["rafael"] + memory["sofia"]}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url(personas), {"reviewer": personas.reviewer.pk, "token": token})
    # One store removal and one regeneration, not a task per feedback (and the new version's principle vectors).
    assert [c.__qualname__.split(".")[0] for c in callbacks] == ["version_saved", "apply"]
    assert response.status_code == 200
    assert 'data-removed="3"' in response.content.decode()

    remaining = set(Feedback.objects.filter(project=personas.project).values_list("pk", flat=True))
    assert remaining == {f.pk for f in memory["sofia"]}
    assert set(episodic.entries(personas.project.pk)) == remaining
    for name in ("only_rafael", "both", "only_sofia", "pinned"):
        memory[name].refresh_from_db()
    assert memory["only_rafael"].retired and "unaligned by olivia" in memory["only_rafael"].retired_reason
    assert not memory["both"].retired and memory["both"] in distil.stale_principles(personas.project)
    assert not memory["only_sofia"].retired and memory["only_sofia"] not in distil.stale_principles(personas.project)
    assert not memory["pinned"].retired and memory["pinned"] not in distil.stale_principles(personas.project)
    versions = MemoryVersion.objects.filter(project=personas.project)
    assert versions.count() == before + 1
    version = versions.order_by("-number").first()
    assert (version.trigger, version.actor) == (MemoryVersion.Trigger.UNALIGN, personas.owner)
    assert {p["id"] for p in version.principles} == {memory[n].pk for n in ("both", "only_sofia", "pinned")}


def test_re_derivation_then_rewrites_from_what_remains(personas, memory):
    """The principle that kept a source is re-derived by the next regeneration from that source only."""
    selection = Feedback.objects.filter(project=personas.project, author=personas.reviewer)
    from memory import unalign

    unalign.apply(personas.project, selection, unalign.token(list(selection.values_list("pk", flat=True))), "olivia")
    semantic.regenerate(personas.project, force=True)
    memory["both"].refresh_from_db()
    assert set(memory["both"].sources.values_list("feedback_id", flat=True)) == {memory["sofia"][0].pk}
    assert not distil.stale_principles(personas.project).exists()


def test_one_feedback_and_a_date_range(client, personas, memory):
    client.force_login(personas.owner)
    one = memory["sofia"][1]
    body = client.get(url(personas), {"feedback": one.pk}).content.decode()
    assert 'data-count="1"' in body and f'data-feedback-id="{one.pk}"' in body
    today = one.created_at.date().isoformat()
    assert 'data-count="5"' in client.get(url(personas), {"since": today, "until": today}).content.decode()
    assert 'data-count="0"' in client.get(url(personas), {"until": "2000-01-01"}).content.decode()
    response = client.get(url(personas), {"since": "2026-02-01", "until": "2026-01-01"})
    assert response.status_code == 400 and "ends before it starts" in response.content.decode()


def test_a_reviewer_unaligns_only_their_own(client, personas, memory):
    client.force_login(personas.reviewer)
    response = client.get(url(personas), {"reviewer": memory["second"].pk})
    assert response.status_code == 400  # not a choice for them
    body = client.get(url(personas), {"feedback": memory["sofia"][0].pk}).content.decode()
    assert 'data-count="0"' in body and "No feedback you may unalign matches." in body
    body = client.get(url(personas), {"reviewer": personas.reviewer.pk}).content.decode()
    token = re.search(r'name="token" value="(\w+)"', body).group(1)
    assert client.post(url(personas), {"reviewer": personas.reviewer.pk, "token": token}).status_code == 200
    assert set(Feedback.objects.filter(project=personas.project).values_list("author_id", flat=True)) == {
        memory["second"].pk
    }


def test_a_selection_that_changed_since_its_preview_is_refused_whole(client, personas, memory):
    client.force_login(personas.owner)
    body = client.get(url(personas), {"reviewer": personas.reviewer.pk}).content.decode()
    token = re.search(r'name="token" value="(\w+)"', body).group(1)
    add_feedback(add_sample(personas.project, "late"), personas.reviewer, "pass", "")
    response = client.post(url(personas), {"reviewer": personas.reviewer.pk, "token": token})
    assert response.status_code == 409 and "changed since its preview" in response.content.decode()
    assert Feedback.objects.filter(project=personas.project).count() == 6
    assert not Principle.objects.filter(project=personas.project, retired=True).exists()
    assert client.post(url(personas), {"reviewer": personas.reviewer.pk, "token": "forged"}).status_code == 409
    assert Feedback.objects.filter(project=personas.project).count() == 6


def test_another_projects_feedback_is_never_selected(client, personas, memory):
    foreign = add_feedback(add_sample(personas.other, "x"), personas.other_owner, "fail", "Elsewhere.")
    client.force_login(personas.owner)
    body = client.get(url(personas), {"feedback": foreign.pk}).content.decode()
    assert 'data-count="0"' in body
    response = client.post(url(personas), {"feedback": foreign.pk, "token": unalign_token([foreign.pk])})
    assert response.status_code == 409 and Feedback.objects.filter(pk=foreign.pk).exists()
