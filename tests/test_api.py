"""The REST API: every endpoint against every kind of caller, error bodies, pagination, import parity, judging."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from django.test import Client

from api import tokens
from api.models import ApiToken
from judging import runs
from judging.models import Judgement, JudgeRun
from memory.models import MemoryVersion
from reviews import import_jobs
from reviews.models import Feedback, ImportRun, Membership, Sample
from tests.conftest import add_feedback, add_sample

SLUG = "support-tone"


@pytest.fixture
def api(personas, settings):
    """The personas, each with a token, and a project holding two samples (one reviewed) and one run."""
    settings.MEMALIGN_API_RATE = "10000/min"
    p = personas
    s1 = add_sample(p.project, "s1")
    add_sample(p.project, "s2", judge_value="fail")
    add_feedback(s1, p.reviewer, "pass")
    run = runs.start(p.project, p.owner, "all")  # in a test transaction: its chunks are never queued
    imported = ImportRun.objects.create(project=p.project, created_by=p.owner, filename="old.jsonl", status="done")
    made = {
        "owner": tokens.create_token(p.owner, "ci")[1],
        "reviewer": tokens.create_token(p.reviewer, "ci")[1],
        "viewer": tokens.create_token(p.viewer, "ci")[1],
        "read_only": tokens.create_token(p.owner, "ro", read_only=True)[1],
        "other_member": tokens.create_token(p.other_owner, "ci")[1],
    }
    revoked, raw = tokens.create_token(p.owner, "old")
    tokens.revoke(revoked)
    made["revoked"] = raw
    made["none"] = None
    return SimpleNamespace(**vars(p), tokens=made, s1=s1, run=run, imported=imported, slug=p.project.slug)


def call(method: str, path: str, token: str | None, body=None, **extra):
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method == "get":
        return client.get(path, body or {}, **headers, **extra)
    if isinstance(body, dict) and "file" in body:
        return client.post(path, body, **headers, **extra)
    return client.post(
        path, json.dumps(body if body is not None else {}), content_type="application/json", **headers, **extra
    )


def jsonl(*rows: dict) -> io.BytesIO:
    data = io.BytesIO("\n".join(json.dumps(r) for r in rows).encode())
    data.name = "rows.jsonl"
    return data


# (method, path after /api/v1/projects/{slug}, body, least role, writes, success status)
ENDPOINTS = {
    "project read": ("get", "", None, "viewer", False, 200),
    "samples list": ("get", "/samples", None, "viewer", False, 200),
    "sample read": ("get", "/samples/{s1}", None, "viewer", False, 200),
    "samples import json": (
        "post",
        "/samples",
        [{"external_id": "n1", "inputs": "q", "outputs": "a"}],
        "owner",
        True,
        200,
    ),
    "samples import file": ("post", "/samples/import", "FILE", "owner", True, 202),
    "import read": ("get", "/imports/{imported}", None, "owner", False, 200),
    "feedback list": ("get", "/feedback", None, "viewer", False, 200),
    "feedback create": ("post", "/feedback", {"external_id": "s2", "label": "fail"}, "reviewer", True, 201),
    "judge": ("post", "/judge", {"inputs": {"question": "Refund?"}, "outputs": "No."}, "viewer", False, 200),
    "run start": ("post", "/runs", {"scope": "all"}, "owner", True, 201),
    "run start over items": (
        "post",
        "/runs",
        {"scope": "items", "items": [{"external_id": "i1", "inputs": "q", "outputs": "a"}]},
        "owner",
        True,
        201,
    ),
    "run read": ("get", "/runs/{run}", None, "viewer", False, 200),
    "run verdicts": ("get", "/runs/{run}/verdicts", None, "viewer", False, 200),
    "run cancel": ("post", "/runs/{run}/cancel", None, "owner", True, 200),
    "principles": ("get", "/principles", None, "viewer", False, 200),
    "versions": ("get", "/versions", None, "viewer", False, 200),
    "metrics": ("get", "/metrics", None, "viewer", False, 200),
}
CALLERS = ["none", "revoked", "read_only", "other_member", "reviewer", "viewer", "owner"]
RANK = {"viewer": 1, "reviewer": 2, "owner": 3}


def expected(caller: str, endpoint: str) -> int:
    _, _, _, role, writes, ok = ENDPOINTS[endpoint]
    if caller in ("none", "revoked"):
        return 401
    if caller == "other_member":
        return 404
    if caller == "read_only":
        return 403 if writes else ok
    if endpoint == "judge" and caller == "reviewer":
        return 403  # reviewers review blind, as on the site
    return ok if RANK[caller] >= RANK[role] else 403


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("caller", CALLERS)
def test_every_endpoint_answers_every_caller_as_the_site_would(api, endpoint, caller):
    method, path, body, *_ = ENDPOINTS[endpoint]
    url = f"/api/v1/projects/{api.slug}" + path.format(s1=api.s1.pk, run=api.run.pk, imported=api.imported.pk)
    if body == "FILE":
        body = {"file": jsonl({"external_id": "f1", "inputs": "q", "outputs": "a"})}
    samples_before = Sample.objects.count()
    response = call(method, url, api.tokens[caller], body)
    assert response.status_code == expected(caller, endpoint), response.content
    data = response.json()
    if response.status_code >= 400:
        assert isinstance(data["detail"], str) and data["detail"] and data["errors"] == []
        assert Sample.objects.count() == samples_before  # a refused write wrote nothing
    elif endpoint == "samples import file":  # stored and queued: a worker writes it (tests/test_import_background.py)
        assert data["status"] == "queued" and data["url"].endswith(f"/imports/{data['id']}")
        assert ImportRun.objects.filter(pk=data["id"], status="queued").exists()
    elif endpoint == "samples import json":
        assert data["created"] == 1 and Sample.objects.count() == samples_before + 1


def test_the_project_list_holds_only_the_callers_projects(api):
    own = call("get", "/api/v1/projects/", api.tokens["reviewer"]).json()
    assert [p["slug"] for p in own["items"]] == [api.slug] and own["items"][0]["role"] == "reviewer"
    other = call("get", "/api/v1/projects/", api.tokens["other_member"]).json()
    assert [p["slug"] for p in other["items"]] == [api.other.slug]
    assert call("get", "/api/v1/projects/", None).status_code == 401


def test_a_project_restricted_token_sees_no_other_project(api):
    from reviews.projects import create_project

    second = create_project(api.owner, name="Second", criterion="c", label_kind="pass_fail")
    _, raw = tokens.create_token(api.owner, "only second", project=second)
    assert call("get", f"/api/v1/projects/{second.slug}", raw).status_code == 200
    assert call("get", f"/api/v1/projects/{api.slug}", raw).status_code == 404
    assert [p["slug"] for p in call("get", "/api/v1/projects/", raw).json()["items"]] == [second.slug]


def test_tokens_are_stored_hashed_and_expire(api):
    from datetime import timedelta

    from django.utils import timezone

    token = ApiToken.objects.get(digest=tokens.digest(api.tokens["owner"]))
    stored = json.dumps(list(ApiToken.objects.values_list("name", "prefix", "digest")))
    assert api.tokens["owner"] not in stored and token.digest != api.tokens["owner"]
    assert token.last_used_at is None
    assert call("get", f"/api/v1/projects/{api.slug}", api.tokens["owner"]).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert call("get", f"/api/v1/projects/{api.slug}", api.tokens["owner"]).status_code == 401
    assert call("get", f"/api/v1/projects/{api.slug}", "mla_not-a-token").status_code == 401


def test_a_token_never_outlives_its_users_membership(api):
    api.reviewer.memberships.filter(project=api.project).delete()
    assert call("get", f"/api/v1/projects/{api.slug}", api.tokens["reviewer"]).status_code == 404


# --- pagination ------------------------------------------------------------------------------------------------


def test_samples_page_by_keyset_and_filter(api):
    for i in range(5):
        add_sample(api.project, f"p{i}")
    seen, after = [], None
    while True:
        page = call(
            "get",
            f"/api/v1/projects/{api.slug}/samples",
            api.tokens["owner"],
            {"limit": 3, **({"after": after} if after else {})},
        ).json()
        seen += [s["external_id"] for s in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ["s1", "s2", "p0", "p1", "p2", "p3", "p4"]
    reviewed = call("get", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], {"reviewed": "true"}).json()
    assert [s["external_id"] for s in reviewed["items"]] == ["s1"]
    failing = call("get", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], {"judge_value": "fail"}).json()
    assert [s["external_id"] for s in failing["items"]] == ["s2"]


def test_feedback_filters_and_blind_reviewers(api):
    add_feedback(Sample.objects.get(external_id="s2"), api.owner, "fail")
    owner_view = call("get", f"/api/v1/projects/{api.slug}/feedback", api.tokens["owner"]).json()["items"]
    assert sorted((f["external_id"], f["reviewer"]) for f in owner_view) == [("s1", "rafael"), ("s2", "olivia")]
    by_label = call("get", f"/api/v1/projects/{api.slug}/feedback", api.tokens["owner"], {"label": "fail"}).json()[
        "items"
    ]
    assert [f["reviewer"] for f in by_label] == ["olivia"]
    by_reviewer = call(
        "get", f"/api/v1/projects/{api.slug}/feedback", api.tokens["owner"], {"reviewer": "rafael"}
    ).json()["items"]
    assert [f["external_id"] for f in by_reviewer] == ["s1"]
    future = call(
        "get", f"/api/v1/projects/{api.slug}/feedback", api.tokens["owner"], {"since": "2999-01-01T00:00:00Z"}
    ).json()
    assert future["items"] == []
    # The reviewer reviewed s1 only: the owner's feedback on s2 stays hidden from them, in lists and on the sample.
    blind = call("get", f"/api/v1/projects/{api.slug}/feedback", api.tokens["reviewer"]).json()["items"]
    assert [f["external_id"] for f in blind] == ["s1"]
    s2 = Sample.objects.get(external_id="s2")
    assert call("get", f"/api/v1/projects/{api.slug}/samples/{s2.pk}", api.tokens["reviewer"]).json()["feedback"] == []


# --- bad input ---------------------------------------------------------------------------------------------------


def test_bad_bodies_get_400_with_the_field_named(api):
    url = f"/api/v1/projects/{api.slug}/feedback"
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api.tokens['owner']}"}
    not_json = client.post(url, "{not json", content_type="application/json", **auth)
    assert not_json.status_code == 400 and not_json.json()["detail"]
    wrong_type = call("post", url, api.tokens["owner"], {"sample_id": "abc", "label": "pass"})
    assert wrong_type.status_code == 400 and wrong_type.json()["errors"][0]["field"] == "sample_id"
    unknown = call("post", url, api.tokens["owner"], {"external_id": "s2", "label": "maybe"})
    assert unknown.status_code == 400 and unknown.json()["errors"] == [
        {"field": "label", "message": "'maybe' is not a label of this project; expected one of: pass, fail."}
    ]
    no_critique = call("post", url, api.tokens["owner"], {"external_id": "s1", "label": "fail"})
    assert no_critique.status_code == 400 and no_critique.json()["errors"][0]["field"] == "critique"
    missing = call("post", url, api.tokens["owner"], {"external_id": "nope", "label": "pass"})
    assert missing.status_code == 404
    assert not Feedback.objects.filter(author=api.owner).exists()
    bad_judge = call(
        "post", f"/api/v1/projects/{api.slug}/judge", api.tokens["owner"], {"inputs": "q", "output_a": "x"}
    )
    assert bad_judge.status_code == 400 and bad_judge.json()["errors"][0]["field"] == "output_a"
    bad_limit = call("get", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], {"limit": 0})
    assert bad_limit.status_code == 400 and bad_limit.json()["errors"][0]["field"] == "limit"


def test_feedback_create_is_idempotent_and_refuses_overwrites(api):
    url = f"/api/v1/projects/{api.slug}/feedback"
    first = call("post", url, api.tokens["reviewer"], {"external_id": "s2", "label": "FAIL"})
    assert first.status_code == 201 and first.json()["label"] == "fail"
    again = call("post", url, api.tokens["reviewer"], {"external_id": "s2", "label": "fail"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = call("post", url, api.tokens["reviewer"], {"external_id": "s2", "label": "pass", "critique": "Fine."})
    assert changed.status_code == 409
    assert Feedback.objects.get(pk=first.json()["id"]).label == "fail"


def test_feedback_carries_its_quoted_passage_both_ways(api):
    url = f"/api/v1/projects/{api.slug}/feedback"
    body = {"external_id": "s2", "label": "fail", "critique": "Wrong.", "quote": {"text": "answer"}}
    created = call("post", url, api.tokens["reviewer"], body)
    assert created.status_code == 201, created.json()
    assert created.json()["quote"] == {"text": "answer", "output": "", "start": 0, "end": 6, "matches": True}
    listed = call("get", f"{url}?reviewer=rafael&label=fail", api.tokens["reviewer"]).json()["items"]
    assert [f["quote"]["text"] for f in listed] == ["answer"]

    wrong_output = {**body, "external_id": "s1", "quote": {"text": "answer", "output": "a"}}
    refused = call("post", url, api.tokens["owner"], wrong_output)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "quote"
    assert not Feedback.objects.filter(sample=api.s1, author=api.owner).exists()


# --- import ------------------------------------------------------------------------------------------------------

BAD_ROWS = [
    {"external_id": "a", "inputs": "q", "outputs": "x", "judge_value": "pass"},
    {"external_id": "b", "inputs": "q"},
    {"external_id": "a", "inputs": "q", "outputs": "y", "expert_label": "maybe"},
]


def test_a_bad_batch_is_refused_whole_with_the_pages_errors(api):
    response = call("post", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], BAD_ROWS)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["line"] for e in errors} == {2, 3} and all("field" not in e for e in errors)
    assert not Sample.objects.filter(external_id__in=["a", "b"]).exists()
    # The import page, given the same rows as a file, refuses it with the same messages on the same lines.
    client = Client()
    client.force_login(api.owner)
    stored = client.post(f"/p/{api.slug}/import/", {"file": jsonl(*BAD_ROWS)})
    assert stored.status_code == 302
    import_jobs.run(ImportRun.objects.latest("pk").pk)  # the task's body, here without a worker
    page = client.get(stored["Location"])
    from django.utils.html import escape

    for error in errors:
        assert escape(error["message"]) in page.content.decode()
    assert not Sample.objects.filter(external_id__in=["a", "b"]).exists()


def test_import_through_the_api_equals_import_through_the_page(api):
    rows = [
        {
            "external_id": f"r{i}",
            "inputs": {"q": i},
            "outputs": f"answer {i}",
            "judge_value": "pass",
            "metadata": {"source": "prod"},
        }
        for i in range(3)
    ]
    rows.append(
        {
            "external_id": "r3",
            "inputs": "q",
            "outputs": "o",
            "judge_value": "fail",
            "expert_label": "pass",
            "expert_critique": "Too strict.",
            "reviewer": "rafael",
        }
    )
    response = call("post", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], rows)
    assert response.status_code == 200 and response.json()["created"] == 4 and response.json()["feedback_created"] == 1
    again = call("post", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], rows)
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 4

    def stored(project):
        fields = ["external_id", "inputs", "outputs", "judge_value", "metadata"]
        samples = sorted(Sample.objects.filter(project=project, external_id__startswith="r").values_list(*fields))
        feedback = sorted(
            Feedback.objects.filter(project=project, sample__external_id__startswith="r").values_list(
                "sample__external_id", "author__username", "label", "critique"
            )
        )
        return samples, feedback

    # The same rows through the page into the other project (its owner, with rafael as a member there too).
    Membership.objects.create(project=api.other, user=api.reviewer, role="reviewer")
    client = Client()
    client.force_login(api.other_owner)
    page = client.post(f"/p/{api.other.slug}/import/", {"file": jsonl(*rows)})
    assert page.status_code == 302
    assert import_jobs.run(ImportRun.objects.latest("pk").pk) == "done"
    assert stored(api.project) == stored(api.other) and len(stored(api.project)[0]) == 4


def test_imported_labels_go_on_an_account_only_through_that_accounts_own_token(api):
    """Issue 22 item 5: the owner's token cannot put labels in rafael's name on his account; rafael's can."""
    Membership.objects.filter(project=api.project, user=api.reviewer).update(role="owner")  # only owners import
    url = f"/api/v1/projects/{api.slug}/samples"

    def labelled(external_id: str, reviewer: str) -> dict:
        return {"external_id": external_id, "inputs": "q", "outputs": "o", "expert_label": "fail", "reviewer": reviewer}

    by_owner = call("post", url, api.tokens["owner"], [labelled("o1", "rafael"), labelled("o2", "olivia")])
    by_rafael = call("post", url, api.tokens["reviewer"], [labelled("r1", "rafael"), labelled("r2", "olivia")])
    assert by_owner.status_code == by_rafael.status_code == 200
    authors = dict(
        Feedback.objects.filter(sample__external_id__in=["o1", "o2", "r1", "r2"]).values_list(
            "sample__external_id", "author__username"
        )
    )
    assert authors == {"o1": "rafael (external)", "o2": "olivia", "r1": "rafael", "r2": "olivia (external)"}
    listed = call("get", f"{url[:-8]}/feedback", api.tokens["owner"], {"reviewer": "rafael (external)"}).json()
    assert [f["external_id"] for f in listed["items"]] == ["o1"]


# --- judging -----------------------------------------------------------------------------------------------------


def test_judge_answers_with_what_it_used(api):
    add_feedback(Sample.objects.get(external_id="s2"), api.owner, "fail", "Rude.")
    from memory import episodic

    episodic.upsert(list(Feedback.objects.filter(project=api.project).select_related("sample")))
    response = call(
        "post",
        f"/api/v1/projects/{api.slug}/judge",
        api.tokens["viewer"],
        {"inputs": {"question": "question s2"}, "outputs": "answer s2"},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["provider"] == "offline" and data["examples"], data
    assert data["examples"][0]["same_item"] is True and data["verdict"] == "fail"
    assert not Judgement.objects.exists()  # judging one item stores nothing


def test_a_provider_failure_is_a_502_with_its_message_and_stores_nothing(api, fake_anthropic):
    api.project.provider = "anthropic"
    api.project.save(update_fields=["provider"])
    fake_anthropic.push_error(400, message="model not found: claude-nope")
    versions, judgements = MemoryVersion.objects.count(), Judgement.objects.count()
    response = call("post", f"/api/v1/projects/{api.slug}/judge", api.tokens["owner"], {"inputs": "q", "outputs": "o"})
    assert response.status_code == 502
    assert "claude-nope" in response.json()["detail"] and response.json()["errors"] == []
    assert (MemoryVersion.objects.count(), Judgement.objects.count()) == (versions, judgements)


# --- rate limit --------------------------------------------------------------------------------------------------


def test_each_token_has_its_own_rate_limit(api, settings):
    settings.MEMALIGN_API_RATE = "3/min"
    url = f"/api/v1/projects/{api.slug}"
    assert [call("get", url, api.tokens["owner"]).status_code for _ in range(3)] == [200, 200, 200]
    refused = call("get", url, api.tokens["owner"])
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"]
    assert call("get", url, api.tokens["viewer"]).status_code == 200  # another token counts on its own


# --- the schema --------------------------------------------------------------------------------------------------


def test_the_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/projects/{slug}/judge" in paths and schema.json()["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content


def test_a_body_over_the_limit_is_refused_unread_with_the_error_shape(api):
    rows = [{"external_id": f"big{i}", "inputs": "q" * 1000, "outputs": "a"} for i in range(3000)]  # about 3 MB
    response = call("post", f"/api/v1/projects/{api.slug}/samples", api.tokens["owner"], rows)
    assert response.status_code == 413 and "limit of 2.5 MB" in response.json()["detail"]
    assert not Sample.objects.filter(external_id__startswith="big").exists()


def test_a_run_over_posted_items_imports_them_and_judges_exactly_those(api):
    url = f"/api/v1/projects/{api.slug}/runs"
    items = [
        {"external_id": "s2", "inputs": "changed", "outputs": "changed"},  # known: judged as stored
        {"external_id": "new1", "inputs": {"q": "Refund?"}, "outputs": "No."},
    ]
    response = call("post", url, api.tokens["owner"], {"scope": "items", "items": items})
    assert response.status_code == 201 and response.json()["scope"] == "items" and response.json()["total"] == 2
    run = JudgeRun.objects.get(pk=response.json()["id"])
    assert sorted(run.sample_ids) == sorted(
        Sample.objects.filter(external_id__in=["s2", "new1"]).values_list("id", flat=True)
    )
    assert Sample.objects.get(external_id="s2").inputs == {"question": "question s2"}  # never overwritten
    bad = call("post", url, api.tokens["owner"], {"scope": "items", "items": [{"external_id": "x", "inputs": "q"}]})
    assert (
        bad.status_code == 400
        and bad.json()["errors"][0]["line"] == 1
        and "outputs" in bad.json()["errors"][0]["message"]
    )
    missing = call("post", url, api.tokens["owner"], {"scope": "items"})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "items"
    stray = call("post", url, api.tokens["owner"], {"scope": "all", "items": items})
    assert stray.status_code == 400 and stray.json()["errors"][0]["field"] == "items"
    assert JudgeRun.objects.count() == 2 and not Sample.objects.filter(external_id="x").exists()


def test_feedback_since_takes_any_iso_offset(api):
    """Offsets beyond what PostgreSQL accepts (±15:59) are valid ISO 8601: compared in UTC, not a 500."""
    path = (
        f"/api/v1/projects/{api.slug}/feedback?since=0297-03-21T02%3A43%3A22.3027%2B18%3A13&until=2999-01-01T00:00:00"
    )
    response = call("get", path, api.tokens["owner"])
    assert response.status_code == 200, response.content
    assert isinstance(response.json()["items"], list)
