"""Judge runs, verdicts, evaluations and gate checks moved from the memory app to the judging and evaluation
apps with their tables: a database migrated before the move keeps every row, readable through the new apps."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# Before the move: judging and evaluation did not exist (their later migrations add columns to the moved tables).
BEFORE = [
    ("memory", "0009_merge_conflict_similarity_and_version_actor"),
    ("reviews", "0009_merge_queue_order_and_team_review"),
    ("judging", None),
    ("evaluation", None),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([target for target in targets if target[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_read_after_it():
    old = migrate(BEFORE)
    user = old.get_model("auth", "User").objects.create(username="mover")
    project = old.get_model("reviews", "Project").objects.create(
        name="Moved", slug="moved", criterion="c", label_kind="pass_fail"
    )
    sample = old.get_model("reviews", "Sample").objects.create(
        project=project, external_id="s1", inputs={"q": "i"}, outputs="o"
    )
    version = old.get_model("memory", "MemoryVersion").objects.create(project=project, number=1)
    run = old.get_model("memory", "JudgeRun").objects.create(
        project=project, created_by=user, total=1, sample_ids=[sample.pk]
    )
    old.get_model("memory", "Judgement").objects.create(
        project=project, sample=sample, run=run, value="pass", memory_version=version, provider="offline"
    )
    old.get_model("memory", "Evaluation").objects.create(project=project, status="done", result={"points": []})
    old.get_model("memory", "GateCheck").objects.create(
        version=version, guard_size=3, agreement_before=0.9, agreement_after=0.5, threshold=0.05, held=True
    )

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from evaluation.models import Evaluation, GateCheck
    from judging.models import Judgement, JudgeRun

    moved_run = JudgeRun.objects.get(pk=run.pk)
    assert moved_run.sample_ids == [sample.pk] and moved_run.created_by_id == user.pk
    verdict = Judgement.objects.get(run=moved_run)
    assert (verdict.value, verdict.sample_id, verdict.memory_version_id) == ("pass", sample.pk, version.pk)
    assert Evaluation.objects.get(project_id=project.pk).result == {"points": []}
    assert GateCheck.objects.get(version_id=version.pk).held is True
    assert JudgeRun._meta.db_table == "memory_judgerun" and Evaluation._meta.db_table == "memory_evaluation"
