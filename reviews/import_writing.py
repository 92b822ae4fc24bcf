"""Writing validated import rows: new samples and their expert reviews in short transactions, rows the project
already has left untouched (so re-importing a file is harmless); a failed import undone, and one whose process
died undone by the next (discard_unfinished).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reviews import figures
from reviews.import_reading import ImportRejected, Row
from reviews.models import EXTERNAL_REVIEWER, SAMPLE_CONTENT_FIELDS, Feedback, ImportRun, Project, Sample, agreement

CHUNK = 2_000  # ids per lookup query (SQLite refuses more than 32,766 parameters)
WRITE_BATCH = 500  # rows per write transaction: tens of milliseconds, so others' writes never wait long
SQLITE_WRITE_SECONDS = 0.4  # on SQLite, after writing this long ...
SQLITE_PAUSE_SECONDS = 0.12  # ... leave the lock free this long (longer than SQLite's 100 ms busy-handler sleep)
# Fields compared to tell the summary whether a re-imported row differs from what the project holds.
COMPARED_FIELDS = SAMPLE_CONTENT_FIELDS


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    unchanged: int = 0  # rows whose external_id the project already had: left as they are
    unchanged_differing: int = 0  # ... of which the file's version differs from the stored one
    feedback_created: int = 0
    feedback_skipped: int = 0  # expert reviews on rows left unchanged
    unchanged_ids: list[str] = field(default_factory=list)  # the first few, for the message

    def message(self) -> str:
        parts = [f"{self.created:,} new sample{_s(self.created)} imported"]
        if self.feedback_created:
            parts.append(f"{self.feedback_created:,} expert review{_s(self.feedback_created)} imported")
        if self.unchanged:
            text = f"{self.unchanged:,} already in the project and left unchanged"
            if self.unchanged_differing:
                text += (
                    f" ({self.unchanged_differing:,} of them differ from the file: an import never overwrites; "
                    "use new external_ids for new versions)"
                )
            parts.append(text)
        if self.feedback_skipped:
            parts.append(
                f"{self.feedback_skipped:,} expert review{_s(self.feedback_skipped)} on those rows not imported"
            )
        return ", ".join(parts) + "."


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def write(
    project: Project,
    rows: list[Row],
    report: Callable[[str], None],
    importer=None,
    filename: str = "",
    run: ImportRun | None = None,
) -> ImportSummary:
    """Write validated rows (see `write_batches`)."""
    batches = (rows[start : start + WRITE_BATCH] for start in range(0, len(rows), WRITE_BATCH))
    return write_batches(project, batches, len(rows), report, importer, filename, run)


def write_batches(
    project: Project,
    batches: Iterable[list[Row]],
    total: int,
    report: Callable[[str], None],
    importer=None,
    filename: str = "",
    run: ImportRun | None = None,
) -> ImportSummary:
    """Write new samples and their expert reviews in short transactions; skip rows the project already has.

    Each batch of WRITE_BATCH rows is its own transaction, so another user's save waits at most one batch (on
    SQLite, where writers queue for one lock) instead of the whole file. If anything goes wrong, what this run
    wrote is removed again; a run whose process died is removed by the next import into the project. `batches`
    (of WRITE_BATCH rows; `total` rows in all) may be read from the file as they go; `run` is the record of a
    background import (reviews.import_jobs); without it, one is made.
    """
    discard_unfinished(project)
    if run is None:
        run = ImportRun.objects.create(project=project, created_by=importer, filename=(filename or "")[:255])
    else:
        ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.WRITING)
        figures.changed(project.pk)  # the cached list of runs still writing (Sample.objects.writing_runs)
    try:
        summary = _write(project, batches, total, report, importer, run)
    except BaseException as error:
        undo(run, ImportRun.Status.FAILED)
        if isinstance(error, IntegrityError):
            # Only a concurrent import writing the same external_ids gets here.
            raise ImportRejected(
                [
                    (
                        None,
                        "Another import into this project wrote some of the same external_ids at the same moment; "
                        "nothing was written. Import the file again: rows already present will be left unchanged.",
                    )
                ]
            ) from None
        raise
    # The summary in the same update: a progress page that sees "done" sees what was imported.
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.DONE,
        finished_at=timezone.now(),
        summary={**summary.__dict__, "message": summary.message()},
    )
    figures.changed(project.pk)  # its samples are shown from now on
    return summary


def discard_unfinished(project: Project, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Undo imports into `project` still marked as writing after `older_than` (their process died); return how many."""
    stale = ImportRun.objects.filter(
        project=project, status=ImportRun.Status.WRITING, started_at__lt=timezone.now() - older_than
    )
    runs = list(stale)
    for run in runs:
        undo(run, ImportRun.Status.FAILED)
    return len(runs)


def undo(run: ImportRun, status: str) -> None:
    """Delete the samples `run` wrote, batch by batch, except those a reviewer has reviewed since."""
    reviewed = Feedback.objects.filter(sample=OuterRef("pk"), imported_by__isnull=True)
    while True:
        ids = list(
            Sample.objects.filter(import_run=run).filter(~Exists(reviewed)).values_list("id", flat=True)[:WRITE_BATCH]
        )
        if not ids:
            break
        with transaction.atomic():
            Sample.objects.filter(pk__in=ids).delete()
            figures.changed(run.project_id)
    ImportRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now())
    figures.changed(run.project_id)


def _write(
    project: Project, batches: Iterable[list[Row]], total: int, report: Callable[[str], None], importer, run: ImportRun
) -> ImportSummary:
    summary = ImportSummary()
    ImportRun.objects.filter(pk=run.pk).update(total=total, written=0)
    now = timezone.now()
    since_pause = time.monotonic()
    for batch in batches:
        summary.rows += len(batch)
        existing = _existing(project, [row.sample.external_id for row in batch])
        new_rows = [row for row in batch if row.sample.external_id not in existing]
        for row in batch:
            stored = existing.get(row.sample.external_id)
            if stored is None:
                continue
            summary.unchanged += 1
            if len(summary.unchanged_ids) < 20:
                summary.unchanged_ids.append(row.sample.external_id)
            if any(_normal(getattr(row.sample, f)) != _normal(stored[f]) for f in COMPARED_FIELDS):
                summary.unchanged_differing += 1
            if row.expert_label is not None:
                summary.feedback_skipped += 1
        if new_rows:
            with transaction.atomic():
                # PostgreSQL: imports into one project take turns batch by batch (SQLite has one writer anyway).
                Project.objects.select_for_update().filter(pk=project.pk).exists()
                summary.feedback_created += _write_batch(project, new_rows, importer, run, now)
                figures.changed(project.pk)  # bulk writes send no signal
            summary.created += len(new_rows)
        ImportRun.objects.filter(pk=run.pk).update(written=summary.rows)  # the progress bar's figure
        report(f"wrote {summary.rows:,} of {total:,} rows")
        if connection.vendor == "sqlite" and time.monotonic() - since_pause > SQLITE_WRITE_SECONDS:
            # SQLite's lock is not fair: a writer waiting in its busy handler polls every 100 ms and would keep
            # missing the moment between two batches. Leave the lock free for longer than that, now and then.
            time.sleep(SQLITE_PAUSE_SECONDS)
            since_pause = time.monotonic()
    return summary


def _write_batch(project: Project, batch: list[Row], importer, run: ImportRun, now) -> int:
    for row in batch:
        row.sample.import_run = run
    Sample.objects.bulk_create([row.sample for row in batch])
    reviewed = [row for row in batch if row.expert_label is not None]
    if not reviewed:
        return 0
    missing_pk = [row.sample.external_id for row in reviewed if row.sample.pk is None]
    ids = _sample_ids(project, missing_pk) if missing_pk else {}
    externals = _external_accounts([row for row in reviewed if row.external_reviewer])
    Feedback.objects.bulk_create(
        [
            Feedback(
                project=project,
                sample_id=row.sample.pk or ids[row.sample.external_id],
                author_id=row.reviewer_id or externals[row.external_reviewer],
                label=row.expert_label,  # type: ignore[misc]  # set on every reviewed row
                critique=row.expert_critique,
                agrees_with_judge=agreement(row.expert_label or "", row.sample.judge_value),
                imported_by=importer,
                imported_at=now,
            )
            for row in reviewed
        ]
    )
    return len(reviewed)


def _external_accounts(rows: list[Row]) -> dict[str, int]:
    """The inactive placeholder account of each external reviewer named in `rows` (made on first use): a label
    given in someone else's name is theirs, not an account's (reviews.models.EXTERNAL_REVIEWER)."""
    if not rows:
        return {}
    users = get_user_model()
    usernames = {row.external_reviewer: EXTERNAL_REVIEWER.format(row.external_reviewer) for row in rows}
    users.objects.bulk_create(
        [users(username=u, is_active=False, password=make_password(None)) for u in usernames.values()],
        ignore_conflicts=True,
    )
    found = dict(users.objects.filter(username__in=usernames.values(), is_active=False).values_list("username", "id"))
    taken = [row for row in rows if usernames[row.external_reviewer] not in found]
    if taken:
        # Only an account made outside the site (its usernames cannot hold parentheses) can be in the way.
        raise ImportRejected(
            [
                (
                    row.line,
                    f"reviewer {row.external_reviewer!r}: the name {usernames[row.external_reviewer]!r} "
                    "belongs to an active account, so the label cannot be kept apart from it; nothing was written",
                )
                for row in taken
            ]
        )
    return {name: found[username] for name, username in usernames.items()}


def _normal(value):
    """Compare JSON values the way the database returns them (it may reorder nothing, but None and "" differ)."""
    return json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value


def _existing(project: Project, external_ids: list[str]) -> dict[str, dict]:
    # In chunks: SQLite refuses queries with more than 32,766 parameters.
    found: dict[str, dict] = {}
    for start in range(0, len(external_ids), CHUNK):
        chunk = external_ids[start : start + CHUNK]
        for values in Sample.objects.filter(project=project, external_id__in=chunk).values(
            "external_id", *COMPARED_FIELDS
        ):
            found[values["external_id"]] = values
    return found


def _sample_ids(project: Project, external_ids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(external_ids), CHUNK):
        chunk = external_ids[start : start + CHUNK]
        ids.update(Sample.objects.filter(project=project, external_id__in=chunk).values_list("external_id", "id"))
    return ids
