"""CSV that a spreadsheet opens as data: every file the site writes goes through `writer`.

A cell starting with = + - @ (or a tab or carriage return, which some spreadsheets skip before such a sign) is
read as a formula, and critiques, rationales, outputs and principle texts are untrusted text. Such a cell gets a
leading apostrophe, as OWASP advises; numbers (and text that is just a number, like the label "-1") stay as
they are.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """Return `value` as a spreadsheet reads it as data: a number as it is, a formula-like text escaped."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if text[:1] in FORMULA_STARTS and not NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer with every cell passed through `safe_cell`; `writerow` returns what the output returned."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])


def writer(out: _Writable) -> SafeWriter:
    return SafeWriter(out)
