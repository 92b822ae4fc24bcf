"""Memory figures on the reviews pages, wired from the memory side: reviews never imports memory."""

from django import template

from memory import runs
from memory.models import JudgeRun

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
    return {"project": project, "f": figures.as_dict() if figures else None, "experts": experts, "runs": recent}
