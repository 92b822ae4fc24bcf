"""Projects and members: creation, adding by username or email, roles, and the last owner rule."""

import pytest
from django.core.exceptions import ValidationError

from reviews.models import Membership, Role
from reviews.projects import add_member, change_role, create_project, remove_member
from tests.conftest import make_user


def test_creator_becomes_owner_and_slugs_stay_unique(db):
    user = make_user("ana")
    first = create_project(user, name="Tone", criterion="c", label_kind="pass_fail")
    second = create_project(user, name="Tone", criterion="c", label_kind="pass_fail")
    assert (first.slug, second.slug) == ("tone", "tone-2")
    assert Membership.objects.get(project=first, user=user).role == Role.OWNER


def test_members_are_added_by_username_or_email(personas):
    newcomer = make_user("nina")
    by_email = add_member(personas.project, "NINA@example.com", Role.VIEWER)
    assert by_email.user == newcomer
    with pytest.raises(ValidationError, match="already a member"):
        add_member(personas.project, "nina", Role.REVIEWER)
    with pytest.raises(ValidationError, match="No user has the username or email 'ghost'"):
        add_member(personas.project, "ghost", Role.REVIEWER)


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


def test_owner_page_adds_and_changes_members(client, personas):
    make_user("nina")
    client.force_login(personas.owner)
    response = client.post(f"/p/{personas.project.slug}/members/", {"identifier": "nina", "role": "reviewer"}, follow=True)
    assert "nina added as reviewer" in response.content.decode()
    membership = Membership.objects.get(project=personas.project, user__username="nina")
    client.post(f"/p/{personas.project.slug}/members/{membership.pk}/role/", {"role": "viewer"})
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER
    response = client.post(f"/p/{personas.project.slug}/members/", {"identifier": "nobody", "role": "reviewer"})
    assert response.status_code == 400
    assert "No user has the username or email" in response.content.decode()


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
    data = {"name": "QA quality", "criterion": "Rate the answer", "label_kind": "categorical",
            "categories_text": "Bad, Acceptable, Excellent", "retrieval_k": "5"}
    response = client.post("/projects/new/", data)
    assert response.status_code == 302
    project = Membership.objects.get(user=personas.reviewer, role=Role.OWNER).project
    assert project.label_choices == ["Bad", "Acceptable", "Excellent"]
    assert (project.provider_concurrency, project.max_principles) == (8, 60)  # left empty: the defaults
