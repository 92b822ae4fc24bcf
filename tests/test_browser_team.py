"""In a real browser: an owner finds a conflict from the overview, decides it with a reason, sees the Team page,
and undoes the decision; no Content-Security-Policy violation on the way."""

import pytest

from reviews.models import Decision, Membership, Role
from reviews.projects import create_project
from tests.conftest import add_feedback, add_sample, make_user
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_adjudicates_a_conflict_and_undoes_it(page, live_server, monkeypatch):
    from memory import dispatch

    for name in ("request_regeneration", "request_episodic_update"):  # the memory side has its own tests
        monkeypatch.setattr(dispatch, name, lambda *args, **kwargs: False)
    monkeypatch.setattr(dispatch, "sync_sample", lambda *args: None)
    owner, ana, ben = make_user("olivia"), make_user("ana"), make_user("ben")
    project = create_project(owner, name="Refund emails", criterion="Polite and clear?", label_kind="pass_fail")
    for user in (ana, ben):
        Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
    sample = add_sample(project, "refund-7")
    add_feedback(sample, ana, "pass", "Warm <b>and</b> apologetic.")
    add_feedback(sample, ben, "fail", "Never answers the refund question.")
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.accept())

    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/refund-emails/")
    page.click("#stats [data-stat=conflicts]")
    page.wait_for_url(f"{live_server.url}/p/refund-emails/conflicts/")
    conflict = page.locator(".conflict[data-sample='refund-7']")
    assert "Warm <b>and</b> apologetic." in conflict.inner_text()  # escaped, shown as typed
    conflict.locator("select[name=label]").select_option("fail")
    conflict.locator("textarea[name=reason]").fill("Politeness does not make up for dodging the refund question.")
    conflict.locator("button:has-text('Decide')").click()
    page.wait_for_selector("#decisions tr[data-sample='refund-7']")
    assert page.locator("[data-stat=open-conflicts]").inner_text() == "0"
    assert Decision.objects.get(sample=sample).decided_by == owner

    page.click("nav.project-nav >> text=Team")
    assert page.locator("#team-pairs tr[data-pair='ana+ben']").is_visible()
    assert page.locator("#team-reviewers tr[data-reviewer='ben']").inner_text().endswith("100% of 1")

    page.goto(f"{live_server.url}/p/refund-emails/conflicts/")
    page.click("#decisions button:has-text('Undo')")
    page.wait_for_selector(".conflict[data-sample='refund-7']")
    assert not Decision.objects.exists()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
