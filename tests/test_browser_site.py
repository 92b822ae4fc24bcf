"""In a real browser: log in, create a project, add a member, see the project listed."""

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


def test_create_project_and_add_member(page, live_server):
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
    page.click("button:has-text('Add')")
    assert page.locator("#members tr[data-username=rafael]").is_visible()
    assert Membership.objects.get(user__username="rafael", project__slug="refund-emails").role == "reviewer"
    page.click("text=MemAlign")
    assert page.locator(".project-list").inner_text().startswith("Refund emails")
    # The new member sees it too, in their own browser session.
    page.context.clear_cookies()
    log_in(page, live_server, "rafael")
    assert "Refund emails" in page.locator(".project-list").inner_text()
