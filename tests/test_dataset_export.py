"""The dataset export (page and API): every sample with its inputs, outputs, the imported verdict, every review
and the final label with how it was reached; blind reviewers get no more than the review page shows them."""

from __future__ import annotations

import csv
import io
import json

import pytest

from api import tokens
from reviews import adjudication
from reviews.feedback import quote, save_feedback
from reviews.models import Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

pytestmark = pytest.mark.django_db

WARM = "The reply is warm, apologises for the delay and thanks the customer for their patience throughout."
DODGES = "The reply never answers the refund question and dodges what the customer actually asked about here."
REASON = "Politeness cannot make up for ignoring the refund question: a reply that dodges the request fails."


@pytest.fixture
def decided(personas):
    """s1: rafael says pass, rhea says fail, the owner decided fail. s2: rhea alone. s3: nobody."""
    rhea = make_user("rhea")
    Membership.objects.create(project=personas.project, user=rhea, role=Role.REVIEWER)
    s1 = add_sample(personas.project, "s1", judge_value="pass")
    add_feedback(s1, personas.reviewer, "pass", WARM)
    add_feedback(s1, rhea, "fail", DODGES)
    adjudication.decide(s1, "fail", REASON, personas.owner)
    add_feedback(add_sample(personas.project, "s2", judge_value="fail"), rhea, "fail", "Cold.")
    add_sample(personas.project, "s3")
    return personas


def download(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response
    return b"".join(response.streaming_content).decode()


def test_the_csv_carries_an_adjudicated_conflict_whole(client, decided):
    text = download(client, decided.owner, "/p/support-tone/export.csv")

    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["external_id"] for r in table] == ["s1", "s2", "s3"]
    s1 = table[0]
    assert json.loads(s1["inputs"]) == {"question": "question s1"}
    assert s1["outputs"] == "answer s1" and s1["judge_value"] == "pass" and s1["judge_rationale"] == "Looks fine."
    assert (s1["label:rafael"], s1["critique:rafael"]) == ("pass", WARM)
    assert (s1["label:rhea"], s1["critique:rhea"]) == ("fail", DODGES)
    assert s1["reviewed_at:rafael"] != ""
    assert (s1["final_label"], s1["reached_by"], s1["decided_by"], s1["decision_reason"]) == (
        "fail",
        "decision",
        "olivia",
        REASON,
    )
    assert "label:(team decision)" not in s1  # the decision's own feedback row is not a reviewer
    assert (table[1]["final_label"], table[1]["reached_by"]) == ("fail", "single review")
    assert (table[2]["final_label"], table[2]["reached_by"]) == ("", "unreviewed")


def test_the_jsonl_lists_every_review_and_marks_the_overruled_one(client, decided):
    text = download(client, decided.viewer, "/p/support-tone/export.jsonl")

    s1 = json.loads(text.splitlines()[0])
    assert [(r["reviewer"], r["label"], r["overruled"]) for r in s1["reviews"]] == [
        ("rafael", "pass", True),
        ("rhea", "fail", False),
    ]
    assert s1["final_label"] == "fail" and s1["reached_by"] == "decision"


def test_a_conflict_nobody_decided_has_no_final_label(client, personas):
    sample = add_sample(personas.project, "s1")
    add_feedback(sample, personas.reviewer, "pass", WARM)
    add_feedback(sample, personas.owner, "fail", DODGES)

    row = json.loads(download(client, personas.viewer, "/p/support-tone/export.jsonl"))

    assert (row["final_label"], row["reached_by"]) == ("", "conflict")


def test_a_blind_reviewer_sees_reviews_only_where_they_reviewed(client, decided):
    text = download(client, decided.reviewer, "/p/support-tone/export.jsonl")

    rows = {row["external_id"]: row for row in map(json.loads, text.splitlines())}
    assert len(rows["s1"]["reviews"]) == 2  # rafael reviewed s1: he sees it whole, as on the review page
    assert rows["s2"]["reviews"] == [] and rows["s2"]["final_label"] == ""
    assert rows["s2"]["reached_by"] == "hidden until you review it"


def test_outsiders_get_404(client, decided):
    client.force_login(decided.outsider)
    assert client.get("/p/support-tone/export.csv").status_code == 404


def test_the_api_gives_the_same_export(client, decided):
    _, raw = tokens.create_token(decided.owner, "export")

    response = client.get("/api/v1/projects/support-tone/export.jsonl", headers={"Authorization": f"Bearer {raw}"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert rows[0]["final_label"] == "fail" and rows[0]["decided_by"] == "olivia"
    other = client.get("/api/v1/projects/other-team/export.csv", headers={"Authorization": f"Bearer {raw}"})
    assert other.status_code == 404


def test_a_quoted_passage_travels_with_its_review(client, personas):
    sample = add_sample(personas.project, "q1", judge_value="pass", outputs="Your parcel left on Monday. Sorry!")
    quoted = quote(sample, "", "left on Monday")
    save_feedback(sample, personas.reviewer, "fail", "It never says when it arrives.", quoted=quoted)

    row = json.loads(download(client, personas.owner, "/p/support-tone/export.jsonl").splitlines()[0])
    assert row["reviews"][0]["quote"] == {
        "text": "left on Monday",
        "output": "",
        "start": 12,
        "end": 26,
        "matches": True,
    }
    table = list(csv.DictReader(io.StringIO(download(client, personas.owner, "/p/support-tone/export.csv"))))
    assert table[0]["quote:rafael"] == "left on Monday"

    sample.outputs = "Edited since."
    sample.save()
    row = json.loads(download(client, personas.owner, "/p/support-tone/export.jsonl").splitlines()[0])
    assert row["reviews"][0]["quote"]["matches"] is False  # the span no longer reads as the quote
