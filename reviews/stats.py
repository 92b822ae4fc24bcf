"""Project figures for the overview page: progress, disagreements, recent critiques.

The judge's agreement figures (kappa, interval, baseline) come from agreement.metrics, through the memory app's
`overview_agreement` template tag: reviews never imports memory.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from reviews import figures
from reviews.models import Feedback, Membership, Project, Role, Sample
from reviews.permissions import roles_at_least, visible_feedback


def overview(project: Project, membership: Membership) -> dict[str, Any]:
    """Return the overview's figures: the counts from the figures cache (reviews.figures), the reviewers and the
    recent critiques `membership` may see (a reviewer: only on samples they reviewed themselves) read live.
    """
    # Imports change the hidden samples (Sample.objects.visible) only with writes that replace the token.
    counts = figures.cached(project.pk, "overview-counts", lambda: _counts(project))
    sample_count = counts["samples"]
    reviewers = project.memberships.filter(role__in=roles_at_least(Role.REVIEWER)).select_related("user").order_by()
    progress = sorted(
        ((m, counts["done"].get(m.user_id, 0)) for m in reviewers), key=lambda p: (-p[1], p[0].user.username)
    )
    recent = (
        visible_feedback(membership, Feedback.objects.filter(project=project))
        .exclude(critique="")
        .select_related("author", "sample")
        .order_by("-updated_at", "-id")[:8]
    )
    return {
        "sample_count": sample_count,
        "reviewed_count": counts["reviewed"],
        "feedback_count": counts["feedback"],
        "disagreement_count": counts["disagreements"],
        "progress": [
            {
                "user": m.user,
                "role": m.get_role_display(),
                "done": done,
                "share": done / sample_count if sample_count else 0,
            }
            for m, done in progress
        ],
        "recent_critiques": recent,
    }


def _counts(project: Project) -> dict[str, Any]:
    feedback = Feedback.objects.filter(project=project, decision__isnull=True).order_by()  # reviews, not decisions
    judged = feedback.filter(agrees_with_judge__isnull=False)  # feedback on samples with a judge verdict
    totals = judged.aggregate(total=Count("id"), agree=Count("id", filter=Q(agrees_with_judge=True)))
    return {
        "samples": Sample.objects.visible(project).count(),
        "reviewed": feedback.aggregate(n=Count("sample_id", distinct=True))["n"],
        "feedback": feedback.count(),
        "disagreements": totals["total"] - totals["agree"],
        # reviews of the project by each author, decisions' rows included (as the overview always counted)
        "done": dict(
            Feedback.objects.filter(project=project)
            .order_by()
            .values("author_id")
            .annotate(n=Count("id"))
            .values_list("author_id", "n")
        ),
    }
