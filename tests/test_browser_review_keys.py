"""In Chromium: typing a critique never fires the single-key shortcuts, whatever label key came before it.

Before the fix, a label key that agreed with the judge left the focus on the page: the "a" in "Fail" saved the
sample as agreed without the critique, and the letters after it reviewed the next samples too.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviews.models import Feedback, Membership, Role, Sample
from reviews.projects import create_project
from tests.conftest import add_sample, make_user
from tests.test_browser_review import log_in, wait_for_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every single-key shortcut of the review page (j k u a c ? and the label digits), in a critique long enough
# that the coaching nudge lets it through when it disagrees with the judge.
CRITIQUE = "Fail? jk: it caves, asks to undo 0 1 2 3 4 5 6 7 8 9 and a careless quick jab."


@pytest.fixture(params=[True, False], ids=["judge-blind", "verdict-shown"])
def reviewing(live_server, request):
    owner, reviewer = make_user("olivia"), make_user("rafael")
    project = create_project(
        owner,
        name="Support tone",
        criterion="Is the reply's tone appropriate?",
        label_kind="pass_fail",
        judge_blind=request.param,
    )
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    samples = [add_sample(project, f"s{i}", judge_value="pass") for i in range(1, 5)]
    return reviewer, project, samples


@pytest.mark.parametrize("label_key, label", [("1", "pass"), ("2", "fail")])
def test_typing_a_critique_after_a_label_key_saves_exactly_that_feedback(
    page, live_server, reviewing, label_key, label
):
    reviewer, project, samples = reviewing
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)

    page.keyboard.press(label_key)
    assert page.evaluate("document.activeElement.id") == "critique"
    assert page.locator("#typing-cue").is_visible()  # the page says the keys are off
    page.keyboard.type(CRITIQUE)
    assert Feedback.objects.filter(author=reviewer).count() == 0  # nothing saved while typing
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[1].pk)

    saved = list(Feedback.objects.filter(author=reviewer).values_list("sample_id", "label", "critique"))
    assert saved == [(samples[0].pk, label, CRITIQUE)]
    # Outside the box the keys work again, and the cue is gone.
    assert not page.locator("#typing-cue").is_visible()


def test_agree_key_never_overrides_a_label_or_critique_the_reviewer_gave(page, live_server, reviewing):
    reviewer, project, samples = reviewing
    if project.judge_blind:
        pytest.skip("no agree key before the verdict is shown")
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)
    page.keyboard.press("2")  # fail: the judge said pass
    page.keyboard.press("Escape")  # out of the box: single keys work again
    page.keyboard.press("a")  # would save the judge's "pass" over the reviewer's "fail"
    assert page.evaluate("document.activeElement.id") == "critique"
    assert Feedback.objects.filter(author=reviewer).count() == 0
    assert page.locator('input[name="label"]:checked').get_attribute("value") == "fail"
    assert Sample.objects.filter(project=project).count() == 4


def test_a_blind_first_pass_reveals_the_verdict_beside_the_chosen_label(page, live_server, reviewing):
    reviewer, project, samples = reviewing
    if not project.judge_blind:
        pytest.skip("the verdict shows from the start")
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)
    assert page.locator("#verdict-hidden").is_visible() and page.locator("#judge-value").count() == 0
    page.keyboard.press("2")  # fail; the judge said pass
    page.wait_for_selector("#judge-value")
    assert "You disagree with the judge" in page.locator("#verdict-revealed").inner_text()
    assert page.evaluate("document.activeElement.id") == "critique"
    page.keyboard.type(CRITIQUE)
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[1].pk)
    saved = Feedback.objects.get(author=reviewer)
    assert (saved.label, saved.critique, saved.verdict_shown) == ("fail", CRITIQUE, False)


def test_the_agree_key_says_why_it_is_off_in_a_blind_first_pass(page, live_server, reviewing):
    reviewer, project, samples = reviewing
    if not project.judge_blind:
        pytest.skip("the agree key works from the start")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)
    page.keyboard.press("?")
    expect(page.locator("#key-help")).to_contain_text("hidden until you choose a label")
    page.keyboard.press("a")
    expect(page.locator("#key-note")).to_be_visible()
    expect(page.locator("#key-note")).to_contain_text("its verdict is hidden until you choose a label")
    assert "hidden until you choose a label" in page.locator("#announcer").text_content()
    assert Feedback.objects.filter(author=reviewer).count() == 0
    page.keyboard.press("1")  # pass, as the judge: revealed, then saved
    page.wait_for_selector("#judge-value")
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[1].pk)
    expect(page.locator("#key-note")).to_be_hidden()  # the next item starts without it
    assert Feedback.objects.filter(author=reviewer).count() == 1
    assert violations == []


def test_saves_and_refusals_are_announced_in_a_live_region(page, live_server, reviewing):
    reviewer, project, samples = reviewing
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)
    assert page.locator("#announcer").get_attribute("aria-live") == "polite"
    page.keyboard.press("2")  # fail without a critique: refused
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#feedback-error")
    assert "say why in a critique" in page.locator("#announcer").text_content()
    page.keyboard.type(CRITIQUE)
    page.keyboard.press("Control+Enter")
    wait_for_item(page, samples[1].pk)
    assert "Saved your review of s1" in page.locator("#announcer").text_content()


def test_a_label_key_pressed_while_the_save_is_on_its_way_labels_the_next_item(page, live_server, reviewing):
    """After Ctrl+Enter, a digit pressed before the next item has arrived was typed into the critique being sent,
    and lost: the next save was then refused ("pick a label first"). It now labels the next item."""
    reviewer, project, samples = reviewing
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{samples[0].pk}/?filter=todo&order=plain")
    wait_for_item(page, samples[0].pk)
    held = []  # the save's request, held until the key has been pressed: the key lands while it is on its way
    page.route("**/feedback/**", lambda route: held.append(route))
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    while not held:  # the request reaches the route handler
        page.wait_for_timeout(20)
    page.keyboard.press("2")
    assert page.locator('input[name="label"]:checked').get_attribute("data-key") == "1"  # not on the item saved
    held[0].continue_()
    page.unroute("**/feedback/**")
    wait_for_item(page, samples[1].pk)
    expect(page.locator('input[name="label"]:checked')).to_have_attribute("data-key", "2")
    assert page.evaluate("document.activeElement.id") == "critique"  # the critique's turn, as after a label key
    assert list(Feedback.objects.filter(author=reviewer).values_list("sample_id", "label")) == [(samples[0].pk, "pass")]
