"""Reading an import file (judge outputs and optionally expert reviews, CSV or JSONL) and validating every row.

Nothing here writes: a bad file is rejected whole (ImportRejected) with line numbers and reasons, before
reviews.import_writing writes anything.

Limits (settings, with defaults): MEMALIGN_IMPORT_MAX_BYTES (file size), MEMALIGN_IMPORT_MAX_ROWS (rows per
file); each text field is capped at MAX_TEXT_CHARS, a critique at MAX_CRITIQUE_CHARS, an external_id at
MAX_EXTERNAL_ID characters.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError

from reviews.labels import normalize_label
from reviews.models import MAX_CRITIQUE_CHARS, MAX_EXTERNAL_REVIEWER, MAX_TEXT_CHARS, Project, Sample

MAX_ERRORS_LISTED = 50
MAX_EXTERNAL_ID = 200
MAX_JSON_DEPTH = 64  # nesting of objects and arrays in one value
REQUIRED_COLUMNS = {"external_id", "inputs"}
KNOWN_COLUMNS = {
    "external_id",
    "inputs",
    "outputs",
    "output_a",
    "output_b",
    "expectations",
    "judge_value",
    "judge_rationale",
    "metadata",
    "expert_label",
    "expert_critique",
    "reviewer",
}


# Python's csv module refuses fields over 128 KiB with a vague message; let it read them, so that our own
# length check can name the field and its limit.
csv.field_size_limit(max(csv.field_size_limit(), 8 * MAX_TEXT_CHARS))


class ImportRejected(Exception):
    """The file was refused as a whole; `errors` lists (line number or None, reason)."""

    def __init__(self, errors: list[tuple[int | None, str]], total_errors: int | None = None):
        self.errors = list(errors[:MAX_ERRORS_LISTED])
        self.total_errors = total_errors if total_errors is not None else len(errors)
        super().__init__("; ".join(f"line {n}: {m}" if n else m for n, m in self.errors))


@dataclass
class Row:
    line: int
    sample: Sample
    expert_label: str | None = None
    expert_critique: str = ""
    reviewer_id: int | None = None  # the importer's own account: they gave the label
    external_reviewer: str = ""  # a name given for someone else: stored under an external placeholder, never an account


def max_bytes() -> int:
    return settings.MEMALIGN_IMPORT_MAX_BYTES


def max_rows() -> int:
    return int(settings.MEMALIGN_IMPORT_MAX_ROWS)


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.0f} MB" if size % (1024 * 1024) == 0 else f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def too_large_message(size: int | None = None) -> str:
    limit = max_bytes()
    actual = f" ({human_size(size)})" if size else ""
    if size and human_size(size).replace(".0 ", " ") == human_size(limit):
        # Rounded, a size just over the limit reads like the limit itself: say it in bytes.
        actual = f" ({size:,} bytes; the limit is {limit:,})"
    return f"The file{actual} is larger than the limit of {human_size(limit)}; split it into smaller files."


def decode(stream: IO[bytes]) -> str:
    """Return the file's text: UTF-8 (with or without BOM) or UTF-16 with a BOM; refuse anything else."""
    limit = max_bytes()
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise ImportRejected([(None, too_large_message())])
    encoding, name = _encoding(raw)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].decode(encoding, errors="replace").count("\n") + 1
        raise ImportRejected(
            [
                (
                    line,
                    f"the file is not valid {name} text (byte {raw[error.start]:#04x}); save it as UTF-8 and import it again.",
                )
            ]
        ) from None
    if not text.strip():
        raise ImportRejected([(None, "The file is empty.")])
    return text


Records = Iterator[tuple[int, dict | None, str | None]]  # (line, record, or why the line is unreadable)


def reader_for(filename: str) -> tuple[Callable[[Iterable[str], str], Records], str]:
    """Return the reader and delimiter for a file's type, told by its name; refuse a type we do not read."""
    name = (filename or "").lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return _jsonl_records, ""
    if name.endswith((".csv", ".tsv", ".txt")):
        return _csv_records, "\t" if name.endswith(".tsv") else ","
    raise ImportRejected([(None, f"Unknown file type {filename!r}: upload a .csv or .jsonl file.")])


def read_records(stream: IO[bytes], filename: str) -> tuple[list[tuple[int, dict]], list[tuple[int | None, str]]]:
    """Return (line number, record) pairs from a CSV or JSONL file, and the lines that could not be read."""
    reader, delimiter = reader_for(filename)
    text = decode(stream)
    records: list[tuple[int, dict]] = []
    errors: list[tuple[int | None, str]] = []
    limit = max_rows()
    for line, record, error in reader(io.StringIO(text, newline=_newline(reader)), delimiter):
        if error or record is None:
            errors.append((line, error or "no record"))
        else:
            records.append((line, record))
        if len(records) + len(errors) > limit:
            raise ImportRejected([(None, _too_many_rows(limit))])
    if not records and not errors:
        raise ImportRejected([(None, "The file has no rows: only a header, or blank lines.")])
    return records, errors


def _newline(reader: Callable[[Iterable[str], str], Records]) -> str:
    # JSONL splits on newlines only: splitting on \r or U+2028 too could cut a JSON string. CSV lets the csv module
    # see every line ending, as its documentation asks.
    return "\n" if reader is _jsonl_records else ""


def stream_records(stream: IO[bytes], filename: str) -> Records:
    """Yield a stored file's records as it reads them, with the same checks and messages as `read_records`:
    memory stays flat whatever the file's size. The stream must be seekable (its size and encoding are looked at
    first)."""
    reader, delimiter = reader_for(filename)
    head = stream.read(4096)
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    if size > max_bytes():
        raise ImportRejected([(None, too_large_message(size))])
    if not size:
        raise ImportRejected([(None, "The file is empty.")])
    encoding, name = _encoding(head)
    text = io.TextIOWrapper(stream, encoding=encoding, newline=_newline(reader)) if encoding == "utf-16" else None
    rows, last, limit = 0, 0, max_rows()
    try:
        for line, record, error in reader(text or _utf8_lines(stream), delimiter):
            rows, last = rows + 1, line
            if rows > limit:
                raise ImportRejected([(None, _too_many_rows(limit))])
            yield line, record, error
    except UnicodeDecodeError:  # UTF-16 is decoded ahead in blocks: the line is where reading stopped
        raise ImportRejected(
            [(last + 1, f"the file is not valid {name} text near here; save it as UTF-8 and import it again.")]
        ) from None
    finally:
        if text is not None:
            text.detach()  # the caller closes the file
    if not rows:
        raise ImportRejected([(None, "The file has no rows: only a header, or blank lines.")])


def _utf8_lines(stream: IO[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 file, decoded one by one, so that a bad byte is named with its line."""
    for number, raw in enumerate(stream, start=1):
        try:
            yield (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ImportRejected(
                [
                    (
                        number,
                        f"the file is not valid UTF-8 text (byte {raw[error.start]:#04x}); save it as UTF-8 and "
                        "import it again.",
                    )
                ]
            ) from None


def _too_many_rows(limit: int) -> str:
    return f"The file has more than {limit:,} rows, the limit per import; split it into smaller files."


def _encoding(head: bytes) -> tuple[str, str]:
    """The file's encoding and its name for messages, told from its first bytes; refuse a file with NUL bytes."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16"
    if b"\x00" in head[:4096]:
        raise ImportRejected(
            [
                (
                    None,
                    "The file holds NUL bytes: it is UTF-16 without a byte-order mark, or not a text "
                    "file at all (a spreadsheet, say); save it as CSV or JSONL in UTF-8.",
                )
            ]
        )
    return "utf-8-sig", "UTF-8"


ONE_OBJECT_PER_LINE = " (a .jsonl file holds one JSON object per line, not one JSON document or array)"


def _jsonl_records(lines: Iterable[str], _delimiter: str) -> Records:
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\n").rstrip("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            hint = ONE_OBJECT_PER_LINE if line.strip() in ("[", "{") else ""
            yield number, None, f"not valid JSON ({error.msg} at column {error.colno}){hint}"
            continue
        except ValueError as error:
            yield number, None, str(error)
            continue
        except RecursionError:
            yield number, None, f"the JSON is nested too deeply (the limit is {MAX_JSON_DEPTH} levels)"
            continue
        if not isinstance(record, dict):
            hint = ONE_OBJECT_PER_LINE if isinstance(record, list) else ""
            yield number, None, f"each line must be a JSON object, not {_kind(record)}{hint}"
            continue
        yield number, record, None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON value; write null or a number instead")


def _csv_records(lines: Iterable[str], delimiter: str) -> Records:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as error:
        raise ImportRejected([(1, f"the header row is not readable CSV: {error}")]) from None
    header = [h.strip().lower() for h in header]
    if len(header) == 1 and delimiter == "," and ";" in header[0]:
        raise ImportRejected(
            [
                (
                    1,
                    "the header is one column holding semicolons: save the file with commas as "
                    "separators (or as .tsv with tabs)",
                )
            ]
        )
    _check_header(header)
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield start, None, f"unreadable CSV ({error}); check the quotes on this row"
            return  # the reader cannot resynchronise after a broken quote: one precise error beats many wrong ones
        line, start = start, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            yield line, None, f"the row has {len(cells)} fields but the header has {len(header)}"
            continue
        yield line, {name: value for name, value in zip(header, cells) if value != ""}, None


def _check_header(header: list[str]) -> None:
    problems: list[tuple[int | None, str]] = []
    if any(not name for name in header):
        positions = ", ".join(str(i + 1) for i, name in enumerate(header) if not name)
        problems.append((1, f"the header has an empty column name (column {positions})"))
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        problems.append((1, f"the header names a column twice: {', '.join(duplicates)}"))
    unknown = [name for name in header if name and name not in KNOWN_COLUMNS]
    if unknown:
        problems.append(
            (1, f"unknown column(s) {', '.join(unknown)}; the columns are: {', '.join(sorted(KNOWN_COLUMNS))}")
        )
    missing = sorted(REQUIRED_COLUMNS - set(header))
    if missing:
        problems.append((1, f"the header has no {' and no '.join(missing)} column (is the first row a header?)"))
    if problems:
        raise ImportRejected(problems)


def validate(project: Project, records: list[tuple[int, dict]], importer) -> tuple[list[Row], list[tuple[int, str]]]:
    """Return the rows to write and every problem found, each with its line number. Reads, never writes."""
    seen: dict[str, int] = {}
    rows: list[Row] = []
    errors: list[tuple[int, str]] = []
    for line, record in records:
        try:
            row = _validate_record(project, record, importer)
        except ValidationError as error:
            errors.extend((line, message) for message in error.messages)
            continue
        row.line = line
        external_id = row.sample.external_id
        if external_id in seen:
            errors.append((line, f"external_id {external_id!r} already appears on line {seen[external_id]}"))
            continue
        seen[external_id] = line
        rows.append(row)
    return rows, errors


def validated(project: Project, records: Records, importer) -> Iterator[tuple[int, Row | None, list[str]]]:
    """Validate records as they are read: yield (line, the row or None, its problems). Keeps only the external
    ids seen (to refuse one given twice), never the rows."""
    seen: dict[str, int] = {}
    for line, record, error in records:
        if error or record is None:
            yield line, None, [error or "no record"]
            continue
        try:
            row = _validate_record(project, record, importer)
        except ValidationError as invalid:
            yield line, None, invalid.messages
            continue
        row.line, external_id = line, row.sample.external_id
        if external_id in seen:
            yield line, None, [f"external_id {external_id!r} already appears on line {seen[external_id]}"]
            continue
        seen[external_id] = line
        yield line, row, []


def _validate_record(project: Project, record: dict, importer) -> Row:
    problems: list[str] = []
    unknown = set(record) - KNOWN_COLUMNS
    if unknown:
        problems.append(f"unknown key(s): {', '.join(sorted(unknown))}")
    external_id = _text(record, "external_id", problems, required=True, limit=MAX_EXTERNAL_ID).strip()
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
    if _present(record, "judge_value"):
        sample.judge_value = _label(project, record["judge_value"], "judge_value", problems)
    row = Row(line=0, sample=sample)
    if _present(record, "expert_label"):
        row.expert_label = _label(project, record["expert_label"], "expert_label", problems)
        row.expert_critique = _text(record, "expert_critique", problems, limit=MAX_CRITIQUE_CHARS).strip()
        row.reviewer_id, row.external_reviewer = _reviewer(record, importer, problems)
    elif _present(record, "expert_critique") or _present(record, "reviewer"):
        problems.append("expert_critique and reviewer need an expert_label")
    if problems:
        raise ValidationError(problems)
    return row


def _present(record: dict, key: str) -> bool:
    value = record.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


def _text(record: dict, key: str, problems: list[str], required: bool = False, limit: int = MAX_TEXT_CHARS) -> str:
    value = record.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{key} is missing")
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        problems.append(f"{key} must be text, not {_kind(value)}")
        return ""
    text = str(value)
    if required and not text.strip():
        problems.append(f"{key} is blank")
    if len(text) > limit:
        problems.append(f"{key} is {len(text):,} characters long; the limit is {limit:,}")
    check_storable(key, text, problems)
    return text


def _json_or_text(record: dict, key: str, problems: list[str], required: bool):
    """Accept a JSON object or array (JSONL, or JSON text in a CSV cell) or plain text."""
    value = record.get(key)
    if value is None or value == "":
        if required:
            problems.append(f"{key} is missing")
        return "" if required else None
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        with contextlib.suppress(ValueError, RecursionError):  # text that merely starts with a brace: kept as text
            value = json.loads(value, parse_constant=_refuse_constant)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, (str, dict, list)):
        problems.append(f"{key} must be text or a JSON object, not {_kind(value)}")
        return ""
    if required and (value == {} or value == [] or (isinstance(value, str) and not value.strip())):
        problems.append(f"{key} is empty")
    size = len(value) if isinstance(value, str) else len(json.dumps(value, ensure_ascii=False))
    if size > MAX_TEXT_CHARS:
        problems.append(f"{key} is {size:,} characters long; the limit is {MAX_TEXT_CHARS:,}")
    check_storable(key, value, problems)
    return value


def _metadata(record: dict, problems: list[str]) -> dict:
    value = record.get("metadata")
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            problems.append('metadata must be a JSON object, e.g. {"source": "web"}; this is not valid JSON')
            return {}
    if not isinstance(value, dict):
        problems.append(f"metadata must be a JSON object, not {_kind(value)}")
        return {}
    size = len(json.dumps(value, ensure_ascii=False))
    if size > MAX_TEXT_CHARS:
        problems.append(f"metadata is {size:,} characters long as JSON; the limit is {MAX_TEXT_CHARS:,}")
    check_storable("metadata", value, problems)
    return value


def check_storable(key: str, value, problems: list[str]) -> None:
    """Refuse what no database stores: NUL characters, unpaired surrogates (from JSON escapes), NaN; and JSON
    nested deeper than anyone writes by hand (it would exhaust the stack of whoever reads it next)."""
    if _depth(value) > MAX_JSON_DEPTH:
        problems.append(f"{key} is nested too deeply (the limit is {MAX_JSON_DEPTH} levels)")
        return
    for text in _strings(value):
        if "\x00" in text:
            problems.append(f"{key} contains a NUL character (\\u0000), which cannot be stored; remove it")
            return
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(
                f"{key} contains an unpaired surrogate escape (\\ud800 to \\udfff), which is not valid text"
            )
            return
    if _has_non_finite(value):
        problems.append(f"{key} contains NaN or Infinity, which JSON cannot store")


def _depth(value) -> int:
    """Return how deeply objects and arrays nest in `value`, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            level += 1
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def _kind(value) -> str:
    if value is None:
        return "null"
    names = {dict: "a JSON object", list: "a list", bool: "true/false", int: "a number", float: "a number", str: "text"}
    return names.get(type(value), f"a {type(value).__name__}")


def _label(project: Project, value, key: str, problems: list[str]) -> str:
    if isinstance(value, (dict, list, bool)) or value is None:
        problems.append(f"{key}: expected one of {', '.join(project.label_choices)}, not {_kind(value)}")
        return ""
    try:
        return normalize_label(value, project.label_choices, project.label_kind)
    except ValidationError as error:
        problems.append(f"{key}: {error.messages[0]}")
        return ""


def _reviewer(record: dict, importer, problems: list[str]) -> tuple[int | None, str]:
    """(the importer's account id, "") when the row is the importer's own label (no reviewer, or their own
    username); otherwise (None, the name): only a person's own token or session puts a label on their account."""
    value = record.get("reviewer")
    if value is None or (isinstance(value, str) and not value.strip()):
        return importer.pk, ""
    if not isinstance(value, str):
        problems.append(f"reviewer must be a username or a name, not {_kind(value)}")
        return None, ""
    name = value.strip()
    if name == importer.get_username():
        return importer.pk, ""
    if len(name) > MAX_EXTERNAL_REVIEWER:
        problems.append(f"reviewer is {len(name):,} characters long; the limit is {MAX_EXTERNAL_REVIEWER}")
    if any(unicodedata.category(c) == "Cc" for c in name):
        problems.append("reviewer contains a control character (a tab, a line break, ...); remove it")
    check_storable("reviewer", name, problems)
    return None, name
