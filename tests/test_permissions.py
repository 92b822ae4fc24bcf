"""The permission matrix: every project URL × every persona × GET/POST, with the exact status expected.

anon: not logged in (sent to the login page), out: logged in but not a member (404: existence does not leak),
view/rev/own: viewer, reviewer, owner (403 when the role is too low, 405 when the method is wrong).
"""

from __future__ import annotations

import pytest
from django.db import transaction

from evaluation.models import Evaluation
from judging.models import Judgement, JudgeRun
from memory.models import MemoryVersion, Principle
from reviews.invitations import issue_link
from reviews.models import Decision, Feedback, Invitation, Membership
from tests.conftest import add_sample, build_personas

PERSONAS = ["anon", "out", "view", "rev", "own"]

# name: (url template, GET statuses, POST statuses), in PERSONAS order. POSTs carry an empty body.
MATRIX = {
    "overview": ("/p/{slug}/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "settings": ("/p/{slug}/settings/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 400]),
    "members": ("/p/{slug}/members/", [302, 404, 200, 200, 200], [302, 404, 403, 403, 400]),
    "member-role": ("/p/{slug}/members/{membership}/role/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    "member-remove": ("/p/{slug}/members/{membership}/remove/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    "invitation-revoke": (
        "/p/{slug}/invitations/{invitation}/revoke/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "invitation-resend": (
        "/p/{slug}/invitations/{invitation}/resend/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    # The one-time link is the credential: anyone holding it may open it; members accepting keep their role.
    "invitation-join": ("/join/{token}/", [200, 200, 200, 200, 200], [400, 302, 302, 302, 302]),
    "import": ("/p/{slug}/import/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 400]),
    "queue": ("/p/{slug}/queue/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "review": ("/p/{slug}/samples/{sample}/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "feedback-save": ("/p/{slug}/samples/{sample}/feedback/", [302, 404, 403, 405, 405], [302, 404, 403, 422, 422]),
    "feedback-delete": ("/p/{slug}/feedback/{feedback}/delete/", [302, 404, 403, 405, 405], [302, 404, 403, 302, 302]),
    # With nothing saved in this session there is nothing to undo: back to the sample, with the reason.
    "feedback-undo": ("/p/{slug}/feedback/{feedback}/undo/", [302, 404, 403, 405, 405], [302, 404, 403, 302, 302]),
    "team": ("/p/{slug}/team/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "conflicts": ("/p/{slug}/conflicts/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    # Reviewers without the adjudicator flag may not decide (403); an empty form is a 400 for an owner.
    "conflict-decide": ("/p/{slug}/samples/{sample}/decide/", [302, 404, 403, 405, 405], [302, 404, 403, 403, 400]),
    "decision-undo": ("/p/{slug}/decisions/{decision}/undo/", [302, 404, 403, 405, 405], [302, 404, 403, 403, 302]),
    "member-adjudicator": (
        "/p/{slug}/members/{membership}/adjudicator/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "memory": ("/p/{slug}/memory/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "memory-runs": ("/p/{slug}/memory/runs/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "memory-settings": ("/p/{slug}/memory/settings/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 405]),
    "memory-try": ("/p/{slug}/memory/try/", [302, 404, 405, 405, 405], [302, 404, 422, 403, 422]),
    "memory-regenerate": ("/p/{slug}/memory/regenerate/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    "memory-consolidate": ("/p/{slug}/memory/consolidate/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    "principles": ("/p/{slug}/memory/principles/", [302, 404, 200, 200, 200], [302, 404, 403, 403, 302]),
    "principle": ("/p/{slug}/memory/principles/{principle}/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "principle-edit": (
        "/p/{slug}/memory/principles/{principle}/edit/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "principle-pin": (
        "/p/{slug}/memory/principles/{principle}/pin/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "versions": ("/p/{slug}/memory/versions/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "version-compare": (
        "/p/{slug}/memory/versions/compare/?a=0&b={version}",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "version-rollback": (
        "/p/{slug}/memory/versions/{version}/rollback/",
        [302, 404, 403, 403, 200],
        [302, 404, 403, 403, 302],
    ),
    "memory-audit": ("/p/{slug}/memory/audit/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "memory-audit-csv": ("/p/{slug}/memory/audit.csv", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "principle-retire": (
        "/p/{slug}/memory/principles/{principle}/retire/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "judge-run-start": ("/p/{slug}/memory/judge-runs/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 302]),
    "judge-run": ("/p/{slug}/memory/judge-runs/{run}/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "judge-run-progress": (
        "/p/{slug}/memory/judge-runs/{run}/progress/",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "judge-run-verdict": (
        "/p/{slug}/memory/judge-runs/{run}/verdicts/{judgement}/",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "dataset-csv": ("/p/{slug}/export.csv", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "dataset-jsonl": ("/p/{slug}/export.jsonl", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "judge-run-csv": (
        "/p/{slug}/memory/judge-runs/{run}/export.csv",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "judge-run-jsonl": (
        "/p/{slug}/memory/judge-runs/{run}/export.jsonl",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "judge-run-cancel": (
        "/p/{slug}/memory/judge-runs/{run}/cancel/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "judge-run-retry": (
        "/p/{slug}/memory/judge-runs/{run}/retry/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "evaluation-settings": (
        "/p/{slug}/memory/evaluation-settings/",
        [302, 404, 403, 403, 405],
        [302, 404, 403, 403, 302],
    ),
    "held-activate": ("/p/{slug}/memory/held/activate/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    "held-discard": ("/p/{slug}/memory/held/discard/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 302]),
    # GET lists them (with the held version); POST starts one (owners; an empty form takes the defaults).
    "evaluations": ("/p/{slug}/memory/evaluations/", [302, 404, 200, 200, 200], [302, 404, 403, 403, 302]),
    "evaluation": ("/p/{slug}/memory/evaluations/{evaluation}/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "evaluation-progress": (
        "/p/{slug}/memory/evaluations/{evaluation}/progress/",
        [302, 404, 286, 286, 286],
        [302, 404, 405, 405, 405],
    ),
    "evaluation-chart": (
        "/p/{slug}/memory/evaluations/{evaluation}/heldout.svg",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "evaluation-csv": (
        "/p/{slug}/memory/evaluations/{evaluation}/export.csv",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    "evaluation-json": (
        "/p/{slug}/memory/evaluations/{evaluation}/export.json",
        [302, 404, 200, 200, 200],
        [302, 404, 405, 405, 405],
    ),
    # issue 12b
    "memory-episodic": ("/p/{slug}/memory/episodic/", [302, 404, 200, 200, 200], [302, 404, 405, 405, 405]),
    "memory-conflicts": (
        "/p/{slug}/memory/episodic/conflicts/",
        [302, 404, 200, 200, 200],
        [302, 404, 403, 403, 400],
    ),
    "memory-unalign": ("/p/{slug}/memory/unalign/", [302, 404, 403, 200, 200], [302, 404, 403, 400, 400]),
    "memory-playground": ("/p/{slug}/memory/playground/", [302, 404, 200, 403, 200], [302, 404, 400, 403, 400]),
    "judge-export": ("/p/{slug}/memory/export.json", [302, 404, 403, 403, 200], [302, 404, 403, 403, 405]),
    "judge-import": ("/judges/import/", [302, 200, 200, 200, 200], [302, 400, 400, 400, 400]),
    "project-backup": ("/p/{slug}/backup/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 405]),
    "project-backup-download": ("/p/{slug}/backup/download/", [302, 404, 403, 403, 200], [302, 404, 403, 403, 405]),
    # An empty POST names no file: a 400 with the reason, nothing created.
    "project-backup-restore": ("/p/{slug}/backup/restore/", [302, 404, 403, 403, 405], [302, 404, 403, 403, 400]),
}

CASES = [(name, method, index) for name in MATRIX for method in ("GET", "POST") for index in range(len(PERSONAS))]


def url_ids(personas, project) -> dict:
    sample = add_sample(project, "matrix")
    feedback = Feedback.objects.create(
        project=project,
        sample=sample,
        author=personas.reviewer if project == personas.project else personas.other_owner,
        label="fail",
        critique="Too curt.",
        agrees_with_judge=False,
    )
    membership = (
        Membership.objects.exclude(role="owner").filter(project=project).first()
        or Membership.objects.filter(project=project).first()
    )
    principle = Principle.objects.create(project=project, text="Own mistakes.", origin="manual")
    version = MemoryVersion.objects.create(project=project, number=1, trigger="distill", provider="offline", model="")
    run = JudgeRun.objects.create(project=project, total=1, sample_ids=[sample.pk])
    judgement = Judgement.objects.create(project=project, sample=sample, run=run, value="pass", retrieved=[feedback.pk])
    invitation = Invitation.objects.create(project=project, identifier=f"invitee-{project.pk}@example.com")
    token = issue_link(invitation)
    decision = Decision.objects.create(project=project, sample=sample, label="fail", reason="Too curt.")
    point = {
        "curve": "heldout",
        "variant": "episodic",
        "split": "test",
        "shard": 0,
        "n": 3,
        "exact_match": 0.5,
        "kappa": None,
        "weighted_kappa": None,
        "ccc": None,
        "mae": None,
        "abstained": 0,
        "interval": [0.2, 0.8],
        "tokens": 0,
    }
    evaluation = Evaluation.objects.create(
        project=project,
        status=Evaluation.Status.DONE,
        result={
            "project": project.slug,
            "provider": "offline",
            "model": "offline-knn",
            "label_kind": "pass_fail",
            "seed": 0,
            "train": 7,
            "test": 3,
            "baselines": {"majority": 0.5, "majority_label": "pass", "imported_judge": None},
            "points": [point],
            "notes": [],
        },
    )
    return {
        "slug": project.slug,
        "sample": sample.pk,
        "feedback": feedback.pk,
        "membership": membership.pk,
        "principle": principle.pk,
        "run": run.pk,
        "judgement": judgement.pk,
        "invitation": invitation.pk,
        "token": token,
        "decision": decision.pk,
        "evaluation": evaluation.pk,
        "version": version.number,
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The personas and one of each object in both projects, built once for the module's ~600 cases.

    They live in a transaction that stays open for the module and is rolled back at its end; each test runs in a
    savepoint inside it (pytest-django's `db`), so what a POST changes is undone before the next case."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            personas = build_personas()
            yield personas, url_ids(personas, personas.project), url_ids(personas, personas.other)
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def personas(world, db):
    return world[0]


@pytest.fixture
def own_ids(world, db) -> dict:
    """The objects of the personas' project, as url_ids returns them."""
    return world[1]


@pytest.fixture
def other_ids(world, db) -> dict:
    """The objects of the other team's project, as url_ids returns them."""
    return world[2]


def login_as(client, personas, persona: str) -> None:
    user = {"out": personas.outsider, "view": personas.viewer, "rev": personas.reviewer, "own": personas.owner}.get(
        persona
    )
    if user is not None:
        client.force_login(user)


@pytest.mark.parametrize("name,method,index", CASES, ids=[f"{n}-{m}-{PERSONAS[i]}" for n, m, i in CASES])
def test_status(client, personas, own_ids, name, method, index):
    template, get_statuses, post_statuses = MATRIX[name]
    url = template.format(**own_ids)
    login_as(client, personas, PERSONAS[index])
    response = client.get(url) if method == "GET" else client.post(url, {})
    expected = (get_statuses if method == "GET" else post_statuses)[index]
    assert response.status_code == expected, f"{method} {url} as {PERSONAS[index]}"
    if PERSONAS[index] == "anon" and expected == 302:
        assert response["Location"].startswith("/login/?next=")


CROSS = [
    name
    for name, (template, _, _) in MATRIX.items()
    if any(
        f"{{{key}}}" in template
        for key in (
            "sample",
            "feedback",
            "membership",
            "principle",
            "run",
            "judgement",
            "invitation",
            "evaluation",
            "decision",
        )
    )
]


@pytest.mark.parametrize("name", CROSS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_projects_ids_are_404(client, personas, own_ids, other_ids, name, method):
    """An owner of project A who puts project B's sample, feedback or member ids into A's URLs gets 404."""
    url = MATRIX[name][0].format(**{**other_ids, "slug": own_ids["slug"]})
    client.force_login(personas.owner)
    response = client.get(url) if method == "GET" else client.post(url, {})
    # A method the URL never takes is refused before any id is looked up; that leaks nothing either.
    owner_status = MATRIX[name][1 if method == "GET" else 2][PERSONAS.index("own")]
    assert response.status_code == (405 if owner_status == 405 else 404)
    if method == "POST":
        assert Feedback.objects.filter(pk=other_ids["feedback"]).exists()
        assert Membership.objects.filter(pk=other_ids["membership"]).exists()
        assert not Principle.objects.get(pk=other_ids["principle"]).retired
        assert not Principle.objects.get(pk=other_ids["principle"]).pinned
        assert Invitation.objects.filter(pk=other_ids["invitation"]).exists()
        assert Decision.objects.filter(pk=other_ids["decision"]).exists()
        assert not Membership.objects.get(pk=other_ids["membership"]).adjudicator
        assert JudgeRun.objects.get(pk=other_ids["run"]).status == "queued"  # not cancelled


def test_a_verdict_of_another_run_is_404(client, personas, own_ids):
    """A judgement id is looked up inside the run in the URL, not only inside the project."""
    ids = own_ids
    other_run = JudgeRun.objects.create(project=personas.project, total=1)
    client.force_login(personas.owner)
    assert (
        client.get(f"/p/{ids['slug']}/memory/judge-runs/{other_run.pk}/verdicts/{ids['judgement']}/").status_code == 404
    )


def test_project_list_shows_only_my_projects(client, personas):
    client.force_login(personas.viewer)
    body = client.get("/projects/").content.decode()
    assert "Support tone" in body
    assert "Other team" not in body
