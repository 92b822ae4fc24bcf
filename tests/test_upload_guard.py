"""Finding 5: a large body is refused before it is read or spooled to disk, when the sender may not upload there
or declares more than the limit. Raw HTTP against a live server, as an attacker would send it."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

DECLARED = 300 * 1024 * 1024
SENT = 4 * 1024 * 1024  # what the client sends before waiting for an answer; more than the in-memory limit
BOUNDARY = "----memalign-test"


def post_large(live_server, path: str, cookies: dict[str, str]) -> tuple[int | None, float]:
    """Declare a 300 MB multipart upload, send its first 4 MB, and return the status answered (None if the
    server kept reading instead) and how long the answer took."""
    url = urlsplit(live_server.url)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{cookies.get("csrftoken", "")}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nCookie: {cookie}\r\n"
        f"Referer: {live_server.url}/\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {DECLARED}\r\nConnection: close\r\n\r\n"
    ).encode() + head
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
        try:
            conn.sendall(request)
            conn.sendall(b"x" * (SENT - len(head)))
        except OSError:
            pass  # the server answered and closed without reading the rest: exactly what we want
        try:
            answer = conn.recv(4096)
        except (TimeoutError, ConnectionResetError):
            answer = b""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return (int(match.group(1)) if match else None), time.monotonic() - started


@pytest.fixture
def spool(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    return tmp_path


def cookies_for(client, user=None) -> dict[str, str]:
    if user is not None:
        client.force_login(user)
    client.get("/projects/" if user else "/login/")  # a page that sets the CSRF cookie, which anyone can get
    return {name: morsel.value for name, morsel in client.cookies.items()}


def test_an_anonymous_upload_is_sent_to_login_before_it_is_spooled(live_server, personas, spool, client):
    status, seconds = post_large(live_server, f"/p/{personas.project.slug}/import/", cookies_for(client))
    assert status == 302 and seconds < 3
    assert list(spool.iterdir()) == []


def test_a_viewer_upload_is_refused_before_it_is_spooled(live_server, personas, spool, client):
    status, _ = post_large(live_server, f"/p/{personas.project.slug}/import/", cookies_for(client, personas.viewer))
    assert status == 403
    assert list(spool.iterdir()) == []


def test_an_owner_upload_declared_over_the_limit_is_refused_before_it_is_spooled(live_server, personas, spool, client):
    status, _ = post_large(live_server, f"/p/{personas.project.slug}/import/", cookies_for(client, personas.owner))
    assert status == 413
    assert list(spool.iterdir()) == []


def test_a_large_body_to_any_other_page_is_refused_before_it_is_read(live_server, personas, spool, client):
    status, _ = post_large(live_server, "/login/", cookies_for(client))
    assert status == 413
    assert list(spool.iterdir()) == []
