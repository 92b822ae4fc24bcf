"""In a real browser: the runs page's "What would the judge see?" box keeps the page when it refuses an item, and
lists the principles its heading counts."""

import pytest
from playwright.sync_api import expect

from judging import tries
from memory import episodic
from memory.models import Principle
from memory.redis_client import get_redis
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_try_the_judge_refuses_in_place_and_shows_the_principles(page, live_server, personas, settings, monkeypatch):
    # As `make run` serves it: in DEBUG, django-htmx's error handler puts a 400, 403 or 404 answer in place of the
    # whole page (the refusal once did that).
    settings.DEBUG = True
    project = personas.project
    sample = add_sample(project, "refund-1", inputs={"customer_message": "Where is my refund?"}, outputs="Soon!")
    add_feedback(sample, personas.reviewer, "fail", "Says nothing about the refund.")
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    Principle.objects.create(project=project, text="Answer the <b>question</b> asked.", label="fail")

    get_redis().delete(f"{settings.MEMALIGN_NAMESPACE}:tries:{project.pk}:{personas.viewer.pk}")
    log_in(page, live_server, "vera")  # a viewer
    page.goto(f"{live_server.url}/p/{project.slug}/memory/runs/")
    page.fill("#id_input__customer_message", "   ")  # only spaces: the browser's `required` lets it through
    page.fill("#id_output", "Soon!")
    page.click("#try button[type=submit]")
    expect(page.locator("#judgement .error")).to_contain_text("Fill in every box")
    expect(page.locator("h1")).to_be_visible()  # the page is still there
    expect(page.locator("#id_output")).to_have_value("Soon!")  # and so is what was typed

    page.fill("#id_input__customer_message", "Where is my refund?")
    page.click("#try button[type=submit]")
    expect(page.locator("#judgement [data-verdict]")).to_have_attribute("data-verdict", "fail")
    principles = page.locator("#judgement [data-principle-id]")
    expect(principles).to_have_count(1)
    expect(principles.first).to_contain_text("Answer the <b>question</b> asked.")  # escaped: shown as typed

    monkeypatch.setattr(tries, "PER_MINUTE", 1)  # that try was the minute's last: the next is refused (429)
    page.click("#try button[type=submit]")
    expect(page.locator("#judgement .error")).to_contain_text("You tried the judge")
