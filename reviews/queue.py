"""The review queue: filters with counts, stable id order, and keyset pagination that stays fast at 100k."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.functions import Cast

from reviews.models import Feedback, Project, Sample

PAGE_SIZE = 50
FILTERS = {
    "todo": "Needs my review",
    "unreviewed": "Not reviewed yet",
    "mine": "Reviewed by me",
    "reviewed": "Reviewed by anyone",
    "disagree": "Judge and expert disagree",
    "all": "All",
}
# Filters whose samples leave the filter once reviewed: moving back goes through the whole project instead.
SHRINKING = {"todo", "unreviewed"}


@dataclass(frozen=True)
class QueueQuery:
    """What a reviewer asked the queue for; carried along from the queue to each review page."""

    filter: str = "todo"
    label: str = ""  # an expert label
    judge: str = ""  # a judge verdict
    q: str = ""

    @classmethod
    def from_params(cls, params, default_filter: str) -> QueueQuery:
        chosen = params.get("filter", default_filter)
        return cls(
            filter=chosen if chosen in FILTERS else default_filter,
            label=params.get("label", "")[:64],
            judge=params.get("judge", "")[:64],
            q=params.get("q", "").strip()[:200],
        )

    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("filter", self.filter), ("label", self.label), ("judge", self.judge), ("q", self.q)) if v}


def samples(project: Project, user, query: QueueQuery, filter_name: str | None = None) -> QuerySet[Sample]:
    """Return the project's samples matching the query (its filter, or `filter_name`), in id order."""
    qs = Sample.objects.filter(project=project)
    mine = Feedback.objects.filter(sample=OuterRef("pk"), author=user)
    anyone = Feedback.objects.filter(sample=OuterRef("pk"))
    match filter_name or query.filter:
        case "todo":
            qs = qs.filter(~Exists(mine))
        case "unreviewed":
            qs = qs.filter(~Exists(anyone))
        case "mine":
            qs = qs.filter(Exists(mine))
        case "reviewed":
            qs = qs.filter(Exists(anyone))
        case "disagree":
            qs = qs.filter(Exists(anyone.filter(agrees_with_judge=False)))
    if query.label:
        qs = qs.filter(Exists(anyone.filter(label=query.label)))
    if query.judge:
        qs = qs.filter(judge_value=query.judge)
    if query.q:
        qs = qs.annotate(inputs_text=Cast("inputs", TextField())).filter(_search(query.q))
    return qs.order_by("id")


def _search(text: str) -> Q:
    return (
        Q(external_id__icontains=text)
        | Q(inputs_text__icontains=text)
        | Q(outputs__icontains=text)
        | Q(output_a__icontains=text)
        | Q(output_b__icontains=text)
        | Q(judge_rationale__icontains=text)
    )


def counts(project: Project, user, query: QueueQuery) -> dict[str, int]:
    """Return how many samples each filter holds, with the query's label and search applied."""
    return {name: samples(project, user, query, name).count() for name in FILTERS}


@dataclass
class Page:
    items: list[Sample]
    next_after: int | None
    prev_before: int | None


def page(qs: QuerySet[Sample], after: int | None = None, before: int | None = None, size: int = PAGE_SIZE) -> Page:
    """Return one page by keyset on id: no OFFSET, so page 2,000 costs what page 1 costs."""
    if before is not None:
        items = list(qs.filter(id__lt=before).order_by("-id")[: size + 1])
        has_more_before = len(items) > size
        items = list(reversed(items[:size]))
        return Page(items, items[-1].id if items else None, items[0].id if has_more_before and items else None)
    if after is not None:
        qs = qs.filter(id__gt=after)
    items = list(qs[: size + 1])
    has_more = len(items) > size
    items = items[:size]
    return Page(items, items[-1].id if has_more else None, items[0].id if after is not None and items else None)


def neighbours(project: Project, user, query: QueueQuery, sample_id: int) -> tuple[int | None, int | None]:
    """Return the ids of the samples before and after `sample_id` in the queue."""
    qs = samples(project, user, query)
    following = qs.filter(id__gt=sample_id).values_list("id", flat=True).first()
    back = samples(project, user, query, "all") if query.filter in SHRINKING else qs
    previous = back.filter(id__lt=sample_id).order_by("-id").values_list("id", flat=True).first()
    return previous, following
