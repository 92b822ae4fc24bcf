"""Finding 6: a reviewer never sees others' labels or critiques on a sample before giving their own, on any page
that lists feedback; owners and viewers, who do not review, see everything."""

from __future__ import annotations

import re

import pytest

from memory.models import Principle, PrincipleSource
from reviews.models import Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

SECRET = "Rita-only critique: the apology is missing"


@pytest.fixture
def blind(personas):
    rita = make_user("rita")
    Membership.objects.create(project=personas.project, user=rita, role=Role.REVIEWER)
    sample = add_sample(personas.project, "contested", judge_value="pass")
    feedback = add_feedback(sample, rita, "fail", SECRET)
    principle = Principle.objects.create(project=personas.project, text="Apologise first.", origin="distilled")
    PrincipleSource.objects.create(principle=principle, feedback=feedback, feedback_revision=feedback.revision)
    add_sample(personas.project, "other", judge_value="pass")
    return personas, sample


def queue_ids(client, slug: str, **params) -> set[int]:
    body = client.get(f"/p/{slug}/queue/", params).content.decode()
    return {int(n) for n in re.findall(r'data-sample-id="(\d+)"', body)}


def filter_count(client, slug: str, name: str, **params) -> int:
    body = client.get(f"/p/{slug}/queue/", params).content.decode()
    return int(re.search(rf'data-filter="{name}">[^<]*<span class="count">(\d+)</span>', body).group(1))


def leaks(client, personas, sample) -> dict[str, bool]:
    """For each page that lists feedback: does it show Rita's label or critique on the contested sample?"""
    slug = personas.project.slug
    principle_id = Principle.objects.get(project=personas.project, text="Apologise first.").pk
    return {
        "overview": SECRET in client.get(f"/p/{slug}/").content.decode(),
        "review page": SECRET in client.get(f"/p/{slug}/samples/{sample.pk}/").content.decode(),
        "queue expert-said filter": sample.pk in queue_ids(client, slug, filter="all", label="fail"),
        "queue expert-said filter, mine to do": sample.pk in queue_ids(client, slug, filter="todo", label="fail"),
        "queue disagree filter": sample.pk in queue_ids(client, slug, filter="disagree"),
        "queue disagree count": filter_count(client, slug, "disagree") > 0,
        "queue disagree count with a search": filter_count(client, slug, "disagree", q="contested") > 0,
        "memory principle sources": SECRET
        in client.get(f"/p/{slug}/memory/principles/{principle_id}/").content.decode(),
        "memory try": client.post(
            f"/p/{slug}/memory/try/", {"input__question": "question contested", "output": "answer contested"}
        ).status_code
        == 200,
    }


def test_a_reviewer_sees_nothing_of_others_before_reviewing_and_everything_after(client, blind):
    personas, sample = blind
    client.force_login(personas.reviewer)
    before = leaks(client, personas, sample)
    assert not any(before.values()), before
    add_feedback(sample, personas.reviewer, "pass")
    after = leaks(client, personas, sample)
    assert all(v for k, v in after.items() if k not in ("queue expert-said filter, mine to do", "memory try")), after


@pytest.mark.parametrize("who", ["owner", "viewer"])
def test_owners_and_viewers_see_everything(client, blind, who):
    personas, sample = blind
    client.force_login(getattr(personas, who))
    seen = leaks(client, personas, sample)
    assert all(v for k, v in seen.items() if k != "queue expert-said filter, mine to do"), seen
