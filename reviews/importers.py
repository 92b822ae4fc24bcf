"""Import judge outputs (and optionally expert reviews) from CSV or JSONL: the whole file is read and validated
(reviews.import_reading), then written in short batches (reviews.import_writing).

Every row is validated before anything is written; a bad file is rejected whole with line numbers and reasons.
Rows whose external_id the project already has are left untouched, so re-importing a file is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from django.db import transaction

from reviews.import_reading import ImportRejected, read_records, validate
from reviews.import_writing import ImportSummary, write
from reviews.models import ImportRun, Project
from reviews.signals import feedback_imported, samples_imported


def import_samples(
    project: Project,
    stream: IO[bytes],
    filename: str,
    importer,
    progress: Callable[[str], None] | None = None,
    run: ImportRun | None = None,
) -> ImportSummary:
    """Validate the whole file, then write it in short batches; raise ImportRejected if any row is bad.
    `run` is the record of a background import (reviews.import_jobs), which shows its progress."""
    report = progress or (lambda message: None)
    records, errors = read_records(stream, filename)
    report(f"read {len(records) + len(errors):,} rows")
    rows, problems = validate(project, records, importer)
    errors = sorted([*errors, *problems], key=lambda e: e[0] or 0)
    if errors:
        raise ImportRejected(errors)
    report(f"validated {len(rows):,} rows")
    summary = write(project, rows, report, importer, filename, run)
    announce(project, summary)
    return summary


def announce(project: Project, summary: ImportSummary) -> None:
    """Tell the apps above what an import wrote (the memory embeds and learns it), once it is committed."""
    project_id = project.pk
    if summary.created:
        transaction.on_commit(lambda: samples_imported.send(sender=Project, project_id=project_id))
    if summary.feedback_created:
        transaction.on_commit(lambda: feedback_imported.send(sender=Project, project_id=project_id))
