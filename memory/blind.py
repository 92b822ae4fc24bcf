"""The blind-review rule (reviews.permissions.is_blind) applied to what the memory built from feedback.

A principle quotes or paraphrases its sources (the offline provider's, word for word, with the experts' label),
so a blind reviewer does not see a principle citing feedback on a sample they have not reviewed.
"""

from __future__ import annotations

from memory.models import PrincipleSource
from reviews.models import Feedback, Membership, Project
from reviews.permissions import is_blind


def withheld_principle_ids(membership: Membership, project: Project) -> set[int]:
    """Return the ids of the project's principles `membership` may not read (none unless they review blind)."""
    if not is_blind(membership):
        return set()
    reviewed = Feedback.objects.filter(project=project, author_id=membership.user_id).values("sample_id")
    return set(
        PrincipleSource.objects.filter(principle__project=project, feedback__isnull=False)
        .exclude(feedback__sample_id__in=reviewed)
        .values_list("principle_id", flat=True)
    )
