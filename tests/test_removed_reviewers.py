"""A reviewer who leaves: the owner keeps or unaligns their feedback; a deleted account's feedback stays, its
author shown as removed."""

from __future__ import annotations

from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user


def test_the_owner_chooses_to_keep_or_unalign_a_removed_members_feedback(client, personas):
    keeper, leaver = make_user("kim"), make_user("lee")
    for user in (keeper, leaver):
        Membership.objects.create(project=personas.project, user=user, role=Role.REVIEWER)
    sample = add_sample(personas.project, "s1")
    kept = add_feedback(sample, keeper, "pass", "Fine.")
    add_feedback(sample, leaver, "fail", "Curt.")
    add_feedback(add_sample(personas.other, "o1"), leaver, "pass", "")  # another project's: never touched
    client.force_login(personas.owner)
    slug = personas.project.slug
    for user, choice in ((keeper, "keep"), (leaver, "unalign")):
        membership = Membership.objects.get(project=personas.project, user=user)
        assert client.post(f"/p/{slug}/members/{membership.pk}/remove/", {"feedback": choice}).status_code == 302
    assert list(Feedback.objects.filter(project=personas.project).values_list("pk", flat=True)) == [kept.pk]
    assert Feedback.objects.filter(project=personas.other, author=leaver).count() == 1
    page = client.get(f"/p/{slug}/members/").content.decode()
    assert "unalign their feedback (delete it from the memory)" in page


def test_a_deleted_accounts_feedback_stays_with_its_author_shown_as_removed(client, personas):
    first, second = make_user("ana"), make_user("ben")
    ids = (first.pk, second.pk)
    sample = add_sample(personas.project, "s1")
    a = add_feedback(sample, first, "pass", "Warm.")
    b = add_feedback(sample, second, "fail", "Dodges.")
    first.delete()
    second.delete()  # both on one sample: each gets its own placeholder, so one feedback per author still holds
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.author.username, b.author.username) == tuple(f"(removed account {pk})" for pk in ids)
    assert not a.author.is_active and not a.author.has_usable_password()
    client.force_login(personas.owner)
    page = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=all").content.decode()
    assert "(removed account" in page and "Dodges." in page
