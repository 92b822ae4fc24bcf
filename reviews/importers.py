"""Import judge outputs (and optionally expert reviews) from CSV or JSONL.

Every row is validated before anything is written; a bad file is rejected whole with line numbers and reasons.
Rows whose external_id the project already has are left untouched, so re-importing a file is harmless.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from typing import IO, Callable, Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from reviews.labels import normalize_label
from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS, Feedback, Membership, Project, Role, Sample
from reviews.signals import feedback_imported

MAX_ROWS = 200_000
MAX_ERRORS_LISTED = 50
MAX_EXTERNAL_ID = 200
CHUNK = 2_000
KNOWN_COLUMNS = {
    "external_id", "inputs", "outputs", "output_a", "output_b", "expectations", "judge_value",
    "judge_rationale", "metadata", "expert_label", "expert_critique", "reviewer",
}


class ImportRejected(Exception):
    """The file was refused as a whole; `errors` lists (line number or None, reason)."""

    def __init__(self, errors: list[tuple[int | None, str]], total_errors: int | None = None):
        self.errors = errors[:MAX_ERRORS_LISTED]
        self.total_errors = total_errors if total_errors is not None else len(errors)
        super().__init__("; ".join(f"line {n}: {m}" if n else m for n, m in self.errors))


@dataclass
class ImportSummary:
    created: int = 0
    unchanged: int = 0  # rows whose external_id the project already had
    feedback_created: int = 0
    rows: int = 0
    unchanged_ids: list[str] = field(default_factory=list)

    def message(self) -> str:
        parts = [f"{self.created} new sample{'s' if self.created != 1 else ''} imported"]
        if self.feedback_created:
            parts.append(f"{self.feedback_created} expert review{'s' if self.feedback_created != 1 else ''} imported")
        if self.unchanged:
            parts.append(f"{self.unchanged} already in the project and left unchanged")
        return ", ".join(parts) + "."


@dataclass
class Row:
    line: int
    sample: Sample
    expert_label: str | None = None
    expert_critique: str = ""
    reviewer_id: int | None = None
    exists: bool = False  # the project already has this external_id: the row is left unchanged


def import_samples(
    project: Project,
    stream: IO[bytes],
    filename: str,
    importer,
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Validate the whole file, then write it in one transaction; raise ImportRejected if any row is bad."""
    report = progress or (lambda message: None)
    records = read_records(stream, filename)
    rows, errors = validate(project, records, importer)
    if errors:
        raise ImportRejected(errors)
    report(f"validated {len(rows)} rows")
    summary = write(project, rows, report)
    if summary.feedback_created:
        transaction.on_commit(lambda: feedback_imported.send(sender=Project, project_id=project.pk))
    return summary


# Reading ---------------------------------------------------------------------------------------------------


def decode(stream: IO[bytes]) -> str:
    """Return the file's text: UTF-8 (with or without BOM) or UTF-16 with a BOM; refuse anything else."""
    limit = settings.MEMALIGN_IMPORT_MAX_BYTES
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise ImportRejected([(None, f"The file is larger than the limit of {limit // (1024 * 1024)} MB; split it.")])
    if not raw.strip():
        raise ImportRejected([(None, "The file is empty.")])
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ImportRejected(
            [(line, f"the file is not valid {encoding.upper().replace('-SIG', '')} text (byte {raw[error.start]:#04x}); save it as UTF-8 and retry.")]
        ) from None


def read_records(stream: IO[bytes], filename: str) -> list[tuple[int, dict]]:
    """Return (line number, record) pairs from a CSV or JSONL file."""
    text = decode(stream)
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        records = list(_jsonl_records(text))
    elif name.endswith((".csv", ".tsv", ".txt")):
        records = list(_csv_records(text, "\t" if name.endswith(".tsv") else ","))
    else:
        raise ImportRejected([(None, f"Unknown file type {filename!r}: upload a .csv or .jsonl file.")])
    if not records:
        raise ImportRejected([(None, "The file has no rows.")])
    if len(records) > MAX_ROWS:
        raise ImportRejected([(None, f"The file has {len(records)} rows; the limit is {MAX_ROWS:,} per import.")])
    return records


def _jsonl_records(text: str) -> Iterator[tuple[int, dict]]:
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            errors.append((number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        if not isinstance(record, dict):
            errors.append((number, "each line must be a JSON object"))
            continue
        yield number, record
    if errors:
        raise ImportRejected(errors)


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise ImportRejected([(None, "The CSV file has no header row.")])
    header = [h.strip() for h in reader.fieldnames]
    if len(set(header)) != len(header):
        raise ImportRejected([(1, "the header names a column twice")])
    reader.fieldnames = header
    try:
        for record in reader:
            if None in record:
                raise ImportRejected([(reader.line_num, "the row has more fields than the header")])
            yield reader.line_num, {k: v for k, v in record.items() if v is not None and v != ""}
    except csv.Error as error:
        raise ImportRejected([(reader.line_num, f"unreadable CSV: {error}")]) from None


# Validating ------------------------------------------------------------------------------------------------


def validate(project: Project, records: list[tuple[int, dict]], importer) -> tuple[list[Row], list[tuple[int, str]]]:
    """Return the rows to write and every problem found, each with its line number."""
    reviewers = _reviewers(project, records)
    existing = set(Sample.objects.filter(project=project).values_list("external_id", flat=True))
    seen: dict[str, int] = {}
    rows, errors = [], []
    for line, record in records:
        try:
            row = _validate_record(project, line, record, reviewers, importer)
        except ValidationError as error:
            errors.extend((line, message) for message in error.messages)
            continue
        external_id = row.sample.external_id
        if external_id in seen:
            errors.append((line, f"external_id {external_id!r} already appears on line {seen[external_id]}"))
            continue
        seen[external_id] = line
        row.exists = external_id in existing
        rows.append(row)
    return rows, errors


def _reviewers(project: Project, records: list[tuple[int, dict]]) -> dict[str, int | None]:
    """Map each username named in a `reviewer` column to the user id, if that user may review here."""
    names = {str(r["reviewer"]).strip() for _, r in records if r.get("reviewer")}
    members = Membership.objects.filter(
        project=project, user__username__in=names, role__in=[Role.REVIEWER, Role.OWNER]
    ).values_list("user__username", "user_id")
    found: dict[str, int | None] = {name: None for name in names}
    found.update(dict(members))
    return found


def _validate_record(project: Project, line: int, record: dict, reviewers: dict, importer) -> Row:
    problems: list[str] = []
    unknown = set(record) - KNOWN_COLUMNS
    if unknown:
        problems.append(f"unknown column(s): {', '.join(sorted(unknown))}")
    external_id = _text(record, "external_id", problems, required=True, limit=MAX_EXTERNAL_ID)
    inputs = _json_or_text(record, "inputs", problems, required=True)
    sample = Sample(project=project, external_id=external_id, inputs=inputs)
    if project.is_pairwise:
        if "outputs" in record:
            problems.append("a pairwise project takes output_a and output_b, not outputs")
        sample.output_a = _text(record, "output_a", problems, required=True)
        sample.output_b = _text(record, "output_b", problems, required=True)
    else:
        if "output_a" in record or "output_b" in record:
            problems.append("output_a and output_b are for pairwise projects; this one takes outputs")
        sample.outputs = _text(record, "outputs", problems, required=True)
    sample.expectations = _json_or_text(record, "expectations", problems, required=False)
    sample.metadata = _metadata(record, problems)
    sample.judge_rationale = _text(record, "judge_rationale", problems)
    if record.get("judge_value") not in (None, ""):
        sample.judge_value = _label(project, record["judge_value"], "judge_value", problems)
    row = Row(line=line, sample=sample)
    if record.get("expert_label") not in (None, ""):
        row.expert_label = _label(project, record["expert_label"], "expert_label", problems)
        row.expert_critique = _text(record, "expert_critique", problems, limit=MAX_CRITIQUE_CHARS)
        row.reviewer_id = _reviewer(record, reviewers, importer, problems)
    elif record.get("expert_critique") or record.get("reviewer"):
        problems.append("expert_critique and reviewer need an expert_label")
    if problems:
        raise ValidationError(problems)
    return row


def _text(record: dict, key: str, problems: list[str], required: bool = False, limit: int = MAX_TEXT_CHARS) -> str:
    value = record.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{key} is missing")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        problems.append(f"{key} must be text, not {type(value).__name__}")
        return ""
    text = str(value)
    if required and not text.strip():
        problems.append(f"{key} is blank")
    if len(text) > limit:
        problems.append(f"{key} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def _json_or_text(record: dict, key: str, problems: list[str], required: bool):
    """Accept a JSON object/array (JSONL, or JSON text in a CSV cell) or plain text."""
    value = record.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{key} is missing")
        return "" if required else None
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # text that merely starts with a brace
    size = len(value) if isinstance(value, str) else len(json.dumps(value))
    if size > MAX_TEXT_CHARS:
        problems.append(f"{key} is {size:,} characters long; the limit is {MAX_TEXT_CHARS:,}")
    return value


def _metadata(record: dict, problems: list[str]) -> dict:
    value = record.get("metadata")
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            problems.append("metadata must be a JSON object")
            return {}
    if not isinstance(value, dict):
        problems.append("metadata must be a JSON object")
        return {}
    if len(json.dumps(value)) > MAX_TEXT_CHARS:
        problems.append(f"metadata is longer than {MAX_TEXT_CHARS:,} characters")
    return value


def _label(project: Project, value, key: str, problems: list[str]) -> str:
    if isinstance(value, (dict, list, bool)):
        problems.append(f"{key}: expected one of {', '.join(project.label_choices)}, not a {type(value).__name__}")
        return ""
    try:
        return normalize_label(value, project.label_choices, project.label_kind)
    except ValidationError as error:
        problems.append(f"{key}: {error.messages[0]}")
        return ""


def _reviewer(record: dict, reviewers: dict, importer, problems: list[str]) -> int | None:
    name = str(record.get("reviewer") or "").strip()
    if not name:
        return importer.pk
    if reviewers.get(name) is None:
        problems.append(f"reviewer {name!r} is not a reviewer or owner of this project")
    return reviewers.get(name)


# Writing ---------------------------------------------------------------------------------------------------


@transaction.atomic
def write(project: Project, rows: list[Row], report: Callable[[str], None]) -> ImportSummary:
    """Write new samples and their expert reviews in bulk; skip rows the project already has."""
    summary = ImportSummary(rows=len(rows))
    new_rows = [row for row in rows if not row.exists]
    summary.unchanged = len(rows) - len(new_rows)
    summary.unchanged_ids = [row.sample.external_id for row in rows if row.exists][:20]
    for start in range(0, len(new_rows), CHUNK):
        chunk = new_rows[start : start + CHUNK]
        Sample.objects.bulk_create([row.sample for row in chunk])
        report(f"wrote {min(start + CHUNK, len(new_rows))} of {len(new_rows)} samples")
    summary.created = len(new_rows)
    reviewed = [row for row in new_rows if row.expert_label is not None]
    if reviewed:
        ids = _sample_ids(project, [row.sample.external_id for row in reviewed])
        feedback = [
            Feedback(
                project=project,
                sample_id=ids[row.sample.external_id],
                author_id=row.reviewer_id,
                label=row.expert_label,
                critique=row.expert_critique,
                agrees_with_judge=row.expert_label == row.sample.judge_value,
            )
            for row in reviewed
        ]
        Feedback.objects.bulk_create(feedback, batch_size=CHUNK)
        summary.feedback_created = len(feedback)
    return summary


def _sample_ids(project: Project, external_ids: list[str]) -> dict[str, int]:
    # In chunks: SQLite refuses queries with more than 32,766 parameters.
    ids: dict[str, int] = {}
    for start in range(0, len(external_ids), CHUNK):
        chunk = external_ids[start : start + CHUNK]
        ids.update(Sample.objects.filter(project=project, external_id__in=chunk).values_list("external_id", "id"))
    return ids
