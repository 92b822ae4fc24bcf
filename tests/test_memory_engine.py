"""The memory engine called directly (no worker): distillation, unalign, consolidation, failures, drift.

The anthropic provider runs through the real SDK against the fake Messages API on 127.0.0.1.
"""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from judging.judge import retrieve
from memory import consolidate, distil, episodic, semantic, sync, versions
from memory.llm.base import ProviderError
from memory.models import Contradiction, DistilledFeedback, MemoryVersion, Principle
from reviews.feedback import delete_feedback, save_feedback
from tests.conftest import add_feedback, add_sample
from tests.fake_anthropic import error_reply

DISTILL = "record_principles"


def use_anthropic(project) -> None:
    project.provider = "anthropic"
    project.save(update_fields=["provider"])


def three_critiques(personas):
    samples = [add_sample(personas.project, f"s{i}") for i in range(3)]
    critiques = [
        "The reply promises delivery tomorrow although tracking has not moved: never over-promise.",
        "It blames the customer for the wrong address instead of owning the mistake.",
        "Cheerful emoji on a bereavement message is tone-deaf.",
    ]
    return [add_feedback(s, personas.reviewer, "fail", c) for s, c in zip(samples, critiques)]


def test_distillation_links_principles_to_their_sources(personas, fake_anthropic):
    use_anthropic(personas.project)
    feedback = three_critiques(personas)
    fake_anthropic.push_tool(
        {
            "principles": [
                {"text": "Never promise what tracking cannot support.", "source_ids": [feedback[0].pk]},
                {
                    "text": "Own the company's mistakes; never blame the customer.",
                    "source_ids": [feedback[1].pk, 999_999],
                },
                {"text": "A principle citing nothing real.", "source_ids": [999_998]},
                {"text": "   ", "source_ids": [feedback[2].pk]},
            ]
        },
        name=DISTILL,
    )
    outcome = semantic.regenerate(personas.project, force=True)
    principles = {p.text: p for p in versions.active_principles(personas.project)}
    assert set(principles) == {
        "Never promise what tracking cannot support.",
        "Own the company's mistakes; never blame the customer.",
    }
    blame = principles["Own the company's mistakes; never blame the customer."]
    assert [s.feedback_id for s in blame.sources.all()] == [feedback[1].pk]  # the unknown id 999999 is ignored
    assert [v.trigger for v in outcome.versions] == ["distill"]
    assert {p["text"] for p in outcome.versions[0].principles} == set(principles)
    assert DistilledFeedback.objects.filter(feedback__in=feedback).count() == 3
    assert fake_anthropic.tool_counts.get(DISTILL, 0) == 1


def test_only_new_feedback_is_sent_again(personas, fake_anthropic):
    use_anthropic(personas.project)
    first = three_critiques(personas)
    semantic.regenerate(personas.project, force=True)
    assert semantic.regenerate(personas.project, force=True).versions == []  # nothing pending: no call
    later = add_feedback(
        add_sample(personas.project, "s9"), personas.reviewer, "fail", "Too curt for a refund refusal."
    )
    semantic.regenerate(personas.project, force=True)
    assert fake_anthropic.tool_counts.get(DISTILL, 0) == 2
    last_prompt = fake_anthropic.requests[-1].body["messages"][0]["content"]
    text = str(last_prompt)
    assert f'id="{later.pk}"' in text
    assert all(f'id="{f.pk}"' not in text for f in first)


def test_a_partial_batch_waits_for_the_burst_to_go_quiet(personas, fake_anthropic, settings):
    use_anthropic(personas.project)
    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 60
    three_critiques(personas)
    outcome = semantic.regenerate(personas.project)
    assert outcome.versions == [] and outcome.wait_seconds > 50
    assert fake_anthropic.tool_counts.get(DISTILL, 0) == 0
    settings.MEMALIGN_DISTILL_BATCH_SIZE = 2  # now a full batch exists and goes at once; the rest waits
    outcome = semantic.regenerate(personas.project)
    assert fake_anthropic.tool_counts.get(DISTILL, 0) == 1 and outcome.wait_seconds > 0
    assert distil.pending_feedback(personas.project).count() == 1


def test_a_distillation_that_adds_nothing_is_a_version_only_when_a_model_was_paid(personas, fake_anthropic):
    """Offline, critiques that form no principle are marked distilled and make no version (a walk-through saw
    v1 to v36 for 30 critiques, nearly all "0 new principles"); a model's call that adds nothing is still one,
    since its usage is the version's."""
    feedback = add_feedback(add_sample(personas.project, "lone"), personas.reviewer, "fail", "Too curt.")
    assert semantic.regenerate(personas.project, force=True).versions == []
    assert not MemoryVersion.objects.filter(project=personas.project).exists()
    assert DistilledFeedback.objects.filter(feedback=feedback, version=None).exists()
    assert distil.pending_feedback(personas.project).count() == 0
    use_anthropic(personas.project)
    add_feedback(add_sample(personas.project, "paid"), personas.reviewer, "fail", "Too curt as well.")
    fake_anthropic.push_tool({"principles": []}, name=DISTILL)
    (version,) = semantic.regenerate(personas.project, force=True).versions
    assert "0 new principles" in version.summary and version.usage.get("input_tokens", 0) > 0


def test_provider_failure_changes_nothing_and_is_recorded(personas, fake_anthropic):
    use_anthropic(personas.project)
    three_critiques(personas)
    fake_anthropic.push_tool({"principles": "not a list"}, name=DISTILL)
    with pytest.raises(ProviderError):
        semantic.regenerate(personas.project, force=True)
    assert Principle.objects.filter(project=personas.project).count() == 0
    assert distil.pending_feedback(personas.project).count() == 3
    failed = MemoryVersion.objects.get(project=personas.project)
    assert failed.status == "failed" and "principles" in failed.error
    fake_anthropic.push(*[error_reply(500)] * 5)
    with pytest.raises(ProviderError, match="500"):
        semantic.regenerate(personas.project, force=True)
    semantic.regenerate(personas.project, force=True)  # the outage is over: the default responder answers
    assert distil.pending_feedback(personas.project).count() == 0


def test_deleting_the_only_source_retires_the_principle(personas):
    """Offline provider: a substantive critique becomes a principle; deleting it unaligns the judge."""
    sample = add_sample(personas.project, "bereavement")
    feedback = add_feedback(
        sample,
        personas.reviewer,
        "fail",
        "Sending a cheerful generic sign-off to a customer who just lost their mother ignores the emotional context entirely.",
    )
    semantic.regenerate(personas.project, force=True)
    principle = Principle.objects.get(project=personas.project)
    assert principle.sources.get().feedback_id == feedback.pk
    delete_feedback(feedback)
    outcome = semantic.regenerate(personas.project, force=True)
    principle.refresh_from_db()
    assert principle.retired and "all of its sources" in principle.retired_reason
    assert outcome.versions[0].trigger == "unalign" and outcome.versions[0].principles == []


def test_losing_some_sources_rederives_from_the_rest(personas, fake_anthropic):
    use_anthropic(personas.project)
    feedback = three_critiques(personas)
    fake_anthropic.push_tool(
        {"principles": [{"text": "Tone must fit the stakes.", "source_ids": [f.pk for f in feedback]}]}, name=DISTILL
    )
    semantic.regenerate(personas.project, force=True)
    principle = Principle.objects.get(project=personas.project)
    delete_feedback(feedback[2])
    fake_anthropic.push_tool(
        {"action": "rewrite", "text": "Never over-promise, and never blame the customer."}, name="record_rederivation"
    )
    semantic.regenerate(personas.project, force=True)
    principle.refresh_from_db()
    assert principle.text == "Never over-promise, and never blame the customer." and not principle.retired
    assert sorted(s.feedback_id for s in principle.sources.all()) == sorted([feedback[0].pk, feedback[1].pk])
    rederive_request = fake_anthropic.requests[-1].body
    assert "bereavement" not in str(rederive_request["messages"])  # the removed critique is not shown again
    # Editing a source is remove-then-add: the principle is re-derived, the new text distilled afresh.
    save_feedback(
        feedback[0].sample,
        personas.reviewer,
        "fail",
        "Over-promising delivery dates destroys trust.",
        feedback[0].revision,
    )
    fake_anthropic.push_tool({"action": "retire", "text": ""}, name="record_rederivation")
    semantic.regenerate(personas.project, force=True)
    principle.refresh_from_db()
    assert principle.retired and "no longer support" in principle.retired_reason
    assert distil.pending_feedback(personas.project).count() == 0


def test_manual_principles_survive_unalign(personas):
    manual = versions.add_manual_principle(personas.project, "Apologise once, not five times.", "olivia")
    assert manual.pinned and manual.origin == "manual"
    sample = add_sample(personas.project, "x")
    feedback = add_feedback(
        sample,
        personas.reviewer,
        "fail",
        "Too many apologies make the reply sound insincere and servile to the customer.",
    )
    semantic.regenerate(personas.project, force=True)
    delete_feedback(feedback)
    semantic.regenerate(personas.project, force=True)
    manual.refresh_from_db()
    assert not manual.retired


def test_consolidation_merges_duplicates_and_flags_contradictions(personas, fake_anthropic):
    use_anthropic(personas.project)
    feedback = three_critiques(personas)
    fake_anthropic.push_tool(
        {
            "principles": [
                {"text": "Do not promise dates you cannot keep.", "source_ids": [feedback[0].pk]},
                {"text": "Own mistakes instead of blaming customers.", "source_ids": [feedback[1].pk]},
                {"text": "Emoji are fine in any situation.", "source_ids": [feedback[2].pk]},
            ]
        },
        name=DISTILL,
    )
    semantic.regenerate(personas.project, force=True)
    ids = {p.text: p.pk for p in versions.active_principles(personas.project)}
    promise, blame, emoji = (
        ids["Do not promise dates you cannot keep."],
        ids["Own mistakes instead of blaming customers."],
        ids["Emoji are fine in any situation."],
    )
    fake_anthropic.push_tool(
        {
            "merges": [{"principle_ids": [promise, blame], "text": "Be honest: no false promises, no blame."}],
            "contradictions": [{"first_id": emoji, "second_id": promise}],
        },
        name="record_consolidation",
    )
    version = consolidate.consolidate(personas.project)
    keeper = Principle.objects.get(pk=promise)
    assert keeper.text == "Be honest: no false promises, no blame."
    assert sorted(s.feedback_id for s in keeper.sources.all()) == sorted([feedback[0].pk, feedback[1].pk])
    assert Principle.objects.get(pk=blame).retired
    assert Contradiction.objects.filter(
        project=personas.project, first_id=min(emoji, promise), second_id=max(emoji, promise)
    ).exists()
    assert version.trigger == "consolidate" and len(version.principles) == 2


def test_retrieval_never_returns_the_samples_own_feedback(personas):
    refund = add_sample(
        personas.project, "refund", inputs={"customer_message": "I want a refund for my broken blender"}
    )
    similar = add_sample(personas.project, "refund2", inputs={"customer_message": "My blender broke, refund please"})
    other = add_sample(personas.project, "weather", inputs={"customer_message": "Is it going to rain in Paris?"})
    for sample in (refund, similar, other):
        f = add_feedback(sample, personas.reviewer, "pass", "")
        episodic.upsert([f])
    found = retrieve(personas.project, refund.inputs_text(), refund.output_text(), exclude_sample_id=refund.pk, k=2)
    assert [e.feedback_id for e in found][0] == similar.feedback.get().pk
    assert refund.feedback.get().pk not in [e.feedback_id for e in found]
    assert found[0].similarity > found[1].similarity


def test_check_memory_reports_drift_and_rebuild_repairs_a_deleted_store(personas, settings, capsys):
    feedback = three_critiques(personas)
    episodic.upsert(feedback[:2])  # the third never reached Chroma
    with pytest.raises(CommandError, match="1 problem"):
        call_command("check_memory", personas.project.slug)
    assert f"missing from Chroma: 1 feedback id(s) [{feedback[2].pk}]" in capsys.readouterr().out
    shutil.rmtree(settings.CHROMA_PATH)  # the whole store is lost
    episodic.reset_client()
    call_command("rebuild_memory", personas.project.slug)
    call_command("check_memory", personas.project.slug)  # clean: no CommandError
    assert sorted(episodic.entries(personas.project.pk)) == sorted(f.pk for f in feedback)
    assert not sync.diff(personas.other)


def test_editing_one_of_several_sources_makes_the_principle_stale(personas, fake_anthropic):
    use_anthropic(personas.project)
    feedback = three_critiques(personas)
    fake_anthropic.push_tool(
        {"principles": [{"text": "Match the stakes.", "source_ids": [f.pk for f in feedback]}]}, name=DISTILL
    )
    semantic.regenerate(personas.project, force=True)
    assert not distil.stale_principles(personas.project).exists()
    save_feedback(
        feedback[1].sample, personas.reviewer, "fail", "Blaming the customer is never acceptable.", feedback[1].revision
    )
    assert list(distil.stale_principles(personas.project).values_list("text", flat=True)) == ["Match the stakes."]
    assert distil.pending_feedback(personas.project).get().pk == feedback[1].pk


def test_a_run_past_its_deadline_stops_between_batches_and_asks_to_continue(personas):
    three_critiques(personas)
    outcome = semantic.regenerate(personas.project, force=True, deadline=0.0)  # already past
    assert outcome.versions == [] and outcome.wait_seconds > 0
    assert distil.pending_feedback(personas.project).count() == 3


def test_repair_with_a_limit_works_off_a_backlog_in_steps(personas):
    feedback = three_critiques(personas)
    first = sync.repair(personas.project, limit=2)
    assert len(first.missing) == 3 and len(episodic.entries(personas.project.pk)) == 2
    second = sync.repair(personas.project, limit=2)
    assert len(second.missing) == 1 and sorted(episodic.entries(personas.project.pk)) == sorted(f.pk for f in feedback)
