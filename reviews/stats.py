"""Project figures for the overview page: progress, disagreements, recent critiques.

The judge's agreement figures (kappa, interval, baseline) come from agreement.metrics, through the memory app's
`overview_agreement` template tag: reviews never imports memory.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from reviews.models import Feedback, Membership, Project, Role, Sample
from reviews.permissions import roles_at_least, visible_feedback


def overview(project: Project, membership: Membership) -> dict[str, Any]:
    """Return the overview's figures, in a handful of aggregate queries whatever the project's size.

    Recent critiques are those `membership` may see (a reviewer: only on samples they reviewed themselves).
    """
    sample_count = Sample.objects.visible(project).count()
    feedback = Feedback.objects.filter(project=project, decision__isnull=True).order_by()  # reviews, not decisions
    reviewed = feedback.aggregate(n=Count("sample_id", distinct=True))["n"]
    judged = feedback.filter(agrees_with_judge__isnull=False)  # feedback on samples with a judge verdict
    totals = judged.aggregate(total=Count("id"), agree=Count("id", filter=Q(agrees_with_judge=True)))
    progress = (
        project.memberships.filter(role__in=roles_at_least(Role.REVIEWER))
        .select_related("user")
        .annotate(done=Count("user__feedback", filter=Q(user__feedback__project=project)))
        .order_by("-done", "user__username")
    )
    recent = (
        visible_feedback(membership, Feedback.objects.filter(project=project))
        .exclude(critique="")
        .select_related("author", "sample")
        .order_by("-updated_at", "-id")[:8]
    )
    return {
        "sample_count": sample_count,
        "reviewed_count": reviewed,
        "feedback_count": feedback.count(),
        "disagreement_count": totals["total"] - totals["agree"],
        "progress": [
            {
                "user": m.user,
                "role": m.get_role_display(),
                "done": m.done,
                "share": m.done / sample_count if sample_count else 0,
            }
            for m in progress
        ],
        "recent_critiques": recent,
    }
