"""Every model is in the admin, and its list page renders with its filters."""

import pytest
from django.apps import apps
from django.contrib import admin

from tests.conftest import add_feedback, add_sample


def test_every_model_of_ours_is_registered():
    ours = [m for app in ("reviews", "memory") for m in apps.get_app_config(app).get_models()]
    missing = [m.__name__ for m in ours if m not in admin.site._registry and m.__name__ != "PrincipleSource"]
    assert missing == []


@pytest.mark.parametrize(
    "path",
    [
        "reviews/project",
        "reviews/membership",
        "reviews/invitation",
        "reviews/importrun",
        "reviews/sample",
        "reviews/feedback",
        "reviews/queuepriority",
        "reviews/decision",
        "reviews/reviewclaim",
        "memory/principle",
        "memory/memoryversion",
        "memory/distilledfeedback",
        "memory/contradiction",
        "judging/judgerun",
        "judging/judgement",
        "evaluation/evaluation",
        "memory/evaluationsettings",
        "evaluation/gatecheck",
    ],
)
def test_changelists_render(client, personas, path):
    personas.owner.is_staff = personas.owner.is_superuser = True
    personas.owner.save()
    add_feedback(add_sample(personas.project), personas.reviewer, "fail", "Curt.")
    client.force_login(personas.owner)
    response = client.get(f"/admin/{path}/")
    assert response.status_code == 200
    assert 'id="changelist-filter"' in response.content.decode() or path.endswith("distilledfeedback")
