"""In a real browser: follow a principle to the critique it came from; edit a principle, then roll it back."""

import re

import pytest
from playwright.sync_api import expect

from memory import principles, versions
from memory.locks import memory_writer
from memory.models import DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from tests.conftest import add_feedback, add_sample
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CRITIQUE = "A cheerful sign-off and an emoji to someone whose mother just died ignores the emotional context."
WORDING = "Replies to a bereavement must acknowledge the loss before anything else."


@pytest.fixture
def learned(personas):
    """One principle distilled from a reviewer's critique, recorded as version 1."""
    sample = add_sample(
        personas.project,
        "grief-1",
        inputs={"customer_message": "My mother died; please close her account."},
        outputs="Done! Have a great day! 😊",
    )
    feedback = add_feedback(sample, personas.reviewer, "fail", CRITIQUE)
    # Learned already: a worker left running by an earlier test then has nothing to distil into a version.
    DistilledFeedback.objects.create(feedback=feedback, revision=feedback.revision)
    principle = Principle.objects.create(project=personas.project, text=WORDING, label="fail")
    PrincipleSource.objects.create(principle=principle, feedback=feedback, feedback_revision=feedback.revision)
    with principles.changing(personas.project):
        version = versions.new_version(personas.project, MemoryVersion.Trigger.DISTILL, summary="distilled 1")
    Principle.objects.filter(pk=principle.pk).update(created_in=version)
    # The session's worker (started by an earlier test) may still be regenerating a project that had this id:
    # wait for its lock, so an edit here is not told the memory is busy.
    with memory_writer(personas.project.pk, wait=60):
        pass
    return principle, feedback


def test_a_viewer_follows_a_principle_to_its_source_critique(page, live_server, personas, learned):
    principle, feedback = learned
    log_in(page, live_server, "vera")
    page.goto(f"{live_server.url}/p/{personas.project.slug}/memory/")
    page.locator(".memory-nav").get_by_role("link", name="Principles").click()
    row = page.locator(f"#principle-rows tr[data-principle-id='{principle.pk}']")
    expect(row).to_contain_text("v1")  # the version that created it
    row.locator("a.principle-text").click()
    expect(page.locator("#principle-text")).to_have_text(WORDING)
    source = page.locator(f"#sources tr[data-source-feedback='{feedback.pk}']")
    expect(source).to_contain_text(CRITIQUE)
    expect(source.locator("a.source-author")).to_have_text("rafael")
    source.locator("a.source-sample").click()
    expect(page).to_have_url(re.compile(rf"/samples/{feedback.sample_id}/$"))
    expect(page.locator("#review-item")).to_have_attribute("data-sample-id", str(feedback.sample_id))
    expect(page.locator("body")).to_contain_text(CRITIQUE)


def test_an_owner_edits_a_principle_and_rolls_it_back(page, live_server, personas, learned):
    principle, _ = learned
    slug = personas.project.slug
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{slug}/memory/principles/{principle.pk}/")
    page.fill("#edit-form textarea", "Replies to a bereavement may skip condolences.")
    page.click("#edit-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("reworded (memory version", timeout=20_000)
    edit = MemoryVersion.objects.filter(project=personas.project).latest("number")
    assert (edit.trigger, edit.actor) == ("manual", personas.owner)
    expect(page.locator(".messages")).to_contain_text(f"reworded (memory version {edit.number})")
    expect(page.locator("#principle-text")).to_have_text("Replies to a bereavement may skip condolences.")
    expect(page.locator("#principle-history")).to_contain_text(f"v{edit.number - 1} → v{edit.number}")

    page.locator(".memory-nav").get_by_role("link", name="Versions").click()
    expect(page.locator(f"#version-rows tr[data-version='{edit.number}']")).to_contain_text("olivia")
    expect(page.locator(f"#version-rows tr[data-version='{edit.number}'] [data-active]")).to_be_visible()
    page.locator("#version-rows tr[data-version='1'] a.rollback-link").click()
    reworded = page.locator(f"#diff [data-diff='reworded'][data-principle-id='{principle.pk}']")
    expect(reworded.locator("del")).to_contain_text("may skip condolences.")
    expect(reworded.locator("ins")).to_contain_text("must acknowledge the loss before anything else.")
    page.click("#rollback-form button[type=submit]")

    expect(page.locator(".messages")).to_contain_text("Rolled back to v1's principles as version", timeout=20_000)
    rollback = MemoryVersion.objects.filter(project=personas.project).latest("number")
    assert (rollback.trigger, rollback.actor, rollback.number) == ("rollback", personas.owner, edit.number + 1)
    expect(page.locator("#diff-empty")).to_be_visible()  # v1 and the rollback hold the same principles
    expect(page.locator("#active-version")).to_contain_text(f"v{rollback.number}")
    page.goto(f"{live_server.url}/p/{slug}/memory/principles/{principle.pk}/")
    expect(page.locator("#principle-text")).to_have_text(WORDING)
