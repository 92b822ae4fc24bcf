"""The admin's change lists make the same number of queries for 3 rows as for 12: no query per row (N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evaluation.models import Evaluation, GateCheck
from judging.models import Judgement, JudgeRun
from memory import principles, versions
from memory.models import (
    Contradiction,
    DistilledFeedback,
    EvaluationSettings,
    MemoryVersion,
    Principle,
    PrincipleSource,
    SampleVector,
)
from reviews.models import ImportRun, Invitation, Membership, Role
from reviews.projects import create_project
from tests.conftest import add_feedback, add_sample, make_user

CHANGELISTS = [
    "memory/principle",
    "memory/memoryversion",
    "memory/distilledfeedback",
    "memory/contradiction",
    "judging/judgerun",
    "judging/judgement",
    "memory/samplevector",
    "evaluation/evaluation",
    "memory/evaluationsettings",
    "evaluation/gatecheck",
    "auditlog/logentry",
    "reviews/project",
    "reviews/membership",
    "reviews/invitation",
    "reviews/importrun",
    "reviews/sample",
    "reviews/feedback",
]


def add_rows(owner, count: int, start: int) -> None:
    """`count` rows of every model, each in a project of its own (so every foreign key differs per row)."""
    for i in range(start, start + count):
        user = make_user(f"member{i}")
        project = create_project(owner, name=f"Project {i}", criterion="Tone?", label_kind="pass_fail")
        Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
        Invitation.objects.create(project=project, identifier=f"guest{i}@example.com", invited_by=owner)
        ImportRun.objects.create(project=project, created_by=owner, filename=f"f{i}.csv")
        sample = add_sample(project, f"s{i}")
        feedback = add_feedback(sample, user, "fail", f"Too curt {i}.")
        first = Principle.objects.create(project=project, text=f"Be warm {i}.", label="fail")
        second = Principle.objects.create(project=project, text=f"Be brief {i}.", label="pass")
        PrincipleSource.objects.create(principle=first, feedback=feedback, feedback_revision=feedback.revision)
        with principles.changing(project, actor=owner):
            version = versions.new_version(project, MemoryVersion.Trigger.MANUAL, actor=owner, summary="rows")
        Principle.objects.filter(pk=first.pk).update(created_in=version)
        DistilledFeedback.objects.create(feedback=feedback, revision=feedback.revision, version=version)
        Contradiction.objects.create(project=project, first=first, second=second, found_in=version)
        run = JudgeRun.objects.create(project=project, created_by=owner, total=1, sample_ids=[sample.pk])
        Judgement.objects.create(project=project, sample=sample, run=run, value="pass", memory_version=version)
        SampleVector.objects.create(sample=sample, project=project, fingerprint="x", scheme=2, vector=b"\0" * 8)
        Evaluation.objects.create(project=project, created_by=owner)
        EvaluationSettings.objects.create(project=project)
        GateCheck.objects.create(
            version=version,
            compared_with=version,
            guard_size=1,
            agreement_before=1,
            agreement_after=1,
            threshold=0.05,
            held=False,
        )


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/admin/{path}/")
    assert response.status_code == 200, path
    return len(captured)


@pytest.mark.django_db
def test_change_lists_make_no_query_per_row(client):
    admin_user = make_user("root")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    add_rows(admin_user, 3, 0)
    few = {path: queries(client, path) for path in CHANGELISTS}
    add_rows(admin_user, 9, 3)
    many = {path: queries(client, path) for path in CHANGELISTS}
    grown = {path: (few[path], many[path]) for path in CHANGELISTS if many[path] != few[path]}
    assert grown == {}, "change lists whose queries grow with their rows (3 rows, 12 rows)"
