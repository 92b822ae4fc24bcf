"""Whole-project backup and restore (judging.backup): a restored project is the original, row for row, and its
judge gives the same verdict once the workers rebuilt its memories; a bad backup is refused and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import models, transaction
from django.utils import timezone

from judging import backup
from judging.judge import judge
from judging.models import Judgement, JudgeRun, JudgingSettings
from memory import sync, versions
from memory.models import DistilledFeedback, EvaluationSettings, MemoryVersion, Principle, PrincipleSource
from reviews.adjudication import decide, learnable
from reviews.models import Decision, Feedback, Membership, Project, Role, Sample
from tests.conftest import add_feedback, add_sample, build_personas, make_user, wait_for

LONG_AGO = timezone.now() - timedelta(days=40)


def build_project() -> tuple[Any, Project]:
    """Reviewed and unreviewed samples, two reviewers with a conflict and a decision, principles with sources in
    two versions, evaluation settings and a run's verdicts, every row dated 40 days back."""
    personas = build_personas()
    project = personas.project
    rita = make_user("rita")
    Membership.objects.create(project=project, user=rita, role=Role.REVIEWER, adjudicator=True)
    Project.objects.filter(pk=project.pk).update(
        provider="offline", reviews_per_sample=2, audit_percent=35, queue_order="plain", retrieval_k=3
    )
    project.refresh_from_db()
    s1 = add_sample(project, "s1", metadata={"lang": "en"}, expectations={"tone": "warm"})
    s2 = add_sample(project, "s2", judge_value="fail", inputs="a plain string input")
    add_sample(project, "s3", judge_value="")  # unreviewed, no verdict
    add_sample(project, "s4", outputs="Go away.")  # unreviewed
    add_feedback(s1, personas.reviewer, "pass", "Polite enough.")
    add_feedback(s1, rita, "fail", "Too curt for a refund request.")
    curt = add_feedback(s2, personas.reviewer, "fail", "Dismissive.")
    decide(s1, "fail", "Refund requests need warmth.", personas.owner)
    aside = add_feedback(add_sample(personas.project, "s5"), rita, "pass", "Off topic.")
    Feedback.objects.filter(pk=aside.pk).update(
        excluded_from_memory=True, excluded_at=LONG_AGO, excluded_by=personas.owner, verdict_shown=False
    )
    with transaction.atomic():
        first = Principle.objects.create(project=project, text="Refund replies are warm.", label="fail")
        PrincipleSource.objects.create(principle=first, feedback=curt, feedback_revision=curt.revision)
        v1 = versions.new_version(project, MemoryVersion.Trigger.DISTILL, summary="first")
        Principle.objects.filter(pk=first.pk).update(created_in=v1)
        # Everything learnable was distilled (the overruled review is not learnable): a settled memory.
        settled = learnable(Feedback.objects.filter(project=project))
        DistilledFeedback.objects.bulk_create(
            DistilledFeedback(feedback=f, revision=f.revision, version=v1) for f in settled
        )
    with transaction.atomic():
        Principle.objects.create(project=project, text="Never dismiss.", origin="manual", pinned=True)
        Principle.objects.filter(pk=first.pk).update(retired=True, retired_reason="merged")
        v2 = versions.new_version(project, MemoryVersion.Trigger.MANUAL, actor=personas.owner, summary="edited")
    EvaluationSettings.objects.create(project=project, group_key="lang", guard_size=7, guard_sample_ids=[s2.pk])
    JudgingSettings.objects.create(project=project, target_agreement=0.8, risk=0.05, asks=3, stability_percent=10)
    run = JudgeRun.objects.create(
        project=project,
        created_by=personas.owner,
        total=2,
        done=2,
        sample_ids=[s1.pk, s2.pk],
        memory_version=v2,
        guarantee={"threshold": 0.7},
        corrected_rates={"fail": 0.4},
        checks={"flip_rate": 0.0},
    )
    Judgement.objects.create(
        project=project,
        sample=s2,
        run=run,
        value="fail",
        rationale="Like a reviewed example.",
        memory_version=v2,
        principle_ids=[first.pk],
        retrieved=[curt.pk],
        similarities=[0.93],
        provider="offline",
        model="offline-knn",
        tier="vote",
        probability=0.75,
        probabilities={"pass": 0.25, "fail": 0.75},
        signals={"vote_margin": 0.5},
        confidence=0.81,
        escalated=True,
        checks={"order": "consistent"},
    )
    for model in (Sample, Feedback, Principle, MemoryVersion, JudgeRun, Judgement):
        for name in ("created_at", "updated_at", "added_at", "decided_at"):
            if any(f.name == name for f in model._meta.fields):
                model.objects.filter(project=project).update(**{name: LONG_AGO})
    Membership.objects.filter(project=project).update(added_at=LONG_AGO)
    Decision.objects.filter(project=project).update(decided_at=LONG_AGO)
    Project.objects.filter(pk=project.pk).update(created_at=LONG_AGO)
    return personas, Project.objects.get(pk=project.pk)


def rows(project: Project) -> dict[str, list[dict[str, Any]]]:
    """Every row of the project in every table a backup carries, with ids replaced by what they stand for."""
    samples = dict(Sample.objects.filter(project=project).values_list("pk", "external_id"))
    feedback = {f.pk: (samples[f.sample_id], f.author_id) for f in Feedback.objects.filter(project=project)}
    principles = dict(Principle.objects.filter(project=project).values_list("pk", "text"))
    numbers = dict(MemoryVersion.objects.filter(project=project).values_list("pk", "number"))
    runs = {
        pk: n
        for n, pk in enumerate(JudgeRun.objects.filter(project=project).order_by("id").values_list("pk", flat=True))
    }
    by_model = {Sample: samples, Feedback: feedback, Principle: principles, MemoryVersion: numbers, JudgeRun: runs}
    id_lists = {"sample_ids": samples, "guard_sample_ids": samples, "retrieved": feedback, "principle_ids": principles}

    def plain(row: models.Model) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in row._meta.concrete_fields:
            value = getattr(row, f.attname)
            if f.name in ("id", "project", "slug") or (isinstance(row, Project) and f.name == "created_by"):
                continue
            if f.is_relation and f.related_model in by_model and value is not None:
                value = by_model[f.related_model][value]
            elif f.name in id_lists:
                value = [id_lists[f.name].get(i) for i in value]
            elif isinstance(row, MemoryVersion) and f.name == "principles":
                value = [{**p, "id": principles.get(p["id"])} for p in value]
            out[f.name] = value
        return out

    def table(qs: models.QuerySet) -> list[dict[str, Any]]:
        return sorted((plain(r) for r in qs), key=lambda d: json.dumps(d, sort_keys=True, default=str))

    return {
        "project": [plain(project)],
        "members": table(Membership.objects.filter(project=project)),
        "samples": table(Sample.objects.filter(project=project)),
        "feedback": table(Feedback.objects.filter(project=project)),
        "decisions": table(Decision.objects.filter(project=project)),
        "principles": table(Principle.objects.filter(project=project)),
        "sources": table(PrincipleSource.objects.filter(principle__project=project)),
        "distilled": table(DistilledFeedback.objects.filter(feedback__project=project)),
        "versions": table(MemoryVersion.objects.filter(project=project)),
        "evaluation_settings": table(EvaluationSettings.objects.filter(project=project)),
        "judging_settings": table(JudgingSettings.objects.filter(project=project)),
        "runs": table(JudgeRun.objects.filter(project=project)),
        "verdicts": table(Judgement.objects.filter(project=project)),
    }


@pytest.mark.django_db(transaction=True)
def test_a_restored_project_is_the_original_row_for_row_and_judges_alike(request, tmp_path):
    personas, original = build_project()
    before = rows(original)
    assert len(before["samples"]) == 5 and len(before["feedback"]) == 5 and len(before["versions"]) == 2
    path = tmp_path / "project.backup.json"
    call_command("export_project", original.slug, "--output", str(path), "--with-runs")
    out = []
    call_command("import_project", str(path), "--owner", personas.owner.username, stdout=_Lines(out))
    restored = Project.objects.exclude(pk__in=[original.pk, personas.other.pk]).get()
    assert "mapped to existing accounts: " in out[0] and "rafael" in out[0] and "placeholder" not in out[0]

    after = rows(restored)
    for table, expected in before.items():
        assert after[table] == expected, f"{table} differs after the round trip"
    assert restored.slug != original.slug and restored.created_at == LONG_AGO

    # The workers rebuild the restored project's episodic memory; both judges then see the same memory.
    request.getfixturevalue("celery_worker")
    sync.repair(original)
    wait_for(lambda: not sync.diff(restored).missing, message="the restored episodic store")
    for project in (original, restored):
        assert MemoryVersion.objects.filter(project=project).count() == 2  # nothing was re-distilled
    one, two = (judge(p, "question s4", "Go away.") for p in (original, restored))
    assert two.verdict.value == one.verdict.value
    assert [(e.label, e.critique, round(e.similarity, 6)) for e in two.memory.examples] == [
        (e.label, e.critique, round(e.similarity, 6)) for e in one.memory.examples
    ]
    assert [p.text for p in two.memory.principles] == [p.text for p in one.memory.principles]
    assert one.memory.examples and one.memory.principles


class _Lines:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> None:
        self.into.append(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def document(personas) -> dict[str, Any]:
    sample = add_sample(personas.project, "s1")
    add_feedback(sample, personas.reviewer, "pass", "Fine.")
    return backup.export(personas.project)


def _counts() -> tuple[int, ...]:
    return (
        Project.objects.count(),
        Sample.objects.count(),
        Feedback.objects.count(),
        get_user_model().objects.count(),
        Membership.objects.count(),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "{not json", "The file is not JSON: Expecting property name enclosed in double quotes"),
        (lambda d: {**d, "format": "memalign-judge/1"}, "format is 'memalign-judge/1', expected 'memalign-project'"),
        (lambda d: {**d, "version": 2}, "Backup version 2 is not one this site reads; it reads version 1."),
        (lambda d: {**d, "reviews": [{**d["reviews"][0], "label": "maybe"}]}, "reviews[0].label: "),
        (lambda d: {**d, "samples": [{**d["samples"][0], "created_at": "yesterday"}]}, "samples[0].created_at: "),
        (lambda d: {**d, "reviews": [{**d["reviews"][0], "sample": "s9"}]}, "reviews[0].sample: 's9' is not a"),
        (lambda d: {**d, "project": {**d["project"], "retrieval_k": 99}}, "project.retrieval_k: Retrieve between"),
        (lambda d: {**d, "reviews": [{**d["reviews"][0], "critique": "a\x00b"}]}, "reviews[0].critique: text may not"),
        (lambda d: "[" * 100_000 + "]" * 100_000, "The file is not JSON: maximum recursion depth exceeded"),
    ],
)
def test_a_bad_backup_is_refused_with_the_place_and_writes_nothing(personas, document, change, message):
    changed = change(document)
    raw = changed if isinstance(changed, str) else json.dumps(changed)
    before = _counts()
    with pytest.raises(backup.Refused) as refused:
        backup.restore(raw, personas.owner)
    assert message in str(refused.value)
    assert _counts() == before


def test_a_label_outside_the_schema_names_the_schema(personas, document):
    document["reviews"][0]["label"] = "maybe"
    with pytest.raises(backup.Refused, match=r"reviews\[0\]\.label: .*pass.*fail"):
        backup.restore(json.dumps(document), personas.owner)


def test_the_command_refuses_a_bad_file_and_creates_nothing(personas, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "memalign-project", "version": 1}')
    before = _counts()
    with pytest.raises(CommandError, match=r"Nothing was restored\. The project backup is invalid: exported_at"):
        call_command("import_project", str(path), "--owner", personas.owner.username)
    assert _counts() == before


def test_the_owner_downloads_and_restores_a_new_project_with_placeholders(client, personas, document):
    client.force_login(personas.owner)
    page = client.get(f"/p/{personas.project.slug}/settings/")
    assert f'href="/p/{personas.project.slug}/backup/"' in page.content.decode()
    download = client.get(f"/p/{personas.project.slug}/backup/download/")
    assert download["Content-Disposition"].startswith(f'attachment; filename="{personas.project.slug}-')
    assert json.loads(download.content)["samples"][0]["external_id"] == "s1"
    upload = _upload(download.content)
    response = client.post(f"/p/{personas.project.slug}/backup/restore/", {"file": upload})
    restored = Project.objects.exclude(pk__in=[personas.project.pk, personas.other.pk]).get()
    assert response.status_code == 302 and response["Location"] == f"/p/{restored.slug}/"
    # Through the site, nothing is put in another account's name: the reviewer is a placeholder that cannot log in.
    review = Feedback.objects.get(project=restored)
    assert review.author.username == "imported-rafael" and not review.author.is_active
    assert Membership.objects.get(project=restored, user=personas.owner).role == Role.OWNER
    assert Feedback.objects.filter(project=personas.project).count() == 1  # the original is untouched


def test_a_refused_upload_says_why_and_is_escaped(client, personas, document):
    client.force_login(personas.owner)
    document["reviews"][0]["label"] = "<script>alert(1)</script>"
    response = client.post(f"/p/{personas.project.slug}/backup/restore/", {"file": _upload(json.dumps(document))})
    body = response.content.decode()
    assert response.status_code == 400 and "Nothing was restored." in body and "reviews[0].label" in body
    assert "<script>alert(1)" not in body
    assert Project.objects.count() == 2


def _upload(content: bytes | str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile("project.backup.json", data, content_type="application/json")
