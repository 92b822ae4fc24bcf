"""In a real browser, with a real worker: an owner starts an evaluation, watches its progress, reads the charts."""

import pytest
from playwright.sync_api import expect

from evaluation import curves
from tests.test_browser_site import log_in
from tests.test_evaluation import reviewed_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_starts_an_evaluation_and_sees_its_progress_and_charts(page, live_server, celery_worker, personas):
    reviewed_project(personas, 40)
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{personas.project.slug}/memory/")
    page.locator(".memory-nav").get_by_role("link", name="Evaluations").click()
    expect(page.locator(".memory-nav [aria-current=page]")).to_have_text("Evaluations")
    expect(page.locator("[data-estimated-calls]")).to_contain_text("judge calls")
    # Another evaluation of the project holds it: this one is seen waiting, then running to the end.
    running = curves.evaluation_lock(personas.project.pk)
    assert running.acquire(blocking=False)
    try:
        page.get_by_role("button", name="Start an evaluation").click()
        expect(page.locator("h1")).to_contain_text("Evaluation #")
        expect(page.locator("#evaluation-status progress")).to_be_visible()
        expect(page.locator("#evaluation-status")).to_have_attribute("data-status", "queued")
        expect(page.locator("#evaluation-status")).to_contain_text(
            "starts when the project's running evaluation has finished"
        )
        page.evaluate("window.notReloaded = true")
    finally:
        running.release()
    # The session worker runs one task at a time: the 40 reviews' memory work (embedding, distillation, training)
    # is queued before the evaluation's next look, which took over 60 s on a loaded machine.
    expect(page.locator("#evaluation-status")).to_have_attribute("data-status", "done", timeout=180_000)
    assert page.evaluate("window.notReloaded === true")  # the progress was polled in place
    expect(page.locator("[data-evaluation-done]")).not_to_have_text("0")
    for curve in ("heldout", "prequential"):
        chart = page.locator(f"img[data-chart={curve}]")
        expect(chart).to_be_visible()
        # The SVG loaded and decoded (a CSP or server error would leave it broken, with no natural size).
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
    expect(page.locator("#evaluation-points tbody tr").first).to_be_visible()
    page.goto(f"{live_server.url}/p/{personas.project.slug}/memory/evaluations/")
    expect(page.locator("#evaluations tr[data-evaluation-id]")).to_have_count(1)
