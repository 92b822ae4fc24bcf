"""Importing judge outputs: validation of every kind of bad row, encodings, limits, idempotent re-import,
expert reviews, the management command and the upload page."""

from __future__ import annotations

import codecs
import io
import json
import threading
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from reviews import import_jobs
from reviews.import_reading import MAX_ERRORS_LISTED, ImportRejected, too_large_message
from reviews.importers import import_samples
from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS, Feedback, ImportRun, Membership, Role, Sample
from reviews.projects import create_project
from reviews.signals import feedback_imported
from tests.conftest import add_feedback, add_sample, make_user, shared_dataset


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def row(external_id="r1", **fields) -> dict:
    return {
        "external_id": external_id,
        "inputs": {"question": f"q {external_id}"},
        "outputs": f"answer {external_id}",
        **fields,
    }


def run(project, data: bytes | str, filename="samples.jsonl", importer=None, **kwargs):
    if isinstance(data, str):
        data = data.encode()
    return import_samples(project, io.BytesIO(data), filename, importer or project.created_by, **kwargs)


def rejected(project, data, filename="samples.jsonl", importer=None) -> list[tuple[int | None, str]]:
    with pytest.raises(ImportRejected) as info:
        run(project, data, filename, importer)
    assert not Sample.objects.filter(project=project).exists(), "a rejected file must write nothing"
    return info.value.errors


def only_error(project, data, filename="samples.jsonl") -> tuple[int | None, str]:
    errors = rejected(project, data, filename)
    assert len(errors) == 1, errors
    return errors[0]


# Good files ------------------------------------------------------------------------------------------------


def test_jsonl_import_stores_every_field(personas):
    data = jsonl(
        row(
            "a",
            judge_value="PASS",
            judge_rationale="Polite.",
            expectations={"must": ["apologise"]},
            metadata={"tier": "gold"},
        ),
        row("b", inputs="plain text input", judge_value="fail"),
        row("c"),
    )
    summary = run(personas.project, data, progress=(messages := []).append)
    assert (summary.created, summary.unchanged, summary.feedback_created) == (3, 0, 0)
    assert summary.message() == "3 new samples imported."
    a = Sample.objects.get(project=personas.project, external_id="a")
    assert a.inputs == {"question": "q a"}
    assert a.outputs == "answer a"
    assert a.judge_value == "pass"  # normalised to the schema's spelling
    assert a.judge_rationale == "Polite."
    assert a.expectations == {"must": ["apologise"]}
    assert a.metadata == {"tier": "gold"}
    b = Sample.objects.get(project=personas.project, external_id="b")
    assert (b.inputs, b.judge_value, b.expectations, b.metadata) == ("plain text input", "fail", None, {})
    assert messages[0] == "read 3 rows" and messages[-1] == "wrote 3 of 3 rows"
    assert list(Sample.objects.filter(project=personas.project).values_list("external_id", flat=True)) == [
        "a",
        "b",
        "c",
    ]


def test_csv_import_reads_json_cells_quotes_and_multiline_text(personas):
    data = (
        "external_id,inputs,outputs,judge_value,metadata,expectations\r\n"
        'c1,"{""question"": ""Où est ma commande ?""}","Line one,\r\nline two",fail,"{""n"": 1}",\r\n'
        "c2,just text,an answer,pass,,{not json}\r\n"
    )
    summary = run(personas.project, data, "export.CSV")
    assert summary.created == 2
    c1 = Sample.objects.get(external_id="c1")
    assert c1.inputs == {"question": "Où est ma commande ?"}
    assert c1.outputs == "Line one,\r\nline two"  # whitespace and line breaks kept as they were
    assert c1.metadata == {"n": 1}
    assert c1.expectations is None
    c2 = Sample.objects.get(external_id="c2")
    assert (c2.inputs, c2.expectations, c2.metadata) == ("just text", "{not json}", {})


def test_csv_header_is_forgiving_about_case_and_space_and_tsv_works(personas):
    run(personas.project, " External_ID , Inputs ,OUTPUTS\nx1,in,out\n", "a.csv")
    run(personas.project, "external_id\tinputs\toutputs\nx2\tin, with comma\tout\n", "b.tsv")
    assert Sample.objects.get(external_id="x2").inputs == "in, with comma"


def test_pairwise_import(personas):
    project = create_project(personas.owner, name="Pairs", criterion="Which is better?", label_kind="pairwise")
    run(
        project,
        jsonl(
            {
                "external_id": "p1",
                "inputs": {"instruction": "Say hi"},
                "output_a": "Hi",
                "output_b": "Hello!",
                "judge_value": "b",
            }
        ),
    )
    sample = Sample.objects.get(project=project)
    assert (sample.output_a, sample.output_b, sample.outputs, sample.judge_value) == ("Hi", "Hello!", "", "B")


def test_numeric_and_categorical_labels_are_normalised(personas):
    numeric = create_project(
        personas.owner, name="Scores", criterion="c", label_kind="numeric", scale_min=1, scale_max=5
    )
    run(numeric, jsonl(row("n1", judge_value=4), row("n2", judge_value="5.0"), row("n3", judge_value=" 1 ")))
    assert sorted(Sample.objects.filter(project=numeric).values_list("judge_value", flat=True)) == ["1", "4", "5"]
    categories = create_project(
        personas.owner,
        name="Cats",
        criterion="c",
        label_kind="categorical",
        categories=["Bad", "Could be Improved", "Excellent"],
    )
    run(categories, jsonl(row("k1", judge_value="could be improved")))
    assert Sample.objects.get(project=categories).judge_value == "Could be Improved"


def test_expert_reviews_are_imported_with_their_reviewer(personas, django_capture_on_commit_callbacks):
    received = []

    def listener(sender, project_id, **kwargs):
        received.append(project_id)

    feedback_imported.connect(listener)
    try:
        data = jsonl(
            row(
                "e1",
                judge_value="pass",
                expert_label="fail",
                expert_critique="  Too curt for a bereavement.  ",
                reviewer="rafael",
            ),
            row("e2", judge_value="pass", expert_label="pass"),  # no reviewer: the importer
            row("e3", expert_label="fail", expert_critique="No verdict to compare with."),
            row("e4", judge_value="fail"),
        )
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            summary = run(personas.project, data, importer=personas.owner)
    finally:
        feedback_imported.disconnect(listener)
    assert len(callbacks) >= 1 and received == [personas.project.pk]
    assert (summary.created, summary.feedback_created) == (4, 3)
    assert summary.message() == "4 new samples imported, 3 expert reviews imported."
    e1 = Feedback.objects.get(sample__external_id="e1")
    assert (e1.author.username, e1.label, e1.critique, e1.agrees_with_judge, e1.revision) == (
        "rafael (external)",  # the owner imported it: rafael's account never carries it
        "fail",
        "Too curt for a bereavement.",
        False,
        1,
    )
    assert e1.created_at is not None and e1.updated_at is not None
    e2 = Feedback.objects.get(sample__external_id="e2")
    assert (e2.author, e2.agrees_with_judge, e2.critique) == (personas.owner, True, "")
    assert Feedback.objects.get(sample__external_id="e3").agrees_with_judge is None  # nothing to agree with
    assert not Feedback.objects.filter(sample__external_id="e4").exists()


def test_imported_feedback_records_who_imported_it_and_the_review_page_says_so(client, personas):
    """Finding 7: an owner importing rows in another's name is recorded, and the page says whose name it is."""
    run(
        personas.project,
        jsonl(
            row("in-name", judge_value="pass", expert_label="fail", expert_critique="Curt.", reviewer="Dr <b>Ng</b>")
        ),
        importer=personas.owner,
    )
    feedback = Feedback.objects.get(sample__external_id="in-name")
    assert (feedback.author.username, feedback.imported_by) == ("Dr <b>Ng</b> (external)", personas.owner)
    assert feedback.imported_at is not None
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/samples/{feedback.sample_id}/").content.decode()
    stamp = f"{feedback.imported_at:%Y-%m-%d %H:%M}"
    assert f"Imported by olivia on {stamp}, in Dr &lt;b&gt;Ng&lt;/b&gt; (external)’s name." in body
    assert "<b>Ng</b>" not in body  # a name from a file is untrusted text
    saved = add_feedback(add_sample(personas.project, "typed"), personas.reviewer, "pass")
    assert saved.imported_by is None  # feedback written on the review page is not imported


def test_no_signal_without_expert_reviews(personas, django_capture_on_commit_callbacks):
    received = []
    feedback_imported.connect(listener := lambda sender, project_id, **kw: received.append(project_id))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(personas.project, jsonl(row("s1")))
    finally:
        feedback_imported.disconnect(listener)
    assert received == []


# Idempotent re-import --------------------------------------------------------------------------------------


def test_reimport_changes_nothing_and_says_so(personas):
    data = jsonl(
        row("a", judge_value="pass", expert_label="fail", expert_critique="Curt.", reviewer="rafael"), row("b")
    )
    run(personas.project, data)
    before = list(Sample.objects.values_list("id", "external_id", "outputs", "created_at"))
    feedback_before = list(Feedback.objects.values_list("id", "label", "critique", "revision", "updated_at"))
    again = run(personas.project, data)
    assert (
        again.created,
        again.unchanged,
        again.unchanged_differing,
        again.feedback_created,
        again.feedback_skipped,
    ) == (0, 2, 0, 0, 1)
    assert again.message() == (
        "0 new samples imported, 2 already in the project and left unchanged, 1 expert review on those rows not imported."
    )
    assert list(Sample.objects.values_list("id", "external_id", "outputs", "created_at")) == before
    assert list(Feedback.objects.values_list("id", "label", "critique", "revision", "updated_at")) == feedback_before


def test_reimport_with_changed_and_new_rows(personas):
    run(personas.project, jsonl(row("a", outputs="old answer"), row("b")))
    summary = run(personas.project, jsonl(row("a", outputs="NEW answer"), row("b"), row("c")))
    assert (summary.created, summary.unchanged, summary.unchanged_differing) == (1, 2, 1)
    assert "1 new sample imported" in summary.message()
    assert "2 already in the project and left unchanged (1 of them differ from the file" in summary.message()
    assert Sample.objects.get(external_id="a").outputs == "old answer"
    assert Sample.objects.count() == 3


def test_reimport_between_csv_and_jsonl_is_recognised_as_the_same(personas):
    run(personas.project, jsonl(row("a", inputs={"question": "q"}, metadata={"k": [1, 2]})))
    summary = run(
        personas.project,
        'external_id,inputs,outputs,metadata\na,"{""question"": ""q""}",answer a,"{""k"": [1, 2]}"\n',
        "a.csv",
    )
    assert (summary.unchanged, summary.unchanged_differing) == (1, 0)


def test_the_same_external_id_may_exist_in_two_projects(personas):
    run(personas.project, jsonl(row("shared")))
    run(personas.other, jsonl(row("shared")), importer=personas.other_owner)
    assert Sample.objects.filter(external_id="shared").count() == 2


# Bad rows --------------------------------------------------------------------------------------------------


BAD_ROWS = [
    ({"inputs": "x", "outputs": "y"}, "external_id is missing"),
    ({"external_id": "  ", "inputs": "x", "outputs": "y"}, "external_id is blank"),
    ({"external_id": "e" * 201, "inputs": "x", "outputs": "y"}, "external_id is 201 characters long; the limit is 200"),
    ({"external_id": ["a"], "inputs": "x", "outputs": "y"}, "external_id must be text, not a list"),
    ({"external_id": "a", "outputs": "y"}, "inputs is missing"),
    ({"external_id": "a", "inputs": {}, "outputs": "y"}, "inputs is empty"),
    ({"external_id": "a", "inputs": True, "outputs": "y"}, "inputs must be text or a JSON object, not true/false"),
    ({"external_id": "a", "inputs": "x"}, "outputs is missing"),
    ({"external_id": "a", "inputs": "x", "outputs": "   "}, "outputs is blank"),
    ({"external_id": "a", "inputs": "x", "outputs": {"text": "y"}}, "outputs must be text, not a JSON object"),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "output_a": "z"},
        "output_a and output_b are for pairwise projects; this one takes outputs",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "judge_value": "maybe"},
        "judge_value: 'maybe' is not a label of this project; expected one of: pass, fail.",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "judge_value": True},
        "judge_value: expected one of pass, fail, not true/false",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "judge_value": ["pass"]},
        "judge_value: expected one of pass, fail, not a list",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "expert_label": "good"},
        "expert_label: 'good' is not a label of this project; expected one of: pass, fail.",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "expert_critique": "why"},
        "expert_critique and reviewer need an expert_label",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "metadata": [1, 2]},
        "metadata must be a JSON object, not a list",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y", "metadata": "{oops"},
        'metadata must be a JSON object, e.g. {"source": "web"}; this is not valid JSON',
    ),
    ({"external_id": "a", "inputs": "x", "outputs": "y", "colour": "red"}, "unknown key(s): colour"),
    (
        {"external_id": "a", "inputs": "x", "outputs": "y" * (MAX_TEXT_CHARS + 1)},
        f"outputs is {MAX_TEXT_CHARS + 1:,} characters long; the limit is {MAX_TEXT_CHARS:,}",
    ),
    (
        {"external_id": "a", "inputs": {"q": "y" * MAX_TEXT_CHARS}, "outputs": "y"},
        f"inputs is {MAX_TEXT_CHARS + 9:,} characters long; the limit is {MAX_TEXT_CHARS:,}",
    ),
    (
        {
            "external_id": "a",
            "inputs": "x",
            "outputs": "y",
            "expert_label": "fail",
            "expert_critique": "c" * (MAX_CRITIQUE_CHARS + 1),
        },
        f"expert_critique is {MAX_CRITIQUE_CHARS + 1:,} characters long; the limit is {MAX_CRITIQUE_CHARS:,}",
    ),
    (
        {"external_id": "a", "inputs": "x", "outputs": "nul \u0000 byte"},
        "outputs contains a NUL character (\\u0000), which cannot be stored; remove it",
    ),
    (
        {"external_id": "a", "inputs": {"q": "a\u0000"}, "outputs": "y"},
        "inputs contains a NUL character (\\u0000), which cannot be stored; remove it",
    ),
]


@pytest.mark.parametrize("record,message", BAD_ROWS, ids=[m[:40] for _, m in BAD_ROWS])
def test_each_kind_of_bad_row_is_named_with_its_line(personas, record, message):
    data = jsonl(row("good-1"), record, row("good-2"))
    assert only_error(personas.project, data) == (2, message)


def test_json_that_no_database_stores_is_refused(personas):
    lines = [
        json.dumps(row("ok")),
        '{"external_id": "nan", "inputs": {"score": NaN}, "outputs": "y"}',
        '{"external_id": "sur", "inputs": "x", "outputs": "bad \\ud800 surrogate"}',
    ]
    errors = rejected(personas.project, "\n".join(lines))
    assert errors == [
        (2, "NaN is not a JSON value; write null or a number instead"),
        (3, "outputs contains an unpaired surrogate escape (\\ud800 to \\udfff), which is not valid text"),
    ]


def test_deeply_nested_json_is_refused_not_a_crash(personas):
    deep = "[" * 3000 + "]" * 3000
    lines = [
        '{"external_id": "a", "inputs": "x", "outputs": "y", "metadata": {"k": ' + deep + "}}",
        json.dumps(row("b", inputs={"q": json.loads("[" * 70 + "]" * 70)})),
        json.dumps(row("c", inputs={"q": json.loads("[" * 60 + "]" * 60)})),  # deep, but within the limit
    ]
    assert rejected(personas.project, "\n".join(lines)) == [
        (1, "the JSON is nested too deeply (the limit is 64 levels)"),
        (2, "inputs is nested too deeply (the limit is 64 levels)"),
    ]
    csv_cell = '"[' + "[" * 3000 + "]" * 3000 + ']"'
    errors = rejected(
        personas.project, f"external_id,inputs,outputs,metadata\na,{csv_cell},y,\nb,x,y,{csv_cell}\n", "a.csv"
    )
    assert errors == [(3, 'metadata must be a JSON object, e.g. {"source": "web"}; this is not valid JSON')]


def test_label_type_mismatches_for_numeric_and_pairwise_projects(personas):
    numeric = create_project(
        personas.owner, name="Scores", criterion="c", label_kind="numeric", scale_min=1, scale_max=5
    )
    errors = rejected(numeric, jsonl(row("a", judge_value="pass"), row("b", judge_value=3.5), row("c", judge_value=9)))
    assert errors == [
        (1, "judge_value: 'pass' is not a number; expected a whole number from 1 to 5."),
        (2, "judge_value: '3.5' is outside the scale; expected a whole number from 1 to 5."),
        (3, "judge_value: '9' is outside the scale; expected a whole number from 1 to 5."),
    ]
    pairwise = create_project(personas.owner, name="Pairs", criterion="c", label_kind="pairwise")
    errors = rejected(pairwise, jsonl(row("p", judge_value="pass")))
    assert errors == [
        (1, "a pairwise project takes output_a and output_b, not outputs"),
        (1, "output_a is missing"),
        (1, "output_b is missing"),
        (1, "judge_value: 'pass' is not a label of this project; expected one of: A, B."),
    ]


def test_every_problem_of_a_file_is_listed_with_line_numbers_and_nothing_is_written(personas):
    lines = [
        json.dumps(row("a")),
        "",  # blank lines are skipped but still counted
        "{broken json",
        json.dumps(row("b", judge_value="nope")),
        json.dumps(["not", "an", "object"]),
        json.dumps(row("a")),
    ]
    errors = rejected(personas.project, "\n".join(lines) + "\n")
    assert errors == [
        (3, "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (4, "judge_value: 'nope' is not a label of this project; expected one of: pass, fail."),
        (
            5,
            "each line must be a JSON object, not a list (a .jsonl file holds one JSON object per line, not one JSON document or array)",
        ),
        (6, "external_id 'a' already appears on line 1"),
    ]


def test_duplicate_ids_in_one_csv_file(personas):
    data = "external_id,inputs,outputs\nx,i,o\ny,i,o\n x ,i,o\n"
    assert only_error(personas.project, data, "d.csv") == (4, "external_id 'x' already appears on line 2")


def test_the_error_list_is_capped_but_the_total_is_kept(personas):
    data = jsonl(*[row(f"r{n}", judge_value="bogus") for n in range(MAX_ERRORS_LISTED + 30)])
    with pytest.raises(ImportRejected) as info:
        run(personas.project, data)
    assert len(info.value.errors) == MAX_ERRORS_LISTED
    assert info.value.total_errors == MAX_ERRORS_LISTED + 30
    assert info.value.errors[0][0] == 1 and info.value.errors[-1][0] == MAX_ERRORS_LISTED


def test_a_reviewer_named_by_someone_else_is_external_never_an_account(client, personas):
    """Issue 22 item 5: an owner's file cannot put labels on a member's account; the names it gives (members'
    usernames or not) become external reviewers, each counted as its own reviewer."""
    own = add_feedback(add_sample(personas.project, "typed"), personas.reviewer, "pass")
    run(
        personas.project,
        jsonl(
            row("a", expert_label="pass", reviewer="rafael"),
            row("b", expert_label="fail", reviewer="vera"),
            row("c", expert_label="fail", reviewer="ghost"),
            row("typed-too", expert_label="pass", reviewer="rafael"),
            row("mine", expert_label="fail", reviewer="olivia"),  # the importer's own name: their account
        ),
        importer=personas.owner,
    )
    authors = dict(Feedback.objects.values_list("sample__external_id", "author__username"))
    assert authors == {
        "typed": "rafael",
        "a": "rafael (external)",
        "b": "vera (external)",
        "c": "ghost (external)",
        "typed-too": "rafael (external)",
        "mine": "olivia",
    }
    assert list(personas.reviewer.feedback.all()) == [own] and not personas.viewer.feedback.exists()
    external = Feedback.objects.get(sample__external_id="a").author
    assert not external.is_active and not external.has_usable_password() and not external.memberships.exists()
    # A second import naming rafael again adds to the same external reviewer.
    run(personas.project, jsonl(row("d", expert_label="pass", reviewer="rafael")), importer=personas.owner)
    assert Feedback.objects.get(sample__external_id="d").author == external
    client.force_login(personas.owner)
    page = client.get(f"/p/{personas.project.slug}/team/").content.decode()
    assert 'data-reviewer="rafael (external)"' in page and 'data-reviewer="rafael"' in page


def test_a_reviewer_that_is_not_a_usable_name(personas):
    data = jsonl(
        row("a", expert_label="pass", reviewer={"name": "rafael"}),
        row("b", expert_label="pass", reviewer="x" * 140),
        row("c", expert_label="pass", reviewer="line\nbreak"),
        row("d", expert_label="pass", reviewer="x" * 139),  # fine
    )
    assert rejected(personas.project, data) == [
        (1, "reviewer must be a username or a name, not a JSON object"),
        (2, "reviewer is 140 characters long; the limit is 139"),
        (3, "reviewer contains a control character (a tab, a line break, ...); remove it"),
    ]
    assert not Feedback.objects.exists()


def test_an_active_account_in_the_way_of_an_external_name_refuses_the_import(personas, django_user_model):
    django_user_model.objects.create_user("ng (external)")  # only a script can make such a username
    errors = rejected(personas.project, jsonl(row("a", expert_label="pass", reviewer="ng")))
    assert errors == [
        (
            1,
            "reviewer 'ng': the name 'ng (external)' belongs to an active account, so the label cannot be kept "
            "apart from it; nothing was written",
        )
    ]
    assert not Feedback.objects.exists()


# CSV specifics ---------------------------------------------------------------------------------------------


def test_csv_file_level_problems(personas):
    project = personas.project
    assert only_error(project, "inputs,outputs\nx,y\n", "a.csv") == (
        1,
        "the header has no external_id column (is the first row a header?)",
    )
    assert rejected(project, "external_id,inputs,outputs,,colour,inputs\na,b,c,,d,e\n", "a.csv") == [
        (1, "the header has an empty column name (column 4)"),
        (1, "the header names a column twice: inputs"),
        (
            1,
            "unknown column(s) colour; the columns are: "
            + ", ".join(
                sorted(
                    [
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
                    ]
                )
            ),
        ),
    ]
    assert only_error(project, "external_id,inputs,outputs\n", "a.csv") == (
        None,
        "The file has no rows: only a header, or blank lines.",
    )


def test_csv_row_problems_carry_the_line_where_the_row_starts(personas):
    data = 'external_id,inputs,outputs\na,"multi\nline\ninput",o\nb,i,o,extra\nc,i,"never closed\n'
    assert rejected(personas.project, data, "a.csv") == [
        (5, "the row has 4 fields but the header has 3"),
        (6, "unreadable CSV (unexpected end of data); check the quotes on this row"),
    ]


def test_csv_field_longer_than_pythons_default_limit_gets_our_message(personas):
    data = "external_id,inputs,outputs\na,i," + "x" * 140_000 + "\n"
    assert only_error(personas.project, data, "a.csv") == (
        2,
        f"outputs is 140,000 characters long; the limit is {MAX_TEXT_CHARS:,}",
    )


# Encodings, empty files, file types and limits --------------------------------------------------------------


def test_utf8_with_bom_and_utf16_are_read(personas):
    text = "external_id,inputs,outputs\nbom,Grüße,ça va\n"
    run(personas.project, codecs.BOM_UTF8 + text.encode("utf-8"), "a.csv")
    run(personas.project, text.replace("bom", "u16").encode("utf-16"), "b.csv")  # with its BOM
    assert Sample.objects.get(external_id="bom").inputs == "Grüße"
    assert Sample.objects.get(external_id="u16").outputs == "ça va"


def test_latin1_is_refused_with_the_line_of_the_first_bad_byte(personas):
    data = "external_id,inputs,outputs\na,plain,ok\nb,caf\xe9,ok\n".encode("latin-1")
    assert only_error(personas.project, data, "a.csv") == (
        3,
        "the file is not valid UTF-8 text (byte 0xe9); save it as UTF-8 and import it again.",
    )


def test_crlf_and_unicode_line_separators_inside_json_strings(personas):
    # U+2028 is legal inside a JSON string: it must not split the line.
    data = (
        json.dumps(row("a", outputs="one\u2028two"), ensure_ascii=False) + "\r\n" + json.dumps(row("b")) + "\r\n"
    ).encode()
    run(personas.project, data)
    assert Sample.objects.get(external_id="a").outputs == "one\u2028two"


def test_utf16_without_bom_and_binary_files_are_named_as_such(personas):
    text = "external_id,inputs,outputs\na,b,c\n"
    message = (
        None,
        "The file holds NUL bytes: it is UTF-16 without a byte-order mark, or not a text file at all "
        "(a spreadsheet, say); save it as CSV or JSONL in UTF-8.",
    )
    assert only_error(personas.project, text.encode("utf-16-le"), "a.csv") == message
    assert only_error(personas.project, b"PK\x03\x04\x14\x00\x06\x00", "sheet.csv") == message


def test_semicolon_separated_csv_gets_a_hint(personas):
    assert only_error(personas.project, "external_id;inputs;outputs\na;b;c\n", "excel.csv") == (
        1,
        "the header is one column holding semicolons: save the file with commas as separators (or as .tsv with tabs)",
    )


@pytest.mark.parametrize("data", [b"", b"   \n\n", codecs.BOM_UTF8, "\n".encode("utf-16")])
def test_empty_files(personas, data):
    assert only_error(personas.project, data) == (None, "The file is empty.")


def test_unknown_file_type(personas):
    assert only_error(personas.project, b"a,b", "data.xlsx") == (
        None,
        "Unknown file type 'data.xlsx': upload a .csv or .jsonl file.",
    )


def test_a_json_array_file_gets_a_hint(personas):
    errors = rejected(personas.project, json.dumps([row("a")]), "a.json")
    assert errors[0][1].endswith("(a .jsonl file holds one JSON object per line, not one JSON document or array)")


def test_file_size_limit(personas, settings):
    settings.MEMALIGN_IMPORT_MAX_BYTES = 1024
    data = jsonl(*[row(f"r{n}") for n in range(40)])
    assert only_error(personas.project, data) == (
        None,
        "The file is larger than the limit of 1 KB; split it into smaller files.",
    )


def test_a_size_just_over_the_limit_is_not_rounded_to_the_limit(settings):
    settings.MEMALIGN_IMPORT_MAX_BYTES = 100 * 1024 * 1024
    assert too_large_message(100 * 1024 * 1024 + 10) == (
        "The file (104,857,610 bytes; the limit is 104,857,600) is larger than the limit of 100 MB; "
        "split it into smaller files."
    )
    assert too_large_message(150 * 1024 * 1024).startswith("The file (150 MB) is larger than the limit of 100 MB")


def test_row_count_limit(personas, settings):
    settings.MEMALIGN_IMPORT_MAX_ROWS = 5
    run(personas.project, jsonl(*[row(f"r{n}") for n in range(5)]))
    Sample.objects.all().delete()
    assert only_error(personas.project, jsonl(*[row(f"r{n}") for n in range(6)])) == (
        None,
        "The file has more than 5 rows, the limit per import; split it into smaller files.",
    )


# Concurrency -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_imports_of_one_file_never_duplicate():
    owner = make_user("olivia")
    project = create_project(owner, name="Race", criterion="c", label_kind="pass_fail")
    data = jsonl(*[row(f"r{n}") for n in range(300)])
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(run(project, data, importer=owner))
        except ImportRejected as error:
            outcomes.append(error)
        except Exception as error:  # noqa: BLE001 - the test reports anything else as a failure
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Sample.objects.filter(project=project).count() == 300
    summaries = [o for o in outcomes if not isinstance(o, Exception)]
    refusals = [o for o in outcomes if isinstance(o, ImportRejected)]
    assert len(summaries) + len(refusals) == 2, outcomes
    assert sum(s.created for s in summaries) == 300
    for refusal in refusals:
        assert "Another import into this project wrote some of the same external_ids" in refusal.errors[0][1]


# Real data -------------------------------------------------------------------------------------------------


def feedbackqa_slice(n: int) -> bytes:
    """The first `n` FeedbackQA records as our columns: the human rating and explanation are expert reviews."""
    records = []
    with shared_dataset("feedbackqa.jsonl").open(encoding="utf-8") as source:
        for line in source:
            record = json.loads(line)
            records.append(
                {
                    "external_id": record["id"],
                    "inputs": record["inputs"],
                    "outputs": record["outputs"],
                    "judge_value": "Excellent",  # a lenient base judge
                    "expert_label": record["label"],
                    "expert_critique": record["rationale"] or "",
                    "metadata": {"domain": record["meta"]["domain"], "source": record["source"]},
                }
            )
            if len(records) == n:
                break
    return jsonl(*records)


def test_a_slice_of_feedbackqa_imports_with_its_human_critiques(personas):
    project = create_project(
        personas.owner,
        name="FeedbackQA",
        criterion="Rate the answer passage",
        label_kind="categorical",
        categories=["Bad", "Could be Improved", "Acceptable", "Excellent"],
    )
    data = feedbackqa_slice(120)
    summary = run(project, data, importer=personas.owner)
    assert (summary.created, summary.feedback_created) == (120, 120)
    labels = set(Feedback.objects.filter(project=project).values_list("label", flat=True))
    assert labels <= {"Bad", "Could be Improved", "Acceptable", "Excellent"} and len(labels) >= 3
    disagreements = Feedback.objects.filter(project=project, agrees_with_judge=False)
    assert disagreements.exists() and all(f.critique for f in disagreements[:20])
    assert run(project, data).message().startswith("0 new samples imported, 120 already in the project")


def test_llmbar_pairs_import_into_a_pairwise_project(personas):
    project = create_project(
        personas.owner, name="LLMBar", criterion="Which output follows the instruction?", label_kind="pairwise"
    )
    lines = shared_dataset("llmbar.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    records = [
        {
            "external_id": r["id"],
            "inputs": r["inputs"],
            "output_a": r["output_a"],
            "output_b": r["output_b"],
            "judge_value": "A",
            "expert_label": r["label"],
            "expert_critique": "" if r["label"] == "A" else "Output B follows the instruction.",
        }
        for r in map(json.loads, lines)
    ]
    summary = run(project, jsonl(*records), "llmbar.jsonl")
    assert (summary.created, summary.feedback_created) == (40, 40)
    sample = Sample.objects.get(project=project, external_id=records[0]["external_id"])
    assert sample.output_a == records[0]["output_a"] and sample.inputs == records[0]["inputs"]


# The management command ------------------------------------------------------------------------------------


def test_command_imports_and_reports(personas, tmp_path, capsys):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(jsonl(row("a"), row("b")))
    call_command("import_samples", personas.project.slug, str(path))
    out = capsys.readouterr().out
    assert "batch.jsonl: 2 new samples imported." in out
    assert "wrote 2 of 2 rows" in out
    call_command("import_samples", personas.project.slug, str(path))
    assert (
        "batch.jsonl: 0 new samples imported, 2 already in the project and left unchanged." in capsys.readouterr().out
    )


def test_command_refuses_a_bad_file_with_line_numbers(personas, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("external_id,inputs,outputs,judge_value\na,i,o,pass\nb,i,,maybe\n")
    with pytest.raises(CommandError, match=r"bad.csv was not imported: 2 problem\(s\)\. Nothing was written\."):
        call_command("import_samples", personas.project.slug, str(path))
    err = capsys.readouterr().err
    assert "bad.csv:3: outputs is missing" in err
    assert "bad.csv:3: judge_value: 'maybe' is not a label of this project" in err
    assert not Sample.objects.exists()


def test_command_argument_errors(personas, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(row("a")))
    with pytest.raises(CommandError, match="No project with the slug 'nope'"):
        call_command("import_samples", "nope", str(path))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_samples", personas.project.slug, str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="is a folder: give the path of a .csv or .jsonl file in it"):
        call_command("import_samples", personas.project.slug, str(tmp_path))
    with pytest.raises(CommandError, match="'rafael' is not an owner of project"):
        call_command("import_samples", personas.project.slug, str(path), "--as", "rafael")
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("import_samples", personas.project.slug, str(path), "--as", "ghost")
    Membership.objects.filter(project=personas.project, user=personas.reviewer).update(role=Role.OWNER)
    call_command("import_samples", personas.project.slug, str(path), "--as", "rafael")
    assert Sample.objects.get().external_id == "a"


def test_command_puts_a_label_on_an_account_only_when_it_imports_as_that_account(personas, tmp_path):
    Membership.objects.filter(project=personas.project, user=personas.reviewer).update(role=Role.OWNER)
    path = tmp_path / "labels.jsonl"
    path.write_bytes(jsonl(row("a", expert_label="pass", reviewer="rafael")))
    call_command("import_samples", personas.project.slug, str(path))  # as the first owner, olivia
    path.write_bytes(jsonl(row("b", expert_label="fail", reviewer="rafael")))
    call_command("import_samples", personas.project.slug, str(path), "--as", "rafael")
    authors = dict(Feedback.objects.values_list("sample__external_id", "author__username"))
    assert authors == {"a": "rafael (external)", "b": "rafael"}


# The upload page -------------------------------------------------------------------------------------------


def upload(client, project, data: bytes, name: str, **extra):
    file = io.BytesIO(data)
    file.name = name
    return client.post(f"/p/{project.slug}/import/", {"file": file}, **extra)


def test_upload_is_stored_and_queued_and_its_page_shows_the_outcome(
    client, personas, django_capture_on_commit_callbacks
):
    """The page answers once the file is stored; the import itself (import_jobs.run, the task's body) comes after."""
    client.force_login(personas.owner)
    with django_capture_on_commit_callbacks() as queued:
        response = upload(client, personas.project, jsonl(row("a"), row("b")), "first.jsonl")
    record = ImportRun.objects.get()
    status_url = f"/p/{personas.project.slug}/import/{record.pk}/"
    assert response.status_code == 302 and response["Location"] == status_url
    assert (record.status, len(queued), Sample.objects.count()) == ("queued", 1, 0)  # the task, not yet run
    polled = client.get(status_url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and 'data-status="queued"' in polled.content.decode()

    assert import_jobs.run(record.pk) == "done"
    assert import_jobs.run(record.pk) == "done"  # a second delivery changes nothing
    polled = client.get(status_url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 286  # the bar stops polling
    assert "first.jsonl: 2 new samples imported." in polled.content.decode()
    assert Sample.objects.count() == 2 and not (import_jobs.folder() / record.upload).exists()

    response = upload(client, personas.project, jsonl(row("c")), "second.jsonl", HTTP_HX_REQUEST="true")
    second = ImportRun.objects.exclude(pk=record.pk).get()
    assert response.status_code == 200 and response["HX-Redirect"] == f"/p/{personas.project.slug}/import/{second.pk}/"


def test_upload_of_a_bad_file_lists_the_problems_escaped(client, personas):
    client.force_login(personas.owner)
    data = jsonl(row("a"), row("<script>window.__xss=1</script>", judge_value="<img src=x onerror=alert(1)>"))
    record = ImportRun.objects.get(pk=_location_id(upload(client, personas.project, data, "bad<b>.jsonl")))
    assert import_jobs.run(record.pk) == "rejected"
    body = client.get(f"/p/{personas.project.slug}/import/{record.pk}/").content.decode()
    assert "bad&lt;b&gt;.jsonl was not imported" in body
    assert "1 problem; fix them and import again. Nothing was written." in body
    assert "Line 2: judge_value: &#x27;&lt;img src=x onerror=alert(1)&gt;&#x27; is not a label of this project" in body
    assert "<img src=x" not in body
    assert not Sample.objects.exists() and not (import_jobs.folder() / record.upload).exists()


def test_an_import_status_is_the_owners_only(client, personas):
    client.force_login(personas.owner)
    record_id = _location_id(upload(client, personas.project, jsonl(row("a")), "a.jsonl"))
    url = f"/p/{personas.project.slug}/import/{record_id}/"
    for user, status in ((personas.reviewer, 403), (personas.viewer, 403), (personas.outsider, 404)):
        client.force_login(user)
        assert client.get(url).status_code == status, user
    client.force_login(personas.owner)
    assert client.get(f"/p/{personas.project.slug}/import/{record_id + 1}/").status_code == 404


def _location_id(response) -> int:
    assert response.status_code == 302, response.content[:500]
    return int(response["Location"].rstrip("/").rsplit("/", 1)[1])


def test_upload_without_a_file_or_too_large(client, personas, settings):
    client.force_login(personas.owner)
    response = client.post(f"/p/{personas.project.slug}/import/", {})
    assert response.status_code == 400 and "Choose a CSV or JSONL file to import." in response.content.decode()
    settings.MEMALIGN_IMPORT_MAX_BYTES = 2048
    response = upload(client, personas.project, jsonl(*[row(f"r{n}") for n in range(100)]), "big.jsonl")
    assert response.status_code == 400
    assert "is larger than the limit of 2 KB; split it into smaller files." in response.content.decode()


def test_the_import_page_states_the_format_and_limits(client, personas, settings):
    settings.MEMALIGN_IMPORT_MAX_BYTES = 50 * 1024 * 1024
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/import/").content.decode()
    assert "Labels for this project: <code>pass, fail</code>" in body
    assert "Limits: 50 MB per file, 200,000 rows, 100,000 characters per text field, 5,000 per critique." in body


# Schema ----------------------------------------------------------------------------------------------------


def test_models_and_migrations_agree(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # every app, not only this one


def test_json_stored_escaped_earlier_is_reencoded_on_sqlite(personas):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's jsonb never stores \\u escapes")
    from importlib import import_module

    from django.apps import apps

    from reviews import queue

    sample = Sample.objects.create(project=personas.project, external_id="old", inputs={"q": "x"}, outputs="o")
    with connection.cursor() as cursor:  # as the first version stored it
        cursor.execute("UPDATE reviews_sample SET inputs = %s WHERE id = %s", [json.dumps({"q": "café"}), sample.pk])
    search = queue.QueueQuery(filter="all", q="café")
    assert queue.samples(personas.project, personas.owner, search).count() == 0
    migration = import_module("reviews.migrations.0002_queue_indexes_unicode_json")
    migration.reencode_escaped_json(apps, SimpleNamespace(connection=connection))  # it only reads .connection
    assert queue.samples(personas.project, personas.owner, search).count() == 1
    assert Sample.objects.get(pk=sample.pk).inputs == {"q": "café"}
