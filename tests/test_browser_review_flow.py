"""In Chromium: the review flow's ergonomics. The preloaded next item, the saved cue and its undo, critique
coaching, the remembered criterion, the labels and Save on screen at 1366×900, and the page at phone width."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.signals import request_started

from reviews.models import Feedback, Membership, Role, Sample
from reviews.projects import create_project
from tests.conftest import make_user
from tests.test_browser_review import current_item, log_in, wait_for_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("MEMALIGN_SCREENSHOTS", "/tmp/memalign-screenshots"))
LONG_OUTPUT = "\n".join(f"Line {n}: thank you for your patience while we look into your order." for n in range(60))


@pytest.fixture
def project():
    owner, reviewer = make_user("olivia"), make_user("rafael")
    project = create_project(
        owner,
        name="Support tone",
        criterion="Is the reply's tone appropriate for the customer's situation? " * 6,
        label_kind="pass_fail",
        judge_blind=False,  # "a" agrees with the verdict shown from the start
    )
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    for n in range(4):
        Sample.objects.create(
            project=project,
            external_id=f"reply-{n}",
            inputs={"customer_message": f"Where is my order number {n}? It is two weeks late."},
            outputs=LONG_OUTPUT if n == 0 else f"Sorry for the wait, order {n} ships today.",
            judge_value="pass",
            judge_rationale="Polite and on topic.",
        )
    return project


@pytest.fixture
def server_hits():
    """Every request the live server received, as path?query (the live server runs in this process)."""
    hits: list[str] = []

    def record(sender, environ, **kwargs):
        hits.append(f"{environ['PATH_INFO']}?{environ.get('QUERY_STRING', '')}")

    request_started.connect(record)
    yield hits
    request_started.disconnect(record)


def samples_of(project) -> list[Sample]:
    return list(Sample.objects.filter(project=project).order_by("id"))


def test_j_shows_the_preloaded_item_without_asking_the_server(page, live_server, project, server_hits):
    samples = samples_of(project)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/")
    wait_for_item(page, samples[0].pk)
    page.wait_for_load_state("networkidle")
    preloads = [hit for hit in server_hits if hit.startswith(f"/p/{project.slug}/samples/{samples[1].pk}/?")]
    assert len(preloads) == 1 and "&v=" in preloads[0], server_hits
    before = len(server_hits)
    page.keyboard.press("j")
    wait_for_item(page, samples[1].pk)
    assert page.url.endswith(f"/samples/{samples[1].pk}/?filter=todo&order=plain")
    assert not [h for h in server_hits[before:] if f"/samples/{samples[1].pk}/" in h], server_hits[before:]
    assert "2</strong> of 4" in page.locator("#queue-position").inner_html()
    # Back: the browser's history, reloaded from the server (never a stale snapshot).
    page.go_back()
    wait_for_item(page, samples[0].pk)
    assert page.url.endswith(f"/samples/{samples[0].pk}/")


def test_saved_cue_and_undo_with_the_keyboard(page, live_server, project):
    samples = samples_of(project)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/")
    wait_for_item(page, samples[0].pk)
    assert "1</strong> of 4" in page.locator("#queue-position").inner_html()
    page.keyboard.press("a")
    wait_for_item(page, samples[1].pk)
    cue = page.locator("#saved-cue")
    assert cue.is_visible() and "Saved your review of reply-0" in cue.inner_text()
    assert "1</strong> of 3" in page.locator("#queue-position").inner_html()  # one fewer to review
    assert Feedback.objects.filter(sample=samples[0]).exists()
    page.keyboard.press("u")
    wait_for_item(page, samples[0].pk)
    assert "Undone" in page.locator("#saved-cue").inner_text()
    assert not Feedback.objects.filter(sample=samples[0]).exists()
    assert page.url.endswith(f"/samples/{samples[0].pk}/?filter=todo&order=plain")
    # Reviewed again, the undo button fades out after ten seconds and u does nothing then.
    page.keyboard.press("a")
    wait_for_item(page, samples[1].pk)
    page.locator("[data-action=undo]").wait_for(state="hidden", timeout=15_000)
    page.keyboard.press("u")
    page.wait_for_timeout(300)
    assert current_item(page) == samples[1].pk and Feedback.objects.filter(sample=samples[0]).exists()


def test_a_vague_critique_is_nudged_then_saved_on_the_second_try(page, live_server, project):
    samples = samples_of(project)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[1].pk}/")
    wait_for_item(page, samples[1].pk)
    page.keyboard.press("2")
    page.keyboard.type("bad tone")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#coaching")
    assert "says the judge is wrong, not why" in page.locator("#coaching").inner_text()
    assert current_item(page) == samples[1].pk and not Feedback.objects.exists()
    page.keyboard.press("c")
    page.keyboard.press("Control+A")
    page.keyboard.type("Cheerful boilerplate while the order is two weeks late.")
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[2].pk)
    assert Feedback.objects.get().critique == "Cheerful boilerplate while the order is two weeks late."


def test_the_folded_criterion_is_remembered(page, live_server, project):
    samples = samples_of(project)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/")
    wait_for_item(page, samples[0].pk)
    assert page.locator("[data-criterion]").evaluate("d => d.open") is True
    page.locator("[data-criterion] summary").click()
    page.wait_for_function("() => document.cookie.includes('memalign-criterion-folded=1')")  # the toggle event ran
    page.keyboard.press("j")
    wait_for_item(page, samples[1].pk)
    assert page.locator("[data-criterion]").evaluate("d => d.open") is False
    page.reload()
    wait_for_item(page, samples[1].pk)
    assert page.locator("[data-criterion]").evaluate("d => d.open") is False


def test_labels_and_save_are_on_screen_at_1366_by_900(page, live_server, project):
    samples = samples_of(project)
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/")  # a 60-line output
    wait_for_item(page, samples[0].pk)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review-1366x900.png"))
    for selector in ("fieldset.labels", "#feedback-form button[type=submit]", "#critique"):
        box = page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 900, (selector, box)
    page.mouse.wheel(0, 1500)  # reading down the long output, the panel stays
    page.wait_for_timeout(200)
    box = page.locator("#feedback-form button[type=submit]").bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    page.goto(f"{live_server.url}/p/{project.slug}/queue/")
    page.screenshot(path=str(SHOTS / "queue-1366x900.png"), full_page=True)
    assert "Where is my order number 1?" in page.locator('[data-column="input"]').nth(1).inner_text()


def test_the_review_page_works_at_phone_width(page, live_server, project):
    samples = samples_of(project)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[1].pk}/")
    wait_for_item(page, samples[1].pk)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    label = page.locator("label.label-choice", has_text="fail")
    box = label.bounding_box()
    assert box and box["height"] >= 36 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    label.click()
    page.locator("#critique").fill("Cheerful boilerplate while the order is two weeks late.")
    page.locator("#feedback-form button[type=submit]").click()
    wait_for_item(page, samples[2].pk)
    assert Feedback.objects.get().label == "fail"
    page.screenshot(path=str(SHOTS / "review-390-saved.png"))
    page.goto(f"{live_server.url}/p/{project.slug}/queue/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(SHOTS / "queue-390.png"), full_page=True)
