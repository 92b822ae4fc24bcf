"""What the judging app adds to the pages of the apps below it (reviews/panels.py): the judge's agreement on
the overview, the latest verdict on the review page, runs from the queue, and runs and the try box on the memory
dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from judging import learned, run_agreement, run_listing
from judging.forms import JudgingSettingsForm, TryJudgeForm
from judging.models import JudgeRun, JudgingSettings, LearnedJudge
from reviews import panels, team
from reviews.models import QueuePriority


def overview_agreement(context: Mapping[str, Any]) -> dict[str, Any]:
    """The imported judge's agreement with the experts, and the latest runs (the project overview)."""
    project = context["project"]
    figures, experts = run_agreement.imported_judge_agreement(project)
    recent = JudgeRun.objects.filter(project=project).defer("sample_ids").order_by("-id")[:5]
    # The teaching order serves hard samples first, so agreement over all reviews leans pessimistic; the audit
    # slice, drawn at random, is the unbiased one.
    audit_ids = set(QueuePriority.objects.filter(project=project, audit=True).values_list("sample_id", flat=True))
    audit = run_agreement.imported_judge_agreement(project, within=audit_ids)[0] if audit_ids else None
    agreement = {
        "f": figures.as_dict() if figures else None,
        "audit": audit.as_dict() if audit else None,
        "ranked": bool(audit_ids),
        "experts": experts,
        "runs": recent,
        "team": context.get("team") or team.team_agreement(project, with_pairs=False),
    }
    return {"agreement": agreement}


def latest_verdict(context: Mapping[str, Any]) -> dict[str, Any]:
    """The latest aligned verdict on the review page's sample, with its explanation."""
    judgement = run_listing.latest_verdict(context["sample"])
    return run_listing.explanation(judgement, context["membership"]) if judgement else {"judgement": None}


def dashboard(context: Mapping[str, Any]) -> dict[str, Any]:
    project = context["project"]
    runs_list = list(
        JudgeRun.objects.filter(project=project)
        .select_related("created_by", "memory_version")
        .defer("sample_ids")
        .order_by("-id")[:20]
    )
    return {
        "runs": runs_list,
        "settings_form": JudgingSettingsForm(instance=JudgingSettings.of(project)),
        "scopes": [
            (v, label) for v, label in JudgeRun.Scope.choices if v not in (JudgeRun.Scope.QUEUE, JudgeRun.Scope.ITEMS)
        ],
    }


def learned_judge(context: Mapping[str, Any]) -> dict[str, Any]:
    """The learned judge's state: trained (on what, how well, set aside or not), or how many labels it still needs."""
    project = context["project"]
    row = LearnedJudge.objects.filter(project=project).defer("estimator").first()
    ready = learned.project_readiness(project)
    reason = (
        f"No learned judge yet: {ready.reason} — {ready.more_needed} more final label"
        f"{'s' if ready.more_needed != 1 else ''} needed."
        if not ready.ready
        else "Enough final labels: training is queued."
    )
    note = learned.usable(project, queue_retraining=False).note if row and row.trained_at else ""
    thresholds = sorted(((row.stats or {}).get("thresholds") or {}).items()) if row else []
    return {"learned": {"row": row, "reason": reason, "note": note, "thresholds": thresholds}}


def try_box(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"try_form": TryJudgeForm(context["project"])}


def register() -> None:
    panels.register("overview-stats", "judging/_overview_stat.html", overview_agreement, order=10)
    panels.register("overview", "judging/_overview_agreement.html", overview_agreement, order=10)
    panels.register("review-aside", "judging/_latest_verdict.html", latest_verdict)
    panels.register("queue-actions", "judging/_queue_run.html")
    panels.register("memory-links", "judging/_playground_link.html")
    panels.register("memory-dashboard", "judging/_dashboard_runs.html", dashboard, order=10)
    panels.register("memory-dashboard", "judging/_dashboard_learned.html", learned_judge, order=20)
    panels.register("memory-dashboard", "judging/_dashboard_try.html", try_box, order=30)
    panels.register("settings-actions", "judging/_backup_link.html")
