"""The README's workflow over real HTTP against a live server and a real worker: import, judge, run a batch,
page its verdicts and read the metrics; then a schema-driven run of the whole API."""

from __future__ import annotations

import time

import httpx
import pytest

from api import tokens
from memory import episodic
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REFUNDS = ["refund for the broken kettle", "refund for the broken toaster", "money back for the blender"]
THANKS = ["thanks for the quick help", "thank you, your agent was lovely", "many thanks to your team"]


def rows():
    out = []
    for i, message in enumerate(REFUNDS):
        out.append(
            {
                "external_id": f"r{i}",
                "inputs": {"customer_message": message},
                "judge_value": "pass",
                "outputs": "We value your feedback.",
                "expert_label": "fail",
                "expert_critique": "Boilerplate that ignores the refund request.",
                "reviewer": "rafael",
            }
        )
    for i, message in enumerate(THANKS):
        out.append(
            {
                "external_id": f"t{i}",
                "inputs": {"customer_message": message},
                "judge_value": "pass",
                "outputs": "You're welcome, glad we could help!",
                "expert_label": "pass",
                "reviewer": "rafael",
            }
        )
    return out


def test_import_judge_and_a_batch_run_over_http(celery_worker, live_server, personas):
    _, raw = tokens.create_token(personas.owner, "ci")
    api = httpx.Client(
        base_url=f"{live_server.url}/api/v1/projects/{personas.project.slug}",
        headers={"Authorization": f"Bearer {raw}"},
        timeout=30,
    )
    imported = api.post("/samples", json=rows())
    assert imported.status_code == 200 and imported.json()["created"] == 6 and imported.json()["feedback_created"] == 6
    wait_for(lambda: len(episodic.entries(personas.project.pk)) == 6, message="six episodic entries")

    verdict = api.post(
        "/judge",
        json={"inputs": {"customer_message": "refund for the broken kettle"}, "outputs": "We value your feedback."},
    )
    assert verdict.status_code == 200 and verdict.json()["verdict"] == "fail"
    assert verdict.json()["examples"][0]["same_item"] is True

    started = api.post("/runs", json={"scope": "reviewed"})
    assert started.status_code == 201 and started.json()["total"] == 6
    run_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while (run := api.get(f"/runs/{run_id}").json())["status"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    assert run["status"] == "done" and run["done"] == 6 and run["figures"]["aligned"]["n"] == 6

    verdicts, after = [], None
    while True:
        page = api.get(f"/runs/{run_id}/verdicts", params={"limit": 4, **({"after": after} if after else {})}).json()
        verdicts += page["items"]
        if (after := page["next_after"]) is None:
            break
    assert sorted(v["external_id"] for v in verdicts) == sorted(r["external_id"] for r in rows())
    assert all(v["verdict"] == v["experts"][0] for v in verdicts)  # every item was reviewed before: its label decides

    metrics = api.get("/metrics").json()
    assert metrics["latest_run"]["id"] == run_id and metrics["reviewed_samples"] == 6
    assert metrics["imported_judge"]["exact"] == pytest.approx(0.5)  # the imported judge passed all six

    # A CI job's new outputs, posted with the run request itself.
    new = [
        {
            "external_id": "ci-1",
            "inputs": {"customer_message": "refund for the broken kettle, please"},
            "outputs": "We value your feedback.",
        }
    ]
    started = api.post("/runs", json={"scope": "items", "items": new})
    assert started.status_code == 201 and started.json()["total"] == 1
    deadline = time.monotonic() + 120
    while (run := api.get(f"/runs/{started.json()['id']}").json())["status"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    (verdict,) = api.get(f"/runs/{run['id']}/verdicts").json()["items"]
    assert (run["status"], verdict["external_id"], verdict["verdict"]) == ("done", "ci-1", "fail")


# --- the whole schema, generated ---------------------------------------------------------------------------------

import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import add_feedback, add_sample  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 30


def test_every_generated_request_gets_an_answer_the_schema_allows(celery_worker, live_server, personas, settings):
    """Requests generated from the served schema, on every operation: zero server errors, and every response
    (errors included) with a status, content type and body the schema describes."""
    settings.MEMALIGN_API_RATE = "100000/min"
    sample = add_sample(personas.project, "s1")
    add_feedback(sample, personas.reviewer, "pass")
    add_sample(personas.project, "s2", judge_value="fail")
    headers = {"Authorization": f"Bearer {tokens.create_token(personas.owner, 'schemathesis')[1]}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 19  # house's 17, and the dataset export as JSONL and CSV
    calls = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case):
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = personas.project.slug  # reach the endpoint's logic, not only its 404
            response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)
            calls.append(response.status_code)

        check()
    assert len(calls) >= 5 * len(operations) and 200 in calls and 400 in calls
