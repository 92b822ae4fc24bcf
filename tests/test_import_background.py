"""Imports in the background (reviews/import_jobs.py): the page answers once the file is stored, a real worker
writes it, and the status page shows the progress; an import whose message was lost is queued again."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from judging import signals as judging_signals
from memory import signals as memory_signals
from reviews import import_jobs
from reviews.import_reading import ImportRejected
from reviews.importers import import_samples
from reviews.models import ImportRun, Sample
from reviews.signals import samples_imported
from reviews.tasks import repair_imports
from tests.conftest import wait_for

ROWS = 200_000


@pytest.fixture
def no_embedding_afterwards():
    """Embedding 200,000 samples is not what this test measures (bench/background_embedding.py does)."""
    samples_imported.disconnect(dispatch_uid="memory.samples_imported")
    samples_imported.disconnect(dispatch_uid="judging.samples_imported")
    yield
    samples_imported.connect(memory_signals.samples_bulk_imported, dispatch_uid="memory.samples_imported")
    samples_imported.connect(judging_signals.imported, dispatch_uid="judging.samples_imported")


def big_file() -> io.BytesIO:
    lines = (
        json.dumps(
            {"external_id": f"r{i}", "inputs": f"Where is parcel {i}?", "outputs": "On its way.", "judge_value": "pass"}
        )
        for i in range(ROWS)
    )
    data = io.BytesIO("\n".join(lines).encode())
    data.name = "big.jsonl"
    return data


@pytest.mark.django_db(transaction=True)
def test_a_200000_row_import_returns_at_once_and_completes_in_the_background(
    client, personas, celery_worker, no_embedding_afterwards
):
    client.force_login(personas.owner)
    upload = big_file()
    started = time.monotonic()
    response = client.post(f"/p/{personas.project.slug}/import/", {"file": upload})
    answered = time.monotonic() - started
    assert response.status_code == 302, response.content[:300]
    record = ImportRun.objects.get(project=personas.project)
    statuses = set()

    def done() -> bool:
        polled = client.get(response["Location"], HTTP_HX_REQUEST="true")
        statuses.add(ImportRun.objects.get(pk=record.pk).status)
        return polled.status_code == 286

    wait_for(done, timeout=600, message="the import to finish")
    finished = time.monotonic() - started
    record.refresh_from_db()
    print(f"{len(upload.getvalue()) / 1e6:.0f} MB: the page answered in {answered:.2f} s; imported in {finished:.0f} s")
    assert answered < 5  # the file is stored, nothing more: the 35 s of writing happen in the worker
    assert record.status == "done", record.errors
    assert record.summary["created"] == ROWS and record.percent == 100
    assert Sample.objects.filter(project=personas.project).count() == ROWS
    assert {"reading", "writing"} & statuses  # the page saw it at work, not only before and after


@pytest.mark.django_db(transaction=True)
def test_an_import_whose_message_was_lost_is_queued_again_by_the_repair(personas, celery_worker):
    upload = io.BytesIO(json.dumps({"external_id": "lost", "inputs": "q", "outputs": "a"}).encode())
    record = import_jobs.receive(personas.project, upload, "lost.jsonl", personas.owner)  # no task queued
    assert repair_imports.delay().get(timeout=30) == {"imports queued again": []}  # too young to be lost
    ImportRun.objects.filter(pk=record.pk).update(started_at=timezone.now() - timedelta(minutes=2))
    assert repair_imports.delay().get(timeout=30) == {"imports queued again": [record.pk]}
    wait_for(lambda: ImportRun.objects.get(pk=record.pk).status == "done", message="the repaired import")
    assert Sample.objects.filter(project=personas.project, external_id="lost").exists()


def rows(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


GOOD = {"external_id": "a", "inputs": "q", "outputs": "x"}
BAD_FILES = {
    "a line that is not JSON": ("f.jsonl", rows(GOOD) + b"\n{not json"),
    "an external_id twice, a bad label": (
        "f.jsonl",
        rows(GOOD, GOOD, {**GOOD, "external_id": "b", "judge_value": "?"}),
    ),
    "a reviewer that is no name": ("f.jsonl", rows({**GOOD, "expert_label": "pass", "reviewer": ["ghost"]})),
    "a byte that is not UTF-8": ("f.jsonl", rows(GOOD) + b'\n{"external_id": "b\xff"}'),
    "UTF-16 without a byte-order mark": ("f.jsonl", rows(GOOD).decode().encode("utf-16-le")),
    "a CSV header without inputs": ("f.csv", b"external_id,outputs\na,x\n"),
    "a CSV row with a broken quote": ("f.csv", b'external_id,inputs,outputs\na,"q,x\n'),
    "only a header": ("f.csv", b"external_id,inputs,outputs\n"),
    "more rows than the limit": ("f.jsonl", rows(*({**GOOD, "external_id": f"r{i}"} for i in range(4)))),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_streamed_import_refuses_a_bad_file_as_the_page_always_did(personas, settings, case):
    """The background import reads the stored file as it goes (import_reading.stream_records, validated): the
    same problems, on the same lines, as the whole-file reading of import_samples."""
    settings.MEMALIGN_IMPORT_MAX_ROWS = 3
    name, data = BAD_FILES[case]
    with pytest.raises(ImportRejected) as whole:
        import_samples(personas.project, io.BytesIO(data), name, personas.owner)
    record = import_jobs.receive(personas.project, io.BytesIO(data), name, personas.owner)
    assert import_jobs.run(record.pk) == "rejected"
    record.refresh_from_db()
    assert [tuple(e) for e in record.errors] == whole.value.errors
    assert record.total_errors == whole.value.total_errors
    assert not Sample.objects.filter(project=personas.project).exists()


def test_a_streamed_import_names_the_line_of_a_bad_byte(personas):
    data = rows(GOOD, {**GOOD, "external_id": "b"}) + b"\n" + b'{"external_id": "c\xff"}'
    record = import_jobs.receive(personas.project, io.BytesIO(data), "f.jsonl", personas.owner)
    assert import_jobs.run(record.pk) == "rejected"
    record.refresh_from_db()
    [[line, message]] = record.errors
    assert line == 3 and message.startswith("the file is not valid UTF-8 text (byte 0xff)")


def test_a_streamed_import_writes_what_the_whole_file_import_writes(personas, django_user_model):
    data = rows(
        GOOD,
        {**GOOD, "external_id": "b", "judge_value": "FAIL", "metadata": {"k": 1}},
        {**GOOD, "external_id": "c", "expert_label": "fail", "expert_critique": "Rude.", "reviewer": "rafael"},
    )
    record = import_jobs.receive(personas.project, io.BytesIO(data), "f.jsonl", personas.owner)
    assert import_jobs.run(record.pk) == "done"
    record.refresh_from_db()
    assert (record.summary["created"], record.summary["feedback_created"], record.written, record.total) == (3, 1, 3, 3)
    again = import_jobs.receive(personas.project, io.BytesIO(data), "f.jsonl", personas.owner)
    assert import_jobs.run(again.pk) == "done"
    again.refresh_from_db()
    assert again.summary["unchanged"] == 3 and again.summary["created"] == 0
    assert Sample.objects.get(project=personas.project, external_id="b").judge_value == "fail"
    assert (
        Sample.objects.get(project=personas.project, external_id="c").feedback.get().author.username
        == "rafael (external)"
    )
