"""In a real browser: an owner previews a reviewer's feedback for unaligning, confirms, and both memories change."""

import re

import pytest
from playwright.sync_api import expect

from memory import episodic
from memory.models import MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_unalign_a_reviewers_feedback_after_the_preview(page, live_server, personas):
    project = personas.project
    sofia = make_user("sofia")
    Membership.objects.create(project=project, user=sofia, role=Role.REVIEWER)
    rafael = [
        add_feedback(add_sample(project, f"r{i}"), personas.reviewer, "fail", f"Curt <reply> {i}.") for i in range(2)
    ]
    kept = add_feedback(add_sample(project, "s0"), sofia, "fail", "Cold reply.")
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    learned = Principle.objects.create(project=project, text="Curt replies fail.", label="fail")
    PrincipleSource.objects.bulk_create(
        PrincipleSource(principle=learned, feedback=f, feedback_revision=f.revision) for f in rafael
    )

    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/memory/")
    page.locator(".memory-nav").get_by_role("link", name="Episodic").click()
    expect(page.locator("#examples [data-feedback-id]")).to_have_count(3)
    page.click("#unalign-link")
    page.select_option("#id_reviewer", label="rafael")
    page.click("#unalign-form button[type=submit]")
    preview = page.locator("#unalign-preview")
    expect(preview).to_have_attribute("data-count", "2")
    expect(preview.locator("[data-in-store]")).to_have_text("2")
    expect(preview.locator(f"[data-retire='{learned.pk}']")).to_contain_text("Curt replies fail.")
    expect(preview.locator("#unalign-feedback")).to_contain_text("Curt <reply> 0.")  # shown as text, escaped
    assert Feedback.objects.filter(project=project).count() == 3  # nothing changed before the confirmation

    page.click("#unalign-confirm button[type=submit]")
    result = page.locator("#unalign-result")
    # The session worker may have distilled the feedback into a version of its own first: read the number shown.
    expect(result).to_contain_text(re.compile(r"Done: memory version v\d+"))
    number = int(re.search(r"Done: memory version v(\d+)", result.inner_text()).group(1))
    version = MemoryVersion.objects.get(project=project, number=number)
    assert (version.trigger, version.actor) == (MemoryVersion.Trigger.UNALIGN, personas.owner)
    expect(result.locator(f"[data-retired='{learned.pk}']")).to_be_visible()
    assert list(Feedback.objects.filter(project=project).values_list("pk", flat=True)) == [kept.pk]
    assert set(episodic.entries(project.pk)) == {kept.pk}
    learned.refresh_from_db()
    assert learned.retired
    page.goto(f"{live_server.url}/p/{project.slug}/memory/episodic/")
    expect(page.locator("#examples [data-feedback-id]")).to_have_count(1)
