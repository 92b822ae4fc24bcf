"""The overview's headline is the aligned judge's latest run (kappa, interval, reading, recall per label, the run
and its memory version), with the imported judge and the experts beside it; before any run, it says so."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from judging import run_agreement
from judging.models import Judgement, JudgeRun
from memory.models import MemoryVersion
from reviews.models import Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

pytestmark = pytest.mark.django_db


def finished_run(project, owner, verdicts: dict[str, str], version=None) -> JudgeRun:
    """A run that ended with `verdicts` (external id -> the aligned judge's label), its figures stored."""
    samples = {s.external_id: s for s in project.samples.all()}
    now = timezone.now()
    run = JudgeRun.objects.create(
        project=project,
        created_by=owner,
        status=JudgeRun.Status.DONE,
        total=len(verdicts),
        done=len(verdicts),
        memory_version=version,
        started_at=now - timedelta(seconds=41),
        finished_at=now,
    )
    for external_id, value in verdicts.items():
        Judgement.objects.create(
            project=project, sample=samples[external_id], run=run, value=value, provider="offline", model="local"
        )
    run.figures = run_agreement.stored_agreement(run)
    run.save(update_fields=["figures"])
    return run


LABELS = ["pass", "pass", "pass", "fail", "fail", "fail"] * 2


@pytest.fixture
def reviewed(personas):
    """Twelve samples the experts labelled (at least metrics.MIN_ITEMS, so figures are graded): s0-s2 and s6-s8
    pass, s3-s5 and s9-s11 fail; the imported judge said pass to all."""
    for i, label in enumerate(LABELS):
        add_feedback(add_sample(personas.project, f"s{i}", judge_value="pass"), personas.reviewer, label, "Because.")
    return personas


def overview(client, user, project) -> str:
    client.force_login(user)
    response = client.get(f"/p/{project.slug}/")
    assert response.status_code == 200
    return response.content.decode()


def test_before_any_run_the_headline_says_the_judge_is_not_measured(client, reviewed):
    body = overview(client, reviewed.owner, reviewed.project)

    assert 'id="headline-none">Not measured yet: the aligned judge has not run.' in body
    assert 'data-headline="aligned"' not in body
    assert 'data-headline="imported">0.00<' in body  # the imported judge is still shown, for comparison
    assert re.search(r'<form method="post" action="/p/support-tone/memory/judge-runs/"[^>]*id="overview-run"', body)


def test_the_headline_is_the_latest_runs_figures(client, reviewed):
    version = MemoryVersion.objects.create(project=reviewed.project, number=4)
    finished_run(reviewed.project, reviewed.owner, {f"s{i}": "pass" for i in range(12)})  # older, worse
    twice = ["pass", "pass", "fail", "fail", "fail", "pass"] * 2
    run = finished_run(reviewed.project, reviewed.owner, {f"s{i}": v for i, v in enumerate(twice)}, version)

    body = overview(client, reviewed.viewer, reviewed.project)

    aligned = run.figures["aligned"]
    assert f'data-headline="aligned">{aligned["headline"]:.2f}<' in body  # kappa 0.33 on these twelve
    assert 'data-reading="aligned">weak: exploratory only<' in body
    low, high = aligned["interval"]
    assert f"(95% interval {low:.2f} to {high:.2f})" in body
    recall = dict(
        re.findall(r'data-recall-label="(\w+)"><th><span class="badge">\w+</span></th><td>([^<]+)</td>', body)
    )
    assert recall == {"pass": "4 of 6", "fail": "4 of 6"}
    assert f'<a href="/p/support-tone/memory/judge-runs/{run.pk}/">run #{run.pk}</a>' in body
    assert "with memory v4." in body
    assert 'data-headline="imported">0.00<' in body and "on the same 12 samples" in body
    assert 'id="overview-run"' not in body  # viewers do not start runs


def test_a_negative_kappa_reads_worse_than_chance(client, reviewed):
    flipped = {"pass": "fail", "fail": "pass"}
    finished_run(reviewed.project, reviewed.owner, {f"s{i}": flipped[label] for i, label in enumerate(LABELS)})

    body = overview(client, reviewed.owner, reviewed.project)

    assert 'data-headline="aligned">-1.00<' in body
    assert 'data-reading="aligned">worse than chance<' in body


def test_below_ten_samples_the_headline_is_shown_but_not_graded(client, personas):
    """Kappa 1.00 on 5 samples read "good enough to gate a release" (a walk-through); now it says too few."""
    for i, label in enumerate(["pass", "fail", "pass", "fail", "pass"]):
        add_feedback(add_sample(personas.project, f"s{i}", judge_value="pass"), personas.reviewer, label, "Because.")
    finished_run(
        personas.project, personas.owner, {f"s{i}": v for i, v in enumerate(["pass", "fail", "pass", "fail", "pass"])}
    )

    body = overview(client, personas.owner, personas.project)

    assert 'data-headline="aligned">1.00<' in body
    assert 'data-reading="aligned">too few samples to judge (5 of 10 needed)<' in body
    assert "gate a release" not in body


def test_a_run_where_every_verdict_agrees_does_not_print_a_zero_width_interval(client, reviewed):
    """30 of 30 agreeing gave "95% interval 1.00 to 1.00": every bootstrap resample agrees too. The pages say the
    bootstrap cannot bound it and give the exact interval of the agreement share instead."""
    for i in range(12, 30):
        label = LABELS[i % 6]
        add_feedback(add_sample(reviewed.project, f"s{i}", judge_value="pass"), reviewed.owner, label, "Because.")
    run = finished_run(reviewed.project, reviewed.owner, {f"s{i}": LABELS[i % 6] for i in range(30)})
    words = "all 30 agree, so the bootstrap interval collapses and cannot bound it; exact agreement 30 of 30, 95% interval 88% to 100%"

    body = overview(client, reviewed.owner, reviewed.project)
    run_page = client.get(f"/p/{reviewed.project.slug}/memory/judge-runs/{run.pk}/").content.decode()

    for page in (body, run_page):
        assert f'data-interval="aligned">({words})<' in page
        assert "1.00 to 1.00" not in page
    assert 'data-reading="aligned">good enough to gate a release<' in run_page  # 30 samples: graded


def test_a_stored_run_is_read_again_with_the_number_of_samples(client, personas):
    """A run's figures are stored with the reading of their day: the pages read the stored kappa again."""
    for i, label in enumerate(["pass", "fail", "pass"]):
        add_feedback(add_sample(personas.project, f"s{i}", judge_value="pass"), personas.reviewer, label, "Because.")
    run = finished_run(personas.project, personas.owner, {"s0": "pass", "s1": "fail", "s2": "pass"})
    run.figures["aligned"]["reading"] = "good enough to gate a release"  # as stored before the minimum
    run.save(update_fields=["figures"])
    client.force_login(personas.owner)

    for url in (
        f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/",
        f"/p/{personas.project.slug}/memory/runs/",
    ):
        page = client.get(url).content.decode()
        assert "too few samples to judge (3 of 10 needed)" in page and "gate a release<" not in page


def test_the_experts_agreement_stands_beside_the_judges(client, reviewed):
    rhea = make_user("rhea")
    Membership.objects.create(project=reviewed.project, user=rhea, role=Role.REVIEWER)
    for sample in reviewed.project.samples.all():
        add_feedback(sample, rhea, sample.feedback.get().label, "Same.")

    body = overview(client, reviewed.owner, reviewed.project)

    assert 'data-headline="experts">1.00<' in body


def test_the_navigation_offers_owners_to_run_the_judge(client, reviewed):
    body = overview(client, reviewed.owner, reviewed.project)
    assert '<a href="/p/support-tone/memory/judge-runs/" id="nav-run-judge">Run the judge</a>' in body

    page = client.get("/p/support-tone/memory/judge-runs/").content.decode()
    assert "<h1>Run the aligned judge</h1>" in page and 'id="overview-run"' in page

    client.force_login(reviewed.reviewer)
    assert "nav-run-judge" not in client.get("/p/support-tone/").content.decode()
