"""In a real browser: log in, create a project, invite a member who accepts, see the project listed."""

import pytest

from reviews.models import Membership
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/projects/")


def test_create_project_and_invite_a_member(page, live_server):
    make_user("olivia")
    make_user("rafael")
    log_in(page, live_server, "olivia")
    page.click("text=New project")
    page.fill("#id_name", "Refund emails")
    page.fill("#id_criterion", "Is the refund email polite and clear?")
    page.select_option("#id_label_kind", "pass_fail")
    page.click("button:has-text('Create project')")
    page.wait_for_url(f"{live_server.url}/p/refund-emails/")
    page.click("nav.project-nav >> text=Members")
    page.fill("#id_identifier", "rafael@example.com")
    page.select_option("#id_role", "reviewer")
    page.click("button:has-text('Invite')")
    assert page.locator("#invitations tr[data-identifier='rafael@example.com']").is_visible()
    assert not Membership.objects.filter(user__username="rafael").exists()  # not before they accept
    page.click("text=MemAlign")
    assert page.locator(".project-list").inner_text().startswith("Refund emails")
    # The invitee accepts in their own browser session and lands in the project with the invited role.
    page.context.clear_cookies()
    log_in(page, live_server, "rafael")
    assert "Refund emails" in page.locator("#invitations").inner_text()
    page.click("#invitations button:has-text('Accept')")
    page.wait_for_url(f"{live_server.url}/p/refund-emails/")
    assert Membership.objects.get(user__username="rafael", project__slug="refund-emails").role == "reviewer"
    page.click("text=MemAlign")
    assert "Refund emails" in page.locator(".project-list").inner_text()
