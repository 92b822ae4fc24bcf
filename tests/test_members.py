"""Projects and members: creation, invitations by username or email, roles, and the last owner rule."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from reviews.models import Invitation, Membership, Role
from reviews.projects import accept_invitation, change_role, create_project, invite, remove_member
from tests.conftest import make_user


def test_creator_becomes_owner_and_slugs_stay_unique(db):
    user = make_user("ana")
    first = create_project(user, name="Tone", criterion="c", label_kind="pass_fail")
    second = create_project(user, name="Tone", criterion="c", label_kind="pass_fail")
    assert (first.slug, second.slug) == ("tone", "tone-2")
    assert Membership.objects.get(project=first, user=user).role == Role.OWNER


def test_an_invitation_names_the_account_by_username_or_email_and_waits_for_consent(personas):
    newcomer = make_user("nina")
    invitation = invite(personas.project, "NINA@example.com", Role.VIEWER, personas.owner)
    assert invitation.user == newcomer and invitation.identifier == "nina@example.com"
    assert not Membership.objects.filter(project=personas.project, user=newcomer).exists()  # not without consent
    again = invite(personas.project, "nina@example.com", Role.REVIEWER, personas.owner)
    assert again.pk == invitation.pk and again.role == Role.REVIEWER  # inviting again changes the role
    accept_invitation(again)
    assert Membership.objects.get(project=personas.project, user=newcomer).role == Role.REVIEWER
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
    with pytest.raises(ValidationError, match="already a member"):
        invite(personas.project, "nina", Role.REVIEWER, personas.owner)
    ghost = invite(personas.project, "ghost", Role.REVIEWER, personas.owner)
    assert ghost.user is None  # no account: it waits, and nothing says so


def test_the_last_owner_cannot_be_demoted_or_removed(personas):
    mine = Membership.objects.get(project=personas.project, user=personas.owner)
    with pytest.raises(ValidationError, match="at least one owner"):
        change_role(personas.project, mine.pk, Role.VIEWER)
    with pytest.raises(ValidationError, match="at least one owner"):
        remove_member(personas.project, mine.pk)
    reviewer = Membership.objects.get(project=personas.project, user=personas.reviewer)
    change_role(personas.project, reviewer.pk, Role.OWNER)
    change_role(personas.project, mine.pk, Role.VIEWER)  # now allowed: another owner remains
    assert Membership.objects.get(pk=mine.pk).role == Role.VIEWER


def test_owner_page_invites_and_changes_members(client, personas):
    make_user("nina")
    client.force_login(personas.owner)
    response = client.post(
        f"/p/{personas.project.slug}/members/", {"identifier": "nina", "role": "reviewer"}, follow=True
    )
    assert "nina is invited as reviewer; they join the project once they accept." in response.content.decode()
    assert 'data-identifier="nina"' in response.content.decode()
    invitation = Invitation.objects.get(project=personas.project, identifier="nina")
    client.force_login(invitation.user)
    client.post(f"/invitations/{invitation.pk}/accept/")
    membership = Membership.objects.get(project=personas.project, user__username="nina")
    client.force_login(personas.owner)
    client.post(f"/p/{personas.project.slug}/members/{membership.pk}/role/", {"role": "viewer"})
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER


def member_page_answer(client, slug: str, identifier: str) -> tuple[int, str]:
    """Invite `identifier` and return the status and the page it leads to, with the identifier masked."""
    response = client.post(f"/p/{slug}/members/", {"identifier": identifier, "role": "reviewer"}, follow=True)
    body = response.content.decode().replace(identifier, "IDENTIFIER")
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"|"X-CSRFToken": "[^"]+"', "", body)  # masked per request
    body = re.sub(r"/invitations/\d+/", "/invitations/N/", body)
    body = re.sub(r"/join/[\w-]+/|link-\d+", "LINK", body)  # a new one-time link each time
    return response.status_code, body


def test_inviting_never_reveals_whether_an_account_exists(client, personas):
    """Finding 1: an attacker who creates a project and invites identifiers learns nothing from the answers."""
    make_user("victim")  # victim@example.com
    attacker = make_user("mallory")
    client.force_login(attacker)
    slug = create_project(attacker, name="Probe", criterion="c", label_kind="pass_fail").slug
    answers = {}
    for identifier in ("victim@example.com", "nobody@example.com", "victim", "nobody"):
        answers[identifier] = member_page_answer(client, slug, identifier)
        Invitation.objects.filter(project__slug=slug).delete()  # each probe starts from the same page
    assert answers["victim@example.com"] == answers["nobody@example.com"]
    assert answers["victim"] == answers["nobody"]
    assert answers["victim"][0] == 200
    # And the victim was not made a member: the project is not theirs until they accept.
    member_page_answer(client, slug, "victim@example.com")
    victim = Membership.objects.filter(project__slug=slug, user__username="victim")
    assert not victim.exists()
    client.force_login(get_user_model().objects.get(username="victim"))
    listing = client.get("/projects/").content.decode()
    assert 'id="invitations"' in listing and "Probe" in listing
    assert 'class="project-list"' not in listing  # no project yet: only the invitation


def test_the_invitee_accepts_or_declines_and_no_one_else_can(client, personas):
    nina = make_user("nina")
    invitation = invite(personas.project, "nina", Role.REVIEWER, personas.owner)
    client.force_login(personas.outsider)
    assert client.post(f"/invitations/{invitation.pk}/accept/").status_code == 404
    assert client.get(f"/invitations/{invitation.pk}/accept/").status_code == 405
    client.force_login(nina)
    response = client.post(f"/invitations/{invitation.pk}/decline/")
    assert response.status_code == 302
    assert not Membership.objects.filter(user=nina).exists() and not Invitation.objects.exists()
    invitation = invite(personas.project, "nina", Role.VIEWER, personas.owner)
    response = client.post(f"/invitations/{invitation.pk}/accept/")
    assert response["Location"] == f"/p/{personas.project.slug}/"
    assert Membership.objects.get(user=nina, project=personas.project).role == Role.VIEWER
    assert client.post(f"/invitations/{invitation.pk}/accept/").status_code == 404  # used up


def test_owners_revoke_invitations(client, personas):
    invitation = invite(personas.project, "someone@example.com", Role.REVIEWER, personas.owner)
    client.force_login(personas.reviewer)
    assert client.post(f"/p/{personas.project.slug}/invitations/{invitation.pk}/revoke/").status_code == 403
    client.force_login(personas.owner)
    client.post(f"/p/{personas.project.slug}/invitations/{invitation.pk}/revoke/")
    assert not Invitation.objects.exists()


def test_only_owners_see_members_emails(client, personas):
    for user, sees in ((personas.viewer, False), (personas.reviewer, False), (personas.owner, True)):
        client.force_login(user)
        body = client.get(f"/p/{personas.project.slug}/members/").content.decode()
        assert ("rafael@example.com" in body) is sees, user.username
        assert "rafael" in body


def test_project_form_rejects_bad_schemas(client, personas):
    client.force_login(personas.owner)
    cases = [
        ({"label_kind": "categorical", "categories_text": "only-one"}, "at least two categories"),
        ({"label_kind": "numeric", "scale_min": "5", "scale_max": "1"}, "minimum must be below"),
        ({"label_kind": "numeric", "scale_min": "1", "scale_max": "40"}, "at most 10 steps"),
        ({"label_kind": "pass_fail", "provider_concurrency": "0"}, "between 1 and 64 provider calls"),
        ({"label_kind": "pass_fail", "max_principles": "3"}, "between 5 and 2,000 principles"),
    ]
    for fields, message in cases:
        data = {"name": "X", "criterion": "c", "retrieval_k": "5", **fields}
        response = client.post("/projects/new/", data)
        assert response.status_code == 400, fields
        assert message in response.content.decode()


def test_project_form_creates_a_category_project(client, personas):
    client.force_login(personas.reviewer)
    data = {
        "name": "QA quality",
        "criterion": "Rate the answer",
        "label_kind": "categorical",
        "categories_text": "Bad, Acceptable, Excellent",
        "retrieval_k": "5",
    }
    response = client.post("/projects/new/", data)
    assert response.status_code == 302
    project = Membership.objects.get(user=personas.reviewer, role=Role.OWNER).project
    assert project.label_choices == ["Bad", "Acceptable", "Excellent"]
    assert (project.provider_concurrency, project.max_principles) == (8, 60)  # left empty: the defaults
