"""In Chromium, with a real worker: a run's page fills its verdict table as the run goes and when it ends, with
no reload (it used to say "No verdict matches yet." until the reader reloaded), and its summary reads at a glance.
The run is started from the overview's "Run the judge", as an owner's first hour would."""

import re

import pytest
from playwright.sync_api import expect

from tests.fake_anthropic import messages_text
from tests.test_browser_site import log_in
from tests.test_judge_runs import reviewed_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refunds_fail(request: dict) -> dict:
    text = messages_text(request).split("<case>")[1].split("</case>")[0].lower()
    return {"value": "fail" if "refund" in text or "money back" in text else "pass", "rationale": "Refunds first."}


def test_the_verdict_table_fills_in_without_a_reload(page, live_server, celery_worker, personas, fake_anthropic):
    reviewed_project(personas, "anthropic", concurrency=1)
    fake_anthropic.responder = refunds_fail
    fake_anthropic.latency = 0.6  # eight verdicts one at a time: about five seconds to watch
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{personas.project.slug}/")
    expect(page.locator("#headline-none")).to_contain_text("the aligned judge has not run")

    page.locator("#overview-run select").select_option("reviewed")
    page.locator("#overview-run").get_by_role("button", name="Run the judge").click()

    expect(page.locator("h1")).to_contain_text("Aligned judge run")
    rows = page.locator("#verdict-rows tr[data-judgement-id]")
    assert rows.count() < 8  # the page opened while the run was still going
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#judge-run")).to_have_attribute("data-status", "done", timeout=60_000)
    expect(rows).to_have_count(8, timeout=10_000)
    expect(page.locator("#verdict-rows")).not_to_contain_text("No verdict matches")
    assert page.evaluate("window.notReloaded === true")
    expect(page.locator("[data-summary=time]")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    expect(page.locator("#run-origin")).to_contain_text("Started by olivia")

    page.goto(f"{live_server.url}/p/{personas.project.slug}/")
    expect(page.locator("[data-headline=aligned]")).to_be_visible()
    expect(page.locator("[data-recall-label=fail]")).to_contain_text("of 4")
