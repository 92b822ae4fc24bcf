"""The principles, versions and audit pages: what they show, their filters, owners' changes through them, and
untrusted text escaped."""

from __future__ import annotations

import csv
import io

import pytest

from memory import principles, versions
from memory.models import Contradiction, MemoryVersion, Principle, PrincipleSource
from tests.conftest import add_feedback, add_sample

EVIL = '<script>alert("x")</script> Replies must acknowledge the loss.'


@pytest.fixture
def memory(personas):
    """Two distilled principles (one with an untrusted-looking text), their sources, and version 1."""
    project = personas.project
    kind = Principle.objects.create(project=project, text=EVIL, label="fail")
    brief = Principle.objects.create(project=project, text="Short factual replies are fine.", label="pass")
    f1 = add_feedback(add_sample(project, "grief-1"), personas.reviewer, "fail", "Cheerful sign-off to a widow.")
    f2 = add_feedback(add_sample(project, "brief-1"), personas.owner, "pass", "Short and right.")
    PrincipleSource.objects.create(principle=kind, feedback=f1, feedback_revision=f1.revision)
    PrincipleSource.objects.create(principle=brief, feedback=f2, feedback_revision=f2.revision)
    Contradiction.objects.create(project=project, first=kind, second=brief)
    with principles.changing(project):
        versions.new_version(project, MemoryVersion.Trigger.DISTILL, summary="distilled 2 critiques")
    return kind, brief, f1, f2


def body(response) -> str:
    return response.content.decode()


def test_the_principles_page_lists_and_filters(client, personas, memory):
    kind, brief, *_ = memory
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/principles/"
    page = body(client.get(url))
    assert f'data-principle-id="{kind.pk}"' in page and f'data-principle-id="{brief.pk}"' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert 'data-flag="contradiction"' in page
    only = body(client.get(url, {"q": "factual"}))
    assert f'data-principle-id="{brief.pk}"' in only and f'data-principle-id="{kind.pk}"' not in only
    by_author = body(client.get(url, {"author": "rafael"}))
    assert f'data-principle-id="{kind.pk}"' in by_author and f'data-principle-id="{brief.pk}"' not in by_author
    assert f'data-principle-id="{kind.pk}"' in body(client.get(url, {"label": "fail"}))
    assert "No principle matches." in body(client.get(url, {"pinned": "yes"}))
    principles.set_retired(personas.project, brief, True, personas.owner)
    assert f'data-principle-id="{brief.pk}"' not in body(client.get(url))
    assert f'data-principle-id="{brief.pk}"' in body(client.get(url, {"status": "retired"}))


def test_a_principle_page_links_each_source_to_its_sample_and_author(client, personas, memory):
    kind, _, f1, _ = memory
    client.force_login(personas.viewer)
    page = body(client.get(f"/p/{personas.project.slug}/memory/principles/{kind.pk}/"))
    assert f'href="/p/{personas.project.slug}/samples/{f1.sample_id}/"' in page
    assert "Cheerful sign-off to a widow." in page
    assert f"/p/{personas.project.slug}/memory/principles/?status=all&author=rafael" in page
    assert 'id="edit-form"' not in page  # a viewer reads, never edits


def test_a_blind_reviewer_sees_a_principle_only_once_they_reviewed_its_sources(client, personas, memory):
    """A principle quotes or paraphrases its sources: one citing others' feedback on a sample the reviewer has
    not reviewed is withheld (memory.blind), as a page they cannot open."""
    _, brief, _, f2 = memory
    client.force_login(personas.reviewer)
    response = client.get(f"/p/{personas.project.slug}/memory/principles/{brief.pk}/")
    assert response.status_code == 404 and "Short and right." not in body(response)
    add_feedback(f2.sample, personas.reviewer, "pass", "Mine too.")
    assert "Short and right." in body(client.get(f"/p/{personas.project.slug}/memory/principles/{brief.pk}/"))


def test_an_owner_edits_pins_and_adds_through_the_pages_and_each_says_its_version(client, personas, memory):
    kind, *_ = memory
    slug = personas.project.slug
    client.force_login(personas.owner)
    response = client.post(
        f"/p/{slug}/memory/principles/{kind.pk}/edit/", {"text": "Acknowledge the loss."}, follow=True
    )
    assert "reworded (memory version 2)" in body(response)
    assert Principle.objects.get(pk=kind.pk).text == "Acknowledge the loss."
    response = client.post(
        f"/p/{slug}/memory/principles/{kind.pk}/edit/", {"text": "Acknowledge the loss."}, follow=True
    )
    assert "The text is unchanged." in body(response)
    assert MemoryVersion.objects.filter(project=personas.project).count() == 2
    response = client.post(f"/p/{slug}/memory/principles/{kind.pk}/pin/", {"action": "pin"}, follow=True)
    assert "pinned (memory version 3)" in body(response) and Principle.objects.get(pk=kind.pk).pinned
    response = client.post(
        f"/p/{slug}/memory/principles/", {"text": "Never promise a date.", "label": "fail", "pinned": "on"}, follow=True
    )
    added = Principle.objects.get(text="Never promise a date.")
    assert (added.label, added.pinned, added.created_in.number, added.created_in.actor) == (
        "fail",
        True,
        4,
        personas.owner,
    )
    response = client.post(f"/p/{slug}/memory/principles/", {"text": "x", "label": "maybe"}, follow=True)
    assert "pick one of the project" in body(response)
    assert not Principle.objects.filter(text="x").exists()


def test_versions_page_shows_trigger_author_and_the_active_version(client, personas, memory):
    kind, *_ = memory
    principles.edit_text(personas.project, kind, "Acknowledge the loss.", personas.owner)
    client.force_login(personas.viewer)
    page = body(client.get(f"/p/{personas.project.slug}/memory/versions/"))
    assert 'data-version="2" data-trigger="manual"' in page and "olivia" in page
    assert page.count("data-active") == 1 and 'id="active-version"' in page
    assert "Roll back" not in page  # owners only
    assert 'data-version="2"' not in body(client.get(f"/p/{personas.project.slug}/memory/versions/?trigger=distill"))


def test_compare_shows_the_wording_change_escaped(client, personas, memory):
    kind, *_ = memory
    principles.edit_text(personas.project, kind, EVIL.replace("the loss", "a bereavement first"), personas.owner)
    client.force_login(personas.viewer)
    page = body(client.get(f"/p/{personas.project.slug}/memory/versions/compare/?a=1&b=2"))
    assert "<del>the loss.</del>" in page and "<ins>a bereavement first.</ins>" in page
    assert "<script>alert" not in page
    assert client.get(f"/p/{personas.project.slug}/memory/versions/compare/?a=1&b=9").status_code == 404
    bad = client.get(f"/p/{personas.project.slug}/memory/versions/compare/?a=one&b=2")
    assert bad.status_code == 400 and "must be a version number" in body(bad)


def test_rollback_previews_then_makes_a_new_version(client, personas, memory):
    kind, *_ = memory
    principles.edit_text(personas.project, kind, "Acknowledge the loss.", personas.owner)
    slug = personas.project.slug
    client.force_login(personas.owner)
    preview = body(client.get(f"/p/{slug}/memory/versions/1/rollback/"))
    assert "<del>Acknowledge the loss.</del>" in preview or "<del>Acknowledge </del>" in preview
    assert MemoryVersion.objects.filter(project=personas.project).count() == 2  # a preview changes nothing
    response = client.post(f"/p/{slug}/memory/versions/1/rollback/")
    assert response.status_code == 302 and response["Location"].endswith("?a=1&b=3")
    version = MemoryVersion.objects.get(project=personas.project, number=3)
    assert (version.trigger, version.actor) == ("rollback", personas.owner)
    assert Principle.objects.get(pk=kind.pk).text == EVIL
    again = client.post(f"/p/{slug}/memory/versions/1/rollback/", follow=True)
    assert "already are v1" in body(again)


def test_the_audit_log_filters_and_exports_csv(client, personas, memory):
    kind, *_ = memory
    principles.edit_text(personas.project, kind, "=HYPERLINK(1)", personas.owner)
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/audit/"
    page = body(client.get(url, {"actor": "olivia", "kind": "principle"}))
    assert page.count("data-audit-id") == 1 and "v1 → v2" in page
    assert "data-audit-id" not in body(client.get(url, {"actor": "vera"}))
    bad = client.get(url, {"since": "yesterday"})
    assert bad.status_code == 400 and "must be a date" in body(bad)
    response = client.get(f"/p/{personas.project.slug}/memory/audit.csv", {"actor": "olivia"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert {r["kind"] for r in rows} == {"principle", "version"} and all(r["actor"] == "olivia" for r in rows)
    edit = next(r for r in rows if r["kind"] == "principle")
    assert (edit["from_version"], edit["to_version"]) == ("1", "2")
    assert edit["object"] == "'=HYPERLINK(1)"  # a principle's text is never a formula to a spreadsheet
    assert not any(value.startswith("=") for r in rows for value in r.values())


# --- the dashboard's small things ------------------------------------------------------------------------------


def test_regenerate_now_says_when_the_memory_is_already_up_to_date(client, personas, memory):
    from memory.dispatch import key as _key
    from memory.dispatch import regeneration_pending
    from memory.models import DistilledFeedback
    from memory.redis_client import get_redis

    # SQLite reuses a rolled-back project's id: an earlier test's queued regeneration flag would say "pending".
    get_redis().delete(_key("regen-queued", personas.project.pk))
    _, _, f1, f2 = memory
    for f in (f1, f2):
        DistilledFeedback.objects.create(feedback=f, revision=f.revision)
    client.force_login(personas.owner)
    response = client.post(f"/p/{personas.project.slug}/memory/regenerate/", follow=True)
    assert "already up to date" in body(response)
    assert not regeneration_pending(personas.project.pk)  # nothing was queued


def test_the_status_block_polls_only_while_work_is_pending(client, personas, memory):
    from memory.models import DistilledFeedback

    _, _, f1, f2 = memory
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/"
    pending = body(client.get(url))  # two critiques not distilled yet (nor embedded: no worker here)
    assert 'data-working="true"' in pending and 'hx-trigger="every 3s"' in pending
    for f in (f1, f2):
        DistilledFeedback.objects.create(feedback=f, revision=f.revision)
    from memory import sync

    sync.repair(personas.project)  # the episodic store holds both critiques: its count matches too
    done = client.get(url, headers={"HX-Request": "true", "HX-Target": "memory-status"})
    assert 'data-working="false"' in body(done) and "hx-trigger" not in body(done)


def test_the_status_block_stops_polling_once_a_decided_conflict_is_learned(client, personas, memory):
    """Overruled feedback stays in the database but not in the episodic store: that is not work pending."""
    from memory import distil, sync
    from memory.models import DistilledFeedback
    from reviews import adjudication

    sample = add_sample(personas.project, "conflict")
    add_feedback(sample, personas.reviewer, "fail", "Too curt.")
    add_feedback(sample, personas.owner, "pass", "Fine.")
    adjudication.decide(sample, "fail", "Curt replies to a complaint fail.", personas.owner)
    for f in distil.pending_feedback(personas.project):
        DistilledFeedback.objects.create(feedback=f, revision=f.revision)
    sync.repair(personas.project)
    client.force_login(personas.viewer)
    done = client.get(
        f"/p/{personas.project.slug}/memory/", headers={"HX-Request": "true", "HX-Target": "memory-status"}
    )
    assert 'data-working="false"' in body(done) and "hx-trigger" not in body(done)
