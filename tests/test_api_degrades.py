"""The API degrades, never crashes: it serves while Redis is down (the rate limit fails open, with a log line),
an unexpected error is the documented JSON body with a request id, and input that would crash a parser or a
database (deep nesting, a NUL byte) is a 400."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from api import tokens
from memory import portable
from reviews.models import Feedback, Project
from tests.conftest import add_sample
from tests.test_redis_outage import own_redis  # noqa: F401  (a fixture)

DEEP = 100_000


def token_client(user) -> Client:
    _, raw = tokens.create_token(user, "ci")
    # Like a real server: an exception becomes whatever the site answers, not a test failure.
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_error_body(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["errors"], list)
    return body


def test_the_api_serves_while_redis_is_down_and_logs_that_it_does_not_count(
    personas,
    own_redis,  # noqa: F811
    settings,
    caplog,
    monkeypatch,
):
    from api.auth import TokenRateThrottle

    monkeypatch.setattr(TokenRateThrottle, "_last_logged", 0.0)
    settings.CACHES = {**settings.CACHES, "api": {**settings.CACHES["api"], "LOCATION": f"unix://{own_redis.socket}"}}
    settings.MEMALIGN_API_RATE = "2/min"
    client = token_client(personas.reviewer)
    sample = add_sample(personas.project, "s1")
    slug = personas.project.slug
    assert client.get(f"/api/v1/projects/{slug}").status_code == 200  # counted in Redis (and the URLs loaded)
    own_redis.stop()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        for _ in range(2):  # past the rate: nothing counts while Redis is down
            assert client.get(f"/api/v1/projects/{slug}").status_code == 200
        created = client.post(
            f"/api/v1/projects/{slug}/feedback",
            json.dumps({"sample_id": sample.pk, "label": "fail", "critique": "Written while Redis is down."}),
            content_type="application/json",
        )
    assert created.status_code == 201, created.content
    assert Feedback.objects.filter(sample=sample, author=personas.reviewer).exists()
    print("3 API requests with Redis stopped took", round(time.monotonic() - started, 2), "s")
    assert time.monotonic() - started < 4
    assert any("rate limit is not enforced" in r.getMessage() for r in caplog.records)


def test_the_rate_limit_counts_again_when_redis_is_back(personas, settings):
    settings.MEMALIGN_API_RATE = "2/min"
    client = token_client(personas.owner)
    statuses = [client.get("/api/v1/projects/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_an_unexpected_error_is_the_json_body_with_a_request_id(personas, monkeypatch, caplog):
    from api import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug with a secret inside")

    monkeypatch.setattr(views, "project_for", broken)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = token_client(personas.owner).get(f"/api/v1/projects/{personas.project.slug}")
    body = assert_error_body(response, 500)
    request_id = body["request_id"]
    assert response["X-Request-ID"] == request_id and request_id in body["detail"]
    assert "secret" not in response.content.decode()
    (logged,) = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged.exc_info and "a bug with a secret inside" in str(logged.exc_info[1])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/ab%00cd",
        "/api/v1/projects/ab%00cd/samples",
        "/api/v1/projects/{slug}/samples?external_id=a%00b",
        "/api/v1/projects/{slug}/feedback?reviewer=a%00b",
    ],
)
def test_a_nul_byte_in_the_path_or_query_is_a_400(personas, path):
    response = token_client(personas.owner).get(path.format(slug=personas.project.slug))
    body = assert_error_body(response, 400)
    assert "NUL" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"label": "fail", "critique": "bad\u0000byte"},
        {"label": "fa\u0000il"},
        {"label": "fail", "quote": {"text": "a\u0000b"}},
        # Found by schemathesis on PostgreSQL: the sample looked up by an external id holding NUL was a 500.
        {"external_id": "s\u0000", "label": "/"},
    ],
)
def test_a_nul_byte_in_a_json_body_is_a_400(personas, body):
    sample = add_sample(personas.project, "s1")
    body = {"sample_id": sample.pk, **body} if "external_id" not in body else body
    response = token_client(personas.reviewer).post(
        f"/api/v1/projects/{personas.project.slug}/feedback", json.dumps(body), content_type="application/json"
    )
    error = assert_error_body(response, 400)
    assert "NUL" in error["detail"]
    assert not Feedback.objects.filter(sample=sample).exists()


def test_a_nul_byte_in_what_the_judge_api_is_given_is_answered_without_a_500(personas):
    add_sample(personas.project, "s1")
    response = token_client(personas.owner).post(
        f"/api/v1/projects/{personas.project.slug}/judge",
        json.dumps({"inputs": {"q\u0000": "a\u0000"}, "outputs": "b\u0000c"}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content


def test_a_deeply_nested_json_body_is_a_400(personas):
    response = token_client(personas.owner).post(
        f"/api/v1/projects/{personas.project.slug}/samples",
        "[" * DEEP + "]" * DEEP,
        content_type="application/json",
    )
    body = assert_error_body(response, 400)
    assert "Cannot parse request body" in body["detail"]  # django-ninja's own answer (it was never a 500)


def deep_document(personas, depth: int) -> bytes:
    document = portable.export(personas.project)
    document["examples"] = [
        {"external_id": "x", "inputs": {"q": "["}, "outputs": "o", "author": "a", "label": "pass", "critique": "c"}
    ]
    text = json.dumps(document)
    return text.replace('{"q": "["}', '{"q": ' + "[" * depth + "]" * depth + "}").encode()


@pytest.mark.parametrize("depth", [DEEP, 500])
def test_a_judge_document_nested_deeply_is_refused_with_the_reason(personas, client, depth):
    before = Project.objects.count()
    with pytest.raises(portable.Refused, match="nested too deeply"):
        portable.import_judge(deep_document(personas, depth), personas.owner)
    client.force_login(personas.owner)
    upload = SimpleUploadedFile("judge.json", deep_document(personas, depth), content_type="application/json")
    response = client.post("/judges/import/", {"file": upload})
    assert response.status_code == 400 and "nested too deeply" in response.content.decode()
    assert Project.objects.count() == before


def test_a_judge_document_with_a_nul_byte_is_refused_with_the_reason(personas):
    sample = add_sample(personas.project, "s1")
    Feedback.objects.create(project=personas.project, sample=sample, author=personas.reviewer, label="fail")
    document = portable.export(personas.project)
    document["examples"][0]["critique"] = "bad\u0000byte"
    before = Project.objects.count()
    with pytest.raises(portable.Refused, match=r"examples\[0\].critique.*NUL"):
        portable.import_judge(json.dumps(document), personas.owner)
    assert Project.objects.count() == before
