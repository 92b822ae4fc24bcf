"""Imports in the background: the upload is stored under DATA_DIR/imports and recorded as a queued `ImportRun`;
a task (reviews.tasks.run_import) reads and validates the whole file, then reads it again and writes it in
batches, updating the record the progress bar reads. Both passes stream the file: memory holds the external ids
seen (to refuse one given twice) and one batch, not the file.

The page and the API answer as soon as the file is stored. A run is claimed by a conditional update, so a second
delivery of its task does nothing; a run whose worker died while writing is undone and started again from the
stored file; one whose message was lost is queued again by the repair (reviews.tasks.repair_imports).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from reviews.import_reading import (
    MAX_ERRORS_LISTED,
    ImportRejected,
    Row,
    max_bytes,
    reader_for,
    stream_records,
    too_large_message,
    validated,
)
from reviews.import_writing import WRITE_BATCH, undo, write_batches
from reviews.importers import announce
from reviews.models import ImportRun, Project

log = logging.getLogger(__name__)
COPY_BYTES = 1024 * 1024
LOST_AFTER = timedelta(minutes=1)  # a queued import no worker took for this long lost its message
DEAD_READER_AFTER = timedelta(minutes=30)


def folder() -> Path:
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def receive(project: Project, upload: IO[bytes], filename: str, importer: User | None) -> ImportRun:
    """Store the upload and record a queued import of it; raise ImportRejected for a file refused unread (its
    type, its size). The caller queues reviews.tasks.run_import once its transaction commits."""
    reader_for(filename)
    name = f"{uuid.uuid4().hex}{Path(filename).suffix.lower()[:10]}"
    path, size = folder() / name, 0
    with path.open("wb") as stored:
        while piece := upload.read(COPY_BYTES):  # in pieces: memory stays flat whatever the file's size
            size += len(piece)
            if size > max_bytes():
                break
            stored.write(piece)
    if size > max_bytes():
        path.unlink()
        raise ImportRejected([(None, too_large_message())])
    return ImportRun.objects.create(
        project=project,
        created_by=importer,
        filename=(filename or "")[:255],
        status=ImportRun.Status.QUEUED,
        upload=name,
    )


def run(run_id: int) -> str:
    """Read, validate and write a stored upload; return the import's status. Safe to deliver twice."""
    record = ImportRun.objects.select_related("project", "created_by").filter(pk=run_id).first()
    if record is None or record.finished:
        return "gone" if record is None else record.status
    if record.status == ImportRun.Status.WRITING:
        undo(record, ImportRun.Status.QUEUED)  # redelivered: its worker died while writing; start again
    if not ImportRun.objects.filter(pk=run_id, status=ImportRun.Status.QUEUED).update(status=ImportRun.Status.READING):
        return "taken by another worker"
    path = folder() / record.upload
    try:
        rows = _check(record, path)
        with path.open("rb") as stream:
            summary = write_batches(
                record.project, _batches(record, stream), rows, lambda _: None, record.created_by, run=record
            )
        announce(record.project, summary)
    except ImportRejected as rejected:
        _end(record, ImportRun.Status.REJECTED, errors=[list(e) for e in rejected.errors], total=rejected.total_errors)
        return ImportRun.Status.REJECTED
    except FileNotFoundError:
        _end(record, ImportRun.Status.FAILED, errors=[[None, "The stored file is gone; import it again."]], total=1)
        return ImportRun.Status.FAILED
    except Exception:  # write_batches has undone what it wrote; the page says so
        log.exception("import %s failed", run_id)
        message = "The import failed on the server; nothing was written. Import the file again."
        _end(record, ImportRun.Status.FAILED, errors=[[None, message]], total=1)
        return ImportRun.Status.FAILED
    _remove(path)
    return ImportRun.Status.DONE


def _check(record: ImportRun, path: Path) -> int:
    """Read and validate the whole file, keeping only its first problems; return its number of rows, or raise
    ImportRejected: nothing is written from a bad file."""
    problems: list[tuple[int | None, str]] = []
    rows = total = 0
    with path.open("rb") as stream:
        for line, _, found in validated(record.project, stream_records(stream, record.filename), record.created_by):
            rows += 1
            total += len(found)
            problems.extend((line, message) for message in found[: MAX_ERRORS_LISTED - len(problems)])
    if total:
        raise ImportRejected(problems, total)
    return rows


def _batches(record: ImportRun, stream: IO[bytes]) -> Iterator[list[Row]]:
    """The checked file's rows again, WRITE_BATCH at a time, as they are read."""
    batch: list[Row] = []
    for _, row, _ in validated(record.project, stream_records(stream, record.filename), record.created_by):
        if row is not None:
            batch.append(row)
        if len(batch) == WRITE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _end(record: ImportRun, status: str, errors: list[list[int | str | None]], total: int) -> None:
    ImportRun.objects.filter(pk=record.pk).update(
        status=status, errors=errors, total_errors=total, finished_at=timezone.now()
    )
    _remove(folder() / record.upload)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def requeue_lost() -> list[int]:
    """Put back in the queue the imports no worker took for a while (their message was lost) and those whose
    worker died while reading (half an hour: reading a 100 MB file takes minutes); return their ids for the
    repair to queue their tasks again."""
    now = timezone.now()
    lost = ImportRun.objects.filter(
        Q(status=ImportRun.Status.QUEUED, started_at__lt=now - LOST_AFTER)
        | Q(status=ImportRun.Status.READING, started_at__lt=now - DEAD_READER_AFTER)
    )
    ids = list(lost.values_list("pk", flat=True))
    ImportRun.objects.filter(pk__in=ids, status=ImportRun.Status.READING).update(status=ImportRun.Status.QUEUED)
    return ids
