"""In Chromium: import files through the page, review with the keyboard alone, edit a critique, keep XSS inert,
and go through the whole demo project without touching the mouse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from reviews.feedback import save_feedback
from reviews.models import Feedback, Membership, Project, Role, Sample
from reviews.projects import create_project
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO_FILE = Path(__file__).resolve().parents[1] / "reviews" / "demo" / "customer_support_tone.jsonl"
PAYLOAD = '<img src=x onerror="window.__xss=1;document.body.dataset.pwned=1">'
SCRIPT = "<script>window.__xss=2</script>"
SVG = '<svg onload="window.__xss=3"></svg>'


def log_in(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/")


def current_item(page) -> int:
    return int(page.locator("#review-item").get_attribute("data-sample-id"))


def wait_for_item(page, sample_id: int) -> None:
    page.wait_for_selector(f'#review-item[data-sample-id="{sample_id}"]')
    # After a full page load the item can be parsed before review.js (at the end of the body) has run.
    page.wait_for_selector("html[data-review-keys=ready]", state="attached")


def upload(page, live_server, project, path: Path) -> None:
    """Upload on the import page, then wait on the import's own page until the worker has finished it."""
    page.goto(f"{live_server.url}/p/{project.slug}/import/")
    page.set_input_files("#id_file", str(path))
    page.click("#import-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/p/{project.slug}/import/\d+/$"))
    ended = ", ".join(f'#import-run[data-status="{status}"]' for status in ("done", "rejected", "failed"))
    page.wait_for_selector(ended, timeout=60_000)


@pytest.fixture
def team():
    owner, reviewer = make_user("olivia"), make_user("rafael")
    # The verdict shown from the start (a project made before the judge-blind first pass): "a" agrees with it.
    project = create_project(
        owner,
        name="Support tone",
        criterion="Is the reply's tone appropriate?",
        label_kind="pass_fail",
        judge_blind=False,
    )
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    return owner, reviewer, project


def test_import_then_review_three_samples_with_the_keyboard_and_edit_one(page, live_server, team, celery_worker):
    owner, reviewer, project = team
    log_in(page, live_server, "olivia")
    upload(page, live_server, project, DEMO_FILE)
    assert "customer_support_tone.jsonl: 30 new samples imported." in page.locator("#import-run").inner_text()
    assert Sample.objects.filter(project=project).count() == 30
    page.click("text=Go to the queue")
    page.wait_for_url(re.compile(rf"/p/{project.slug}/queue/$"))

    page.context.clear_cookies()
    log_in(page, live_server, "rafael")
    samples = list(Sample.objects.filter(project=project).order_by("id"))
    requests: list[tuple[str, str]] = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    # From the queue to the first sample by keyboard alone: Tab to "Review the first one", then Enter.
    page.goto(f"{live_server.url}/p/{project.slug}/queue/")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Review the first one":
            break
    else:
        raise AssertionError("Tab never reached the 'Review the first one' link")
    page.keyboard.press("Enter")
    wait_for_item(page, samples[0].pk)
    page.evaluate("window.__sameDocument = true")  # survives only if no page load happens from here on
    next_url = f"{live_server.url}/p/{project.slug}/samples/{samples[1].pk}/?filter=todo&order=plain"
    page.wait_for_load_state("networkidle")  # the reviewer reads; meanwhile the preload of the next one lands
    # The Next link's target was preloaded as soon as the item was shown.
    assert any(method == "GET" and url.startswith(next_url + "&v=") for method, url in requests), requests

    # 1: the judge said pass and it is right: agree with one key.
    assert samples[0].judge_value == "pass"
    page.keyboard.press("a")
    wait_for_item(page, samples[1].pk)
    # The save answered with the next item: moving on took no request of its own, and the address followed.
    post = requests.index(
        ("POST", f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/feedback/?filter=todo&order=plain")
    )
    assert not [r for r in requests[post + 1 :] if r[0] == "GET" and r[1].startswith(next_url)], requests
    assert page.url == next_url
    assert "Saved your review of demo-001" in page.locator("#saved-cue").inner_text()

    # 2: disagree: the digit key picks fail and puts the cursor in the critique box.
    page.keyboard.press("2")
    assert page.evaluate("document.activeElement.id") == "critique"
    page.keyboard.type("Promises next-day delivery it cannot guarantee.")
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[2].pk)

    # 3: a critique is required when disagreeing: saving without one is refused with the reason, in place.
    page.keyboard.press("2")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#feedback-error")
    assert "You chose fail, the judge said pass: say why in a critique" in page.locator("#feedback-error").inner_text()
    assert current_item(page) == samples[2].pk
    page.keyboard.press("c")
    page.keyboard.type("Cheerful boilerplate for a bereavement.")
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[3].pk)
    assert page.url.endswith(f"/samples/{samples[3].pk}/?filter=todo&order=plain")

    saved = {f.sample_id: f for f in Feedback.objects.filter(author=reviewer)}
    assert (saved[samples[0].pk].label, saved[samples[0].pk].critique) == ("pass", "")
    assert (saved[samples[1].pk].label, saved[samples[1].pk].critique) == (
        "fail",
        "Promises next-day delivery it cannot guarantee.",
    )
    assert (saved[samples[2].pk].label, saved[samples[2].pk].critique) == (
        "fail",
        "Cheerful boilerplate for a bereavement.",
    )
    assert len(saved) == 3

    # Back with k to the second one, and edit its critique.
    page.keyboard.press("k")
    wait_for_item(page, samples[2].pk)
    page.keyboard.press("k")
    wait_for_item(page, samples[1].pk)
    assert page.locator("#critique").input_value() == "Promises next-day delivery it cannot guarantee."
    page.keyboard.press("c")
    page.keyboard.press("Control+End")
    page.keyboard.type(" And the tone is gushing.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"() => document.getElementById('review-item').dataset.sampleId !== '{samples[1].pk}'")
    edited = Feedback.objects.get(author=reviewer, sample=samples[1])
    assert (edited.revision, edited.critique) == (
        2,
        "Promises next-day delivery it cannot guarantee. And the tone is gushing.",
    )
    assert Feedback.objects.filter(author=reviewer).count() == 3

    # j and k move without saving; ? shows the keys.
    here = current_item(page)
    page.keyboard.press("j")
    page.wait_for_function(f"() => document.getElementById('review-item').dataset.sampleId !== '{here}'")
    assert page.locator("#key-help").is_hidden()
    page.keyboard.press("?")
    assert page.locator("#key-help").is_visible()
    assert page.evaluate("window.__sameDocument") is True  # never a page load


def test_a_stale_edit_in_the_browser_is_refused_with_a_message(page, live_server, team):
    owner, reviewer, project = team
    sample = Sample.objects.create(
        project=project, external_id="s1", inputs={"q": "x"}, outputs="y", judge_value="pass"
    )
    save_feedback(sample, reviewer, "fail", "First version of the critique.")
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/?filter=mine")
    wait_for_item(page, sample.pk)
    save_feedback(sample, reviewer, "fail", "Changed in another tab.", loaded_revision=1)
    page.keyboard.press("c")
    page.keyboard.type(" More.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#feedback-error")
    assert "changed elsewhere since you opened it" in page.locator("#feedback-error").inner_text()
    assert Feedback.objects.get().critique == "Changed in another tab."


def xss_file(tmp_path: Path) -> Path:
    records = [
        {"external_id": "plain", "inputs": {"q": "hello"}, "outputs": "hi", "judge_value": "pass"},
        {
            "external_id": f"x {PAYLOAD}",
            "inputs": {PAYLOAD: f"{SCRIPT} {SVG}", "nested": {"deep": PAYLOAD}},
            "outputs": f"{PAYLOAD}\n{SCRIPT}",
            "expectations": {"e": SVG},
            "judge_value": "pass",
            "judge_rationale": f"{SCRIPT}{PAYLOAD}",
            "metadata": {"m": PAYLOAD},
            "expert_label": "fail",
            "expert_critique": f"Owner says {PAYLOAD}",
            "reviewer": "olivia",
        },
    ]
    path = tmp_path / "xss.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def assert_inert(page) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("main img, main svg, main script").count() == 0


def test_xss_payloads_stay_inert_and_show_as_text(page, live_server, team, tmp_path, celery_worker):
    owner, reviewer, project = team
    log_in(page, live_server, "olivia")
    upload(page, live_server, project, xss_file(tmp_path))
    assert_inert(page)
    page.goto(f"{live_server.url}/p/{project.slug}/queue/?filter=all")  # olivia reviewed it in the file
    assert page.get_by_text(f"x {PAYLOAD}").is_visible()  # the external id, in the queue, as text
    assert_inert(page)

    plain, evil = Sample.objects.filter(project=project).order_by("id")
    project.reviews_per_sample = 2  # olivia's review in the file leaves evil in rafael's queue (overlap)
    project.save(update_fields=["reviews_per_sample"])
    page.context.clear_cookies()
    log_in(page, live_server, "rafael")
    # Reach the payload through the keyboard path: saved, then swapped in from the prefetched HTML.
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{plain.pk}/")
    wait_for_item(page, plain.pk)
    page.keyboard.press("a")
    wait_for_item(page, evil.pk)
    assert_inert(page)
    output = page.locator("#output .pre")
    assert output.inner_text() == f"{PAYLOAD}\n{SCRIPT}"  # literally, line break kept
    assert page.get_by_text(f"{SCRIPT}{PAYLOAD}").is_visible()  # the rationale
    # The reviewer writes a payload of their own as a critique, and reloads the page for good measure.
    page.keyboard.press("2")
    page.keyboard.type(f"Mine: {SVG}")
    with page.expect_response(lambda r: r.request.method == "POST" and "/feedback/" in r.url) as saving:
        page.keyboard.press("Control+Enter")
    assert saving.value.status == 200
    page.wait_for_selector('p.ok[role="status"]')  # nothing left to review: the saved item stays, marked saved
    assert_inert(page)
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{evil.pk}/?filter=mine")
    assert_inert(page)
    assert page.locator("#critique").input_value() == f"Mine: {SVG}"
    assert page.get_by_text(f"Owner says {PAYLOAD}").is_visible()  # others' feedback, shown now
    page.locator("details.metadata summary").click()
    assert page.locator("details.metadata .pre").inner_text() == PAYLOAD
    assert_inert(page)

    # The owner's overview lists the reviewer's critique.
    page.context.clear_cookies()
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/")
    assert page.get_by_text(f"Mine: {SVG}").is_visible()
    assert_inert(page)


def test_a_bad_file_is_refused_in_the_page_with_its_lines(page, live_server, team, tmp_path, celery_worker):
    owner, reviewer, project = team
    path = tmp_path / "bad.csv"
    path.write_text("external_id,inputs,outputs,judge_value\na,hi,hello,pass\nb,hi,,maybe\na,hi,hello,fail\n")
    log_in(page, live_server, "olivia")
    upload(page, live_server, project, path)
    page.wait_for_selector("#import-errors")
    text = page.locator("#import-errors").inner_text()
    assert "bad.csv was not imported: 3 problems; fix them and import again. Nothing was written." in text
    assert "Line 3: outputs is missing" in text
    assert "Line 3: judge_value: 'maybe' is not a label of this project; expected one of: pass, fail." in text
    assert "Line 4: external_id 'a' already appears on line 2" in text
    assert not Sample.objects.exists()
    # Fix the file and import it again.
    path.write_text("external_id,inputs,outputs,judge_value\na,hi,hello,pass\n")
    page.click("text=Import a file")
    upload(page, live_server, project, path)
    assert "bad.csv: 1 new sample imported." in page.locator("#import-run").inner_text()
    assert Sample.objects.count() == 1


def test_the_demo_project_with_the_keyboard_alone(page, live_server, settings):
    """The done-when: seed_demo, log in as demo, and review all 30 samples without the mouse."""
    settings.DEBUG = True  # seed_demo refuses production mode
    settings.DEMO_PASSWORD = "demo-password-for-tests"
    call_command("seed_demo")
    project = Project.objects.get(slug="customer-support-tone")
    samples = list(Sample.objects.filter(project=project).order_by("id"))
    assert len(samples) == 30
    log_in(page, live_server, "demo", "demo-password-for-tests")
    page.goto(f"{live_server.url}/p/{project.slug}/queue/")
    page.keyboard.press("Tab")  # reach the first sample from the queue by keyboard too
    page.locator("text=Review the first one").focus()
    page.keyboard.press("Enter")
    wait_for_item(page, samples[0].pk)
    for index in range(len(samples)):
        # Whatever order the queue serves (import order, or what teaches most once a worker ranked it).
        here = current_item(page)
        sample = Sample.objects.get(pk=here)
        if index % 3 == 2:  # every third: correct the judge, with a reason
            page.keyboard.press("2" if sample.judge_value == "pass" else "1")
            page.keyboard.type(f"Critique {index}: the tone does not fit.")
            page.keyboard.press("Control+Enter")
        else:  # the demo is a new project, judge-blind: choose the label first (the judge's, here), then save
            page.keyboard.press("1" if sample.judge_value == "pass" else "2")
            page.keyboard.press("Control+Enter")
        if index < len(samples) - 1:
            page.wait_for_function(f"() => document.getElementById('review-item').dataset.sampleId !== '{here}'")
            page.wait_for_selector("html[data-review-keys=ready]", state="attached")
    page.wait_for_selector('p.ok[role="status"]')  # the last one: saved, nothing left to move to
    feedback = Feedback.objects.filter(project=project, author__username="demo")
    assert feedback.count() == 30
    assert feedback.filter(agrees_with_judge=False).count() == 10
    page.goto(f"{live_server.url}/p/{project.slug}/queue/")
    assert "You have reviewed every sample" in page.locator("#queue-rows").inner_text()
    assert page.locator('[data-filter="todo"] .count').inner_text() == "0"
