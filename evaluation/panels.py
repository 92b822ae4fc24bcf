"""What the evaluation app adds to the pages of the apps below it (reviews/panels.py): the latest learning
curves on the overview, the memory's "Evaluations" tab (and the held version's notice on its overview), and the
regression gate's settings on the memory's settings page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evaluation import curves, gate
from evaluation.forms import EvaluationSettingsForm
from evaluation.models import Evaluation, GateCheck
from memory import budget
from reviews import panels
from reviews.models import Role
from reviews.permissions import can


def overview_evaluations(context: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluations on the project overview: the latest learning curves, the list, and (owners) a start button."""
    project, membership = context["project"], context["membership"]
    listed = list(Evaluation.objects.filter(project=project).select_related("created_by").order_by("-id")[:5])
    latest = next((e for e in listed if e.status == Evaluation.Status.DONE and e.result), None)
    shown = []
    if latest and latest.result:
        shown = ["heldout"] + (
            ["prequential"] if any(p["curve"] == "prequential" for p in latest.result["points"]) else []
        )
    is_owner = can(membership, Role.OWNER)
    return {
        "evaluations": listed,
        "latest": latest,
        "curves": shown,
        "is_owner": is_owner,
        "calls": curves.estimated_calls(project, curves.Options()) if is_owner else None,
    }


def evaluations_tab(context: Mapping[str, Any]) -> dict[str, Any]:
    """The "Evaluations" page: the latest 20, the estimated cost of another, and the version the gate holds."""
    project = context["project"]
    listed = list(Evaluation.objects.filter(project=project).select_related("created_by").order_by("-id")[:20])
    held = gate.held_versions(project).last()
    return {
        "evaluations": listed,
        "evaluation_calls": curves.estimated_calls(project, curves.Options()),
        "active_version": budget.latest_version(project),
        "held_check": GateCheck.objects.filter(version=held).select_related("version", "compared_with").first()
        if held
        else None,
    }


def held_notice(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"held": gate.held_versions(context["project"]).last()}


def memory_settings(context: Mapping[str, Any]) -> dict[str, Any]:
    settings_row = gate.gate_settings(context["project"])
    return {
        "gate_form": EvaluationSettingsForm(instance=settings_row),
        "gate_calls": gate.estimated_calls(context["project"], settings_row),
    }


def register() -> None:
    panels.register("overview", "evaluation/_overview_evaluations.html", overview_evaluations, order=20)
    panels.register("memory-tabs", "evaluation/_memory_tab.html", order=20)
    panels.register("memory-overview", "evaluation/_memory_overview.html", held_notice, order=20)
    panels.register("memory-settings", "evaluation/_memory_settings.html", memory_settings, order=20)
