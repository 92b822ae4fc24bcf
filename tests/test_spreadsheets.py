"""Every CSV the site writes escapes formula cells (= + - @ tab CR), through one helper, and keeps numbers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from judging.models import Judgement
from reviews.spreadsheets import safe_cell
from tests.test_run_page import judged  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "value, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-1", "-1"),  # a numeric label is a number, not a formula
        ("-0.25", "-0.25"),
        (-0.25, -0.25),
        (3, 3),
        (None, None),
        ("plain", "plain"),
    ],
)
def test_a_cell_is_data_to_a_spreadsheet(value, written):
    assert safe_cell(value) == written


def test_the_run_csv_escapes_untrusted_text(client, personas, judged):  # noqa: F811
    run = judged[0]
    Judgement.objects.filter(run=run, sample__external_id="r0").update(rationale='=HYPERLINK("http://evil","x")')
    client.force_login(personas.viewer)
    response = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/export.csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0]["rationale"] == '\'=HYPERLINK("http://evil","x")'


def test_no_module_writes_csv_but_the_helper():
    """New CSV writers must use reviews.spreadsheets.writer; a bare csv.writer would skip the escaping."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("agreement", "api", "evaluation", "judging", "memalign_site", "memory", "reviews")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text()) and path.name != "spreadsheets.py"
    ]
    assert offenders == []
