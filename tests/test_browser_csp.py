"""Finding 9: a Content-Security-Policy on every page, and the whole review flow still works under it in Chromium
with no violation reported: import (its progress script), keyboard review through htmx, a confirmed delete."""

from __future__ import annotations

import pytest

from reviews.models import Feedback, Sample
from tests.test_browser_review import DEMO_FILE, log_in, team, upload, wait_for_item  # noqa: F401  (team: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_carries_the_policy(client, personas):
    client.force_login(personas.owner)
    for path in ("/projects/", f"/p/{personas.project.slug}/", "/login/", "/health/"):
        policy = client.get(path).headers.get("Content-Security-Policy", "")
        assert (
            "script-src 'self'" in policy and "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        ), path
        assert "unsafe-inline" not in policy


def test_the_review_flow_works_under_the_policy(page, live_server, team, celery_worker):  # noqa: F811
    owner, reviewer, project = team
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    dialogs: list[str] = []

    log_in(page, live_server, "olivia")
    upload(page, live_server, project, DEMO_FILE)  # the import's own page, until the worker has written it
    assert Sample.objects.filter(project=project).count() == 30

    page.context.clear_cookies()
    log_in(page, live_server, "rafael")
    first, second = Sample.objects.filter(project=project).order_by("id")[:2]
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{first.pk}/")
    wait_for_item(page, first.pk)
    page.keyboard.press("a")  # agree, saved through htmx
    wait_for_item(page, second.pk)
    page.keyboard.press("2")
    page.keyboard.type("Too breezy for a complaint.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"() => document.getElementById('review-item').dataset.sampleId !== '{second.pk}'")
    assert Feedback.objects.filter(author=reviewer).count() == 2
    page.keyboard.press("Control+Enter")  # no label: refused with a 422 that shows the same item and says why
    page.wait_for_selector("#feedback-error")
    assert Feedback.objects.filter(author=reviewer).count() == 2

    # Deleting asks first (data-confirm, handled by memalign.js): dismissed keeps it, accepted deletes it.
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{first.pk}/")

    def answer(dialog, accept: bool) -> None:
        dialogs.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("button:has-text('Delete my feedback')")
    assert Feedback.objects.filter(author=reviewer, sample=first).exists()
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("button:has-text('Delete my feedback')")
    page.wait_for_selector(".messages")
    assert not Feedback.objects.filter(author=reviewer, sample=first).exists()
    assert dialogs == ["Delete your feedback? The judge will unlearn it."] * 2
    assert violations == []
