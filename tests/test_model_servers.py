"""Model servers are the site's choice: a project (its settings page, an imported judge document) may only pick
an OpenAI-compatible server the site lists, the site's key goes only to the site's own server, and a server's
failure is named without quoting its reply."""

from __future__ import annotations

import json
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.forms.models import model_to_dict

from memory import portable
from memory.llm import get_provider
from memory.llm.base import ProviderError
from reviews.forms import ProjectForm
from reviews.models import Project
from tests.fake_openai import FakeOpenAI
from tests.test_openai_compatible import _memory, judge

REFUSED = [
    "http://127.0.0.1:6379",  # a loopback service
    "http://localhost:8000/v1",
    "http://169.254.169.254/latest/meta-data",  # link-local cloud metadata
    "http://10.0.0.5:8000/v1",  # a private address
    "http://[::1]:8000/v1",
]


@pytest.fixture
def servers(personas, settings):
    """Two fake servers: the site's default (it holds the key) and another the site lists."""
    settings.OPENAI_COMPATIBLE_API_KEY = "site-key"
    settings.OPENAI_COMPATIBLE_MODEL = "qwen2.5-7b-instruct"
    with FakeOpenAI() as site, FakeOpenAI() as listed:
        settings.OPENAI_COMPATIBLE_BASE_URL = site.url
        settings.OPENAI_COMPATIBLE_ALLOWED_BASE_URLS = [listed.url + "/"]
        personas.project.provider = "openai_compatible"
        personas.project.save()
        yield site, listed


def settings_form(personas) -> dict:
    fields = model_to_dict(personas.project, fields=ProjectForm.Meta.fields)
    return {k: v for k, v in fields.items() if v is not None}


@pytest.mark.parametrize("url", REFUSED)
def test_the_settings_page_refuses_a_server_the_site_does_not_list(personas, servers, client, url):
    client.force_login(personas.owner)
    response = client.post(
        f"/p/{personas.project.slug}/settings/", {**settings_form(personas), "provider_base_url": url}
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    personas.project.refresh_from_db()
    assert personas.project.provider_base_url == ""


def test_another_path_or_port_on_a_listed_host_is_refused(personas, servers):
    _, listed = servers
    port = int(listed.url.split(":")[2].split("/")[0])
    for url in (listed.url + "/admin", listed.url.replace("/v1", "/v2"), listed.url.replace(str(port), str(port + 1))):
        personas.project.provider_base_url = url
        with pytest.raises(Exception, match="does not allow that model server"):
            personas.project.full_clean()


def test_the_settings_page_offers_the_listed_servers_and_keeps_the_pick(personas, servers, client):
    site, listed = servers
    client.force_login(personas.owner)
    page = client.get(f"/p/{personas.project.slug}/settings/").content.decode()
    assert f'<option value="{listed.url}">' in page and f"Site default ({site.url})" in page
    response = client.post(
        f"/p/{personas.project.slug}/settings/", {**settings_form(personas), "provider_base_url": listed.url}
    )
    assert response.status_code == 302
    personas.project.refresh_from_db()
    assert personas.project.provider_base_url == listed.url


@pytest.mark.parametrize("url", REFUSED)
def test_an_imported_judge_document_follows_the_same_rule(personas, servers, url):
    document = portable.export(personas.project)
    document["provider"]["base_url"] = url
    before = Project.objects.count()
    with pytest.raises(portable.Refused, match="provider_base_url: This site does not allow that model server"):
        portable.import_judge(json.dumps(document), personas.owner)
    assert Project.objects.count() == before


def test_the_sites_key_goes_only_to_the_sites_server(personas, servers):
    site, listed = servers
    assert judge(personas).status_code == 200
    assert site.headers[0]["authorization"] == "Bearer site-key"
    personas.project.provider_base_url = listed.url
    personas.project.save()
    assert judge(personas).status_code == 200
    assert "authorization" not in listed.headers[0]


def test_a_project_saved_before_the_list_existed_calls_nothing(personas, servers):
    site, _ = servers
    Project.objects.filter(pk=personas.project.pk).update(provider_base_url="http://169.254.169.254/latest")
    personas.project.refresh_from_db()
    with pytest.raises(ProviderError, match="not one this site allows"):
        get_provider(personas.project)
    response = judge(personas)
    assert response.status_code == 502 and "not one this site allows" in response.json()["detail"]
    assert site.requests == []


def test_a_redirect_is_not_followed(personas, servers):
    site, listed = servers
    site.push_raw(307, b"", {"location": listed.url + "/chat/completions"})
    response = judge(personas)
    assert response.status_code == 502 and "HTTP 307" in response.json()["detail"]
    assert listed.requests == []


@pytest.mark.parametrize(
    "status, body, named",
    [
        (500, b'{"error": {"message": "SECRET-REPLY internal details"}}', "answered HTTP 500"),
        (404, b"<html>SECRET-REPLY from some admin page</html>", "answered HTTP 404"),
        (200, b"<html>SECRET-REPLY in a 200</html>", "reply is not JSON"),
        (200, b'["SECRET-REPLY"]', "expected an object, got list"),
    ],
)
def test_a_failure_is_named_without_quoting_the_reply(personas, servers, status, body, named):
    site, _ = servers
    site.push_raw(status, body, {"content-type": "text/html"})
    response = judge(personas)
    detail = response.json()["detail"]
    assert response.status_code == 502 and named in detail and "SECRET-REPLY" not in detail, detail


def test_a_silent_server_is_a_timeout(personas, settings):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings.OPENAI_COMPATIBLE_BASE_URL = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        settings.OPENAI_COMPATIBLE_MODEL = "m"
        personas.project.provider = "openai_compatible"
        personas.project.save()
        with pytest.raises(ProviderError, match=r"timed out \(0.3s\)"):
            get_provider(personas.project, timeout=0.3, max_retries=0).judge(_memory(personas))


@pytest.mark.parametrize(
    "name, value",
    [
        ("OPENAI_COMPATIBLE_ALLOWED_BASE_URLS", ["gpu-box:8000/v1"]),
        ("OPENAI_COMPATIBLE_ALLOWED_BASE_URLS", ["http://user:pw@gpu-box/v1"]),
        ("OPENAI_COMPATIBLE_BASE_URL", "http://gpu-box/v1?key=x"),
    ],
)
def test_the_system_check_refuses_a_server_that_is_not_a_base_url(settings, name, value):
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=f"memalign.E012.*{name}"):
        call_command("check")
