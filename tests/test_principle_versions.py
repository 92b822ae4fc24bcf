"""Owners' corrections to the semantic memory make versions, and history is never rewritten: edit, pin, retire,
restore, add by hand, rollback; consolidation and unalign leave pinned principles alone; diffs between versions;
the audit log says who changed what, from which version to which."""

from __future__ import annotations

import pytest

from memory import audit, budget, consolidate, distil, principles, versions
from memory.llm import get_provider
from memory.models import MemoryVersion, Principle, PrincipleSource
from tests.conftest import add_feedback, add_sample

Trigger = MemoryVersion.Trigger


def distilled(project, reviewer, text: str, label: str, n: int = 1, key: str = "s") -> Principle:
    """A distilled principle with `n` source critiques of its label."""
    principle = Principle.objects.create(project=project, text=text, label=label)
    for i in range(n):
        f = add_feedback(add_sample(project, f"{key}{i}"), reviewer, label, f"{text} ({i})")
        PrincipleSource.objects.create(principle=principle, feedback=f, feedback_revision=f.revision)
    return principle


def latest(project) -> MemoryVersion:
    version = MemoryVersion.objects.filter(project=project).order_by("-number").first()
    assert version is not None, "the project has no memory version yet"
    return version


def snapshot_texts(version: MemoryVersion) -> dict[int, str]:
    return {entry["id"]: entry["text"] for entry in version.principles}


@pytest.fixture
def base(personas):
    """Two distilled principles recorded as version 1."""
    project = personas.project
    kind = distilled(project, personas.reviewer, "Replies must acknowledge the customer's loss.", "fail", key="k")
    brief = distilled(project, personas.reviewer, "Short factual replies are fine.", "pass", key="b")
    with principles.changing(project):
        v1 = versions.new_version(project, Trigger.DISTILL, summary="distilled")
    return project, kind, brief, v1


def test_an_edit_makes_a_version_with_the_new_wording_and_its_author(personas, base):
    project, kind, _, v1 = base
    version = principles.edit_text(project, kind, "Replies must   acknowledge a bereavement first.", personas.owner)
    kind.refresh_from_db()
    assert kind.text == "Replies must acknowledge a bereavement first."  # whitespace tidied
    assert (version.number, version.trigger, version.actor) == (v1.number + 1, Trigger.MANUAL, personas.owner)
    assert f"principle {kind.pk} reworded by olivia" == version.summary
    assert snapshot_texts(version)[kind.pk] == kind.text
    assert (
        snapshot_texts(MemoryVersion.objects.get(pk=v1.pk))[kind.pk] == "Replies must acknowledge the customer's loss."
    )
    with pytest.raises(principles.NothingToChange):
        principles.edit_text(project, kind, kind.text, personas.owner)
    assert latest(project) == version  # a refused edit writes no version


def test_pin_and_unpin_make_versions_and_are_recorded_in_the_snapshot(personas, base):
    project, kind, _, _ = base
    pinned = principles.set_pinned(project, kind, True, personas.owner)
    assert [e["pinned"] for e in pinned.principles if e["id"] == kind.pk] == [True]
    with pytest.raises(principles.NothingToChange):
        principles.set_pinned(project, kind, True, personas.owner)
    unpinned = principles.set_pinned(project, kind, False, personas.owner)
    assert unpinned.number == pinned.number + 1 and "unpinned by olivia" in unpinned.summary
    assert not Principle.objects.get(pk=kind.pk).pinned


def test_retire_and_restore_make_versions(personas, base):
    project, kind, brief, _ = base
    retired = principles.set_retired(project, kind, True, personas.owner)
    assert set(snapshot_texts(retired)) == {brief.pk}
    assert retired.actor == personas.owner
    with pytest.raises(principles.NothingToChange):
        principles.set_retired(project, kind, True, personas.owner)
    restored = principles.set_retired(project, kind, False, personas.owner)
    assert set(snapshot_texts(restored)) == {kind.pk, brief.pk}
    assert f"principle {kind.pk} restored by olivia" == restored.summary


def test_a_principle_added_by_hand_is_pinned_manual_and_created_in_its_version(personas, base):
    project, *_ = base
    added = principles.add(project, "Never promise a delivery date.", personas.owner, label="fail")
    assert (added.origin, added.pinned, added.label) == ("manual", True, "fail")
    assert added.created_in == latest(project) and added.created_in.actor == personas.owner
    assert added.pk in snapshot_texts(added.created_in)
    with pytest.raises(principles.NothingToChange):
        principles.add(project, "Anything.", personas.owner, label="maybe")  # not one of the project's labels


def test_consolidation_never_merges_rewrites_or_retires_a_pinned_principle(personas):
    project = personas.project
    project.max_principles = 1
    project.save(update_fields=["max_principles"])
    text = "Replies about refunds must state when the money arrives."
    keep = distilled(project, personas.reviewer, text, "fail", key="a")
    twins = [distilled(project, personas.reviewer, text + " " * i + ".", "fail", key=f"t{i}") for i in (1, 2)]
    principles.set_pinned(project, keep, True, personas.owner)
    version = consolidate.consolidate(project)
    keep.refresh_from_db()
    assert (keep.text, keep.retired, keep.pinned) == (text, False, True)
    assert "merged" in version.summary
    assert any(Principle.objects.get(pk=t.pk).retired for t in twins)  # the unpinned ones were merged together
    assert not any(f"merged into principle {keep.pk}" in p.retired_reason for p in Principle.objects.all())


def test_unalign_keeps_a_pinned_principle_whose_sources_are_all_removed(personas):
    project = personas.project
    pinned = distilled(project, personas.reviewer, "Sarcasm fails.", "fail", key="p")
    loose = distilled(project, personas.reviewer, "Emoji fail.", "fail", key="l")
    principles.set_pinned(project, pinned, True, personas.owner)
    for p in (pinned, loose):
        for link in p.sources.all():
            link.feedback.delete()
    version = distil.rederive_stale(project, get_provider(project))
    assert "1 retired" in version.summary and "1 kept" in version.summary
    assert not Principle.objects.get(pk=pinned.pk).retired
    assert Principle.objects.get(pk=loose.pk).retired


def test_rollback_restores_an_old_versions_principles_as_a_new_version(personas, base):
    project, kind, brief, v1 = base
    principles.edit_text(project, kind, "Reworded by hand.", personas.owner)
    principles.set_retired(project, brief, True, personas.owner)
    added = principles.add(project, "A later rule.", personas.owner)
    before = list(MemoryVersion.objects.filter(project=project).values_list("number", "principles"))

    version = principles.rollback(project, v1, personas.viewer)
    assert (version.trigger, version.actor, version.number) == (Trigger.ROLLBACK, personas.viewer, before[0][0] + 1)
    assert snapshot_texts(version) == snapshot_texts(v1)
    assert set(versions.active_principles(project)) == {kind, brief}
    assert Principle.objects.get(pk=kind.pk).text == "Replies must acknowledge the customer's loss."
    assert Principle.objects.get(pk=added.pk).retired_reason == "rolled back to v1 by vera"
    # history is never rewritten: every earlier version is still there, as it was
    after = dict(
        MemoryVersion.objects.filter(project=project).exclude(pk=version.pk).values_list("number", "principles")
    )
    assert after == dict(before)
    with pytest.raises(principles.NothingToChange):
        principles.rollback(project, v1, personas.owner)


def test_a_diff_shows_added_removed_and_reworded_principles_with_the_wording_change(personas, base):
    project, kind, brief, v1 = base
    principles.edit_text(project, kind, "Replies must acknowledge the customer's bereavement first.", personas.owner)
    principles.set_retired(project, brief, True, personas.owner)
    added = principles.add(project, "Never promise a delivery date.", personas.owner)
    v4 = latest(project)

    forward = principles.diff(v1, v4)
    assert [p["id"] for p in forward.added] == [added.pk]
    assert [p["id"] for p in forward.removed] == [brief.pk]
    assert [r.id for r in forward.reworded] == [kind.pk]
    words = forward.reworded[0].words
    assert ("removed", "loss.") in words and ("added", "bereavement first.") in words
    assert "".join(t for op, t in words if op != "added") == "Replies must acknowledge the customer's loss."
    assert "".join(t for op, t in words if op != "removed") == kind.__class__.objects.get(pk=kind.pk).text

    backward = principles.diff(v4, v1)  # any two versions, either order
    assert [p["id"] for p in backward.added] == [brief.pk] and [p["id"] for p in backward.removed] == [added.pk]
    assert principles.diff(v1, v1).empty and principles.diff(v1, v1).unchanged == 2
    assert [p["id"] for p in principles.diff(None, v1).added] == [kind.pk, brief.pk]


def test_a_pin_change_alone_shows_in_the_diff(personas, base):
    project, kind, _, v1 = base
    pinned = principles.set_pinned(project, kind, True, personas.owner)
    change = principles.diff(v1, pinned)
    assert [p["id"] for p in change.pinned] == [kind.pk] and not change.reworded


def test_the_audit_log_says_who_changed_what_from_which_version_to_which(personas, base):
    project, kind, _, v1 = base
    edit = principles.edit_text(project, kind, "Acknowledge the loss first.", personas.owner)
    rows = [audit.describe(e) for e in audit.entries(project, kind="principle", action="changed")]
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["object_id"], row["from_version"], row["to_version"]) == (
        "olivia",
        kind.pk,
        v1.number,
        edit.number,
    )
    assert ("text", "Replies must acknowledge the customer's loss.", "Acknowledge the loss first.") in row["changes"]
    versions = [audit.describe(e) for e in audit.entries(project, kind="version")]
    assert [(r["to_version"], r["actor"]) for r in versions][:2] == [(edit.number, "olivia"), (v1.number, "")]
    assert audit.entries(project, actor="olivia", version=edit.number).count() == 2  # the principle and the version
    assert audit.entries(project, actor="vera").count() == 0
    assert audit.entries(personas.other).count() == 0


def test_the_audit_log_records_what_the_automatic_steps_changed_with_their_version(personas):
    """Unalign retires with QuerySet.update, which sends no signal: the version's snapshot diff is logged."""
    project = personas.project
    gone = distilled(project, personas.reviewer, "Emoji fail.", "fail", key="g")
    with principles.changing(project):
        v1 = versions.new_version(project, Trigger.DISTILL, summary="distilled")
    for link in gone.sources.all():
        link.feedback.delete()
    v2 = distil.rederive_stale(project, get_provider(project))
    rows = [audit.describe(e) for e in audit.entries(project, kind="principle", version=v2.number)]
    assert [(r["object_id"], r["actor"], r["from_version"]) for r in rows] == [(gone.pk, "", v1.number)]
    assert ("retired", "False", "True") in rows[0]["changes"]
    assert ("retired_reason", "", "all of its sources were removed") in rows[0]["changes"]
    # an edit logged by its own save is not logged twice
    kept = principles.add(project, "Be kind.", personas.owner)
    principles.edit_text(project, kept, "Be kind always.", personas.owner)
    assert audit.entries(project, kind="principle").filter(object_id=kept.pk).count() == 2  # created, reworded


def test_a_rollback_settles_versions_the_regression_gate_held(personas, base):

    project, kind, _, v1 = base
    held = principles.edit_text(project, kind, "A rewording the gate held.", personas.owner)
    MemoryVersion.objects.filter(pk=held.pk).update(status=MemoryVersion.Status.HELD)
    version = principles.rollback(project, v1, personas.owner)
    assert MemoryVersion.objects.get(pk=held.pk).status == MemoryVersion.Status.DISCARDED
    assert "held v2 discarded" in version.summary
    assert budget.latest_version(project) == version
    assert [p.text for p in budget.principle_set(project).principles if p.id == kind.pk] == [kind.text]


def test_realign_never_retires_a_pinned_principle_whose_sources_chose_another_label(personas):
    project = personas.project
    pinned = Principle.objects.create(project=project, text="Curt replies pass.", label="pass")
    loose = Principle.objects.create(project=project, text="Curt replies are fine.", label="pass")
    for principle, key in ((pinned, "p"), (loose, "l")):
        f = add_feedback(add_sample(project, key), personas.reviewer, "fail", "Too curt.")  # the other label
        PrincipleSource.objects.create(principle=principle, feedback=f, feedback_revision=f.revision)
    principles.set_pinned(project, pinned, True, personas.owner)
    version = distil.realign(project, get_provider(project))
    assert "1 principle(s) retired" in version.summary
    assert not Principle.objects.get(pk=pinned.pk).retired and Principle.objects.get(pk=loose.pk).retired
    assert not pinned.sources.exists()  # the wrong link goes; the principle stays, as the owner pinned it
