"""In a real browser, with a real worker: a critique written on the review page shows up in the memory."""

import re

import pytest
from playwright.sync_api import expect

from memory import episodic
from reviews.models import Feedback
from tests.conftest import add_sample
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_critique_reaches_episodic_memory_and_a_principle_linking_back(
    page, live_server, celery_worker, personas, settings
):
    settings.MEMALIGN_DISTILL_DELAY_SECONDS = 0.05
    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 0.2
    sample = add_sample(
        personas.project,
        "grief-1",
        inputs={"customer_message": "My mother died; please close her account."},
        outputs="Done! Thanks so much for reaching out, have a great day! 😊",
        judge_value="pass",
    )
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{personas.project.slug}/samples/{sample.pk}/")
    page.keyboard.press("2")  # the second label: fail
    page.fill(
        "#critique",
        "A cheerful sign-off and an emoji to someone whose mother just died ignores the emotional context completely.",
    )
    page.keyboard.press("Control+Enter")
    expect(page.locator("#review-item")).to_be_visible()
    feedback = None
    for _ in range(100):
        feedback = Feedback.objects.filter(sample=sample).first()
        if feedback:
            break
        page.wait_for_timeout(50)
    assert feedback is not None and feedback.label == "fail"

    page.goto(f"{live_server.url}/p/{personas.project.slug}/memory/")
    expect(page.locator("[data-stat=episodic]")).to_have_text("1", timeout=15_000)  # the status block polls
    assert feedback.pk in episodic.entries(personas.project.pk)
    page.reload()
    for _ in range(30):
        if page.locator("#principles .principle").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    principle = page.locator("#principles .principle").first
    expect(principle).to_contain_text("emotional context")
    principle.locator("a").click()  # the overview lists it; its page shows its sources
    link = page.locator(f"#sources [data-source-feedback='{feedback.pk}'] a.source-sample")
    expect(link).to_have_attribute("href", re.compile(rf"/samples/{sample.pk}/$"))
    link.click()
    expect(page.locator("#review-item")).to_have_attribute("data-sample-id", str(sample.pk))
