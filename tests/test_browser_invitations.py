"""In a real browser: an owner invites a new person by email; they open the one-time link, set a password and
land in the project with the invited role."""

import pytest

from reviews.models import Membership
from reviews.projects import create_project
from tests.conftest import make_user
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_invites_and_the_invitee_joins_through_the_link(page, browser, live_server):
    owner = make_user("olivia")
    create_project(owner, name="Refund emails", criterion="Polite and clear?", label_kind="pass_fail")
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/refund-emails/members/")
    page.fill("#id_identifier", "Nadia@example.com")
    page.select_option("#id_role", "viewer")
    page.click("button:has-text('Invite')")
    row = page.locator("#invitations tr[data-identifier='nadia@example.com']")
    link = row.locator("input.copy-source").input_value()
    assert link.startswith(f"{live_server.url}/join/")
    page.reload()  # shown once: the stored hash cannot give it back
    assert row.locator("input.copy-source").count() == 0

    invitee = browser.new_context().new_page()  # the invitee's own browser: no session
    invitee.goto(link)
    assert "Join “Refund emails”" in invitee.locator("#join h1").inner_text()
    assert invitee.locator("#id_username").input_value() == "nadia"
    invitee.fill("#id_new_password1", "plum tartan orbit 42")
    invitee.fill("#id_new_password2", "plum tartan orbit 43")
    invitee.click("button:has-text('Set password and join')")
    assert invitee.locator("#join .error").first.is_visible()  # the passwords differ: said, nothing created
    invitee.fill("#id_new_password1", "plum tartan orbit 42")
    invitee.fill("#id_new_password2", "plum tartan orbit 42")
    invitee.click("button:has-text('Set password and join')")
    invitee.wait_for_url(f"{live_server.url}/p/refund-emails/")
    assert "nadia · Viewer" in invitee.locator(".account").inner_text()
    assert Membership.objects.get(user__username="nadia", project__slug="refund-emails").role == "viewer"
    invitee.goto(link)  # used: a clear message, not a form
    assert "no longer valid" in invitee.locator("#join-invalid").inner_text()
    page.reload()
    assert page.locator("#members tr[data-username='nadia']").is_visible()
    assert page.locator("#invitations").count() == 0
