"""Aligned-judge runs through a real worker: chunks, agreement, one run at a time, cancel, errors, retry."""

import json

import pytest
from django.core.management import call_command

from judging import run_agreement, run_listing, runs
from judging.models import Judgement, JudgeRun
from memory import budget, distil, episodic
from memory.llm.tools import JUDGE_TOOL
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample, wait_for
from tests.fake_anthropic import ToolReply, error_reply

pytestmark = pytest.mark.django_db(transaction=True)


def reviewed_project(personas, provider="offline", concurrency=8):
    """Eight reviewed samples: refund replies the experts fail, thank-you replies they pass; the judge passes all."""
    refunds = [
        ("I want a refund for the broken kettle", "We value your feedback about the kettle."),
        ("Refund my broken toaster please", "We value your feedback about the toaster."),
        ("The blender broke, I want my money back", "We value your feedback about the blender."),
        ("My refund for the broken microwave never arrived", "We value your feedback about the microwave."),
    ]
    thanks = [
        ("Thank you so much for the quick help!", "You're very welcome, glad we could help!"),
        ("Thanks, your agent was lovely", "Thank you, we'll pass your kind words on to her!"),
        ("Just wanted to say thanks for the great service", "That's so kind of you, thank you for telling us!"),
        ("Many thanks to your support team", "Thank you, it was a pleasure to help you!"),
    ]
    feedback = []
    for i, ((message, reply), label) in enumerate([(r, "fail") for r in refunds] + [(t, "pass") for t in thanks]):
        sample = add_sample(
            personas.project, f"j{i}", inputs={"customer_message": message}, outputs=reply, judge_value="pass"
        )
        feedback.append(
            add_feedback(
                sample,
                personas.reviewer,
                label,
                "" if label == "pass" else "Boilerplate that ignores the refund request.",
            )
        )
    expected = Feedback.objects.filter(project=personas.project).count()
    # Set-up, not what is measured: the session worker may still be busy with an earlier module's embedding.
    wait_for(lambda: len(episodic.entries(personas.project.pk)) == expected, timeout=90, message="the episodic entries")
    # Distilled (offline) before the provider changes, so no distillation call meets the fake server's script.
    wait_for(lambda: not distil.pending_feedback(personas.project).exists(), timeout=90, message="the distillation")
    personas.project.provider, personas.project.provider_concurrency = provider, concurrency
    personas.project.save()
    return feedback


def finished(run, timeout=60):
    wait_for(lambda: JudgeRun.objects.get(pk=run.pk).finished, timeout=timeout, message=f"run {run.pk} to end")
    run.refresh_from_db()
    return run


def test_a_run_judges_every_reviewed_sample_in_chunks_and_measures_agreement(
    celery_worker, personas, client, monkeypatch
):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 3)  # eight samples, three chunks
    feedback = reviewed_project(personas)
    add_sample(personas.project, "unreviewed")  # outside the "reviewed" scope
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED))
    assert (run.status, run.total, run.chunk_count, run.done, run.failed) == ("done", 8, 3, 8, 0)
    judgements = Judgement.objects.filter(run=run)
    assert judgements.count() == 8
    own = {f.sample_id: f.pk for f in feedback}
    for judgement in judgements:
        assert own[judgement.sample_id] not in judgement.retrieved  # never its own feedback
        assert len(judgement.retrieved) == len(judgement.similarities) == personas.project.retrieval_k
    imported = run.figures["imported"]
    assert imported["exact"] == pytest.approx(0.5) and imported["kappa"] == pytest.approx(0.0)  # it passed everything
    assert run.figures["aligned"]["exact"] > imported["exact"]  # similar examples carry the experts' labels
    assert run.figures["samples"] == 8 and run.figures["reviewers"] == 1
    client.force_login(personas.viewer)
    assert client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/progress/").status_code == 286
    page = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/").content.decode()
    assert 'data-exact="imported">50%' in page and 'data-baseline="imported">50%' in page
    runs_page = client.get(f"/p/{personas.project.slug}/memory/runs/").content.decode()
    assert f'data-run-id="{run.pk}"' in runs_page


def test_the_requests_of_a_run_force_the_tool_and_share_one_cached_prefix(celery_worker, personas, fake_anthropic):
    reviewed_project(personas, "anthropic")
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED, chunk_size=3))
    assert run.done == 8
    sent = [r.body for r in fake_anthropic.requests if r.tool_name == JUDGE_TOOL]
    assert len(sent) == 8
    assert all(body["tool_choice"]["type"] == "tool" and body["tool_choice"]["name"] == JUDGE_TOOL for body in sent)
    prefixes = {json.dumps(body["system"], sort_keys=True) for body in sent}
    assert len(prefixes) == 1  # byte-identical across every chunk of the run
    (block,) = sent[0]["system"]
    assert block["cache_control"] == {"type": "ephemeral"} and personas.project.criterion in block["text"]
    assert run.usage["calls"] == 8 and run.usage["cache_read_tokens"] > 0  # the fake server's cache was hit


def test_over_the_budget_every_verdict_of_a_chunk_shares_one_prefix_within_the_budget(
    celery_worker, personas, fake_anthropic
):
    from memory.models import Principle

    reviewed_project(personas, "anthropic")
    project = personas.project
    Principle.objects.filter(project=project).update(retired=True)  # only the rules below are active
    topics = [
        "refund for a broken appliance",
        "thanks for the kind service",
        "parcel delivery delay",
        "password reset email",
    ]
    rules = {
        t: [
            Principle.objects.create(
                project=project, text=f"When the customer writes about a {t}, rule {n}.", origin="manual"
            )
            for n in range(3)
        ]
        for t in topics
    }
    pinned = Principle.objects.create(
        project=project, text="Never promise what policy forbids.", origin="manual", pinned=True
    )
    everything = budget.principle_set(project)
    one = budget.principle_tokens(budget.PrincipleText(0, rules[topics[0]][0].text))
    project.principle_budget_tokens = budget.principle_tokens(budget.PrincipleText(0, pinned.text)) + 4 * one
    project.save()
    assert everything.tokens > project.principle_budget_tokens

    # One chunk mixing refund and thank-you items: item by item, they would pick different principles.
    fake_anthropic.latency = 0.3
    run = finished(runs.start(project, personas.owner, JudgeRun.Scope.REVIEWED, chunk_size=8))
    assert run.done == 8
    requests = sorted((r for r in fake_anthropic.requests if r.tool_name == JUDGE_TOOL), key=lambda r: r.received_at)
    sent = [r.body for r in requests]
    assert len(sent) == 8
    assert len({json.dumps(body["system"], sort_keys=True) for body in sent}) == 1  # byte-identical prefix
    assert requests[1].received_at - requests[0].received_at >= 0.25  # the first call alone writes the cache
    assert requests[-1].received_at - requests[1].received_at < 0.25  # then the rest at once
    (chosen,) = {tuple(j.principle_ids) for j in Judgement.objects.filter(run=run)}
    by_id = {p.id: p for p in everything.principles}
    assert sum(budget.principle_tokens(by_id[i]) for i in chosen) <= project.principle_budget_tokens
    assert pinned.pk in chosen and len(chosen) == 5
    assert {r.pk for r in rules[topics[0]]} & set(chosen) and {r.pk for r in rules[topics[1]]} & set(
        chosen
    )  # both kinds
    (block,) = sent[0]["system"]
    assert all((by_id[i].text in block["text"]) == (i in chosen) for i in by_id)
    assert run.usage["cache_read_tokens"] > 0  # the shared prefix was read from the cache after the first call


def test_a_second_run_waits_for_the_first_and_then_starts_by_itself(celery_worker, personas, fake_anthropic):
    reviewed_project(personas, "anthropic")
    fake_anthropic.latency = 0.3
    first = runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED)
    second = runs.start(personas.project, personas.owner, JudgeRun.Scope.ALL)
    assert (first.status, second.status) == ("running", "queued")
    assert "Waiting for the project's current run" in run_listing.notice(second)
    finished(first)
    assert first.finished_at and not JudgeRun.objects.filter(pk=second.pk, dispatched_at__lt=first.finished_at).exists()
    finished(second)  # started by itself when the first ended
    assert second.done == 8


def test_cancel_stops_a_run_and_keeps_what_it_judged(celery_worker, personas, fake_anthropic, monkeypatch):
    reviewed_project(personas, "anthropic", concurrency=1)
    fake_anthropic.latency = 0.4
    run = runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED)
    wait_for(lambda: Judgement.objects.filter(run=run).count() >= 2, message="two verdicts")
    assert runs.cancel(run)
    requests_at_cancel = fake_anthropic.request_count
    run = finished(run)
    assert run.status == "cancelled"
    wait_for(
        lambda: (
            not runs.cancel(run) and JudgeRun.objects.get(pk=run.pk).done == Judgement.objects.filter(run=run).count()
        ),
        message="the recount",
    )
    kept = Judgement.objects.filter(run=run).count()
    # At most the call in flight and one that began before the chunk read the cancel: one slot, 0.4 s a call.
    assert 2 <= kept < 8 and fake_anthropic.request_count <= requests_at_cancel + 2
    assert not Judgement.objects.filter(run=run, value="", error="").exists()  # nothing half-written


def test_errors_are_counted_per_verdict_and_retried_alone(celery_worker, personas, fake_anthropic):
    reviewed_project(personas, "anthropic", concurrency=1)
    fake_anthropic.push(ToolReply({"value": "pass", "rationale": "ok"}))
    fake_anthropic.push(ToolReply({"value": "excellent", "rationale": "not a label of this project"}))
    fake_anthropic.push(*[error_reply(400, message="bad request")])  # not retried by the SDK
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED))
    assert (run.status, run.done, run.failed) == ("done", 6, 2)  # the run went on
    errors = Judgement.objects.filter(run=run).exclude(error="")
    assert sorted(e.value for e in errors) == ["", ""]  # a label outside the schema is never stored
    assert any("'excellent' is not one of" in e.error for e in errors) and any("HTTP 400" in e.error for e in errors)
    assert runs.retry_failed(run) == 2
    run = finished(run)
    assert (run.status, run.done, run.failed) == ("done", 8, 0)
    assert Judgement.objects.filter(run=run).count() == 8


def test_a_run_stops_when_the_provider_fails_on_everything(celery_worker, personas, fake_anthropic):
    reviewed_project(personas, "anthropic")
    fake_anthropic.push(*[error_reply(500)] * 40)
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED))
    assert (run.status, run.done, run.failed) == ("failed", 0, 8)
    assert "all failed" in run.error and "500" in run.error


def test_overload_replies_slow_the_run_down_instead_of_failing_it(celery_worker, personas, fake_anthropic, settings):
    reviewed_project(personas, "anthropic", concurrency=1)
    # Eight 529s outlast the SDK's retries (4 attempts) twice over; the run waits (retry-after 50 ms) and goes on.
    fake_anthropic.push(*[error_reply(529, retry_after_ms=50)] * 8)
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.REVIEWED))
    assert (run.status, run.done, run.failed) == ("done", 8, 0)
    assert fake_anthropic.tool_counts[JUDGE_TOOL] == 16


def test_a_project_without_feedback_abstains_clearly(celery_worker, personas):
    add_sample(personas.project, "lonely")
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.ALL))
    judgement = Judgement.objects.get(run=run)
    assert (run.status, run.abstained, judgement.value, judgement.error) == ("done", 1, "", "")
    assert "holds no reviewed examples" in judgement.rationale
    assert run.figures["aligned"] is None  # nothing to compare with


def test_scopes_and_bad_input(personas):
    reviewed = add_sample(personas.project, "a")
    add_feedback(reviewed, personas.reviewer, "fail", "Curt.")
    add_sample(personas.project, "b", judge_value="fail")
    add_sample(personas.project, "c", judge_value="")

    def ids(scope, **kw):
        return [s.external_id for s in runs.scope_samples(personas.project, scope, personas.owner, **kw)]

    assert ids("reviewed") == ["a"] and ids("unreviewed") == ["b", "c"] and ids("all") == ["a", "b", "c"]
    from reviews.queue import QueueQuery

    assert ids("queue", queue_query=QueueQuery(filter="all", judge="fail")) == ["b"]
    with pytest.raises(runs.RunError, match="Choose which samples"):
        runs.scope_samples(personas.project, "nonsense")
    with pytest.raises(runs.RunError, match="no samples"):
        runs.start(personas.other, personas.other_owner, "all")
    with pytest.raises(runs.RunError, match="positive"):
        runs.start(personas.project, personas.owner, "all", limit=0)
    assert not JudgeRun.objects.exists()  # nothing half-created


def test_the_judge_command_prints_one_json_document(celery_worker, personas, capsys):
    reviewed_project(personas)
    call_command("judge", personas.project.slug, "--reviewed", "--limit", "5", "--json")
    document = json.loads(capsys.readouterr().out)
    assert (document["status"], document["total"], document["judged"], document["errors"]) == ("done", 5, 5, 0)
    assert document["agreement"]["aligned"]["n"] == 5 and "reading" in document["agreement"]["aligned"]
    assert JudgeRun.objects.get(pk=document["run"]).scope == "reviewed"


def test_the_judge_command_draws_a_progress_bar_on_a_terminal(celery_worker, personas, capsys, monkeypatch):
    """On a real pseudo-terminal (stderr is a tty), the command redraws one progress line per chunk."""
    import os
    import pty
    import sys

    reviewed_project(personas)
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal, monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", terminal)
        call_command("judge", personas.project.slug, "--reviewed", "--limit", "5")
        terminal.flush()
        drawn = os.read(leader, 65536).decode()
    os.close(leader)
    assert "\r[" + "#" * 40 + "] 5/5" in drawn  # the bar, full at the end
    assert "5 judged, 0 failed" in capsys.readouterr().out  # the summary line still goes to stdout


def test_a_sample_with_empty_text_is_judged_without_failing_the_run(celery_worker, personas):
    reviewed_project(personas)
    empty = add_sample(personas.project, "empty", inputs="", outputs="")
    run = finished(runs.start(personas.project, personas.owner, JudgeRun.Scope.UNREVIEWED))
    assert (run.status, run.total, run.failed) == ("done", 1, 0)
    judgement = Judgement.objects.get(run=run, sample=empty)
    assert judgement.error == "" and len(judgement.retrieved) == personas.project.retrieval_k


@pytest.mark.django_db(transaction=True)  # committed: inside a transaction the figures cache is not used
def test_the_imported_judges_figures_are_recomputed_only_when_feedback_or_samples_change(personas, monkeypatch):
    computed = []
    real_agreement = run_agreement.metrics.agreement

    def counting_agreement(*args, **kwargs):
        computed.append(args[0])
        return real_agreement(*args, **kwargs)

    monkeypatch.setattr(run_agreement.metrics, "agreement", counting_agreement)
    samples = [add_sample(personas.project, f"c{i}", judge_value="pass") for i in range(4)]
    for sample, label in zip(samples[:3], ["pass", "fail", "pass"]):
        add_feedback(sample, personas.reviewer, label, "" if label == "pass" else "Ignores the question.")
    first, _ = run_agreement.imported_judge_agreement(personas.project)
    again, _ = run_agreement.imported_judge_agreement(personas.project)
    assert len(computed) == 1 and again.as_dict() == first.as_dict()  # the overview's second load: from the cache
    add_feedback(samples[3], personas.reviewer, "fail", "Too curt.")
    after, _ = run_agreement.imported_judge_agreement(personas.project)
    assert len(computed) == 2 and after.n == first.n + 1  # new feedback: computed again
    feedback = Feedback.objects.get(sample=samples[0])
    feedback.label, feedback.critique = "fail", "Misses the point."
    feedback.save()  # an edited label: computed again
    edited, _ = run_agreement.imported_judge_agreement(personas.project)
    assert len(computed) == 3 and edited.exact < after.exact
