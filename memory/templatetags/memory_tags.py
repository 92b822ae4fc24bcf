"""Memory figures on the reviews pages, wired from the memory side: reviews never imports memory."""

from django import template

from memory import evaluation, runs, team
from memory.models import Evaluation, JudgeRun
from reviews.models import QueuePriority, Role
from reviews.permissions import can

register = template.Library()


@register.inclusion_tag("memory/_latest_verdict.html")
def latest_verdict(project, sample):
    """The latest aligned verdict on a sample, with its explanation (the review page)."""
    judgement = runs.latest_verdict(sample)
    return {"project": project, **(runs.explanation(judgement) if judgement else {"judgement": None})}


@register.simple_tag
def overview_agreement(project) -> dict:
    """The imported judge's agreement with the experts, and the latest runs (the project overview)."""
    figures, experts = runs.imported_judge_agreement(project)
    recent = JudgeRun.objects.filter(project=project).defer("sample_ids").order_by("-id")[:5]
    # The teaching order serves hard samples first, so agreement over all reviews leans pessimistic; the audit
    # slice, drawn at random, is the unbiased one.
    audit_ids = set(QueuePriority.objects.filter(project=project, audit=True).values_list("sample_id", flat=True))
    audit = runs.imported_judge_agreement(project, within=audit_ids)[0] if audit_ids else None
    return {
        "project": project,
        "f": figures.as_dict() if figures else None,
        "audit": audit.as_dict() if audit else None,
        "ranked": bool(audit_ids),
        "experts": experts,
        "runs": recent,
        "team": team.team_agreement(project, with_pairs=False),
    }


@register.inclusion_tag("memory/_overview_evaluations.html")
def overview_evaluations(project, membership):
    """Evaluations on the project overview: the latest learning curves, the list, and (owners) a start button."""
    listed = list(Evaluation.objects.filter(project=project).select_related("created_by").order_by("-id")[:5])
    latest = next((e for e in listed if e.status == Evaluation.Status.DONE and e.result), None)
    curves = []
    if latest:
        curves = ["heldout"] + (
            ["prequential"] if any(p["curve"] == "prequential" for p in latest.result["points"]) else []
        )
    is_owner = can(membership, Role.OWNER)
    return {
        "project": project,
        "evaluations": listed,
        "latest": latest,
        "curves": curves,
        "is_owner": is_owner,
        "calls": evaluation.estimated_calls(project, evaluation.Options()) if is_owner else None,
    }
