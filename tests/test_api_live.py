"""The README's workflow over real HTTP against a live server and a real worker: import, judge, run a batch,
page its verdicts and read the metrics; then a schema-driven run of the whole API."""

from __future__ import annotations

import time

import httpx
import pytest

from api import tokens
from memory import episodic
from tests.test_memory_worker import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REFUNDS = ["refund for the broken kettle", "refund for the broken toaster", "money back for the blender"]
THANKS = ["thanks for the quick help", "thank you, your agent was lovely", "many thanks to your team"]


def rows():
    out = []
    for i, message in enumerate(REFUNDS):
        out.append({"external_id": f"r{i}", "inputs": {"customer_message": message}, "judge_value": "pass",
                    "outputs": "We value your feedback.", "expert_label": "fail",
                    "expert_critique": "Boilerplate that ignores the refund request.", "reviewer": "rafael"})
    for i, message in enumerate(THANKS):
        out.append({"external_id": f"t{i}", "inputs": {"customer_message": message}, "judge_value": "pass",
                    "outputs": "You're welcome, glad we could help!", "expert_label": "pass", "reviewer": "rafael"})
    return out


def test_import_judge_and_a_batch_run_over_http(celery_worker, live_server, personas):
    _, raw = tokens.create_token(personas.owner, "ci")
    api = httpx.Client(base_url=f"{live_server.url}/api/v1/projects/{personas.project.slug}",
                       headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    imported = api.post("/samples", json=rows())
    assert imported.status_code == 200 and imported.json()["created"] == 6 and imported.json()["feedback_created"] == 6
    wait_for(lambda: len(episodic.entries(personas.project.pk)) == 6, message="six episodic entries")

    verdict = api.post("/judge", json={"inputs": {"customer_message": "refund for the broken kettle"},
                                       "outputs": "We value your feedback."})
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
