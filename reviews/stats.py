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
    """Return the overview's figures, in a handful of aggregate queries whatever the project's size.

    Recent critiques are those `membership` may see (a reviewer: only on samples they reviewed themselves).
    The counts are cached per project state (reviews.figures).
    """
    counts = figures.cached(project, "overview", (), lambda: _counts(project))
    sample_count = counts["sample_count"]
    reviewers = project.memberships.filter(role__in=roles_at_least(Role.REVIEWER)).select_related("user")
    done = counts["done"]
    progress = sorted(reviewers, key=lambda m: (-done.get(m.user_id, 0), m.user.username))
    recent = (
        visible_feedback(membership, Feedback.objects.filter(project=project))
        .exclude(critique="")
        .select_related("author", "sample")
        .order_by("-updated_at", "-id")[:8]
    )
    return {
        **{name: counts[name] for name in ("sample_count", "reviewed_count", "feedback_count", "disagreement_count")},
        "progress": [
            {
                "user": m.user,
                "role": m.get_role_display(),
                "done": done.get(m.user_id, 0),
                "share": done.get(m.user_id, 0) / sample_count if sample_count else 0,
            }
            for m in progress
        ],
        "recent_critiques": recent,
    }


def _counts(project: Project) -> dict[str, Any]:
    feedback = Feedback.objects.filter(project=project, decision__isnull=True).order_by()  # reviews, not decisions
    judged = feedback.filter(agrees_with_judge__isnull=False)  # feedback on samples with a judge verdict
    totals = judged.aggregate(total=Count("id"), agree=Count("id", filter=Q(agrees_with_judge=True)))
    # Each member's feedback in the project, decisions' rows included (as the progress table always counted).
    done = Feedback.objects.filter(project=project).order_by().values("author_id").annotate(n=Count("id"))
    return {
        "sample_count": Sample.objects.visible(project).count(),
        "reviewed_count": feedback.aggregate(n=Count("sample_id", distinct=True))["n"],
        "feedback_count": feedback.count(),
        "disagreement_count": totals["total"] - totals["agree"],
        "done": {row["author_id"]: row["n"] for row in done},
    }
