"""The learned local judge: training and prediction per label kind, antisymmetry, the cascade, coalesced
retraining, one stored model shared by several processes, and the bad-input cases."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from judging import dispatch, learned, runs
from judging import learned_model as lm
from judging.judge import working_memories
from judging.models import Judgement, LearnedJudge
from memory import events
from memory import vectors as sample_vectors
from memory.dispatch import key
from memory.llm.offline import OfflineProvider, knn_label
from memory.redis_client import get_redis
from reviews.models import Feedback, Project, Sample
from tests.conftest import add_feedback, add_sample, wait_for

ROOT = Path(__file__).resolve().parents[1]
DIM = 384


# --- the estimator on synthetic vectors ---------------------------------------------------------------------


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def synthetic(n: int, parts: int, seed: int, strength: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items whose similarity is all topic (a strong shared input direction per group of 4) and whose label
    is a quality direction in the output that no neighbour vote can see: (parts, quality score, group)."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(n // 4 + 1, DIM)))
    quality = unit(rng.normal(size=DIM))
    group = np.arange(n) // 4
    score = rng.normal(size=(n, parts - 1))
    inputs = topics[group]
    outputs = [
        unit(3 * topics[group] + rng.normal(size=(n, DIM)) * 0.3 + strength * score[:, [k]] * quality)
        for k in range(parts - 1)
    ]
    return np.stack([inputs, *outputs], axis=1), score, group


def test_pass_fail_is_learned_and_beats_the_vote_on_unseen_groups():
    """A deterministic fixture: similarity follows the topic, the label follows quality; the vote of the nearest
    reviewed items (other topics: the test groups are unseen) is near chance, the learned judge is not."""
    parts, score, group = synthetic(400, 2, seed=1, strength=0.7)
    labels = np.where(score[:, 0] > 0, "pass", "fail")
    train, test = group < 70, group >= 70
    model = lm.fit("pass_fail", ["pass", "fail"], parts[train], labels[train].tolist())
    probabilities = model.probabilities(parts[test])
    learned_exact = np.mean(np.array(model.decide(probabilities)) == labels[test])

    means = unit(parts.sum(axis=1))
    similarity = means[test] @ means[train].T
    voted = []
    for row in similarity:
        nearest = np.argsort(-row)[:5]
        voted.append(knn_label(labels[train][nearest].tolist(), row[nearest].tolist(), ["pass", "fail"]))
    vote_exact = np.mean(np.array(voted) == labels[test])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert learned_exact >= 0.8, learned_exact
    assert learned_exact > vote_exact + 0.15, (learned_exact, vote_exact)  # measured: 0.86 against 0.64


def test_categories_are_learned_with_a_probability_per_label():
    parts, score, _ = synthetic(300, 2, seed=2)
    labels = np.select([score[:, 0] < -0.5, score[:, 0] > 0.5], ["bad", "good"], "fair").tolist()
    model = lm.fit("categorical", ["good", "fair", "bad"], parts[:240], labels[:240])
    probabilities = model.probabilities(parts[240:])
    assert probabilities.shape == (60, 3)
    assert np.mean(np.array(model.decide(probabilities)) == np.array(labels[240:])) >= 0.7


def test_ordered_categories_decide_by_expected_distance_and_weighted_kappa_is_no_worse_than_argmax():
    """Five ordered labels from a noisy score: the tuned decision (chosen on out-of-fold probabilities of the
    training side) is an expected-distance one, and on unseen samples its quadratic-weighted kappa is at least the
    most probable label's."""
    from sklearn.metrics import cohen_kappa_score

    parts, score, _ = synthetic(600, 2, seed=5, strength=0.5)
    choices = ["awful", "poor", "fair", "good", "great"]
    steps = np.clip(np.round(score[:, 0] * 1.2 + 2), 0, 4).astype(int)
    labels = [choices[s] for s in steps]
    model, _ = lm.fit_tuned("categorical", choices, parts[:450], labels[:450])
    probabilities = model.probabilities(parts[450:])
    position = {label: i for i, label in enumerate(choices)}

    def weighted(decided: list[str]) -> float:
        return cohen_kappa_score(steps[450:], [position[d] for d in decided], weights="quadratic")

    assert model.ordinal_cost in lm.ORDINAL_COSTS
    assert weighted(model.decide(probabilities)) >= weighted(model.decide(probabilities, ordinal_cost=""))


def test_the_expected_distance_decision_respects_the_order():
    model = lm.LearnedModel(
        "categorical", ["low", "mid", "high"], ["high", "low", "mid"], np.zeros((3, 1)), np.zeros(3)
    )
    split_mass = np.array([[0.4, 0.3, 0.3], [0.45, 0.1, 0.45], [0.1, 0.2, 0.7]])
    assert model.decide(split_mass) == ["low", "low", "high"]  # most probable label, ties in schema order
    assert model.decide(split_mass, ordinal_cost="absolute") == ["mid", "mid", "high"]
    assert model.decide(split_mass, ordinal_cost="squared") == ["mid", "mid", "high"]
    # Moving mass up the scale never moves the decision down.
    for cost in lm.ORDINAL_COSTS:
        decided = [model.decide(np.array([[1 - t, 0.0, t]]), ordinal_cost=cost)[0] for t in np.linspace(0, 1, 21)]
        ranks = [["low", "mid", "high"].index(d) for d in decided]
        assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 2


def test_a_numeric_scale_is_a_regression_whose_probabilities_follow_the_order():
    parts, score, _ = synthetic(300, 2, seed=3)
    steps = np.clip(np.round(score[:, 0] * 1.5 + 3), 1, 5).astype(int)
    choices = ["1", "2", "3", "4", "5"]
    model = lm.fit("numeric", choices, parts[:240], [str(s) for s in steps[:240]])
    probabilities = model.probabilities(parts[240:])
    predicted = np.array([int(v) for v in model.decide(probabilities)])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(np.abs(predicted - steps[240:])) < 0.8
    # One peak: the mass falls away on both sides of the most probable step (a distance, not unordered classes).
    for row in probabilities:
        top = int(np.argmax(row))
        assert all(row[i] >= row[i - 1] for i in range(1, top + 1))
        assert all(row[i] <= row[i - 1] for i in range(top + 1, len(row)))


@pytest.mark.parametrize(
    "kind, choices, counts",
    [
        ("pass_fail", ["pass", "fail"], {"pass": 18, "fail": 2}),
        ("categorical", ["bad", "fair", "good"], {"bad": 16, "fair": 2, "good": 2}),
        ("numeric", ["1", "2", "3"], {"1": 10, "2": 9, "3": 1}),
        ("pairwise", ["A", "B"], {"A": 18, "B": 2}),
    ],
)
def test_the_minimum_the_readiness_allows_trains_and_predicts(kind, choices, counts):
    """20 labels with only 2 of one label (a numeric step: 1) is enough to train (learned.readiness): the tuned
    training must not need more of a label than that (its out-of-fold tuning is skipped below 3 of each), and
    a prediction for no items is empty."""
    labels = [label for label, count in counts.items() for _ in range(count)]
    assert learned.readiness(kind, choices, labels).ready
    parts, _, _ = synthetic(len(labels), 3 if kind == "pairwise" else 2, seed=7)
    lengths = np.random.default_rng(7).integers(20, 900, size=parts.shape[:2]).astype(np.float64)
    model, held_out = lm.fit_tuned(kind, choices, parts, labels, lengths=lengths)
    probabilities = model.probabilities(parts, lengths)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert set(model.decide(probabilities)) <= set(choices)
    assert held_out is None or held_out.shape == (len(labels), len(choices))
    assert model.probabilities(parts[:0], lengths[:0]).shape == (0, len(choices))  # no items: no rows, no error


def test_pairwise_is_antisymmetric_swap_gives_the_opposite_verdict_with_the_same_probability():
    parts, score, _ = synthetic(300, 3, seed=4)
    labels = np.where(score[:, 0] > score[:, 1], "A", "B").tolist()
    lengths = np.random.default_rng(4).integers(20, 900, size=(300, 3)).astype(np.float64)
    model = lm.fit("pairwise", ["A", "B"], parts[:240], labels[:240], lengths=lengths[:240])
    assert model.with_lengths
    forward = model.probabilities(parts[240:], lengths[240:])
    swapped = model.probabilities(parts[240:][:, [0, 2, 1], :], lengths[240:][:, [0, 2, 1]])
    assert np.allclose(forward[:, 0], swapped[:, 1], atol=1e-9)
    assert np.allclose(forward[:, 1], swapped[:, 0], atol=1e-9)
    undecided = np.isclose(forward[:, 0], 0.5)
    flipped = np.array(model.decide(forward)) != np.array(model.decide(swapped))
    assert flipped[~undecided].all()
    assert np.mean(np.array(model.decide(forward)) == np.array(labels[240:])) >= 0.8


def test_pairwise_learns_a_preference_for_length_that_the_vectors_do_not_show():
    """People often prefer the longer answer (or the shorter): with outputs whose vectors carry nothing about the
    label, the length difference alone is learned, in whichever direction the labels go."""
    rng = np.random.default_rng(5)
    parts = unit(rng.normal(size=(400, 3, DIM)))
    lengths = rng.integers(50, 3000, size=(400, 3)).astype(np.float64)
    longer = np.where(lengths[:, 1] > lengths[:, 2], "A", "B")
    for labels in (longer, np.where(longer == "A", "B", "A")):
        model = lm.fit("pairwise", ["A", "B"], parts[:300], labels[:300].tolist(), lengths=lengths[:300])
        decided = np.array(model.decide(model.probabilities(parts[300:], lengths[300:])))
        assert np.mean(decided == labels[300:]) >= 0.9
    blind = lm.fit("pairwise", ["A", "B"], parts[:300], longer[:300].tolist())  # the vectors alone: chance
    assert np.mean(np.array(blind.decide(blind.probabilities(parts[300:]))) == longer[300:]) < 0.7


def test_a_pairwise_model_trained_on_lengths_refuses_to_judge_without_them():
    parts, score, _ = synthetic(60, 3, seed=6)
    labels = np.where(score[:, 0] > score[:, 1], "A", "B").tolist()
    lengths = np.full((60, 3), 100.0)
    model = lm.fit("pairwise", ["A", "B"], parts, labels, lengths=lengths)
    with pytest.raises(ValueError, match="lengths"):
        model.probabilities(parts)


def test_a_pairwise_model_stored_before_lengths_were_features_still_judges():
    """A model pickled before `with_lengths` existed unpickles with it False and judges on its vectors."""
    parts, score, _ = synthetic(120, 3, seed=8)
    labels = np.where(score[:, 0] > score[:, 1], "A", "B").tolist()
    model = lm.fit("pairwise", ["A", "B"], parts, labels)
    state = dict(model.__dict__)
    del state["with_lengths"]
    old = lm.LearnedModel.__new__(lm.LearnedModel)
    old.__dict__.update(state)
    assert not old.with_lengths
    assert np.allclose(old.probabilities(parts, np.full((120, 3), 10.0)), model.probabilities(parts))


# --- the project's learned judge ----------------------------------------------------------------------------

GOOD = "Open Settings, choose Security, press Reset password and follow the link we email you within {i} minutes."
BAD = "I am not sure what you mean, maybe try asking someone else about that {i} thing later."


def labelled(project, reviewer, count: int = 24, labels=("pass", "fail"), start: int = 0) -> list[Sample]:
    samples = []
    for i in range(start, count):
        label = labels[i % len(labels)]
        output = (GOOD if label == labels[0] else BAD).format(i=i)
        sample = add_sample(
            project, f"l{i}", inputs={"question": f"How do I reset my password on device {i}?"}, outputs=output
        )
        Feedback.objects.create(project=project, sample=sample, author=reviewer, label=label, critique="")
        samples.append(sample)
    return samples


@pytest.mark.django_db
def test_training_stores_the_model_and_the_offline_judge_uses_it(personas):
    labelled(personas.project, personas.reviewer)
    row = learned.train(personas.project)
    assert row.trained_at is not None and row.labels == 24 and row.estimator
    assert row.schema == learned.schema_fingerprint(personas.project)
    assert row.stats["counts"] == {"pass": 12, "fail": 12}
    unseen = [
        add_sample(
            personas.project,
            "u1",
            inputs={"question": "How do I reset my password on my tablet?"},
            outputs=GOOD.format(i=99),
        ),
        add_sample(
            personas.project,
            "u2",
            inputs={"question": "How do I reset my password on my watch?"},
            outputs=BAD.format(i=98),
        ),
    ]
    memories = working_memories(personas.project, unseen)
    verdicts = [OfflineProvider().judge(m) for m in memories]
    assert [v.value for v in verdicts] == ["pass", "fail"]
    assert {v.tier for v in verdicts} == {"learned"}
    assert all(v.probability is not None and v.probability > 0.5 for v in verdicts)
    assert set(memories[0].local.probabilities) == {"pass", "fail"}


DETAILED = (
    "Open Settings, then Security, and press Reset password. We email you a link within {i} minutes; follow it, "
    "choose a new password of at least twelve characters, and sign in again on each of your devices."
)
CURT = "Use the reset {i} link."


@pytest.mark.django_db
def test_a_pairwise_project_learns_from_its_outputs_and_their_lengths_and_judges_a_swap_the_other_way(personas):
    """The project's own path (training from stored samples, a run's working memories, the "try the judge" box)
    hands the learned judge the outputs' lengths: a pairwise model is trained with them and judges with them."""
    from judging.judge import working_memory
    from reviews.projects import create_project

    project = create_project(
        personas.owner, name="Which reply", criterion="Which reply helps more?", label_kind="pairwise"
    )
    for i in range(24):
        detailed_first = i % 2 == 0
        a, b = (DETAILED, CURT) if detailed_first else (CURT, DETAILED)
        sample = add_sample(
            project,
            f"p{i}",
            inputs={"question": f"How do I reset my password on device {i}?"},
            outputs="",
            output_a=a.format(i=i),
            output_b=b.format(i=i),
        )
        Feedback.objects.create(
            project=project, sample=sample, author=personas.owner, label="A" if detailed_first else "B", critique=""
        )
    row = learned.train(project)
    assert row.trained_at is not None and row.labels == 24
    assert learned.usable(project, queue_retraining=False).model.with_lengths
    question = {"question": "How do I reset my password on my tablet?"}
    forward = add_sample(project, "f", inputs=question, outputs="", output_a=DETAILED.format(i=99), output_b=CURT)
    swapped = add_sample(project, "s", inputs=question, outputs="", output_a=CURT, output_b=DETAILED.format(i=99))
    memories = working_memories(project, [forward, swapped])
    assert [m.local.value for m in memories] == ["A", "B"]
    # Nearly the same: each output's part text starts "Output A:"/"Output B:", so a swap moves its vector a little.
    assert memories[0].local.probability == pytest.approx(memories[1].local.probability, abs=0.02)
    tried = working_memory(project, forward.inputs_text(), output_a=DETAILED.format(i=99), output_b=CURT.format(i=99))
    assert tried.local.value == "A" and tried.local.probability > 0.5


@pytest.mark.django_db
def test_the_same_item_rule_comes_before_the_learned_judge(personas):
    samples = labelled(personas.project, personas.reviewer)
    learned.train(personas.project)
    from memory import episodic

    episodic.upsert(list(Feedback.objects.filter(project=personas.project)))
    twin = add_sample(personas.project, "twin", inputs=samples[0].inputs, outputs=samples[0].outputs)
    (memory,) = working_memories(personas.project, [twin])
    verdict = OfflineProvider().judge(memory)
    assert verdict.tier == "same_item" and verdict.value == "pass"


@pytest.mark.django_db
def test_too_few_labels_mean_no_model_the_reason_and_the_vote(personas, client):
    labelled(personas.project, personas.reviewer, count=6)
    row = learned.train(personas.project)
    assert not row.estimator and row.trained_at is None
    assert "needs at least 20" in row.not_trained and "(14 more)" in row.not_trained
    sample = add_sample(personas.project, "q", outputs=GOOD.format(i=5))
    (memory,) = working_memories(personas.project, [sample])
    assert memory.local is not None and memory.local.value is None
    verdict = OfflineProvider().judge(memory)
    assert verdict.tier != "learned" and "needs at least 20" in verdict.rationale
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()
    assert "the learned judge needs at least 20 final labels and has 6 (14 more needed)." in page


@pytest.mark.django_db
def test_one_label_only_trains_nothing_and_says_which_label_is_missing(personas):
    labelled(personas.project, personas.reviewer, count=24, labels=("pass",))
    row = learned.train(personas.project)
    assert not row.estimator
    assert "“fail”" in row.not_trained and "(2 more)" in row.not_trained


@pytest.mark.django_db
def test_overruled_and_undecided_feedback_are_not_final_labels(personas):
    samples = labelled(personas.project, personas.reviewer, count=4)
    Feedback.objects.create(project=personas.project, sample=samples[0], author=personas.owner, label="fail")
    assert samples[0].pk not in dict(learned.final_labels(personas.project))  # reviewers disagree, undecided
    from reviews.adjudication import decide

    decide(samples[0], "fail", "The owner decided.", personas.owner)
    assert dict(learned.final_labels(personas.project))[samples[0].pk] == "fail"  # the decision, not the overruled


@pytest.mark.django_db
def test_a_label_removed_from_the_schema_sets_the_model_aside_and_retraining_drops_it(personas):
    project = personas.project
    project.label_kind, project.categories = "categorical", ["good", "meh", "bad"]
    project.save()
    labelled(project, personas.reviewer, count=30, labels=("good", "bad", "meh"))
    assert learned.train(project).trained_at is not None
    project.categories = ["good", "bad"]
    project.save()
    get_redis().delete(key("learned-queued", project.pk))
    found = learned.usable(project)
    assert found.model is None and "another label schema" in found.note
    assert get_redis().get(key("learned-queued", project.pk))  # a retraining was queued, not a silent use
    row = learned.train(project)
    assert row.labels == 20 and row.stats["counts"] == {"good": 10, "bad": 10}
    assert learned.usable(project).model is not None


@pytest.mark.django_db
def test_a_stored_model_from_another_schema_is_never_used(personas):
    labelled(personas.project, personas.reviewer)
    learned.train(personas.project)
    LearnedJudge.objects.filter(project=personas.project).update(schema="0" * 64)
    sample = add_sample(personas.project, "q", outputs=GOOD.format(i=5))
    (memory,) = working_memories(personas.project, [sample])
    assert memory.local.value is None and "another label schema" in memory.local.note
    assert OfflineProvider().judge(memory).tier != "learned"


@pytest.mark.django_db
def test_a_model_of_an_older_memory_version_is_set_aside_until_retrained(personas):
    from memory.models import MemoryVersion

    labelled(personas.project, personas.reviewer)
    assert learned.train(personas.project).memory_version is None
    MemoryVersion.objects.create(project=personas.project, number=1, trigger="distill", provider="offline", model="m")
    found = learned.usable(personas.project)
    assert found.model is None and "no memory version yet" in found.note and "now at version 1" in found.note
    assert learned.train(personas.project).memory_version == 1
    assert learned.usable(personas.project).model is not None


@pytest.mark.django_db
def test_a_judgment_sees_a_new_memory_version_at_once_though_the_principle_set_is_kept(personas):
    """The try-the-judge and API path takes the version from the principle set kept per process (no query of
    its own): a version written after the set was kept sets the model aside on the very next judgment."""
    from judging.judge import working_memory
    from memory.models import MemoryVersion

    labelled(personas.project, personas.reviewer)
    learned.train(personas.project)

    def local():
        return working_memory(personas.project, "How do I reset my password on my tablet?", GOOD.format(i=99)).local

    assert local().value is not None  # the set is kept now, read before any version
    MemoryVersion.objects.create(project=personas.project, number=1, trigger="distill", provider="offline", model="m")
    aside = local()
    assert aside.value is None and "now at version 1" in aside.note
    learned.train(personas.project)
    assert local().value is not None


@pytest.mark.django_db
def test_a_failed_training_keeps_the_previous_model_and_says_so(personas, monkeypatch, client):
    labelled(personas.project, personas.reviewer)
    before = learned.train(personas.project)

    def broken(*args, **kwargs):
        raise MemoryError("out of memory while fitting")

    monkeypatch.setattr(learned, "fit_tuned", broken)
    row = learned.train(personas.project)
    assert "out of memory while fitting" in row.failure and row.failed_at is not None
    assert bytes(row.estimator) == bytes(before.estimator) and row.trained_at == before.trained_at
    assert learned.usable(personas.project).model is not None
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()
    assert "The last training failed" in page and "The previous model stays in use." in page


@pytest.mark.django_db
def test_retraining_requests_are_coalesced_per_project(personas, monkeypatch):
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args, **kw: sent.append((name, args)))
    get_redis().delete(key("learned-queued", personas.project.pk), key("learned-queued", personas.other.pk))
    results = [dispatch.request_training(personas.project.pk) for _ in range(10)]
    results.append(dispatch.request_training(personas.other.pk))
    assert results == [True] + [False] * 9 + [True]
    assert sent == [
        ("judging.tasks.train_learned_judge", (personas.project.pk,)),
        ("judging.tasks.train_learned_judge", (personas.other.pk,)),
    ]


@pytest.mark.django_db
def test_a_new_memory_version_queues_a_retraining_of_its_project(
    personas, monkeypatch, django_capture_on_commit_callbacks
):
    # The memory announces new versions with the Project class as sender and the project as an argument.
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args, **kw: sent.append((name, args)))
    get_redis().delete(key("learned-queued", personas.project.pk))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        events.versions_written.send(sender=Project, project=personas.project, versions=[])
    assert callbacks, "the retraining is queued when the version's transaction commits"
    assert ("judging.tasks.train_learned_judge", (personas.project.pk,)) in sent


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_labels_is_learned_by_a_real_worker_in_few_trainings(personas, celery_worker, settings, monkeypatch):
    settings.MEMALIGN_LEARNED_TRAIN_DELAY_SECONDS = 1.0
    real_send = dispatch.send
    sent = []

    def counting(name, *args, **kwargs):
        if name == "judging.tasks.train_learned_judge":
            sent.append(args)
        real_send(name, *args, **kwargs)

    monkeypatch.setattr(dispatch, "send", counting)
    for i in range(24):
        label = ("pass", "fail")[i % 2]
        sample = add_sample(
            personas.project,
            f"b{i}",
            inputs={"question": f"Reset my password {i}?"},
            outputs=(GOOD if label == "pass" else BAD).format(i=i),
        )
        add_feedback(sample, personas.reviewer, label, "Clear steps." if label == "pass" else "Does not help.")
    wait_for(
        lambda: LearnedJudge.objects.filter(project=personas.project, labels=24).exists(),
        timeout=120,
        message="the learned judge trained on all 24 labels",
    )
    # 24 saves; the burst costs one training (and one more per memory version the saves lead to).
    assert 1 <= len(sent) <= 4, sent


@pytest.mark.worker  # processes of its own, like the tests that start worker processes
@pytest.mark.django_db(transaction=True)
def test_one_stored_model_is_shared_by_two_other_processes(personas):
    from tests.test_memory_faults import database_url

    labelled(personas.project, personas.reviewer)
    learned.train(personas.project)
    sample = add_sample(personas.project, "shared", outputs=GOOD.format(i=7))
    here = learned.predictions(
        personas.project, sample_vectors.part_vectors([sample]), learned.sample_lengths([sample])
    )[0]
    script = (
        "import django, json; django.setup();"
        "from judging import learned; from memory.vectors import part_vectors; from reviews.models import Project, Sample;"
        f"p = Project.objects.get(pk={personas.project.pk}); s = Sample.objects.get(pk={sample.pk});"
        "found = learned.usable(p, queue_retraining=False);"
        "print(json.dumps(learned.predict(found.model, part_vectors([s]), learned.sample_lengths([s]))[0].probabilities))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "memalign_site.settings_test", "DATABASE_URL": database_url()}
    outputs = [
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    for done in outputs:
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == pytest.approx(here.probabilities, abs=1e-6)


# --- the cascade in front of an LLM ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_cascade_decides_confident_items_locally_and_sends_the_rest_to_the_model(personas, fake_anthropic):
    project = personas.project
    labelled(project, personas.reviewer)
    learned.train(project)
    outputs = [GOOD.format(i=50), BAD.format(i=51), GOOD.format(i=52), BAD.format(i=53)] + [
        "Security settings exist.",
        "Maybe try the link, or not.",
        "Password things are in a menu somewhere, I think.",
    ]
    judged = [
        add_sample(project, f"c{i}", inputs={"question": f"How do I reset my password, take {i}?"}, outputs=text)
        for i, text in enumerate(outputs)
    ]
    found = learned.predictions(project, sample_vectors.part_vectors(judged), learned.sample_lengths(judged))
    confidence = [p.probability for p in found]
    threshold = float(np.clip(np.median(confidence), 0.5, 1.0))
    local = sum(c >= threshold for c in confidence)
    assert 0 < local < len(judged), confidence  # the fixture must leave work for both tiers
    project.provider, project.cascade_threshold = "anthropic", threshold
    project.save()
    run = runs.start(project, personas.owner, "items", sample_ids=[s.pk for s in judged], in_process=True)
    for index in range(run.chunk_count):
        runs.judge_chunk(run.pk, index)
    verdicts = {j.sample_id: j for j in Judgement.objects.filter(run=run)}
    assert fake_anthropic.request_count == len(judged) - local  # counted at the server
    for sample, sure in zip(judged, confidence):
        assert verdicts[sample.pk].tier == ("learned" if sure >= threshold else "llm")
    from judging import tiers

    run.refresh_from_db()
    summary = tiers.summary(run)
    assert summary["tiers"]["learned"]["verdicts"] == local
    assert summary["calls_saved"] == local and summary["tokens_saved"] > 0


@pytest.mark.django_db
def test_the_cascade_is_off_by_default_and_its_threshold_is_validated(personas):
    from django.core.exceptions import ValidationError

    assert personas.project.cascade_threshold is None
    personas.project.cascade_threshold = 0.3
    with pytest.raises(ValidationError, match="from 0.5 to 1"):
        personas.project.full_clean()


# --- evaluation --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_learned_variant_learns_and_both_uses_it_offline(personas):
    from evaluation import curves

    labelled(personas.project, personas.reviewer, count=40)
    options = curves.Options(shards=[0, 10, 28], variants=["episodic", "both", "learned"], prequential=False)
    result = curves.run(curves.start(personas.project, personas.owner, options)).result
    points = {(p["variant"], p["split"], p["shard"]): p for p in result["points"]}
    below, above = points[("learned", "test", 10)], points[("learned", "test", 28)]
    assert below["abstained"] == below["n"]  # 10 labels: under the minimum, no model, no vote behind it
    assert above["abstained"] == 0 and above["exact_match"] > 0.9
    assert points[("learned", "seen", 28)]["exact_match"] == 1.0  # the same-item rule still decides seen items
    assert points[("both", "test", 28)]["exact_match"] >= above["exact_match"]  # offline "both" reads the model
    assert above["calls"] == 0


@pytest.mark.django_db
def test_the_memory_overview_says_the_offline_judge_uses_the_learned_judge_and_whether_it_is_trained(client, personas):
    """The offline banner said "the aligned judge votes with the most similar reviewed examples" while every
    verdict came from the learned judge (a walk-through): it names the three tiers and says if the learned is in use."""
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/"
    page = client.get(url).content.decode()
    assert 'data-provider="offline"' in page
    assert "the aligned judge votes with the most similar" not in page
    assert "an identical reviewed item" in page and "else it votes with the most similar reviewed examples" in page
    assert '<span data-offline-learned="untrained">not trained yet: its first training has not run</span>' in page

    labelled(personas.project, personas.reviewer, count=6)
    learned.train(personas.project)
    page = client.get(url).content.decode()
    assert (
        'data-offline-learned="untrained">not trained yet: the learned judge needs at least 20 final labels and has 6'
        in page
    )

    labelled(personas.project, personas.reviewer, start=6)  # 24 in all
    learned.train(personas.project)
    page = client.get(url).content.decode()
    assert '<span data-offline-learned="in-use">it is: trained on 24 final labels, in use now</span>' in page
    from memory.models import MemoryVersion

    MemoryVersion.objects.create(project=personas.project, number=1, trigger="distill", provider="offline", model="m")
    page = client.get(url).content.decode()
    assert (
        'data-offline-learned="set-aside">it is trained but set aside now: the learned judge was trained at no memory'
        in page
    )


@pytest.mark.django_db
def test_a_verdict_of_the_learned_judge_names_it_and_shows_its_probabilities_alike(client, personas):
    """The verdict named "offline offline-knn" though the learned judge decided, and its rationale said "pass 1.00,
    fail 0.00" beside a table of 0.995 and 0.005 (a walk-through)."""
    from judging import judge
    from judging.models import JudgeRun

    labelled(personas.project, personas.reviewer)
    learned.train(personas.project)
    sample = add_sample(personas.project, "u1", inputs={"question": "How do I reset it on my tablet?"}, outputs=GOOD)
    (memory,) = working_memories(personas.project, [sample])
    provider = OfflineProvider()
    verdict = provider.judge(memory)
    assert verdict.tier == "learned"
    run = JudgeRun.objects.create(project=personas.project, created_by=personas.owner, status=JudgeRun.Status.DONE)
    judgement = Judgement.objects.create(
        project=personas.project,
        sample=sample,
        run=run,
        provider=provider.name,
        model=provider.model,
        **judge.judgement_fields(memory, verdict),
    )
    client.force_login(personas.viewer)
    body = client.get(
        f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/verdicts/{judgement.pk}/"
    ).content.decode()

    assert "<span data-decided-by>offline: learned local judge</span>" in body
    assert "offline offline-knn" not in body
    table = dict(re.findall(r'data-label-probability="(\w+)"><td>\w+</td><td>([0-9.]+)</td>', body))
    assert set(table) == {"pass", "fail"}
    for label, shown in table.items():
        assert f"{label} {shown}" in judgement.rationale  # the rationale's figures are the table's
    assert f"probability {table[verdict.value]}." in body


def test_what_decided_a_verdict_is_named_by_its_tier():
    from judging.tiers import decided_by

    assert decided_by("offline", "offline-knn", "learned") == "offline: learned local judge"
    assert decided_by("anthropic", "claude-x", "learned") == "anthropic: learned local judge (no claude-x call)"
    assert decided_by("offline", "offline-knn", "vote") == "offline: similarity vote (offline-knn)"
    assert decided_by("offline", "offline-knn", "same_item") == "offline: the same item, reviewed before"
    assert decided_by("anthropic", "claude-x", "llm") == "anthropic claude-x"
