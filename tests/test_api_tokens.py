"""Tokens from the account page and from manage.py create_token: shown once, revocable, last use shown."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from api.models import ApiToken


def api_get(raw: str, path: str = "/api/v1/projects/"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_the_account_page_shows_a_new_token_once_and_revokes_it(personas, client):
    client.force_login(personas.reviewer)
    created = client.post(
        "/account/tokens/", {"name": "nightly import", "project": personas.project.pk, "read_only": "on"}
    )
    assert created.status_code == 200
    raw = re.search(r"<code>(mla_[^<]+)</code>", created.content.decode()).group(1)
    token = ApiToken.objects.get(user=personas.reviewer)
    assert (token.name, token.project, token.read_only, token.expires_at) == (
        "nightly import",
        personas.project,
        True,
        None,
    )

    def row() -> str:
        return client.get("/account/tokens/").content.decode().split(token.prefix)[1].split("</tr>")[0]

    assert raw not in client.get("/account/tokens/").content.decode()
    assert row().count("Never") == 2  # no expiry, never used
    assert api_get(raw).status_code == 200
    assert row().count("Never") == 1  # the last use is shown
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    assert api_get(raw).status_code == 401


def test_the_account_page_refuses_a_project_the_user_is_not_in_and_others_tokens(personas, client):
    client.force_login(personas.outsider)
    refused = client.post("/account/tokens/", {"name": "x", "project": personas.project.pk})
    assert refused.status_code == 400 and not ApiToken.objects.exists()
    client.force_login(personas.owner)
    client.post("/account/tokens/", {"name": "mine"})
    token = ApiToken.objects.get(user=personas.owner)
    client.force_login(personas.outsider)
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert Client().get("/account/tokens/").status_code == 302  # logged out: to the login page


def test_create_token_prints_a_working_token_once(personas):
    out = StringIO()
    call_command(
        "create_token",
        "olivia",
        "--name",
        "ci",
        "--project",
        personas.project.slug,
        "--read-only",
        "--expires",
        "30",
        stdout=out,
    )
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(user=personas.owner)
    assert token.read_only and token.project == personas.project and token.expires_at is not None
    assert raw.startswith("mla_") and raw != token.digest
    assert api_get(raw, f"/api/v1/projects/{personas.project.slug}").status_code == 200
    assert api_get(raw, f"/api/v1/projects/{personas.other.slug}").status_code == 404


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody", "--name", "x"], "No user 'nobody'"),
        (["olivia", "--name", "x", "--project", "nope"], "No project 'nope'"),
        (["olivia", "--name", "x", "--project", "other-team"], "member"),
        (["olivia", "--name", "x", "--expires", "0"], "positive"),
    ],
)
def test_create_token_explains_what_is_wrong(personas, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args, stdout=StringIO())
    assert not ApiToken.objects.exists()
