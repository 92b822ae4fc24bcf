"""A judge run's page: verdicts side by side, filters, search, keyset pages, explanations, exports."""

import csv
import io
import json
import re

import pytest

from judging import run_agreement, run_listing
from judging.models import Judgement, JudgeRun
from memory.models import MemoryVersion, Principle, PrincipleSource
from tests.conftest import add_feedback, add_sample


@pytest.fixture
def judged(personas):
    """A finished run over six samples: agreeing, disagreeing with experts or the imported judge, abstained, failed."""
    project = personas.project
    s = [
        add_sample(project, f"r{i}", judge_value="pass", inputs={"question": f"question <b>{i}</b>"}) for i in range(6)
    ]
    add_feedback(s[0], personas.reviewer, "pass", "Fine.")
    add_feedback(s[1], personas.reviewer, "fail", "Ignores the <refund>.")
    add_feedback(s[2], personas.reviewer, "fail", "Curt.")
    version = MemoryVersion.objects.create(project=project, number=3, trigger="manual", provider="offline", model="m")
    principle = Principle.objects.create(project=project, text="Answer the <refund> request first.", origin="manual")
    PrincipleSource.objects.create(principle=principle, feedback=s[1].feedback.get(), feedback_revision=1)
    run = JudgeRun.objects.create(
        project=project,
        created_by=personas.owner,
        total=6,
        sample_ids=[x.pk for x in s],
        status="done",
        memory_version=version,
    )
    example = s[1].feedback.get()
    values = [("pass", ""), ("pass", ""), ("fail", ""), ("fail", ""), ("", ""), ("", "HTTP 500 after 4 attempts")]
    for sample, (value, error) in zip(s, values):
        Judgement.objects.create(
            project=project,
            run=run,
            sample=sample,
            value=value,
            error=error,
            rationale=f"Because <i>{sample.external_id}</i>.",
            memory_version=version,
            principle_ids=[principle.pk],
            retrieved=[example.pk],
            similarities=[0.875],
            provider="anthropic",
            model="claude-test",
            usage={"input_tokens": 120, "output_tokens": 30, "cache_read_tokens": 900},
            latency_ms=1234,
        )
    return run, s, principle, example


def rows(body: str) -> list[str]:
    return re.findall(r'<tr data-judgement-id="\d+">\s*<td><a href="[^"]+">(\w+)</a>', body)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("all", ["r0", "r1", "r2", "r3", "r4", "r5"]),
        ("disagree_experts", ["r1"]),  # r2 agrees (fail); r3..r5 have no expert label
        ("disagree_imported", ["r2", "r3"]),
        ("abstained", ["r4"]),
        ("errors", ["r5"]),
    ],
)
def test_filters(client, personas, judged, name, expected):
    run = judged[0]
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/", {"filter": name}).content.decode()
    assert rows(body) == expected


def test_search_and_keyset_pages(client, personas, judged, monkeypatch):
    run = judged[0]
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/"
    assert rows(client.get(url, {"q": "question <b>4"}).content.decode()) == ["r4"]
    monkeypatch.setattr(run_listing, "PAGE_SIZE", 4)
    first = client.get(url).content.decode()
    assert rows(first) == ["r0", "r1", "r2", "r3"]
    after = re.search(r'hx-get="\?filter=all&amp;q=&amp;after=(\d+)"', first).group(1)
    more = client.get(url, {"after": after}, HTTP_HX_REQUEST="true").content.decode()
    assert rows(more) == ["r4", "r5"] and "<html" not in more and "more-verdicts" not in more


def test_the_page_shows_the_labels_side_by_side_escaped(client, personas, judged):
    run = judged[0]
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/").content.decode()
    assert "question &lt;b&gt;1" in body and "<b>1" not in body
    assert 'data-aligned="error"' in body and 'data-aligned=""' in body
    assert "memory v3" in body


def test_a_verdicts_explanation(client, personas, judged):
    run, samples, principle, example = judged
    judgement = Judgement.objects.get(run=run, sample=samples[2])
    client.force_login(personas.viewer)
    body = client.get(
        f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/verdicts/{judgement.pk}/"
    ).content.decode()
    assert "Because &lt;i&gt;r2&lt;/i&gt;." in body
    assert (
        f'href="/p/{personas.project.slug}/memory/principles/{principle.pk}/">Answer the &lt;refund&gt; request first.</a>'
        in body
    )
    assert (
        f'href="/p/{personas.project.slug}/samples/{example.sample_id}/" data-example-sample="{example.sample_id}">r1</a>'
        in body
    )
    assert "Ignores the &lt;refund&gt;." in body and "by rafael" in body and "similarity 0.875" in body
    assert (
        "memory v3" in body
        and "anthropic claude-test" in body
        and "120 in, 30 out, 900 cache read" in body
        and "1234 ms" in body
    )


def test_the_review_page_shows_the_latest_verdict(client, personas, judged):
    run, samples, _, _ = judged
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/samples/{samples[2].pk}/").content.decode()
    assert f'from <a href="/p/{personas.project.slug}/memory/judge-runs/{run.pk}/">run #{run.pk}</a>' in body
    assert "Because &lt;i&gt;r2&lt;/i&gt;." in body
    unjudged = add_sample(personas.project, "fresh")
    client.force_login(personas.viewer)
    assert (
        "has not judged this sample yet"
        in client.get(f"/p/{personas.project.slug}/samples/{unjudged.pk}/").content.decode()
    )


def test_a_blind_reviewer_sees_verdicts_only_on_samples_they_reviewed(client, personas, judged):
    """The aligned judge learned from the other experts' labels (an identical reviewed item decides by its label):
    on samples the blind reviewer has not reviewed (r3, r4, r5), its verdicts are withheld on the run page, its
    filters, the explanation, the exports and the API; the imported judge's too in a judge-blind project. A
    walk-through found them all shown."""
    from django.test import Client

    from api import tokens

    run, samples, _, _ = judged
    url = f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/"
    client.force_login(personas.reviewer)
    body = client.get(url).content.decode()
    assert rows(body) == ["r0", "r1", "r2", "r3", "r4", "r5"] and body.count("data-withheld") == 3
    assert body.count('data-action="explain"') == 3
    assert rows(client.get(url, {"filter": "disagree_imported"}).content.decode()) == ["r2"]  # r3 withheld
    assert rows(client.get(url, {"filter": "abstained"}).content.decode()) == []  # r4 withheld
    hidden = Judgement.objects.get(run=run, sample=samples[3])
    explained = client.get(f"{url}verdicts/{hidden.pk}/").content.decode()
    assert "data-withheld" in explained and "Because" not in explained
    table = list(csv.DictReader(io.StringIO(b"".join(client.get(url + "export.csv").streaming_content).decode())))
    assert [(r["aligned"], r["imported"], r["rationale"], r["withheld"]) for r in table[2:4]] == [
        ("fail", "pass", "Because <i>r2</i>.", "False"),
        ("", "", "", "True"),
    ]
    token = tokens.create_token(personas.reviewer, "ci")[1]
    api = Client().get(
        f"/api/v1/projects/{personas.project.slug}/runs/{run.pk}/verdicts", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    items = {item["external_id"]: item for item in api.json()["items"]}
    assert items["r3"]["withheld"] and items["r3"]["verdict"] is None and items["r3"]["retrieved"] == []
    assert not items["r2"]["withheld"] and items["r2"]["verdict"] == "fail"
    client.force_login(personas.viewer)  # viewers and owners see every verdict
    assert "data-withheld" not in client.get(url).content.decode()


def test_exports(client, personas, judged):
    run = judged[0]
    client.force_login(personas.viewer)
    base = f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/export"
    response = client.get(base + ".csv")
    assert response["Content-Disposition"] == f'attachment; filename="{personas.project.slug}-run-{run.pk}.csv"'
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["external_id"] for r in table] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert (table[1]["aligned"], table[1]["imported"], table[1]["expert:rafael"]) == ("pass", "pass", "fail")
    assert table[1]["final_label"] == "fail" and table[4]["final_label"] == ""  # r4: nobody reviewed it
    assert table[0]["retrieved_samples"] == "r1"  # the example's sample, not its feedback id
    assert table[5]["error"] == "HTTP 500 after 4 attempts" and table[0]["memory_version"] == "3"
    lines = b"".join(client.get(base + ".jsonl").streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 6 and records[2]["experts"] == {"rafael": "fail"} and records[0]["cache_read_tokens"] == 900
    assert records[0]["retrieved_samples"] == ["r1"] and records[2]["final_label"] == "fail"
    assert records[0]["rationale"] == "Because <i>r0</i>."  # data, not HTML: exported as written


def test_a_decided_conflict_exports_the_decision_as_final_label(client, personas, judged):
    from reviews import adjudication

    run, samples = judged[0], judged[1]
    add_feedback(samples[1], personas.owner, "pass", "The refund is answered in the second paragraph, clearly.")
    adjudication.decide(samples[1], "pass", "The second paragraph answers the refund request plainly.", personas.owner)
    client.force_login(personas.owner)

    response = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/export.csv")

    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert (table[1]["expert:rafael"], table[1]["expert:olivia"], table[1]["final_label"]) == ("fail", "pass", "pass")
    assert "expert:(team decision)" not in table[1]


def test_the_summary_reads_at_a_glance(client, personas, judged):
    from datetime import timedelta

    from django.utils import timezone

    run = judged[0]
    now = timezone.now()
    usage = {"input_tokens": 720, "output_tokens": 180, "cache_read_tokens": 5400}
    JudgeRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(seconds=41), finished_at=now, usage=usage)
    client.force_login(personas.viewer)

    body = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/").content.decode()

    assert '<dd data-summary="time">41 s</dd>' in body
    assert '<dd data-summary="tokens">720 in · 180 out · 5,400 cached</dd>' in body
    assert "Started by olivia on" in body


def test_a_run_from_the_shell_says_so(client, personas, judged):
    from judging import runs

    run = runs.start(personas.project, None, JudgeRun.Scope.REVIEWED, in_process=True)  # as manage.py judge does
    assert run.origin == JudgeRun.Origin.COMMAND
    client.force_login(personas.viewer)

    body = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/").content.decode()

    assert "Started from the command line on" in body and "deleted user" not in body


@pytest.mark.parametrize(
    "seconds, said",
    [(0.4, "0.4 s"), (41, "41 s"), (60, "1 min"), (185, "3 min 5 s"), (3720, "1 h 2 min"), (7200, "2 h")],
)
def test_durations_read_the_way_people_say_them(seconds, said):
    from datetime import datetime, timedelta

    from judging.templatetags.run_tags import duration

    start = datetime(2026, 1, 1)
    assert duration(start, start + timedelta(seconds=seconds)) == said


def test_a_stalled_run_says_so(personas):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    run = JudgeRun(project=personas.project, status="running", dispatched_at=now - timedelta(seconds=20))
    assert "No worker has picked this run up for 20 s" in run_listing.notice(run, now)
    run.started_at = run.progress_at = now - timedelta(seconds=90)
    assert "No verdict for 90 s" in run_listing.notice(run, now)
    run.progress_at = now - timedelta(seconds=5)
    assert run_listing.notice(run, now) == ""


def test_a_runs_figures_follow_the_experts_labels(client, personas, judged):
    run, samples, _, _ = judged
    run.figures = run_agreement.stored_agreement(run)
    run.save()
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/"
    assert 'data-basis="samples">3<' in client.get(url).content.decode()  # r0..r2 carry expert labels
    add_feedback(samples[3], personas.owner, "fail", "Late.")  # an expert reviews r3 after the run
    assert 'data-basis="samples">4<' in client.get(url).content.decode()
    run.refresh_from_db()
    assert run.figures["samples"] == 4  # stored again: the next view does not recompute
