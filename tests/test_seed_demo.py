"""`make run` seeds the demo on every start: the second start keeps its password and its logged-in sessions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_a_second_seed_keeps_the_password_and_the_demo_session(settings, tmp_path, client):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    settings.DEMO_PASSWORD = ""
    call_command("seed_demo")
    password = (tmp_path / "demo-password").read_text().strip()
    logged_in = client.post("/login/", {"username": "demo", "password": password})
    assert logged_in.status_code == 302
    hash_before = get_user_model().objects.get(username="demo").password

    call_command("seed_demo")

    assert get_user_model().objects.get(username="demo").password == hash_before
    assert client.get("/").wsgi_request.user.is_authenticated is True  # the session survived the restart


def test_demo_password_changes_the_password_when_set(settings, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path
    settings.DEMO_PASSWORD = ""
    call_command("seed_demo")
    settings.DEMO_PASSWORD = "a-chosen-demo-password"

    call_command("seed_demo")

    assert get_user_model().objects.get(username="demo").check_password("a-chosen-demo-password") is True
