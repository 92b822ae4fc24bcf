"""In a real browser: pick a sample in the playground, see what it retrieves and the request, run the judge."""

import pytest
from playwright.sync_api import expect

from memory import episodic
from memory.models import Principle
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_use_the_playground(page, live_server, personas):
    project = personas.project
    refund = add_sample(
        project, "refund-1", inputs={"customer_message": "Where is my refund?"}, outputs="Soon <b>!</b>"
    )
    twin = add_sample(project, "refund-2", inputs={"customer_message": "Where is my refund??"}, outputs="Soon!")
    add_feedback(refund, personas.reviewer, "fail", "Says nothing about the refund.")
    add_feedback(twin, personas.reviewer, "fail", "Vague about the refund.")
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    Principle.objects.create(project=project, text="A reply must answer the question asked.", label="fail")

    log_in(page, live_server, "vera")  # a viewer
    page.goto(f"{live_server.url}/p/{project.slug}/memory/")
    page.click("#memory-links >> text=Playground")
    page.select_option("#pick-sample", label="refund-1")
    page.click("#playground-pick button[type=submit]")
    expect(page.locator("#id_input__customer_message")).to_have_value("Where is my refund?")
    expect(page.locator("#id_output")).to_have_value("Soon <b>!</b>")
    page.click("#playground-form button[value=judge]")

    examples = page.locator("#playground-examples [data-feedback-id]")
    expect(examples).to_have_count(1)  # the picked sample's own feedback is left out
    expect(examples.first).to_contain_text("Vague about the refund.")
    expect(page.locator("#playground-principles")).to_contain_text("A reply must answer the question asked.")
    expect(page.locator("#prompt-user")).to_contain_text("Soon &lt;b&gt;!&lt;/b&gt;")  # escaped for the model
    expect(page.locator("#prompt-system")).to_contain_text("<criterion>Is the reply's tone appropriate?</criterion>")
    assert int(page.locator("[data-tokens]").get_attribute("data-tokens")) > 100
    expect(page.locator("#playground-verdict [data-verdict]")).to_have_attribute("data-verdict", "fail")
    page.locator("#playground-prompt summary").click()
    expect(page.locator("#prompt-request")).to_contain_text('"cache_control"')
