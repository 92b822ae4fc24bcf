"""One permission vocabulary: templates, importers and stats ask reviews/permissions.py, never compare roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template import Context, Template, TemplateSyntaxError

from reviews.models import Feedback, Membership, Role
from reviews.permissions import feedback_shown, role_can, roles_at_least
from tests.conftest import add_sample

ROOT = Path(__file__).resolve().parents[1]


def render_can(membership, role: str) -> str:
    template = Template('{% load permission_tags %}{% if membership|can:"' + role + '" %}yes{% else %}no{% endif %}')
    return template.render(Context({"membership": membership}))


@pytest.mark.parametrize(
    ("held", "asked", "expected"),
    [
        ("owner", "owner", "yes"),
        ("owner", "viewer", "yes"),
        ("reviewer", "owner", "no"),
        ("reviewer", "reviewer", "yes"),
        ("viewer", "reviewer", "no"),
        ("viewer", "viewer", "yes"),
    ],
)
def test_can_filter_compares_by_rank(held, asked, expected):
    assert render_can(Membership(role=held), asked) == expected


def test_can_filter_says_no_without_a_membership():
    assert render_can(None, "viewer") == "no"


def test_can_filter_rejects_an_unknown_role():
    with pytest.raises(TemplateSyntaxError, match="not 'admin'"):
        render_can(Membership(role="owner"), "admin")


def test_roles_at_least_follow_the_ranks():
    assert roles_at_least(Role.REVIEWER) == [Role.REVIEWER, Role.OWNER]
    assert roles_at_least(Role.VIEWER) == [Role.VIEWER, Role.REVIEWER, Role.OWNER]
    assert [role_can(role, Role.REVIEWER) for role in Role.values] == [False, True, True]


def test_no_template_compares_role_strings():
    compared = re.compile(r"\.role\s*(==|!=|in)\s*['\"]")
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("*.html") if compared.search(p.read_text())
    ]
    assert offenders == []


@pytest.mark.django_db
def test_a_blind_reviewer_sees_others_feedback_only_after_their_own(personas):
    sample = add_sample(personas.project)
    theirs = Feedback.objects.create(project=personas.project, sample=sample, author=personas.owner, label="pass")
    reviewer = Membership.objects.get(project=personas.project, user=personas.reviewer)
    owner = Membership.objects.get(project=personas.project, user=personas.owner)

    assert feedback_shown(reviewer, [theirs]) == (None, [], 1)
    assert feedback_shown(owner, [theirs]) == (theirs, [], 0)

    mine = Feedback.objects.create(project=personas.project, sample=sample, author=personas.reviewer, label="fail")
    assert feedback_shown(reviewer, [theirs, mine]) == (mine, [theirs], 0)
