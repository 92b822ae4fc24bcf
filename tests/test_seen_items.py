"""A reviewed item stays decided: re-imported as a new sample, it gets its expert's label (MemAlign's "seen"
examples), on each file of the shared datasets, including long pairwise samples whose output B lies past the
first 256 tokens of the sample."""

import json

import numpy as np
import pytest

from judging import judge
from memory import budget, episodic
from memory.embeddings import MAX_TOKENS, token_counts
from memory.llm.offline import OfflineProvider
from reviews.models import Feedback, Sample
from reviews.projects import create_project
from tests.conftest import shared_dataset

MEMORY = 200  # reviewed items in the memory
PROBES = 50  # of them re-imported as new samples
KINDS = {"binary": "categorical", "categorical": "categorical", "pairwise": "pairwise"}


def load(name: str) -> list[dict]:
    with shared_dataset(name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def sample_fields(record: dict) -> dict:
    if "output_a" in record:
        return {"inputs": record["inputs"], "output_a": record["output_a"], "output_b": record["output_b"]}
    return {"inputs": record["inputs"], "outputs": record["outputs"]}


def seen_accuracy(personas, name: str) -> tuple[float, int, int]:
    """(share of probes judged with their expert's label, probes, long pairwise probes among them)."""
    records = load(name)
    order = np.random.default_rng(7).permutation(len(records))
    chosen = [records[i] for i in order[:MEMORY]]
    first = chosen[0]
    kind = KINDS[first["label_type"]]
    project = create_project(
        personas.owner,
        name=f"seen {name}",
        criterion=first["criterion"],
        label_kind=kind,
        **({"categories": first["meta"]["label_space"]} if kind == "categorical" else {}),
    )
    episodic.drop(project.pk)
    samples = Sample.objects.bulk_create(
        [Sample(project=project, external_id=r["id"], **sample_fields(r)) for r in chosen]
    )
    feedback = Feedback.objects.bulk_create(
        [
            Feedback(
                project=project, sample=s, author=personas.reviewer, label=r["label"], critique=r.get("rationale") or ""
            )
            for s, r in zip(samples, chosen)
        ]
    )
    feedback = list(Feedback.objects.filter(project=project).select_related("sample"))
    for start in range(0, len(feedback), 100):
        episodic.upsert(feedback[start : start + 100])
    probes = chosen[:PROBES]
    copies = Sample.objects.bulk_create(
        [Sample(project=project, external_id=f"again-{r['id']}", **sample_fields(r)) for r in probes]
    )
    memories = judge.working_memories(project, copies)
    provider = OfflineProvider()
    right = sum(provider.judge(memory).value == r["label"] for memory, r in zip(memories, probes))
    # Retrieval finds the item itself: the whole sample is embedded, so two pairs on one question differ.
    assert all(memory.examples[0].same_item and memory.examples[0].similarity > 0.99 for memory in memories)
    long_pairs = 0
    if kind == "pairwise":
        heads = token_counts([f"{c.inputs_text()}\n\nOutput A:\n{c.output_a}\n\nOutput B:\n" for c in copies])
        long_pairs = sum(head >= MAX_TOKENS for head in heads)
    return right / len(probes), len(probes), long_pairs


@pytest.mark.parametrize("name", ["llmbar.jsonl", "halueval_general.jsonl", "mtbench_human.jsonl", "feedbackqa.jsonl"])
def test_a_reviewed_item_judged_again_gets_its_experts_label(personas, name):
    accuracy, probes, long_pairs = seen_accuracy(personas, name)
    print(
        f"{name}: {accuracy:.2f} of {probes} re-imported reviewed items get their expert's label ({long_pairs} long pairs)"
    )
    if name in ("llmbar.jsonl", "mtbench_human.jsonl"):
        assert long_pairs > 0  # output B starts past the old 256-token cut in some probes
    assert accuracy >= 0.98


def test_the_same_item_decides_the_offline_vote_however_many_neighbours_disagree():
    from memory.llm.base import Example, LabelSchema, WorkingMemory

    twin = Example(1, "Where is my parcel?", "It left today.", "pass", "", similarity=1.0, same_item=True)
    others = [Example(i, "Where is my parcel?", f"Reply {i}.", "fail", "", similarity=0.97) for i in range(2, 6)]
    memory = WorkingMemory(
        "Helpful?",
        LabelSchema("pass_fail", ["pass", "fail"]),
        [],
        [twin, *others],
        "Where is my parcel?",
        "It left today.",
    )
    assert OfflineProvider().judge(memory).value == "pass"
    twin.same_item = False
    assert OfflineProvider().judge(memory).value == "fail"  # without the mark, the neighbours outvote it


@pytest.mark.django_db
def test_the_working_memory_holds_exactly_the_principles_k_examples_and_never_its_own_feedback(personas):
    from memory.models import Principle
    from tests.conftest import add_feedback, add_sample

    project = personas.project
    project.retrieval_k = 3
    project.save()
    kept = [Principle.objects.create(project=project, text=f"Rule {i}.", origin="manual") for i in range(3)]
    Principle.objects.create(project=project, text="Retired rule.", origin="manual", retired=True)
    reviewed = [
        add_sample(project, f"m{i}", inputs={"q": f"Where is parcel {i}?"}, outputs=f"On its way, {i}.")
        for i in range(5)
    ]
    feedback = [
        add_feedback(s, personas.reviewer, "pass" if i % 2 else "fail", f"Critique {i}.")
        for i, s in enumerate(reviewed)
    ]
    twin = add_sample(project, "again-m2", inputs={"q": "Where is parcel 2?"}, outputs="On its way, 2.")
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    own, again = judge.working_memories(project, [reviewed[2], twin])
    assert [p.id for p in own.principles] == [p.pk for p in kept]  # every active principle, no retired one
    assert len(own.examples) == 3 and feedback[2].pk not in [e.feedback_id for e in own.examples]
    assert not any(e.same_item for e in own.examples)
    assert again.examples[0].feedback_id == feedback[2].pk and again.examples[0].same_item  # its twin, first
    assert [e.same_item for e in again.examples[1:]] == [False, False]
    assert again.inputs == twin.inputs_text() and again.output == "On its way, 2."


@pytest.mark.django_db
def test_entries_embedded_under_the_old_scheme_are_repaired(personas):
    from memory import sync
    from tests.conftest import add_feedback, add_sample

    feedback = add_feedback(add_sample(personas.project, "old"), personas.reviewer, "fail", "Curt.")
    episodic.collection(personas.project.pk).upsert(  # as the first scheme stored it: no "scheme" key
        ids=[str(feedback.pk)],
        embeddings=[[1.0] + [0.0] * 383],
        metadatas=[
            {
                "sample_id": feedback.sample_id,
                "label": "fail",
                "author_id": 1,
                "project_id": personas.project.pk,
                "revision": 1,
            }
        ],
    )
    assert sync.diff(personas.project).outdated == [feedback.pk]
    sync.repair(personas.project)
    assert episodic.entries(personas.project.pk) == {feedback.pk: feedback.revision}


@pytest.mark.django_db
def test_over_budget_each_item_gets_the_pinned_and_its_most_relevant_principles(personas, client):
    from memory.models import Principle
    from tests.conftest import add_sample

    project = personas.project
    topics = ["refund for a broken kettle", "parcel delivery delay", "password reset email", "invoice address change"]
    rules = {
        t: Principle.objects.create(
            project=project, text=f"When the customer asks about a {t}, answer that first.", origin="manual"
        )
        for t in topics
    }
    pinned = Principle.objects.create(
        project=project, text="Never promise what policy forbids.", origin="manual", pinned=True
    )
    everything = budget.principle_set(project)
    project.principle_budget_tokens = everything.tokens  # within: every item gets every principle
    project.save()
    sample = add_sample(project, "p", inputs={"q": "My parcel delivery is late again"}, outputs="Sorry, it ships soon.")
    (memory,) = judge.working_memories(project, [sample])
    assert [p.id for p in memory.principles] == [p.id for p in everything.principles]
    client.force_login(personas.viewer)
    assert 'id="budget-notice"' not in client.get(f"/p/{project.slug}/memory/").content.decode()

    one_rule = budget.principle_tokens(budget.PrincipleText(0, rules[topics[1]].text))
    project.principle_budget_tokens = one_rule + budget.principle_tokens(budget.PrincipleText(0, pinned.text))
    project.save()
    (memory,) = judge.working_memories(project, [sample])
    assert [p.id for p in memory.principles] == sorted([rules["parcel delivery delay"].pk, pinned.pk])
    assert budget.over_budget(project)
    assert 'id="budget-notice"' in client.get(f"/p/{project.slug}/memory/").content.decode()
