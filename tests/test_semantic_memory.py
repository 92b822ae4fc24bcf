"""Semantic memory that is right, compact and fast: labels never crossed, a bounded size, concurrent bursts,
one writer at a time. The anthropic provider runs through the real SDK against the fake Messages API.
"""

from __future__ import annotations

import math
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from memory import consolidate, distil, semantic, versions
from memory.locks import regeneration_lock
from memory.models import Contradiction, DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback, Sample
from tests.conftest import add_feedback, add_sample, shared_dataset
from tests.datasets import FILES, load_project

DISTILL = "record_principles"


def categorical(project, *labels):
    project.label_kind, project.categories = "categorical", list(labels)
    project.save(update_fields=["label_kind", "categories"])


def sources(principle: Principle) -> set[int]:
    return set(principle.sources.values_list("feedback_id", flat=True))


# --- labels are never crossed --------------------------------------------------------------------------------


def test_offline_near_identical_critiques_with_opposite_labels_make_two_principles(personas):
    categorical(personas.project, "A", "B")
    critique = "Output {} follows the instruction more closely and is the better response."
    feedback = {
        label: [
            add_feedback(add_sample(personas.project, f"{label}{i}"), personas.reviewer, label, critique.format(label))
            for i in range(3)
        ]
        for label in ("A", "B")
    }
    semantic.regenerate(personas.project, force=True)
    principles = list(versions.active_principles(personas.project))
    assert sorted(p.label for p in principles) == ["A", "B"]
    for principle in principles:
        assert sources(principle) == {f.pk for f in feedback[principle.label]}
        assert f"(experts chose {principle.label})" in principle.text
    assert distil.misaligned_principles(personas.project) == []


def test_a_provider_principle_is_credited_only_with_sources_of_its_label(personas, fake_anthropic):
    personas.project.provider = "anthropic"
    personas.project.save(update_fields=["provider"])
    fail = add_feedback(add_sample(personas.project, "f"), personas.reviewer, "fail", "It never answers the question.")
    passed = add_feedback(add_sample(personas.project, "p"), personas.reviewer, "pass", "It answers the question.")
    fake_anthropic.push_tool(
        {
            "principles": [
                {
                    "text": "Replies must answer the question asked.",
                    "label": "fail",
                    "source_ids": [fail.pk, passed.pk],
                },
                {"text": "Replies must answer the question asked!", "label": "pass", "source_ids": [passed.pk]},
            ]
        },
        name=DISTILL,
    )
    semantic.regenerate(personas.project, force=True)
    by_label = {p.label: p for p in versions.active_principles(personas.project)}
    # near-identical texts, opposite labels: two principles, each with its own sources only
    assert set(by_label) == {"fail", "pass"}
    assert sources(by_label["fail"]) == {fail.pk}
    assert sources(by_label["pass"]) == {passed.pk}
    request = fake_anthropic.requests[-1].body
    principle_schema = request["tools"][0]["input_schema"]["properties"]["principles"]["items"]
    assert principle_schema["properties"]["label"]["enum"] == ["", "pass", "fail"]


def test_a_duplicate_of_another_label_is_not_merged_into_it(personas, fake_anthropic):
    personas.project.provider = "anthropic"
    personas.project.save(update_fields=["provider"])
    first = add_feedback(add_sample(personas.project, "a"), personas.reviewer, "fail", "Too long.")
    fake_anthropic.push_tool(
        {"principles": [{"text": "Length decides.", "label": "fail", "source_ids": [first.pk]}]}, name=DISTILL
    )
    semantic.regenerate(personas.project, force=True)
    second = add_feedback(add_sample(personas.project, "b"), personas.reviewer, "pass", "Long is fine here.")
    fake_anthropic.push_tool(
        {"principles": [{"text": "Length decides.", "label": "pass", "source_ids": [second.pk]}]}, name=DISTILL
    )
    semantic.regenerate(personas.project, force=True)
    principles = list(versions.active_principles(personas.project))
    assert [(p.label, sources(p)) for p in principles] == [("fail", {first.pk}), ("pass", {second.pk})]


def test_check_memory_flags_a_principle_whose_sources_disagree_and_regeneration_repairs_it(personas):
    samples = [add_sample(personas.project, f"s{i}") for i in range(3)]
    critiques = ["The reply ignores the refund the customer asked for, so it fails them."] * 3
    feedback = [
        add_feedback(s, personas.reviewer, label, c)
        for s, label, c in zip(samples, ["pass", "pass", "fail"], critiques)
    ]
    # Memory as the old deduplication wrote it: one "fail" principle citing two "pass" sources.
    wrong = Principle.objects.create(
        project=personas.project, text="Ignoring the request fails (experts chose fail).", label="fail"
    )
    for f in feedback:
        PrincipleSource.objects.create(principle=wrong, feedback=f, feedback_revision=f.revision)
        DistilledFeedback.objects.create(feedback=f, revision=f.revision)
    assert distil.misaligned_principles(personas.project) == [wrong]
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_memory", personas.project.slug, stdout=out)
    assert f"principle {wrong.pk}" in out.getvalue() and "2 of its 3 sources chose another label" in out.getvalue()

    outcome = semantic.regenerate(personas.project, force=True)
    assert "realigned: 2 link(s)" in outcome.versions[0].summary
    wrong.refresh_from_db()
    assert sources(wrong) == {feedback[2].pk}  # it keeps its own label's source
    assert distil.misaligned_principles(personas.project) == []
    # the two "pass" critiques were distilled again, into a principle of their own label
    passing = versions.active_principles(personas.project).filter(label="pass").get()
    assert sources(passing) == {feedback[0].pk, feedback[1].pk}


def test_the_migration_reads_the_label_of_offline_principles():
    from importlib import import_module

    migration = import_module("memory.migrations.0003_principle_label")
    assert (
        migration.NAMED_LABEL.search('When judging "x": y (experts chose Could be Improved).')["label"]
        == "Could be Improved"
    )
    assert migration.NAMED_LABEL.search("Be kind to customers.") is None


# --- compact: a budget, and contradictions read from samples --------------------------------------------------


def test_consolidation_keeps_the_memory_within_budget_without_touching_pins(personas):
    personas.project.max_principles = 5
    personas.project.save(update_fields=["max_principles"])
    pinned = versions.add_manual_principle(personas.project, "Never promise a delivery date.", "olivia")
    made = []
    for i, topic in enumerate(
        ["refunds", "shipping", "tone", "apologies", "discounts", "returns", "privacy", "billing"]
    ):
        label = "fail" if i % 2 else "pass"
        f = add_feedback(add_sample(personas.project, f"s{i}"), personas.reviewer, label, f"About {topic}.")
        p = Principle.objects.create(
            project=personas.project, text=f"Replies about {topic} need care (experts chose {label}).", label=label
        )
        PrincipleSource.objects.create(principle=p, feedback=f, feedback_revision=f.revision)
        made.append(p)
    version = consolidate.consolidate(personas.project)
    active = list(versions.active_principles(personas.project))
    assert len(active) <= 5 and pinned in active
    for principle in active:
        assert all(s.feedback.label == principle.label for s in principle.sources.all()) or principle == pinned
    # every source of a merged principle now sits under an active one of the same label
    credited = {fid for p in active for fid in sources(p)}
    assert credited == {s.feedback_id for p in made for s in p.sources.all()} | set()
    assert "merged" in version.summary


def test_contradictions_come_from_near_identical_samples_judged_both_ways(personas):
    same_input = {"question": "Can I return a phone after 30 days?"}
    a = add_sample(personas.project, "a", inputs=same_input, outputs="No returns after 30 days, sorry.")
    b = add_sample(personas.project, "b", inputs=same_input, outputs="No returns after 30 days, sorry!")
    c = add_sample(personas.project, "c", inputs={"question": "What is the capital of Peru?"}, outputs="Lima.")
    fa = add_feedback(a, personas.reviewer, "pass", "Clear policy statement.")
    fb = add_feedback(b, personas.reviewer, "fail", "Too curt.")
    fc = add_feedback(c, personas.reviewer, "fail", "Too curt.")
    texts = {
        fa: ("The reply states the return policy clearly", "pass"),
        fb: ("The reply states the return policy too curtly", "fail"),
        fc: ("The reply states the policy too curtly", "fail"),
    }
    made = {}
    for f, (text, label) in texts.items():
        made[f] = Principle.objects.create(
            project=personas.project, text=f"{text} (experts chose {label}).", label=label
        )
        PrincipleSource.objects.create(principle=made[f], feedback=f, feedback_revision=f.revision)
    personas.project.max_principles = 10
    personas.project.save(update_fields=["max_principles"])
    consolidate.consolidate(personas.project)
    pairs = {(c.first_id, c.second_id) for c in Contradiction.objects.filter(project=personas.project)}
    assert (made[fa].pk, made[fb].pk) in pairs  # one kind of case, judged both ways
    assert (made[fa].pk, made[fc].pk) not in pairs  # one topic, unrelated samples: no contradiction


@pytest.mark.parametrize("name", FILES)
def test_every_shared_file_distils_into_principles_that_agree_with_their_sources(name, django_user_model):
    shared_dataset(f"{name}.jsonl")
    owner = django_user_model.objects.create_user("owner")
    reviewer = django_user_model.objects.create_user("expert")
    project, rows = load_project(name, owner, reviewer, limit=200, max_principles=30)
    semantic.regenerate(project, force=True)
    consolidate.consolidate(project)
    active = list(versions.active_principles(project).prefetch_related("sources__feedback"))
    assert 0 < len(active) <= project.max_principles
    assert distil.misaligned_principles(project) == []
    for principle in active:
        assert principle.label, principle.text
        assert {s.feedback.label for s in principle.sources.all()} == {principle.label}
    if name == "feedbackqa":  # real rationales: compact, not one principle per critique
        single = sum(1 for p in active if p.sources.count() == 1)
        assert single <= len(active) // 2, f"{single} of {len(active)} principles cite one critique"
        cited = {s.feedback_id for p in active for s in p.sources.all()}
        assert len(cited) >= len(rows) // 2  # most critiques are represented somewhere


# --- fast bursts ---------------------------------------------------------------------------------------------


def test_a_burst_distils_in_concurrent_batches_within_the_call_bound(personas, fake_anthropic, settings):
    project = personas.project
    project.provider, project.provider_concurrency = "anthropic", 4
    project.save(update_fields=["provider", "provider_concurrency"])
    samples = Sample.objects.bulk_create(
        Sample(project=project, external_id=f"b{i}", inputs={"q": f"question {i}"}, outputs=f"answer {i}")
        for i in range(1000)
    )
    Feedback.objects.bulk_create(
        Feedback(
            project=project, sample=s, author=personas.reviewer, label="fail", critique=f"Critique {s.external_id}."
        )
        for s in samples
    )
    fake_anthropic.latency = 0.1
    fake_anthropic.reset()
    semantic.regenerate(project, force=True)
    calls = fake_anthropic.tool_counts.get(DISTILL, 0)
    assert calls == math.ceil(1000 / settings.MEMALIGN_DISTILL_BATCH_SIZE)
    assert 2 <= fake_anthropic.max_in_flight <= 4  # concurrent, and never above the project's limit
    assert not distil.pending_feedback(project).exists()
    versions = MemoryVersion.objects.filter(project=project, trigger="distill")
    assert versions.count() == math.ceil(calls / (4 * semantic.ROUND_WAVES))  # a round of batches is one version


# --- one writer at a time -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_distill_command_waits_for_a_running_regeneration(personas):
    add_feedback(
        add_sample(personas.project, "s"),
        personas.reviewer,
        "fail",
        "The reply promises a refund the policy does not allow at all.",
    )
    lock = regeneration_lock(personas.project.pk)
    assert lock.acquire(blocking=False)
    errors = StringIO()
    command = threading.Thread(
        target=call_command, args=("distill", personas.project.slug), kwargs={"stdout": StringIO(), "stderr": errors}
    )
    try:
        command.start()
        time.sleep(1.5)
        assert command.is_alive()  # waiting for the lock
        assert not MemoryVersion.objects.filter(project=personas.project).exists()
    finally:
        lock.release()
    command.join(timeout=60)
    assert not command.is_alive()
    assert MemoryVersion.objects.filter(project=personas.project, trigger="distill").exists()
    assert "waiting" in errors.getvalue()


def test_a_dashboard_edit_during_a_regeneration_says_so(personas, monkeypatch):
    from memory.locks import MemoryBusy

    monkeypatch.setattr(versions, "EDIT_WAIT_SECONDS", 0.2)
    lock = regeneration_lock(personas.project.pk)
    assert lock.acquire(blocking=False)
    try:
        with pytest.raises(MemoryBusy, match="being regenerated"):
            versions.add_manual_principle(personas.project, "Be brief.", "olivia")
    finally:
        lock.release()
    assert not Principle.objects.filter(project=personas.project).exists()
