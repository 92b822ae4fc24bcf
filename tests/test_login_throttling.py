"""Wrong passwords lock an account out from the address they came from for a while, on the site and the admin."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD, make_user

LIMIT = 5


def login(client, username: str, password: str, path: str = "/login/", address: str = "10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def throttled(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def test_the_right_password_is_refused_after_too_many_wrong_ones(client, db, throttled):
    make_user("olivia")
    for _ in range(LIMIT - 1):
        assert login(client, "olivia", "wrong").status_code == 200  # the form again, with its error
    assert login(client, "olivia", "wrong").status_code == 429  # the last allowed failure locks
    response = login(client, "olivia", PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert f"Logging in is paused after {LIMIT} wrong passwords" in body and "Try again in 15 minutes" in body
    assert "_auth_user_id" not in client.session
    # Per account and address together: the same account from another address, and another account from
    # this address, still log in.
    assert login(client, "olivia", PASSWORD, address="10.9.9.9").status_code == 302
    client.logout()
    make_user("rafael")
    assert login(client, "rafael", PASSWORD).status_code == 302


def test_failures_on_other_accounts_do_not_lock_out_everyone_behind_an_address(client, db, throttled):
    """An office behind one address: someone's typos (or a guesser) there do not lock their colleagues out."""
    make_user("olivia")
    for n in range(LIMIT):
        login(client, f"guess{n}", "wrong", address="10.0.0.7")
    assert login(client, f"guess{LIMIT - 1}", "wrong", address="10.0.0.7").status_code == 200  # one try each
    for _ in range(LIMIT):
        login(client, "typo", "wrong", address="10.0.0.7")
    assert login(client, "typo", "wrong", address="10.0.0.7").status_code == 429
    assert login(client, "olivia", PASSWORD, address="10.0.0.7").status_code == 302


def test_the_lockout_ends_by_itself(client, db, throttled):
    throttled.AXES_COOLOFF_TIME = timedelta(seconds=1)
    make_user("olivia")
    for _ in range(LIMIT):
        login(client, "olivia", "wrong")
    assert login(client, "olivia", PASSWORD).status_code == 429
    time.sleep(1.5)
    assert login(client, "olivia", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, db, throttled):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    for _ in range(LIMIT):
        login(client, "root", "wrong", path="/admin/login/")
    response = login(client, "root", PASSWORD, path="/admin/login/")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
