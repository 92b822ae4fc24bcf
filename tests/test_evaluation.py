"""Evaluation on scratch memory: the split, no leakage, the live memory untouched, the curves, the JSON document."""

from __future__ import annotations

import io
import json
import math
import threading

import pytest
from django.core.management import CommandError, call_command

from evaluation import curves
from evaluation.models import Evaluation
from judging.models import JudgingSettings
from memory import episodic, semantic
from memory.limiter import provider_slot
from memory.llm.tools import JUDGE_TOOL
from memory.models import EvaluationSettings, MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample, make_user, shared_dataset
from tests.datasets import load_project

# In a rolled-back transaction: a test's saves queue no memory work on the session worker. The one test that
# goes through the worker commits.
pytestmark = pytest.mark.django_db


def reviewed_project(personas, count: int, groups: int | None = None, labels=("pass", "fail")):
    project = personas.project
    for i in range(count):
        metadata = {"topic": f"t{i % groups}"} if groups else {}
        sample = add_sample(
            project,
            f"s{i}",
            judge_value="pass",
            metadata=metadata,
            inputs={"question": f"question number {i} about topic {i % 7}"},
            outputs=f"answer {i}",
        )
        add_feedback(
            sample, personas.reviewer, labels[i % len(labels)], f"Critique {i}: the reply is {labels[i % len(labels)]}."
        )
    return project


def test_the_split_is_seeded_and_keeps_groups_on_one_side(personas):
    project = reviewed_project(personas, 40, groups=9)
    items = curves.reviewed(project)
    train, test = curves.split(items, 0.3, seed=7, group_key="topic")
    again = curves.split(items, 0.3, seed=7, group_key="topic")
    other = curves.split(items, 0.3, seed=8, group_key="topic")
    assert [f.pk for f in train] == [f.pk for f in again[0]] and [f.pk for f in test] == [f.pk for f in again[1]]
    assert {f.pk for f in test} != {f.pk for f in other[1]}
    assert {f.pk for f in train} | {f.pk for f in test} == {f.pk for f in items}
    topics = lambda side: {f.sample.metadata["topic"] for f in side}  # noqa: E731
    assert not topics(train) & topics(test)
    # Without a group key each sample is its own group: about 30% held out.
    _, plain_test = curves.split(items, 0.3, seed=7)
    assert len(plain_test) == 12


def live_memory(project) -> dict:
    """Everything the live memory holds: principles, links, versions, and the episodic entries byte for byte."""
    store = episodic.collection(project.pk).get(include=["embeddings", "metadatas", "documents"])
    return {
        "principles": list(Principle.objects.filter(project=project).order_by("id").values()),
        "sources": list(PrincipleSource.objects.filter(principle__project=project).order_by("id").values()),
        "versions": list(MemoryVersion.objects.filter(project=project).order_by("id").values()),
        "episodic": sorted(
            zip(
                store["ids"],
                [bytes(memoryview(e.astype("<f4"))) for e in store["embeddings"]],
                [json.dumps(m, sort_keys=True) for m in store["metadatas"]],
                store["documents"],
                strict=False,
            )
        ),
    }


def test_an_evaluation_leaves_the_live_memory_unchanged_and_drops_its_scratch(personas):
    project = reviewed_project(personas, 24)
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    semantic.regenerate(project, force=True)
    before = live_memory(project)
    assert before["episodic"] and before["versions"]
    record = curves.run(curves.start(project, personas.owner, curves.Options(shards=[0, 4, 16])))
    assert record.status == Evaluation.Status.DONE
    assert live_memory(project) == before
    assert curves.scratch_collections() == []


def test_the_prequential_curve_never_judges_a_sample_with_its_own_feedback_in_memory(personas):
    project = reviewed_project(personas, 30)
    trace = curves.Trace()
    record = curves.run(
        curves.start(project, personas.owner, curves.Options(shards=[0, 3, 10, 20], variants=["episodic"])),
        trace=trace,
    )
    judged = [(feedback_id, ids) for curve, feedback_id, ids in trace.retrieved if curve == "prequential"]
    assert len(judged) == 30  # every reviewed sample is judged once, before it is learned
    order = [f.pk for f in curves.reviewed(project)]
    for feedback_id, ids in judged:
        assert feedback_id not in ids
        assert all(order.index(i) < order.index(feedback_id) for i in ids)  # only earlier reviews
    assert any(ids for _, ids in judged)  # the check is not vacuous: later shards did retrieve examples
    nexts = [p for p in record.result["points"] if p["curve"] == "prequential"]
    assert [p["shard"] for p in nexts] == [0, 3, 10, 20] and all(p["split"] == "next" for p in nexts)


def test_seen_agreement_is_near_perfect_on_a_shared_file_with_the_offline_provider():
    shared_dataset("llmbar.jsonl")
    owner, reviewer = make_user("olga"), make_user("rita")
    project, _ = load_project("llmbar", owner, reviewer, limit=80)
    options = curves.Options(variants=["episodic", "none"], prequential=False)
    result = curves.run(curves.start(project, owner, options)).result
    seen = [p for p in result["points"] if p["split"] == "seen" and p["variant"] == "episodic"]
    largest = max(seen, key=lambda p: p["shard"])
    assert largest["shard"] == result["train"] == 56
    assert largest["exact_match"] >= 0.95
    nothing = [p for p in result["points"] if p["variant"] == "none"]
    assert all(p["abstained"] == p["n"] for p in nothing)  # no memory: the offline judge has nothing to go on


POINT_TYPES = {"curve": str, "variant": str, "split": str, "shard": int, "n": int, "abstained": int}
NULLABLE = ("exact_match", "kappa", "weighted_kappa", "ccc", "mae")


def test_manage_py_evaluate_json_prints_one_document_in_the_documented_shape(personas):
    project = reviewed_project(personas, 20, labels=("pass", "fail", "fail"))
    out = io.StringIO()
    call_command(
        "evaluate", project.slug, "--json", "--seed", "3", "--shards", "0,2,5", "--test-fraction", "0.25", stdout=out
    )
    document = json.loads(out.getvalue())  # exactly one document: anything else fails to parse
    assert (
        document["project"] == project.slug and document["provider"] == "offline" and isinstance(document["model"], str)
    )
    assert document["label_kind"] == "pass_fail" and document["seed"] == 3
    assert (document["train"], document["test"]) == (15, 5)
    assert isinstance(document["baselines"]["majority"], float)
    assert document["baselines"]["imported_judge"] is not None  # the samples carry imported verdicts
    variants = {p["variant"] for p in document["points"]}
    assert variants == {"none", "semantic", "episodic", "both", "learned"}
    assert {(p["curve"], p["split"]) for p in document["points"]} == {
        ("heldout", "test"),
        ("heldout", "seen"),
        ("prequential", "next"),
    }
    assert sorted({p["shard"] for p in document["points"] if p["curve"] == "heldout"}) == [0, 2, 5, 15]
    for p in document["points"]:
        for key, kind in POINT_TYPES.items():
            assert isinstance(p[key], kind), key
        for key in NULLABLE:
            assert p[key] is None or (isinstance(p[key], float) and math.isfinite(p[key])), key
    assert Evaluation.objects.get(project=project).result == document  # the saved record holds the same figures
    # The offline judge is deterministic: no order or stability checks, and the document says so.
    assert document["checks"]["position_bias_rate"] is None and document["checks"]["flip_rate"] is None
    assert document["checks"]["not_checked"].startswith("not checked: the offline judge is deterministic")
    assert {(p["position_bias_rate"], p["flip_rate"]) for p in document["points"]} == {(None, None)}


def test_evaluate_json_reports_position_bias_and_flip_rates_from_the_fake_anthropic_server(personas, fake_anthropic):
    """A pairwise project at an LLM judge that always answers "A": asked again with the outputs swapped it still
    says "A", so every checked verdict followed the slot (position-bias rate 1.0); re-asked for stability it says
    "A" again (flip rate 0.0). Three calls per judged item: the verdict, the swapped order, the re-ask."""
    project = personas.project
    project.label_kind, project.provider = "pairwise", "anthropic"
    project.save()
    JudgingSettings.objects.create(project=project, stability_percent=100, asks=3)  # asks: not the gate's business
    for i in range(12):
        sample = add_sample(project, f"p{i}", outputs="", output_a=f"first answer {i}", output_b=f"second {i}")
        add_feedback(sample, personas.reviewer, "AB"[i % 2], f"Critique {i}.")
    fake_anthropic.responder = lambda request: {"value": "A", "rationale": "The first one."}
    out = io.StringIO()
    call_command(
        "evaluate", project.slug, "--json", "--shards", "0,4", "--variants", "none,episodic", "--no-prequential",
        stdout=out,
    )  # fmt: skip
    document = json.loads(out.getvalue())
    checks = document["checks"]
    assert (checks["position_bias_rate"], checks["flip_rate"], checks["not_checked"]) == (1.0, 0.0, "")
    judged = sum(p["n"] for p in document["points"])
    assert checks["order"] == {"consistent": 0, "flipped": judged, "missing": 0}
    assert checks["stability"] == {"same": judged, "flipped": 0, "missing": 0}
    assert {(p["position_bias_rate"], p["flip_rate"]) for p in document["points"]} == {(1.0, 0.0)}
    judge_calls = [r for r in fake_anthropic.requests if r.tool_name == JUDGE_TOOL]
    assert len(judge_calls) == 3 * judged == sum(p["calls"] for p in document["points"])


def test_an_evaluation_asks_the_model_only_in_the_projects_provider_slots(personas, fake_anthropic):
    """The owner's limit on calls in flight holds for evaluations too: while a run holds the project's only slot,
    the evaluation asks nothing, and it goes on once the slot is free."""
    project = reviewed_project(personas, 12)
    project.provider, project.provider_concurrency = "anthropic", 1
    project.save()
    held, released = threading.Event(), threading.Event()

    def hold_the_slot() -> None:
        with provider_slot(project.pk, 1):
            held.set()
            released.wait(1.5)  # what a run's call would hold
        released.set()

    asked_while_held: list[bool] = []

    def responder(request):
        asked_while_held.append(not released.is_set())
        return {"value": "pass", "rationale": "Fine."}

    fake_anthropic.responder = responder
    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    assert held.wait(10)
    out = io.StringIO()
    call_command(
        "evaluate", project.slug, "--json", "--shards", "0", "--variants", "none", "--no-prequential", stdout=out
    )
    holder.join()
    assert asked_while_held and not any(asked_while_held)
    assert sum(p["calls"] for p in json.loads(out.getvalue())["points"]) == len(asked_while_held)


def test_options_no_prequential_variants_and_limit(personas):
    project = reviewed_project(personas, 30)
    out = io.StringIO()
    call_command(
        "evaluate", project.slug, "--json", "--no-prequential", "--variants", "episodic", "--limit", "20", stdout=out
    )
    document = json.loads(out.getvalue())
    assert document["train"] + document["test"] == 20
    assert {p["curve"] for p in document["points"]} == {"heldout"}
    assert {p["variant"] for p in document["points"]} == {"episodic"}


def test_fewer_than_ten_reviewed_samples_is_refused_plainly(personas):
    project = reviewed_project(personas, 9)
    with pytest.raises(CommandError, match="at least 10 reviewed samples; this project has 9"):
        call_command("evaluate", project.slug, "--json", stdout=io.StringIO())
    assert not Evaluation.objects.filter(project=project).exists()


def test_a_single_label_says_kappa_is_undefined_and_never_prints_nan(personas):
    project = reviewed_project(personas, 12, labels=("pass",))
    out = io.StringIO()
    call_command("evaluate", project.slug, "--json", "--shards", "0,4", stdout=out)
    assert "NaN" not in out.getvalue()
    document = json.loads(out.getvalue())
    assert curves.KAPPA_UNDEFINED in document["notes"]
    answered = [p for p in document["points"] if p["variant"] == "episodic" and p["shard"] > 0]
    assert answered and all(p["kappa"] is None and p["exact_match"] == 1.0 for p in answered)
    text = io.StringIO()
    call_command("evaluate", project.slug, "--shards", "0,4", stdout=text, stderr=io.StringIO())
    assert "kappa is undefined" in text.getvalue() and "nan" not in text.getvalue().lower()


class FailingProvider:
    name, model, remote = "failing", "none", False

    def __init__(self):
        from memory.llm.offline import OfflineProvider

        self.inner, self.calls = OfflineProvider(), 0

    def judge(self, memory):
        self.calls += 1
        if self.calls > 15:
            raise RuntimeError("the provider broke")
        return self.inner.judge(memory)

    def distill(self, *args):
        return self.inner.distill(*args)


def test_a_failed_evaluation_is_recorded_and_leaves_no_scratch_memory(personas):
    project = reviewed_project(personas, 20)
    record = curves.start(project, personas.owner, curves.Options(shards=[0, 5, 14]))
    with pytest.raises(RuntimeError):
        curves.run(record, provider=FailingProvider())
    record.refresh_from_db()
    assert record.status == Evaluation.Status.FAILED and "the provider broke" in record.error
    assert curves.scratch_collections() == []


def test_the_repair_fails_a_dead_evaluation_and_drops_its_scratch_collection(personas):
    from django.utils import timezone

    from evaluation.tasks import repair_evaluations

    project = reviewed_project(personas, 12)
    dead = curves.start(project, personas.owner, curves.Options())
    Evaluation.objects.filter(pk=dead.pk).update(
        status=Evaluation.Status.RUNNING, progress_at=timezone.now() - timezone.timedelta(hours=1)
    )
    curves.ScratchMemory(project, None, curves.scratch_name(dead.pk, "heldout"))  # what a killed worker leaves
    assert curves.scratch_collections()
    repair_evaluations()
    dead.refresh_from_db()
    assert dead.status == Evaluation.Status.FAILED and "worker stopped" in dead.error
    assert curves.scratch_collections() == []


def test_the_group_key_setting_is_used(personas):
    project = reviewed_project(personas, 30, groups=6)
    EvaluationSettings.objects.update_or_create(
        project=project, defaults={"group_key": "topic"}
    )  # a worker may have made the row
    record = curves.run(
        curves.start(project, personas.owner, curves.Options(shards=[0], variants=["none"], prequential=False))
    )
    assert record.group_key == "topic" and record.result["group_key"] == "topic"
    assert record.result["test"] % 5 == 0  # whole groups of five samples


@pytest.mark.django_db(transaction=True)
def test_through_the_worker_a_second_evaluation_waits_for_the_first(personas, celery_worker, client):
    import time

    from evaluation.tasks import run_evaluation

    project = reviewed_project(personas, 20)
    record = curves.start(project, personas.owner, curves.Options(shards=[0, 5]))
    held = curves.evaluation_lock(project.pk)
    assert held.acquire(blocking=False)  # as if another evaluation of the project were running
    try:
        run_evaluation.delay(record.pk)
        time.sleep(2)
        record.refresh_from_db()
        assert record.status == Evaluation.Status.QUEUED
    finally:
        held.release()
    deadline = time.monotonic() + 60
    while record.status != Evaluation.Status.DONE and time.monotonic() < deadline:
        time.sleep(0.3)
        record.refresh_from_db()
    assert record.status == Evaluation.Status.DONE and record.done == record.total > 0
    client.force_login(personas.viewer)
    chart = client.get(f"/p/{project.slug}/memory/evaluations/{record.pk}/heldout.svg")
    assert chart["Content-Type"] == "image/svg+xml" and b"<svg" in chart.content and b"<script" not in chart.content
    rows = client.get(f"/p/{project.slug}/memory/evaluations/{record.pk}/export.csv").content.decode().splitlines()
    assert rows[0].startswith("curve,variant,split,shard,n,exact_match") and len(rows) == 1 + len(
        record.result["points"]
    )
    assert client.get(f"/p/{project.slug}/memory/evaluations/{record.pk}/export.json").json() == record.result
    page = client.get(f"/p/{project.slug}/memory/evaluations/{record.pk}/").content.decode()
    assert "does not generalise to new questions" not in page and 'id="held-out-reading"' in page
    assert "· Viewer" in page  # the site's navigation knows the member, as on every project page
    client.force_login(personas.owner)
    page = client.get(f"/p/{project.slug}/memory/evaluations/{record.pk}/").content.decode()
    assert "· Owner" in page and f'href="/p/{project.slug}/settings/"' in page


def test_a_redelivered_evaluation_whose_worker_died_is_marked_failed(personas):
    from evaluation.tasks import run_evaluation

    project = reviewed_project(personas, 12)
    record = curves.start(project, personas.owner, curves.Options())
    Evaluation.objects.filter(pk=record.pk).update(status=Evaluation.Status.RUNNING)
    curves.ScratchMemory(project, None, curves.scratch_name(record.pk, "prequential"))
    assert run_evaluation.run(record.pk) == "failed"
    record.refresh_from_db()
    assert record.status == Evaluation.Status.FAILED and curves.scratch_collections() == []


def test_the_project_overview_shows_the_latest_learning_curves_and_lets_owners_start_one(client, personas):
    from evaluation.models import Evaluation

    done = Evaluation.objects.create(
        project=personas.project,
        status=Evaluation.Status.DONE,
        provider="offline",
        result={"points": [{"curve": "heldout"}, {"curve": "prequential"}]},
    )
    Evaluation.objects.create(project=personas.other, status=Evaluation.Status.DONE, result={"points": []})
    client.force_login(personas.owner)
    page = client.get(f"/p/{personas.project.slug}/").content.decode()
    for curve in ("heldout", "prequential"):
        assert f'src="/p/{personas.project.slug}/memory/evaluations/{done.pk}/{curve}.svg"' in page
    assert (
        'id="overview-evaluation-form"' in page and f'action="/p/{personas.project.slug}/memory/evaluations/"' in page
    )
    assert page.count("Evaluation #") == 2  # the caption and the list: the other project's evaluation is not here
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/").content.decode()
    assert f"{done.pk}/heldout.svg" in page and 'id="overview-evaluation-form"' not in page


def point(variant: str, shard: int, n: int, exact: float, abstained: int = 0) -> dict:
    return {
        "curve": "heldout",
        "variant": variant,
        "split": "test",
        "shard": shard,
        "n": n,
        "exact_match": exact,
        "kappa": None,
        "weighted_kappa": None,
        "abstained": abstained,
        "interval": None,
        "tokens": 0,
    }


@pytest.mark.django_db
def test_the_evaluation_pages_sentences_follow_its_own_figures(client, personas):
    """The page said unseen-item agreement "stays near the baselines" beside a table where the learned judge
    reached 1.000 on the held-out items (a walk-through): its sentences are now read from its figures."""
    result = {
        "provider": "offline",
        "model": "offline-knn",
        "train": 21,
        "test": 9,
        "seed": 0,
        "seconds": 1.0,
        "notes": [],
        "baselines": {"majority": 0.444, "majority_label": "pass", "imported_judge": 0.667},
        "points": [
            point("none", 0, 9, 0.0, abstained=9),
            point("none", 21, 9, 0.0, abstained=9),
            point("episodic", 0, 9, 0.0),
            point("episodic", 21, 9, 7 / 9),
            point("learned", 2, 9, 0.0, abstained=9),
            point("learned", 21, 9, 1.0),
            point("both", 21, 40, 38 / 40),
        ],
    }
    record = Evaluation.objects.create(
        project=personas.project, status=Evaluation.Status.DONE, provider="offline", result=result
    )
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/memory/evaluations/{record.pk}/").content.decode()

    assert "does not generalise" not in page and "stays near the baselines" not in page
    reading = page.split('id="held-out-reading"')[1].split("</ul>")[0]
    assert "“no memory” after 21 critiques learned, on 9 held-out test items: abstained on every one" in reading
    # 9 of 9 bounds the agreement from below at 0.66 only: not above the imported judge's 0.667 on so few items
    assert (
        "“learned judge only” after 21 critiques learned, on 9 held-out test items: exact match 1.000 (9 of 9; "
        "95% interval 0.66 to 1.00), not distinguishable from the better baseline (imported judge 0.667)."
    ) in reading
    assert "“principles + examples” after 21 critiques learned, on 40 held-out test items: exact match 0.950" in reading
    assert "(38 of 40; 95% interval 0.83 to 0.99), above the better baseline (imported judge 0.667)." in reading
    assert reading.index("no memory") < reading.index("examples only") < reading.index("learned judge only")
