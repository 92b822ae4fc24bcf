"""In a real browser, with a real worker: start a run, watch it finish, filter, open a verdict, follow an example."""

import pytest
from playwright.sync_api import expect

from tests.conftest import add_feedback, add_sample
from tests.fake_anthropic import messages_text
from tests.test_browser_site import log_in
from tests.test_judge_runs import reviewed_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refunds_fail(request: dict) -> dict:
    """A model that fails every reply to a refund request, whatever the experts say."""
    text = (
        messages_text(request).split("<case>")[1].split("</case>")[0].lower()
    )  # the case judged, not its retrieved examples
    refund = "refund" in text or "money back" in text
    return {"value": "fail" if refund else "pass", "rationale": "Refund requests need an answer."}


def test_an_owner_runs_the_judge_and_explains_a_disagreement(
    page, live_server, celery_worker, personas, fake_anthropic
):
    lid = add_sample(
        personas.project,
        "kettle-lid",
        inputs={"customer_message": "Can I get a refund for just the kettle lid?"},
        outputs="Yes: reply with your order number and we refund the lid today.",
        judge_value="pass",
    )
    add_feedback(lid, personas.reviewer, "pass", "Answers the refund request directly.")
    reviewed_project(personas, "anthropic", concurrency=2)
    fake_anthropic.responder = refunds_fail
    fake_anthropic.latency = 0.4  # about two seconds for the run: long enough to watch it progress
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{personas.project.slug}/memory/")
    page.locator(".memory-nav").get_by_role("link", name="Runs").click()
    page.select_option("#scope", "reviewed")
    page.get_by_role("button", name="Run the aligned judge").click()
    expect(page.locator("h1")).to_contain_text("Aligned judge run")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#judge-run")).to_have_attribute("data-status", "done", timeout=30_000)
    expect(page.locator("[data-summary=done]")).to_have_text("9")
    expect(page.locator("[data-headline=aligned]")).to_be_visible()
    assert page.evaluate("window.notReloaded === true")  # it finished in place, polled, without a reload

    page.select_option("select[name=filter]", "disagree_experts")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("#verdict-rows tr[data-judgement-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("kettle-lid")
    rows.first.get_by_role("button", name="Why?").click()
    explanation = page.locator(".explanation")
    expect(explanation).to_contain_text("Refund requests need an answer.")
    example = explanation.locator("a[data-example-sample]").first
    sample_id = example.get_attribute("data-example-sample")
    example.click()
    expect(page.locator("#review-item")).to_have_attribute("data-sample-id", sample_id)
