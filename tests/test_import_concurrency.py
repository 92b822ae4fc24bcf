"""Finding 3: a large import never holds the database for long, so other users' saves go through meanwhile
(real threads, the suite's database: SQLite by default), and a crashed import leaves nothing behind."""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.db import connection

from reviews.importers import import_samples
from reviews.models import Feedback, Sample
from tests.conftest import add_feedback, add_sample
from tests.test_import import jsonl, row

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_memory_work(monkeypatch):
    """These tests are about the database's locks: the memory work 20,000 imported rows would queue (embedding,
    distillation) is not theirs, and the suite's worker still doing it when the test's tables are truncated
    deadlocked PostgreSQL's flush."""
    from types import SimpleNamespace

    from memory import dispatch
    from reviews import importers

    silent = SimpleNamespace(send=lambda **kwargs: None)
    monkeypatch.setattr(importers, "feedback_imported", silent)
    monkeypatch.setattr(importers, "samples_imported", silent)
    for name in ("request_regeneration", "request_episodic_update", "request_sample_embedding"):
        monkeypatch.setattr(dispatch, name, lambda *args, **kwargs: False)  # a save during the import queues nothing


ROWS = 20_000
SAVES = 8


def test_saves_during_a_large_import_succeed_within_a_second_or_so(personas):
    targets = [add_sample(personas.project, f"reviewed-meanwhile-{n}") for n in range(SAVES)]
    data = jsonl(
        *[row(f"big-{n}", judge_value="pass", expert_label="fail", expert_critique=f"Reason {n}.") for n in range(ROWS)]
    )
    writing = threading.Event()
    outcome: dict[str, object] = {"save_seconds": []}

    def progress(message: str) -> None:
        if message.startswith("wrote"):
            writing.set()

    def importer() -> None:
        try:
            started = time.monotonic()
            outcome["summary"] = import_samples(
                personas.project, io.BytesIO(data), "big.jsonl", personas.owner, progress=progress
            )
            outcome["import_seconds"] = time.monotonic() - started
        except Exception as error:  # noqa: BLE001 - reported by the assertions below
            outcome["import_error"] = error
        finally:
            writing.set()
            connection.close()

    def reviewer() -> None:
        writing.wait(120)
        for target in targets:  # one save every 0.2 s for as long as the import writes
            if "import_seconds" in outcome or "import_error" in outcome:
                break
            started = time.monotonic()
            try:
                add_feedback(target, personas.reviewer, "fail", "Saved while a large import runs.")
            except Exception as error:  # noqa: BLE001
                outcome["save_error"] = error
            outcome["save_seconds"].append(round(time.monotonic() - started, 3))
            time.sleep(0.2)
        connection.close()

    threads = [threading.Thread(target=importer), threading.Thread(target=reviewer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    print({k: v for k, v in outcome.items() if k != "summary"})
    assert "save_error" not in outcome and "import_error" not in outcome, outcome
    saves = len(outcome["save_seconds"])
    assert saves >= 2, f"only {saves} save(s) overlapped the import: make it larger"  # a machine too fast for the test
    assert max(outcome["save_seconds"]) < 2, outcome
    assert Feedback.objects.filter(sample__in=targets, author=personas.reviewer).count() == saves
    assert Sample.objects.filter(project=personas.project, external_id__startswith="big-").count() == ROWS
    assert Feedback.objects.filter(project=personas.project, sample__external_id__startswith="big-").count() == ROWS


def test_an_import_killed_while_writing_stays_hidden_and_is_undone(personas, tmp_path, client):
    """A real `manage.py import_samples` process killed with SIGKILL after its first batches."""
    import os
    import signal
    import subprocess
    import sys
    from datetime import timedelta

    from reviews.import_writing import discard_unfinished
    from reviews.models import ImportRun
    from tests.test_memory_faults import ROOT, database_url

    path = tmp_path / "big.jsonl"
    path.write_bytes(jsonl(*[row(f"big-{n}") for n in range(ROWS)]))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memalign_site.settings_test",
        "DATABASE_URL": database_url(),
        "MEMALIGN_TEST_QUEUE": f"nobody-{os.getpid()}",
    }  # the process's memory work goes where no worker listens
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "import_samples", personas.project.slug, str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.strip().startswith("wrote 1,500 of"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    written = Sample.objects.filter(project=personas.project, external_id__startswith="big-")
    assert 0 < written.count() < ROWS  # it died half-way
    run = ImportRun.objects.get(project=personas.project)
    assert run.status == ImportRun.Status.WRITING
    # What an unfinished import wrote stays out of sight: it may yet be undone.
    client.force_login(personas.reviewer)
    queue = client.get(f"/p/{personas.project.slug}/queue/", {"filter": "all"}).content.decode()
    assert 'data-filter="all">All <span class="count">0</span>' in queue and "big-" not in queue
    assert client.get(f"/p/{personas.project.slug}/samples/{written.first().pk}/").status_code == 404

    assert discard_unfinished(personas.project, older_than=timedelta(minutes=30)) == 0  # maybe still running
    assert discard_unfinished(personas.project, older_than=timedelta(0)) == 1
    assert not written.exists()  # nothing left behind
    assert ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.FAILED
