"""The openai_compatible provider, against a fake OpenAI-compatible server on 127.0.0.1: what it sends, how it
reads the answers (function calls or JSON-schema content), and how it fails."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from api import tokens
from memory import semantic
from memory.llm import get_provider
from memory.llm.base import ProviderError
from memory.models import MemoryVersion, Principle
from tests.conftest import add_feedback, add_sample
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def server(personas, settings):
    """The personas' project pointed at a fake OpenAI-compatible server, the site's default, which gets the key."""
    settings.OPENAI_COMPATIBLE_API_KEY = "local-key"
    settings.OPENAI_COMPATIBLE_STRUCTURED = "tools"
    with FakeOpenAI() as fake:
        settings.OPENAI_COMPATIBLE_BASE_URL = fake.url
        personas.project.provider = "openai_compatible"
        personas.project.model_name = "qwen2.5-7b-instruct"
        personas.project.provider_base_url = fake.url
        personas.project.save()
        yield fake


def judge(personas, body=None):
    _, raw = tokens.create_token(personas.owner, "ci")
    return Client().post(
        f"/api/v1/projects/{personas.project.slug}/judge",
        json.dumps(body or {"inputs": "Where is my refund?", "outputs": "We value your feedback."}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def test_the_api_judges_through_the_server_with_a_forced_function_call(personas, server):
    server.push_answer({"rationale": "It ignores the refund.", "value": "fail"})
    response = judge(personas)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["verdict"], data["rationale"], data["provider"], data["model"]) == (
        "fail",
        "It ignores the refund.",
        "openai_compatible",
        "qwen2.5-7b-instruct",
    )
    assert data["usage"]["calls"] == 1 and data["usage"]["output_tokens"] == 20
    (request,) = server.requests
    assert request["model"] == "qwen2.5-7b-instruct"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "Where is my refund?" in request["messages"][1]["content"]
    assert request["tool_choice"] == {"type": "function", "function": {"name": "record_verdict"}}
    assert request["tools"][0]["function"]["parameters"]["properties"]["value"]["enum"] == ["pass", "fail"]
    assert server.headers[0]["authorization"] == "Bearer local-key"


def test_json_schema_mode_asks_for_the_schema_and_reads_the_content(personas, server, settings):
    settings.OPENAI_COMPATIBLE_STRUCTURED = "json_schema"
    server.push_answer({"rationale": "Polite and complete.", "value": "pass"})
    response = judge(personas)
    assert response.status_code == 200 and response.json()["verdict"] == "pass"
    (request,) = server.requests
    assert "tools" not in request
    spec = request["response_format"]["json_schema"]
    assert spec["name"] == "record_verdict" and spec["schema"]["properties"]["value"]["enum"] == ["pass", "fail"]


@pytest.mark.parametrize(
    "script, message",
    [
        (lambda s: s.push_answer({"rationale": "x", "value": "maybe"}), "maybe"),
        (lambda s: s.push_answer("I think it passes.", as_text=True), "expected a tool call"),
        (lambda s: s.push_answer({"value": "pass"}), "missing 'rationale'"),
        (lambda s: s.push_error(404, "model 'qwen2.5-7b-instruct' not found"), "answered HTTP 404"),
    ],
)
def test_a_bad_reply_is_a_502_that_names_the_failure(personas, server, script, message):
    script(server)
    response = judge(personas)
    assert response.status_code == 502 and message in response.json()["detail"], response.content


def test_an_overloaded_server_is_marked_for_back_off(personas, server):
    server.push_error(503, "model is loading", retry_after=7)
    with pytest.raises(ProviderError, match="HTTP 503") as failure:
        get_provider(personas.project).judge(_memory(personas))
    assert failure.value.overloaded and failure.value.retry_after == 7


def _memory(personas):
    from judging.judge import working_memory

    return working_memory(personas.project, "Where is my refund?", "We value your feedback.")


def test_the_project_distils_through_the_server(personas, server):
    sample = add_sample(personas.project, "s1")
    feedback = add_feedback(sample, personas.reviewer, "fail", "Never promise a refund date.")
    server.push_answer(
        {"principles": [{"text": "Do not promise refund dates.", "label": "fail", "source_ids": [feedback.pk]}]}
    )
    semantic.regenerate(personas.project, force=True)
    version = MemoryVersion.objects.get(project=personas.project)
    assert (version.status, version.provider, version.model) == ("ok", "openai_compatible", "qwen2.5-7b-instruct")
    assert list(Principle.objects.filter(project=personas.project).values_list("text", "label")) == [
        ("Do not promise refund dates.", "fail")
    ]
    assert server.requests[0]["tool_choice"]["function"]["name"] == "record_principles"
    assert f'id="{feedback.pk}"' in server.requests[0]["messages"][1]["content"]


def test_a_project_without_a_server_says_what_to_set(personas, settings):
    settings.OPENAI_COMPATIBLE_BASE_URL = ""
    personas.project.provider = "openai_compatible"
    personas.project.model_name = "llama3.1"
    personas.project.save()
    with pytest.raises(ProviderError, match="no base URL"):
        get_provider(personas.project)
    response = judge(personas)
    assert response.status_code == 502 and "OPENAI_COMPATIBLE_BASE_URL" in response.json()["detail"]


def test_an_owner_points_the_project_at_a_model_server_on_its_settings_page(personas, client, settings):
    from django.forms.models import model_to_dict

    settings.OPENAI_COMPATIBLE_ALLOWED_BASE_URLS = ["http://localhost:11434/v1/"]

    from reviews.forms import ProjectForm

    client.force_login(personas.owner)
    form = {k: v for k, v in model_to_dict(personas.project, fields=ProjectForm.Meta.fields).items() if v is not None}
    response = client.post(
        f"/p/{personas.project.slug}/settings/",
        {
            **form,
            "provider": "openai_compatible",
            "model_name": "llama3.1:8b",
            "provider_base_url": "http://localhost:11434/v1",
        },
    )
    assert response.status_code == 302
    personas.project.refresh_from_db()
    assert (personas.project.provider, personas.project.model_name, personas.project.provider_base_url) == (
        "openai_compatible",
        "llama3.1:8b",
        "http://localhost:11434/v1",
    )
    refused = client.post(f"/p/{personas.project.slug}/settings/", {**form, "provider_base_url": "not a url"})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
