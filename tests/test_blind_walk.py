"""One blind-review rule on every surface: walk every URL pattern and API operation as a blind reviewer, with a
marker critique planted on a sample they have not reviewed (and a principle that quotes and cites it, a run
that retrieved it, a memory version holding it), and fail on any response that contains the marker.

URL parameters are filled from real objects by name (FILLERS); a new page is walked without a new test, and a
new parameter name fails the test until it gets a filler.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from api import tokens
from judging.models import Judgement, JudgeRun
from memory import principles, versions
from memory.models import MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

MARKER = "Zq7-blind-marker"
SKIPPED = ("admin/", "logout/", "api/v1/docs", "api/v1/openapi.json", "static/")
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


@pytest.fixture
def planted(personas):
    """Rita's marker critique on a sample Rafael (a reviewer) has not reviewed, and everything built from it."""
    project = personas.project
    rita = make_user("rita")
    Membership.objects.create(project=project, user=rita, role=Role.REVIEWER)
    contested = add_sample(project, "contested", judge_value="pass")
    secret = add_feedback(contested, rita, "fail", f"{MARKER}: the apology is missing")
    # A quoted passage travels with the critique (reviews/_quote.html): it must be withheld alike.
    Feedback.objects.filter(pk=secret.pk).update(quote_text=f"{MARKER} quoted passage")
    mine = add_sample(project, "mine", judge_value="pass")
    add_feedback(mine, personas.reviewer, "pass", "Fine by me.")
    # An offline principle quotes its source word for word, as the offline provider's do.
    principle = Principle.objects.create(project=project, text=f"{MARKER}: the apology is missing (experts chose fail)")
    PrincipleSource.objects.create(principle=principle, feedback=secret, feedback_revision=secret.revision)
    with principles.changing(project):
        versions.new_version(project, MemoryVersion.Trigger.DISTILL, summary="distilled 1 critique")
    version = MemoryVersion.objects.get(project=project)
    run = JudgeRun.objects.create(
        project=project,
        created_by=personas.owner,
        total=2,
        sample_ids=[contested.pk, mine.pk],
        status="done",
        memory_version=version,
    )
    judgement = Judgement.objects.create(
        project=project,
        run=run,
        sample=contested,
        value="fail",
        rationale="Missing apology.",
        memory_version=version,
        principle_ids=[principle.pk],
        retrieved=[secret.pk],
        similarities=[0.9],
        provider="offline",
        model="m",
    )
    for other in (mine,):
        Judgement.objects.create(project=project, run=run, sample=other, value="pass", memory_version=version)
    fillers = {
        "slug": [project.slug],
        "sample_id": [contested.pk],
        "run_id": [run.pk],
        "judgement_id": [judgement.pk],
        "principle_id": [principle.pk],
        "feedback_id": [secret.pk],
        "number": [version.number],
        "membership_id": [Membership.objects.get(project=project, user=rita).pk],
        "evaluation_id": [0],
        "import_id": [0],
        "decision_id": [0],
        "invitation_id": [0],
        "token_id": [0],
        "token": ["nope"],
        "curve": ["held_out"],
    }
    return fillers


def filled(route: str, fillers: dict) -> str | None:
    missing = [name for _, name in PARAMETER.findall(route) if name not in fillers]
    assert not missing, f"give {route} a filler for {missing} in FILLERS, so the walk covers it"
    return "/" + PARAMETER.sub(lambda m: str(fillers[m.group(2)][0]), route).replace("^", "").replace("$", "")


def test_a_blind_reviewer_never_sees_the_marker_anywhere(personas, planted):
    _, raw = tokens.create_token(personas.reviewer, "walk")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.force_login(personas.reviewer)
    leaks, walked = [], 0
    for route in sorted(set(routes())):
        if route.startswith(SKIPPED):
            continue
        url = filled(route, planted)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            walked += 1
            content = b"".join(response.streaming_content) if response.streaming else response.content
            if MARKER.encode() in content:
                leaks.append(f"{url} ({response.status_code}{', htmx' if headers else ''})")
    assert walked > 100
    assert leaks == [], "\n".join(leaks)


def test_the_marker_shows_once_the_reviewer_gave_their_own_review(personas, planted, client):
    """The walk above proves nothing if the pages never show the marker: once Rafael reviewed the sample (and for
    owners and viewers, who do not review), the same pages show it."""
    slug = personas.project.slug
    pages = [f"/p/{slug}/memory/", f"/p/{slug}/memory/principles/", f"/p/{slug}/samples/{planted['sample_id'][0]}/"]
    client.force_login(personas.viewer)
    assert all(MARKER in client.get(page).content.decode() for page in pages)
    from reviews.models import Sample

    add_feedback(Sample.objects.get(pk=planted["sample_id"][0]), personas.reviewer, "fail", "Agreed.")
    client.force_login(personas.reviewer)
    assert all(MARKER in client.get(page).content.decode() for page in pages)


def test_a_runs_verdicts_show_a_blind_reviewer_only_the_labels_they_may_see(personas, planted, client):
    """Labels are not markers (every page lists the label names): the run's page, exports and API are checked
    for the experts' label on the contested sample directly."""
    slug, run_id = personas.project.slug, planted["run_id"][0]
    _, raw = tokens.create_token(personas.reviewer, "ci")
    client.force_login(personas.reviewer)
    base = f"/p/{slug}/memory/judge-runs/{run_id}"
    table = b"".join(client.get(f"{base}/export.csv").streaming_content).decode()
    rows = [row for row in csv.DictReader(io.StringIO(table)) if row["external_id"] == "contested"]
    assert rows and all(
        row["final_label"] == "" and all(value == "" for name, value in row.items() if name.startswith("expert"))
        for row in rows
    ), table
    records = [json.loads(line) for line in b"".join(client.get(f"{base}/export.jsonl").streaming_content).splitlines()]
    assert {r["external_id"]: r["experts"] for r in records} == {"contested": {}, "mine": {"rafael": "pass"}}
    api = client.get(f"/api/v1/projects/{slug}/runs/{run_id}/verdicts", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert {item["experts"] == [] for item in api["items"] if item["sample_id"] == planted["sample_id"][0]} == {True}
