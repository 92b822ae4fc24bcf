"""memory.llm.offline.OfflineProvider: hand-written cases, then FeedbackQA's real human rationales.

No Django, no network. The real-data tests skip when ../shared/datasets is absent (a user's clone).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from memory.embeddings import embed
from memory.llm.base import DistilledPrinciple, Example, LabelSchema, PrincipleText, Provider, WorkingMemory
from memory.llm.offline import OfflineProvider, knn_label, vote

CRITERION = "Does the answer address the user's question? (Be strict.)"
PASS_FAIL = LabelSchema(kind="pass_fail", choices=["pass", "fail"])
FEEDBACKQA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "feedbackqa.jsonl"
PRINCIPLE_RE = re.compile(r'^When judging "(.+)": (.+) \(experts chose (.+)\)\.$')


def example(feedback_id: int, label: str, critique: str, similarity: float = 0.0, inputs: str = "q", output: str = "a"):
    return Example(feedback_id, inputs, output, label, critique, similarity=similarity)


def memory(examples: list[Example], schema: LabelSchema = PASS_FAIL, principles=None) -> WorkingMemory:
    return WorkingMemory(CRITERION, schema, principles or [], examples, inputs="new input", output="new output")


def parts(text: str) -> tuple[str, str, str]:
    match = PRINCIPLE_RE.match(text)
    assert match, f"not in the offline principle format: {text!r}"
    return match.group(1), match.group(2), match.group(3)


@pytest.fixture(scope="module")
def provider() -> Provider:
    return OfflineProvider()


# --- judge ------------------------------------------------------------------------------------------------


def test_provider_identity(provider):
    assert (provider.name, provider.model) == ("offline", "offline-knn")


def test_judge_abstains_on_an_empty_memory(provider):
    verdict = provider.judge(memory([]))
    assert verdict.value is None
    assert "no reviewed examples" in verdict.rationale
    assert verdict.usage.calls == 0 and verdict.usage.input_tokens == 0


def test_judge_weights_votes_by_similarity(provider):
    # one near-identical "pass" outweighs two loosely related "fail"s: 0.9^2 = 0.81 > 2 * 0.4^2 = 0.32
    examples = [
        example(1, "pass", "Answers exactly what was asked.", 0.9),
        example(2, "fail", "Talks about something else.", 0.4),
        example(3, "fail", "Off topic.", 0.4),
    ]
    verdict = provider.judge(memory(examples))
    assert verdict.value == "pass"
    assert knn_label(["pass", "fail", "fail"], [0.9, 0.4, 0.4], ["pass", "fail"], sharpen=0) == "fail"


def test_judge_ignores_labels_outside_the_schema_and_negative_similarities(provider):
    examples = [
        example(1, "maybe", "Unsure.", 0.95),
        example(2, "fail", "Wrong topic.", 0.3),
        example(3, "pass", "Fine.", -0.2),
    ]
    assert provider.judge(memory(examples)).value == "fail"
    assert vote(["pass", "fail"], [-0.5, 0.0], ["pass", "fail"]) == {}
    verdict = provider.judge(memory([example(1, "pass", "Fine.", -0.3)]))
    assert verdict.value is None and "no retrieved example is similar" in verdict.rationale


def test_judge_tie_goes_to_the_most_similar_example():
    assert knn_label(["fail", "pass", "pass"], [0.8, 0.4, 0.4], ["pass", "fail"], sharpen=1) == "fail"
    assert knn_label(["pass", "fail"], [0.5, 0.5], ["pass", "fail"], sharpen=1) == "pass"  # then schema order


def test_judge_rationale_names_weights_the_closest_critique_and_principles(provider):
    examples = [
        example(11, "fail", "The answer ignores the refund policy entirely.", 0.8),
        example(12, "pass", "Good.", 0.5),
    ]
    principles = [PrincipleText(1, "rule one"), PrincipleText(2, "rule two")]
    verdict = provider.judge(memory(examples, principles=principles))
    assert verdict.value == "fail"
    assert "fail 0.64" in verdict.rationale and "pass 0.25" in verdict.rationale
    assert "#11" in verdict.rationale and "ignores the refund policy" in verdict.rationale
    assert "2 principle(s)" in verdict.rationale


def test_judge_computes_similarities_when_the_caller_did_not(provider):
    examples = [
        Example(1, "How do I reset my password?", "Click 'Forgot password' on the login page.", "pass", ""),
        Example(2, "What is the capital of France?", "Bananas are rich in potassium.", "fail", ""),
    ]
    query = WorkingMemory(
        CRITERION, PASS_FAIL, [], examples, "How can I reset my password?", "Use 'Forgot password' when logging in."
    )
    verdict = provider.judge(query)
    assert verdict.value == "pass"


# --- distill ----------------------------------------------------------------------------------------------

NOT_ANSWERED = [
    (1, "fail", "This does not answer the question."),
    (4, "fail", "This doesn't answer the question."),
    (6, "fail", "This does not answer the question that was asked."),
]
CITES_SOURCES = [
    (2, "pass", "The answer cites official sources for every claim."),
    (5, "pass", "Every claim in the answer is backed by official sources."),
]
SHORT = [(3, "pass", "Nice one.")]
SUBSTANTIVE = [(7, "pass", "The answer gives the exact dosage for children and says when to see a doctor instead.")]


def feedback(*groups) -> list[Example]:
    return [example(i, label, critique) for group in groups for i, label, critique in group]


def test_distill_turns_corroborated_critiques_into_rules(provider):
    result = provider.distill(CRITERION, PASS_FAIL, [], feedback(NOT_ANSWERED, CITES_SOURCES, SHORT))
    assert result.usage.calls == 0
    assert [p.source_ids for p in result.principles] == [[1, 4, 6], [2, 5]]  # largest cluster first
    topic, body, label = parts(result.principles[0].text)
    assert topic == "Does the answer address the user's question"
    assert "answer the question" in body and label == "fail"
    _, body, label = parts(result.principles[1].text)
    assert "sources" in body and label == "pass"


def test_distill_keeps_a_lone_critique_only_when_it_is_substantive(provider):
    result = provider.distill(CRITERION, PASS_FAIL, [], feedback(SHORT, SUBSTANTIVE))
    assert [p.source_ids for p in result.principles] == [[7]]
    assert "exact dosage for children" in result.principles[0].text


def test_distill_never_mixes_labels_in_one_rule(provider):
    mixed = [(1, "fail", "This does not answer the question."), (2, "pass", "This does not answer the question.")]
    result = provider.distill(CRITERION, PASS_FAIL, [], feedback(mixed))
    assert result.principles == []  # two lone short critiques, one per label: nothing corroborated


def test_distill_skips_near_duplicates_of_existing_principles_with_the_same_label(provider):
    first = provider.distill(CRITERION, PASS_FAIL, [], feedback(NOT_ANSWERED))
    existing = [PrincipleText(1, first.principles[0].text)]
    again = [(8, "fail", "This does not answer the question."), (9, "fail", "This doesn't answer the question.")]
    # nothing new: the existing principle comes back citing the new sources, for the caller to credit them there
    assert provider.distill(CRITERION, PASS_FAIL, existing, feedback(again)).principles == [
        DistilledPrinciple(existing[0].text, [8, 9], "fail")
    ]
    # the same sentence with the other label is not a duplicate: it becomes its own principle
    flipped = [(8, "pass", "This does not answer the question."), (9, "pass", "This doesn't answer the question.")]
    kept = provider.distill(CRITERION, PASS_FAIL, existing, feedback(flipped)).principles
    assert len(kept) == 1 and parts(kept[0].text)[2] == "pass"


def test_distill_is_deterministic_whatever_the_input_order(provider):
    items = feedback(NOT_ANSWERED, CITES_SOURCES, SHORT, SUBSTANTIVE)
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    first = provider.distill(CRITERION, PASS_FAIL, [], items)
    second = provider.distill(CRITERION, PASS_FAIL, [], shuffled)
    assert [(p.text, p.source_ids) for p in first.principles] == [(p.text, p.source_ids) for p in second.principles]
    assert len(first.principles) == 3


def test_distill_ignores_labels_outside_the_schema_and_empty_critiques(provider):
    items = [
        example(1, "unknown", "This does not answer the question."),
        example(2, "unknown", "This does not answer it."),
    ]
    items += [example(3, "fail", ""), example(4, "fail", "   ")]
    assert provider.distill(CRITERION, PASS_FAIL, [], items).principles == []


# --- rederive ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def not_answered_rule(provider) -> str:
    return provider.distill(CRITERION, PASS_FAIL, [], feedback(NOT_ANSWERED)).principles[0].text


def test_rederive_keeps_the_text_while_sources_still_support_it(provider, not_answered_rule):
    remaining = feedback(NOT_ANSWERED)[1:]  # feedback 1 deleted, two others still say the same
    assert provider.rederive(CRITERION, not_answered_rule, remaining).text == not_answered_rule
    # an edited critique that paraphrases the same reason still counts as support
    edited = [example(4, "fail", "The answer does not address the question at all."), remaining[1]]
    assert provider.rederive(CRITERION, not_answered_rule, edited).text == not_answered_rule


def test_rederive_retires_without_sources_or_support(provider, not_answered_rule):
    assert provider.rederive(CRITERION, not_answered_rule, []).text is None
    unrelated = feedback(CITES_SOURCES)  # the remaining critiques now say something else
    assert provider.rederive(CRITERION, not_answered_rule, unrelated).text is None
    one_short = feedback(NOT_ANSWERED)[:1]  # one short critique would not have made a rule on its own
    assert provider.rederive(CRITERION, not_answered_rule, one_short).text is None


def test_rederive_rewrites_the_rule_when_the_experts_label_changed(provider, not_answered_rule):
    relabelled = [example(i, "pass", critique) for i, _, critique in NOT_ANSWERED[1:]]
    text = provider.rederive(CRITERION, not_answered_rule, relabelled).text
    assert text is not None and text != not_answered_rule
    assert parts(text)[2] == "pass"


def test_rederive_keeps_principles_written_by_others_while_sources_remain(provider):
    principle = "Fail an answer when it does not answer the question."  # an LLM's wording, no label
    assert provider.rederive(CRITERION, principle, feedback(NOT_ANSWERED[:1])).text == principle
    assert provider.rederive(CRITERION, principle, []).text is None
    assert provider.rederive(CRITERION, principle, [example(1, "fail", "  ")]).text is None


# --- consolidate ------------------------------------------------------------------------------------------


def rule(label: str, sentence: str) -> str:
    return f'When judging "Does the answer address the user\'s question": {sentence} (experts chose {label}).'


def test_consolidate_merges_near_duplicates_with_the_same_label(provider):
    principles = [
        PrincipleText(10, rule("fail", "This does not answer the question")),
        PrincipleText(11, rule("pass", "The answer cites official sources for every claim")),
        PrincipleText(12, rule("fail", "This doesn't answer the question")),
        PrincipleText(13, rule("fail", "The answer is written in French")),
    ]
    result = provider.consolidate(CRITERION, principles)
    assert [m.principle_ids for m in result.merges] == [[10, 12]]
    assert result.merges[0].text == principles[0].text
    assert result.contradictions == []
    assert result.usage.calls == 0


def test_consolidate_never_merges_across_labels(provider):
    principles = [
        PrincipleText(1, rule("pass", "This does not answer the question")),
        PrincipleText(2, rule("fail", "This does not answer the question")),
        PrincipleText(3, "This does not answer the question.", label="pass"),
    ]
    result = provider.consolidate(CRITERION, principles)
    assert [m.principle_ids for m in result.merges] == [[1, 3]]
    assert result.contradictions == []  # read from the sources' samples by memory.consolidate, not from wording


def test_consolidate_needs_two_principles(provider):
    assert provider.consolidate(CRITERION, [PrincipleText(1, rule("pass", "Fine"))]).merges == []


# --- real data: FeedbackQA's human rationales -------------------------------------------------------------


@pytest.fixture(scope="module")
def feedbackqa() -> tuple[str, LabelSchema, list[Example]]:
    if not FEEDBACKQA.exists():
        pytest.skip(f"{FEEDBACKQA} is absent: the shared datasets exist only on the team's machines")
    rows = [json.loads(line) for line in FEEDBACKQA.read_text(encoding="utf-8").splitlines()]
    schema = LabelSchema("categorical", rows[0]["meta"]["label_space"])
    examples = [
        Example(i, r["inputs"]["question"], r["outputs"], r["label"], r["rationale"] or "") for i, r in enumerate(rows)
    ]
    return rows[0]["criterion"], schema, examples


@pytest.fixture(scope="module")
def distilled(provider, feedbackqa):
    criterion, schema, examples = feedbackqa
    batch = random.Random(0).sample(examples, 200)
    return batch, provider.distill(criterion, schema, [], batch)


def test_real_critiques_yield_rules_that_cite_agreeing_feedback(distilled):
    batch, result = distilled
    by_id = {e.feedback_id: e for e in batch}
    assert 20 <= len(result.principles) <= 200
    corroborated = [p for p in result.principles if len(p.source_ids) >= 3]
    assert corroborated, "some reason should recur in 200 critiques"
    for principle in result.principles:
        _, body, label = parts(principle.text)
        sources = [by_id[i] for i in principle.source_ids]
        assert all(s.label == label for s in sources)
        assert any(body in " ".join(s.critique.split()) for s in sources)  # quotes one of its critiques


def test_real_generic_rules_point_the_right_way(distilled):
    _, result = distilled
    labels = {}
    for principle in result.principles:
        _, body, label = parts(principle.text)
        labels.setdefault(body.lower(), label)
    negative = [label for body, label in labels.items() if "does not answer" in body or "irrelevant" in body]
    positive = [label for body, label in labels.items() if "direct answer" in body]
    assert negative and positive
    assert set(negative) <= {"Bad", "Could be Improved"}
    assert set(positive) <= {"Excellent", "Acceptable"}


def test_real_rule_survives_losing_one_source_and_retires_without_them(provider, feedbackqa, distilled):
    criterion, _, _ = feedbackqa
    batch, result = distilled
    by_id = {e.feedback_id: e for e in batch}
    principle = max(result.principles, key=lambda p: len(p.source_ids))
    sources = [by_id[i] for i in principle.source_ids]
    assert provider.rederive(criterion, principle.text, sources[1:]).text == principle.text
    assert provider.rederive(criterion, principle.text, []).text is None
    others = [e for e in batch if e.feedback_id not in principle.source_ids and e.label != sources[0].label][:5]
    assert provider.rederive(criterion, principle.text, others).text is None


def test_real_consolidation_merges_rules_distilled_from_separate_batches(provider, feedbackqa):
    criterion, schema, examples = feedbackqa
    shuffled = examples[:]
    random.Random(1).shuffle(shuffled)
    first = provider.distill(criterion, schema, [], shuffled[:150]).principles
    second = provider.distill(criterion, schema, [], shuffled[150:300]).principles
    principles = [PrincipleText(i, p.text) for i, p in enumerate(first + second)]
    result = provider.consolidate(criterion, principles)
    across = [m for m in result.merges if min(m.principle_ids) < len(first) <= max(m.principle_ids)]
    assert across, "the two batches share generic reasons that should merge"
    for merge in result.merges:
        labels = {parts(principles[i].text)[2] for i in merge.principle_ids}
        assert len(labels) == 1  # only rules with the same label merge
        bodies = embed([parts(principles[i].text)[1] for i in merge.principle_ids])
        assert float((bodies @ bodies.T).min()) > 0.7
