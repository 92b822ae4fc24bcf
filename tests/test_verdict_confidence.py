"""Verdicts you can act on: calibrated confidence, the guarantee, escalation to the queue, corrected rates, the
order and stability checks at the fake Anthropic server, and the API and export fields."""

import json

import pytest
from django.test import Client

from api import tokens
from judging import confidence, runs, teaching
from judging.models import Judgement, JudgeRun, JudgingSettings
from memory.llm.tools import JUDGE_TOOL
from reviews import queue
from reviews.models import QueuePriority
from tests.conftest import add_feedback, add_sample
from tests.fake_anthropic import ToolReply, error_reply


def judged_project(personas):
    """40 reviewed samples and 5 unreviewed, one run over them all: 30 reviewed verdicts agree with a strong
    neighbour vote (0.95), 10 disagree with a weak one (0.2); unreviewed: 3 strong, 2 weak. Half the reviewed
    samples are the queue's audit slice."""
    project = personas.project
    run = JudgeRun.objects.create(project=project, status=JudgeRun.Status.RUNNING, total=45)
    for i in range(45):
        sample = add_sample(project, f"c{i}", judge_value="pass")
        strong = i < 30 or i in (40, 41, 42)
        expert = "pass" if i % 3 else "fail"
        if i < 40:
            add_feedback(sample, personas.reviewer, expert, "" if expert == "pass" else "Not good enough.")
            QueuePriority.objects.create(sample=sample, project=project, rank=i, audit=i % 2 == 0)
        value = (expert if strong else ("fail" if expert == "pass" else "pass")) if i < 40 else "pass"
        if i >= 40 and not strong:
            value = "fail"
        Judgement.objects.create(
            project=project, sample=sample, run=run, value=value, provider="offline", model="m",
            signals={"neighbour_vote": 0.95 if strong else 0.2},
        )  # fmt: skip
    return run


@pytest.mark.django_db
def test_settling_a_run_calibrates_guarantees_and_escalates(personas):
    run = judged_project(personas)
    fields = confidence.settle(run)
    verdicts = {j.sample.external_id: j for j in run.judgements.select_related("sample")}
    # Cross-fitted isotonic: every fold's fit sees strong = agree, weak = disagree.
    assert {verdicts[f"c{i}"].confidence for i in range(30)} == {1.0}
    assert {verdicts[f"c{i}"].confidence for i in range(30, 40)} == {0.0}
    # 30 of 30 at 1.0: bound 0.1^(1/30) = 0.926 >= 0.9; adding the 10 at 0.0 fails. Threshold 1.0, coverage 75%.
    guarantee = fields["guarantee"]
    assert guarantee["threshold"] == 1.0 and guarantee["coverage"] == pytest.approx(0.75)
    assert guarantee["lower"] == pytest.approx(0.1 ** (1 / 30))
    assert "agree with the experts at least 90% of the time, with 90% confidence" in guarantee["sentence"]
    assert guarantee["ece_raw"] > guarantee["ece_calibrated"]
    escalated = {name for name, j in verdicts.items() if j.escalated}
    assert escalated == {f"c{i}" for i in range(30, 40)} | {"c43", "c44"}
    # Corrected rates over the 5 unreviewed verdicts, from the 20 audit-slice labels.
    rates = fields["corrected_rates"]
    assert (rates["labelled"], rates["unreviewed"], rates["reason"]) == (20, 5, "")
    assert {r["label"] for r in rates["rates"]} == {"pass", "fail"}
    assert next(r for r in rates["rates"] if r["label"] == "pass")["judge_rate"] == pytest.approx(0.6)


@pytest.mark.django_db
def test_too_few_reviews_give_a_sentence_and_no_confidence(personas):
    project = personas.project
    run = JudgeRun.objects.create(project=project, status=JudgeRun.Status.RUNNING, total=3)
    for i in range(3):
        sample = add_sample(project, f"f{i}")
        add_feedback(sample, personas.reviewer, "pass")
        Judgement.objects.create(
            project=project, sample=sample, run=run, value="pass", provider="offline", model="m",
            signals={"neighbour_vote": 1.0},
        )  # fmt: skip
    fields = confidence.settle(run)
    assert fields["guarantee"]["threshold"] is None
    assert fields["guarantee"]["sentence"].startswith("No guarantee: only 3 reviewed verdicts")
    assert "ece_raw" not in fields["guarantee"]
    assert set(run.judgements.values_list("confidence", flat=True)) == {None}
    assert not run.judgements.filter(escalated=True).exists()  # no threshold to fall below
    assert "Only 0 expert labels" in fields["corrected_rates"]["reason"] or fields["corrected_rates"]["unreviewed"] == 0


@pytest.mark.django_db
def test_escalated_samples_come_first_in_the_queue(personas):
    run = judged_project(personas)
    confidence.settle(run)
    teaching.rank(personas.project)
    order = list(
        queue.samples(personas.project, personas.reviewer, queue.QueueQuery(filter="all", order="teach")).values_list(
            "external_id", flat=True
        )
    )
    assert order[:2] == ["c43", "c44"] or order[:2] == ["c44", "c43"]
    first = QueuePriority.objects.get(sample__external_id=order[0])
    assert first.needs_expert and first.reasons[0].startswith("needs an expert: the judge's confidence 0.00")
    assert not QueuePriority.objects.filter(needs_expert=True).exclude(sample__external_id__in=["c43", "c44"]).exists()


@pytest.mark.django_db
def test_the_api_and_the_export_carry_confidence_and_the_guarantee(personas):
    run = judged_project(personas)
    JudgeRun.objects.filter(pk=run.pk).update(**confidence.settle(run), status=JudgeRun.Status.DONE)
    token = tokens.create_token(personas.viewer, "ci")[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    base = f"/api/v1/projects/{personas.project.slug}/runs/{run.pk}"
    page = Client().get(f"{base}/verdicts", {"filter": "escalated", "limit": 100}, **auth).json()
    assert len(page["items"]) == 12
    item = page["items"][0]
    assert item["escalated"] is True and item["confidence"] == 0.0
    assert item["position_consistent"] is None and item["checks"] == {}
    body = Client().get(base, **auth).json()
    assert body["guarantee"]["threshold"] == 1.0 and body["corrected_rates"]["labelled"] == 20
    assert body["checks"]["position_bias_rate"] is None
    Client().force_login(personas.viewer)
    client = Client()
    client.force_login(personas.viewer)
    exported = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/export.jsonl")
    rows = [json.loads(line) for line in b"".join(exported.streaming_content).decode().splitlines()]
    assert {r["escalated"] for r in rows} == {True, False} and rows[0]["confidence"] == 1.0
    page = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/")
    assert b"data-guarantee" in page.content and b"escalated</span>" in page.content
    chart = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/coverage.svg")
    assert chart.status_code == 200 and chart["Content-Type"] == "image/svg+xml" and b"<svg" in chart.content
    assert client.get(f"/p/{personas.other.slug}/memory/judge-runs/{run.pk}/coverage.svg").status_code == 404


def pairwise_project(personas, samples=4, concurrency=2, **settings):
    project = personas.project
    project.label_kind = "pairwise"
    project.provider, project.provider_concurrency = "anthropic", concurrency
    project.save()
    JudgingSettings.objects.create(project=project, **settings)
    for i in range(samples):
        add_sample(project, f"p{i}", judge_value="A", outputs="", output_a=f"first answer {i}", output_b=f"second {i}")
    return project


def in_process_run(project, owner):
    run = runs.start(project, owner, JudgeRun.Scope.ALL, in_process=True)
    for index in range(run.chunk_count):
        runs.judge_chunk(run.pk, index)
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_both_orders_at_the_fake_server_two_calls_and_the_flip_is_caught(personas, fake_anthropic):
    """A judge that always answers "A" follows the slot: each item is asked twice (the second with the outputs
    swapped), every verdict is position-inconsistent and escalated, the position-bias rate is 100%, and no more
    calls than the project's concurrency are in flight."""
    project = pairwise_project(personas, samples=4, concurrency=2)
    fake_anthropic.responder = lambda request: {"value": "A", "rationale": "The first one."}
    fake_anthropic.latency = 0.1
    run = in_process_run(project, personas.owner)
    assert run.status == "done" and run.done == 4
    judge_requests = [r for r in fake_anthropic.requests if r.tool_name == JUDGE_TOOL]
    assert len(judge_requests) == 8
    texts = [json.dumps(r.body["messages"]) for r in judge_requests]
    assert sum("Output A:\\nfirst answer 0" in t for t in texts) == 1  # asked once in each order
    assert sum("Output A:\\nsecond 0" in t for t in texts) == 1
    assert fake_anthropic.max_in_flight <= 2
    assert all(j.position_consistent is False and j.escalated for j in run.judgements.all())
    assert run.checks["position_bias_rate"] == 1.0 and run.checks["order"]["flipped"] == 4
    assert run.usage["calls"] == 8


@pytest.mark.django_db(transaction=True)
def test_a_failed_second_order_leaves_the_verdict_with_the_check_missing(personas, fake_anthropic):
    project = pairwise_project(personas, samples=1, concurrency=1)
    fake_anthropic.push(ToolReply({"value": "B", "rationale": "The second is better."}), error_reply(400))
    run = in_process_run(project, personas.owner)
    (verdict,) = run.judgements.all()
    assert (verdict.value, verdict.error, verdict.checks) == ("B", "", {"order": "missing"})
    assert verdict.position_consistent is None
    assert run.checks["order"] == {"consistent": 0, "flipped": 0, "missing": 1}
    assert run.checks["position_bias_rate"] is None


@pytest.mark.django_db(transaction=True)
def test_repeated_asks_and_the_stability_check_at_the_fake_server(personas, fake_anthropic):
    """asks = 3 and every verdict re-asked once more for stability: 4 calls per item, within the concurrency;
    a judge that answers pass, pass, fail, fail ... has a repeat agreement below 1 and a flip rate reported."""
    project = personas.project
    project.provider, project.provider_concurrency = "anthropic", 2
    project.save()
    JudgingSettings.objects.create(project=project, asks=3, stability_percent=100)
    for i in range(3):
        add_sample(project, f"r{i}")
    answers = iter(["pass", "pass", "fail", "fail"] * 10)
    fake_anthropic.responder = lambda request: {"value": next(answers), "rationale": "r"}
    fake_anthropic.latency = 0.05
    run = in_process_run(project, personas.owner)
    assert len([r for r in fake_anthropic.requests if r.tool_name == JUDGE_TOOL]) == 12
    assert fake_anthropic.max_in_flight <= 2
    repeat = [j.signals["repeat_agreement"] for j in run.judgements.all()]
    assert len(repeat) == 3 and min(repeat) < 1.0
    assert run.checks["stability"]["same"] + run.checks["stability"]["flipped"] == 3
    assert run.checks["flip_rate"] is not None


@pytest.mark.django_db
def test_owners_set_the_target_and_risk_others_cannot(personas):
    url = f"/p/{personas.project.slug}/memory/judging-settings/"
    data = {"target_agreement": "0.85", "risk": "0.05", "asks": "3", "stability_percent": "10"}
    for user, status in ((personas.outsider, 404), (personas.reviewer, 403), (personas.viewer, 403)):
        client = Client()
        client.force_login(user)
        assert client.post(url, data).status_code == status
    assert not JudgingSettings.objects.exists()
    client = Client()
    client.force_login(personas.owner)
    assert client.get(url).status_code == 405
    response = client.post(url, data, follow=True)
    saved = JudgingSettings.objects.get(project=personas.project)
    assert (saved.target_agreement, saved.risk, saved.asks, saved.both_orders, saved.stability_percent) == (
        0.85, 0.05, 3, False, 10,
    )  # fmt: skip
    assert b"Judging settings saved" in response.content and b'id="judging-settings"' in response.content
    response = client.post(url, {**data, "risk": "0.9", "asks": "9"}, follow=True)
    assert b"Judging settings not saved" in response.content and b"Risk" in response.content
    assert JudgingSettings.objects.get(project=personas.project).risk == 0.05  # nothing half-written
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(personas.owner)
    assert csrf.post(url, data).status_code == 403


@pytest.mark.django_db
def test_verdicts_at_the_threshold_are_not_escalated(personas):
    """Every reviewed verdict agrees, with one score: the calibrated confidence is one value below 1 (the fit is
    smoothed), the threshold is that value, and no verdict is escalated; the stored confidence is the one the
    threshold was compared with (a walk-through found all 30 escalated: 0.9615 stored against 0.961538…)."""
    project = personas.project
    run = JudgeRun.objects.create(project=project, status=JudgeRun.Status.RUNNING, total=30)
    for i in range(30):
        sample = add_sample(project, f"a{i}", judge_value="pass")
        add_feedback(sample, personas.reviewer, "pass", "")
        Judgement.objects.create(
            project=project, sample=sample, run=run, value="pass", provider="offline", model="m",
            signals={"neighbour_vote": 0.9},
        )  # fmt: skip
    guarantee = confidence.settle(run)["guarantee"]
    stored = {j.confidence for j in run.judgements.all()}
    assert guarantee["coverage"] == 1.0 and stored == {guarantee["threshold"]}, (guarantee, stored)
    assert not run.judgements.filter(escalated=True).exists()
