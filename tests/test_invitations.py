"""One-time invitation links: joining with a new account or an existing one, and every way a link goes bad."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from reviews.invitations import invite_with_link
from reviews.models import Invitation, Membership, Role
from tests.conftest import PASSWORD, make_user

NEW_PASSWORD = "plum tartan orbit 42"


def invite_on_page(client, personas, identifier: str, role: str = "reviewer") -> str:
    """Invite through the members page as the owner and return the one-time link it shows."""
    client.force_login(personas.owner)
    response = client.post(
        f"/p/{personas.project.slug}/members/", {"identifier": identifier, "role": role}, follow=True
    )
    found = re.findall(r'value="(http://testserver/join/[^"]+/)"', response.content.decode())
    assert len(found) == 1, "the page shows the new link once"
    return found[0].removeprefix("http://testserver")


def test_a_new_person_sets_a_password_and_joins_with_the_invited_role(client, personas):
    link = invite_on_page(client, personas, "Nadia@Example.com", "viewer")
    client.logout()
    page = client.get(link).content.decode()
    assert "Join “Support tone”" in page and 'value="nadia"' in page  # a username to start from
    response = client.post(link, {"username": "nadia", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == f"/p/{personas.project.slug}/"
    user = get_user_model().objects.get(username="nadia")
    assert user.email == "nadia@example.com" and user.check_password(NEW_PASSWORD)
    assert Membership.objects.get(project=personas.project, user=user).role == Role.VIEWER
    assert client.get(f"/p/{personas.project.slug}/").status_code == 200  # logged in as the new account
    client.logout()
    used = client.get(link)
    assert used.status_code == 404 and "no longer valid" in used.content.decode()  # a link works once
    again = client.post(link, {"username": "nadia2", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert again.status_code == 404 and get_user_model().objects.filter(username="nadia2").count() == 0


def test_the_password_goes_through_djangos_validators(client, personas):
    link = invite_on_page(client, personas, "pat@example.com")
    client.logout()
    weak = client.post(link, {"username": "pat", "new_password1": "password", "new_password2": "password"})
    assert weak.status_code == 400 and "too common" in weak.content.decode()
    mismatch = client.post(link, {"username": "pat", "new_password1": NEW_PASSWORD, "new_password2": "other 42 x"})
    assert mismatch.status_code == 400 and "didn’t match" in mismatch.content.decode()
    bad_name = client.post(
        link, {"username": "pat smith", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert bad_name.status_code == 400 and "Enter a valid username" in bad_name.content.decode()
    assert not get_user_model().objects.filter(username__startswith="pat").exists()
    assert Invitation.objects.filter(identifier="pat@example.com").exists()  # still usable


def test_an_existing_account_joins_directly_after_logging_in(client, personas):
    nina = make_user("nina")
    link = invite_on_page(client, personas, "nina@example.com")
    client.logout()
    # Creating a second account with that email is refused: its owner logs in instead.
    response = client.post(link, {"username": "nina2", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 400 and "log in with it to accept" in response.content.decode()
    assert not get_user_model().objects.filter(username="nina2").exists()
    # Someone else, logged in, cannot take it.
    client.force_login(personas.outsider)
    refused = client.post(link)
    assert refused.status_code == 403 and "for another account" in refused.content.decode()
    assert not Membership.objects.filter(project=personas.project, user=personas.outsider).exists()
    client.force_login(nina)
    assert "Join as nina" in client.get(link).content.decode()
    assert client.post(link)["Location"] == f"/p/{personas.project.slug}/"
    assert Membership.objects.get(project=personas.project, user=nina).role == Role.REVIEWER


def test_a_login_through_the_link_comes_back_to_it(client, personas):
    make_user("nina")
    link = invite_on_page(client, personas, "nina")
    client.logout()
    assert f'/login/?next={link}"' in client.get(link).content.decode()
    response = client.post("/login/", {"username": "nina", "password": PASSWORD, "next": link})
    assert response["Location"] == link


def test_an_expired_link_says_so_and_a_resent_one_replaces_it(client, personas):
    link = invite_on_page(client, personas, "late@example.com")
    invitation = Invitation.objects.get(identifier="late@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.logout()
    expired = client.get(link)
    assert expired.status_code == 410 and "expired" in expired.content.decode()
    client.force_login(personas.owner)
    response = client.post(f"/p/{personas.project.slug}/invitations/{invitation.pk}/resend/", follow=True)
    new_link = re.findall(r'value="http://testserver(/join/[^"]+/)"', response.content.decode())[0]
    assert new_link != link
    client.logout()
    assert client.get(link).status_code == 404  # the old link stopped working
    assert client.get(new_link).status_code == 200


def test_a_revoked_invitation_or_a_deleted_project_leaves_a_dead_link(client, personas):
    link = invite_on_page(client, personas, "gone@example.com")
    invitation = Invitation.objects.get(identifier="gone@example.com")
    client.post(f"/p/{personas.project.slug}/invitations/{invitation.pk}/revoke/")
    client.logout()
    assert client.get(link).status_code == 404
    _, token = invite_with_link(personas.other, "gone@example.com", Role.REVIEWER, personas.other_owner)
    personas.other.delete()
    response = client.get(f"/join/{token}/")
    assert response.status_code == 404 and "project was deleted" in response.content.decode()
    assert client.get("/join/not-a-token/").status_code == 404


def test_the_link_is_emailed_when_the_site_has_a_mail_server(client, personas, settings):
    settings.MEMALIGN_SEND_INVITATIONS = True
    link = invite_on_page(client, personas, "mail@example.com")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["mail@example.com"]
    assert f"http://testserver{link}" in mail.outbox[0].body
    settings.MEMALIGN_SEND_INVITATIONS = False
    invite_on_page(client, personas, "quiet@example.com")
    assert len(mail.outbox) == 1


def test_invite_command_prints_the_link(personas):
    out, err = StringIO(), StringIO()
    call_command("invite", personas.project.slug, "cli@example.com", "--role", "viewer", stdout=out, stderr=err)
    url = out.getvalue().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/join/[\w-]+/", url)
    invitation = Invitation.objects.get(identifier="cli@example.com")
    assert invitation.role == Role.VIEWER and invitation.invited_by == personas.owner
    with pytest.raises(CommandError, match="No project"):
        call_command("invite", "nope", "x@example.com", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="already a member"):
        call_command("invite", personas.project.slug, "rafael", stdout=out, stderr=err)


def test_two_submissions_of_one_link_make_one_account(client, personas):
    invitation, token = invite_with_link(personas.project, "twice@example.com", Role.REVIEWER, personas.owner)
    data = {"username": "twice", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert client.post(f"/join/{token}/", data).status_code == 302
    client.logout()
    assert client.post(f"/join/{token}/", {**data, "username": "twice-b"}).status_code == 404
    assert get_user_model().objects.filter(email="twice@example.com").count() == 1


@pytest.mark.parametrize("identifier", ["nadia@example.com", "nadia"])
def test_the_link_reads_the_same_whether_or_not_an_account_answers(client, personas, identifier):
    """The owner holds the link (anyone can create a project): opening it must not tell them who has an account."""

    def page(link: str) -> str:
        client.logout()
        text = client.get(link).content.decode()
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
        text = re.sub(r'"X-CSRFToken": "[^"]+"', "", text)  # the token in hx-headers
        text = re.sub(r"/join/[^/\"]+/", "/join/LINK/", text)
        return re.sub(r"until [0-9-]+ [0-9:]+ UTC", "until WHEN", text)

    without = page(invite_on_page(client, personas, identifier))
    Invitation.objects.all().delete()
    nadia = make_user("nadia")
    nadia.email = "nadia@example.com"
    nadia.save()
    with_account = page(invite_on_page(client, personas, identifier))
    assert Invitation.objects.get().user_id == nadia.pk  # the invitation did find the account
    assert [line for line in with_account.splitlines() if line not in without.splitlines()] == []
    assert with_account == without
