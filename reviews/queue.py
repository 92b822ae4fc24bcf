"""The review queue: filters with counts, a stable order, and keyset pagination that stays fast at 100k.

Two orders: import order (sample id), and "what teaches most first" (the rank a memory task stores in
`QueuePriority`; samples it has not ranked yet follow, in id order). Both page by keyset on one unique key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Coalesce

from reviews import figures, overlap
from reviews.models import Feedback, Project, QueueOrder, QueuePriority, Sample

PAGE_SIZE = 50
# Django writes agrees_with_judge=False as NOT agrees_with_judge, which SQLite cannot answer from an index;
# written as IN (False), the feedback_agreement index answers it on both databases.
DISAGREES = {"agrees_with_judge__in": [False]}
FILTERS = {
    "todo": "Needs my review",
    "unreviewed": "Not reviewed yet",
    "mine": "Reviewed by me",
    "reviewed": "Reviewed by anyone",
    "disagree": "Judge and expert disagree",
    "all": "All",
}
# Filters whose samples leave the filter once reviewed: moving back goes through the whole project instead.
# None of their samples has the reviewer's own feedback, so the queue need not look it up.
SHRINKING = {"todo", "unreviewed"}
# Filters about one's own reviews: a viewer, who cannot review, is not offered them.
REVIEWER_FILTERS = {"todo", "mine"}
ORDERS = {"teach": "What teaches most first", "plain": "Import order"}
UNRANKED = 10**12  # the teaching order's key of a sample not ranked yet: after every ranked one, in id order


def default_order(project: Project) -> str:
    """Return the project's queue order: its setting, where "auto" teaches once a ranking has been stored
    (the memory task stores one as soon as the judge has reviewed examples to learn from)."""
    if project.queue_order == QueueOrder.AUTO:
        # From the figures cache: every queue and review page asks; storing a ranking forgets the figures.
        ranked = figures.cached(project.pk, "ranked", QueuePriority.objects.filter(project=project).exists)
        return "teach" if ranked else "plain"
    return "teach" if project.queue_order == QueueOrder.TEACH else "plain"


@dataclass(frozen=True)
class QueueQuery:
    """What a reviewer asked the queue for; carried along from the queue to each review page."""

    filter: str = "todo"
    label: str = ""  # an expert label
    judge: str = ""  # a judge verdict
    q: str = ""
    # A blind reviewer's experts' labels (the label filter, "disagree") count only on samples they reviewed.
    blind: bool = False
    # The judge-blind first pass (Project.judge_blind): the reviewer may not filter or search by the judge's
    # verdict or rationale, which would tell them the verdict of samples they have not labelled.
    judge_hidden: bool = False
    # Unfinished imports, whose samples stay hidden (Sample.objects.writing_runs); usually none.
    hidden_runs: tuple[int, ...] = ()
    order: str = "plain"
    # Whether the reviewer picked the order (it then travels in the URL); otherwise the project's default.
    order_chosen: bool = False

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, str],
        default_filter: str,
        blind: bool = False,
        judge_hidden: bool = False,
        hidden_runs: Sequence[int] = (),
        default_order: str = "plain",
        reviewer: bool = True,
    ) -> QueueQuery:
        def text(name: str, limit: int) -> str:
            # No NUL: PostgreSQL refuses it in a query parameter, and no stored text contains one.
            return str(params.get(name, "")).replace("\x00", "").strip()[:limit]

        chosen = params.get("filter", default_filter)
        offered = chosen in FILTERS and (reviewer or chosen not in REVIEWER_FILTERS)
        order = params.get("order", "")
        return cls(
            filter=chosen if offered else default_filter,
            label=text("label", 64),
            judge="" if judge_hidden else text("judge", 64),
            q=text("q", 200),
            blind=blind,
            judge_hidden=judge_hidden,
            hidden_runs=tuple(hidden_runs),
            order=order if order in ORDERS else default_order,
            order_chosen=order in ORDERS,
        )

    def params(self) -> dict[str, str]:
        pairs = [("filter", self.filter), ("label", self.label), ("judge", self.judge), ("q", self.q)]
        if self.order_chosen:
            pairs.append(("order", self.order))
        return {k: v for k, v in pairs if v}

    @property
    def key(self) -> str:
        """The unique field the queue is ordered and paged by."""
        return "order_key" if self.order == "teach" else "id"


def samples(project: Project, user: User | None, query: QueueQuery, filter_name: str | None = None) -> QuerySet[Sample]:
    """Return the project's samples matching the query (its filter, or `filter_name`), in the query's order."""
    qs = _matching(project, user, query, filter_name)
    if query.order == "teach":
        unranked = UNRANKED + F("id")
        qs = qs.annotate(order_key=Coalesce("priority__rank", unranked, output_field=BigIntegerField()))
        return qs.order_by("order_key")
    return qs.order_by("id")


def _matching(
    project: Project, user: User | None, query: QueueQuery, filter_name: str | None = None
) -> QuerySet[Sample]:
    qs: QuerySet[Sample] = Sample.objects.filter(project=project)
    if query.hidden_runs:
        qs = qs.exclude(import_run__in=query.hidden_runs)

    # Built only where used: each subquery costs its building on every page.
    def mine() -> Exists:
        return Exists(Feedback.objects.filter(sample=OuterRef("pk"), author=user))

    def anyone(**more: object) -> Exists:
        return Exists(Feedback.objects.filter(sample=OuterRef("pk"), **more))

    match filter_name or query.filter:
        case "todo":
            qs = overlap.needing_review(qs, project, user)
        case "unreviewed":
            qs = qs.filter(~anyone())
        case "mine":
            qs = qs.filter(mine())
        case "reviewed":
            qs = qs.filter(anyone())
        case "disagree":
            # agrees_with_judge is NULL, not False, where the sample has no verdict to disagree with.
            qs = qs.filter(anyone(**DISAGREES))
            if query.blind:
                qs = qs.filter(mine())
    if query.label:
        qs = qs.filter(anyone(label=query.label))
        if query.blind:
            qs = qs.filter(mine())
    if query.judge:
        qs = qs.filter(judge_value=query.judge)
    if query.q:
        qs = qs.alias(inputs_search=Cast("inputs", TextField())).filter(_search(query.q, query.judge_hidden))
    return qs


def _search(text: str, judge_hidden: bool = False) -> Q:
    found = (
        Q(external_id__icontains=text)
        | Q(inputs_search__icontains=text)
        | Q(outputs__icontains=text)
        | Q(output_a__icontains=text)
        | Q(output_b__icontains=text)
    )
    return found if judge_hidden else found | Q(judge_rationale__icontains=text)


TODO_SECONDS = 30  # others' review claims (reviews.overlap) change "needs my review" without a write: kept this long


def counts(project: Project, user: User, query: QueueQuery) -> dict[str, int]:
    """Return how many samples each filter holds, with the query's label, judge verdict and search applied.

    Kept in the figures cache (reviews.figures) per reviewer and query until the project's reviews or samples
    change; "needs my review" also moves with others' claims and their expiry, so it is kept TODO_SECONDS at most.
    """
    key = _cache_key(user, query)
    todo = figures.cached(
        project.pk, f"queue-todo:{key}", lambda: samples(project, user, query, "todo").count(), timeout=TODO_SECONDS
    )
    rest = figures.cached(project.pk, f"queue-counts:{key}", lambda: _counts(project, user, query))
    return {name: todo if name == "todo" else rest[name] for name in FILTERS}


def _cache_key(user: User, query: QueueQuery) -> str:
    """What the counts depend on besides the project: the reviewer and the query (the order does not matter)."""
    parts = (user.pk, query.label, query.judge, query.q, query.blind, query.judge_hidden, query.hidden_runs)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _counts(project: Project, user: User, query: QueueQuery) -> dict[str, int]:
    """How many samples each filter but "needs my review" holds.

    Without a label or text filter the counts come from the feedback side, where indexes answer them (at 100k
    samples: a few index scans instead of six passes over the samples); todo and unreviewed are differences,
    exact because a reviewer has at most one feedback per sample and feedback belongs to its sample's project.
    With a label or text filter, one aggregate pass over the matching samples answers all six.
    """
    if query.label or query.q:
        return _counts_in_one_pass(project, user, query)
    sample_filter = {"sample__judge_value": query.judge} if query.judge else {}
    samples_qs = Sample.objects.filter(project=project, **({"judge_value": query.judge} if query.judge else {}))
    # order_by(): the model's default ordering would join the DISTINCT and steer the planner off these indexes.
    feedback = Feedback.objects.filter(project=project, **sample_filter).order_by()
    if query.hidden_runs:  # an unfinished import's samples, and the feedback it wrote, are hidden alike
        samples_qs = samples_qs.exclude(import_run__in=query.hidden_runs)
        feedback = feedback.exclude(sample__import_run__in=query.hidden_runs)
    every = samples_qs.count()
    mine = feedback.filter(author=user).count()
    reviewed = feedback.aggregate(n=Count("sample_id", distinct=True))["n"]
    disagreeing = feedback.filter(**DISAGREES)
    if query.blind:
        mine_samples = Feedback.objects.filter(project=project, author=user).order_by().values("sample_id")
        disagreeing = disagreeing.filter(sample_id__in=mine_samples)
    disagree = disagreeing.aggregate(n=Count("sample_id", distinct=True))["n"]
    result = {
        "unreviewed": every - reviewed,
        "mine": mine,
        "reviewed": reviewed,
        "disagree": disagree,
        "all": every,
    }
    return result


def _counts_in_one_pass(project: Project, user: User, query: QueueQuery) -> dict[str, int]:
    mine = Exists(Feedback.objects.filter(sample=OuterRef("pk"), author=user))
    anyone = Exists(Feedback.objects.filter(sample=OuterRef("pk")))
    disagree = Q(Exists(Feedback.objects.filter(sample=OuterRef("pk"), **DISAGREES)))
    if query.blind:
        disagree &= Q(mine)
    result = samples(project, user, query, "all").aggregate(
        all=Count("id"),
        mine=Count("id", filter=Q(mine)),
        reviewed=Count("id", filter=Q(anyone)),
        disagree=Count("id", filter=disagree),
    )
    result["unreviewed"] = result["all"] - result["reviewed"]
    return result


@dataclass
class Page:
    items: list[Sample]
    next_after: int | None
    prev_before: int | None


def page(
    qs: QuerySet[Sample],
    after: int | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
    key: str = "id",
    project: Project | None = None,
) -> Page:
    """Return one page by keyset on `key` (id, or the teaching order's key): no OFFSET, so page 2,000 costs what
    page 1 costs. The teaching order's page needs the `project`."""
    if key == "order_key" and project is not None:
        return _teaching_page(project, qs, after, before, size)
    if before is not None:
        items = list(qs.filter(**{f"{key}__lt": before}).order_by(f"-{key}")[: size + 1])
        has_more_before = len(items) > size
        items = list(reversed(items[:size]))
        first = getattr(items[0], key) if has_more_before and items else None
        return Page(items, getattr(items[-1], key) if items else None, first)
    if after is not None:
        qs = qs.filter(**{f"{key}__gt": after})
    items = list(qs[: size + 1])
    has_more = len(items) > size
    items = items[:size]
    return Page(
        items,
        getattr(items[-1], key) if has_more else None,
        getattr(items[0], key) if after is not None and items else None,
    )


def _teaching_page(project: Project, qs: QuerySet[Sample], after: int | None, before: int | None, size: int) -> Page:
    """A page of the teaching order read as its two parts: the ranked samples by their stored rank (the (project,
    rank) index), then the unranked ones by id. Sorting by the computed key would sort every matching sample."""
    ranked, unranked = _ranked(project, qs), qs.filter(priority__isnull=True)
    if before is not None:
        items: list[Sample] = []
        if before > UNRANKED:
            items = list(unranked.filter(id__lt=before - UNRANKED).order_by("-id")[: size + 1])
        if len(items) <= size:
            below = ranked.filter(priority__rank__lt=min(before, UNRANKED))
            items += list(below.order_by("-priority__rank")[: size + 1 - len(items)])
        has_more_before = len(items) > size
        items = list(reversed(items[:size]))
        first = items[0].order_key if has_more_before and items else None  # type: ignore[attr-defined]
        return Page(items, items[-1].order_key if items else None, first)  # type: ignore[attr-defined]
    items = []
    if after is None or after < UNRANKED:
        above = ranked.filter(priority__rank__gt=after) if after is not None else ranked
        items = list(above.order_by("priority__rank")[: size + 1])
    if len(items) <= size:
        from_id = after - UNRANKED if after is not None and after >= UNRANKED else -1
        items += list(unranked.filter(id__gt=from_id).order_by("id")[: size + 1 - len(items)])
    has_more = len(items) > size
    items = items[:size]
    return Page(
        items,
        items[-1].order_key if has_more else None,  # type: ignore[attr-defined]
        items[0].order_key if after is not None and items else None,  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class Place:
    """Where a sample stands in a queue: the samples before and after it, its 1-based position (None when it
    is not in the queue, e.g. just reviewed in "needs my review") and how many samples the queue holds."""

    previous: int | None
    next: int | None
    position: int | None
    total: int


def place(project: Project, user: User, query: QueueQuery, sample_id: int, here: int | None = None) -> Place:
    """Return the sample's neighbours (`neighbours`) and position in the queue, read together (`_read`)."""
    qs = _matching(project, user, query)
    here = _key_of(query, sample_id) if here is None else here
    row = _read(project, user, query, qs, sample_id, here, position=_position(project, qs, query, sample_id, here))
    total = counts(project, user, query)[query.filter]  # the queue's own count, from the figures cache
    return Place(row["previous"], row["next"], row["position"], total)


def neighbours(
    project: Project, user: User, query: QueueQuery, sample_id: int, here: int | None = None
) -> tuple[int | None, int | None]:
    """Return the ids of the samples before and after `sample_id` in the queue.

    In a shrinking filter (needs my review, not reviewed yet) "next" wraps around to the first sample still
    waiting before this one, so samples skipped with j come back once the end is reached; "previous" walks the
    whole project, since what was just reviewed has left the filter.
    """
    here = _key_of(query, sample_id) if here is None else here
    row = _read(project, user, query, _matching(project, user, query), sample_id, here)
    return row["previous"], row["next"]


def position(
    project: Project, user: User, query: QueueQuery, sample_id: int, here: int | None = None
) -> tuple[int | None, int]:
    """Return the sample's 1-based position in the queue (None when it is not in it, e.g. just reviewed in
    "needs my review") and how many samples the queue holds."""
    found = place(project, user, query, sample_id, here)
    return found.position, found.total


def _read(
    project: Project,
    user: User,
    query: QueueQuery,
    qs: QuerySet[Sample],
    sample_id: int,
    here: int,
    **more: Combinable,
) -> dict[str, Any]:
    """The neighbours of the sample at `here` in the queue `qs` (and the `more` asked for) in one round trip,
    usually.

    Each neighbour is a chain of steps, the first that finds a sample giving it: the teaching order's next
    sample is the next ranked one, else the first unranked one, else (in a shrinking filter) the first ranked
    one again. One query asks every chain's first step, each a subquery that keeps the plan it has as a query
    of its own; a second asks the rest of the chains that found nothing (the end of the ranked samples, or of
    the queue). The later steps are not in the first query: PostgreSQL would plan them anyway, and the plan's
    cost estimate with them (a scan for the unranked samples, thought to be few) makes it compile the query.
    """
    following = _after(query, here)
    if query.filter in SHRINKING:
        following += [step for step in _after(query, -1) if step not in following]
    back = _matching(project, user, query, "all") if query.filter in SHRINKING else qs
    chains = {
        "next": [_step(project, qs, s) for s in following],
        "previous": [_step(project, back, s) for s in _before(query, here)],
    }
    first = {name: chain[0] for name, chain in chains.items()}
    row: dict[str, Any] = dict(_one_row(project, {**first, **more}))
    rest = {name: chain[1:] for name, chain in chains.items() if row[name] is None and len(chain) > 1}
    if rest:
        row.update(_one_row(project, {name: Coalesce(*c) if len(c) > 1 else c[0] for name, c in rest.items()}))
    if row["next"] == sample_id:  # wrapped round to itself: nothing else is waiting
        row["next"] = None
    return row


def _one_row(project: Project, parts: Mapping[str, Combinable]) -> Mapping[str, Any]:
    """Ask several subqueries in one statement (a single row: the project's)."""
    return Project.objects.filter(pk=project.pk).order_by().values(**parts).get()


# The teaching order's keyset steps go through the ranked samples by their stored rank (the (project, rank)
# index), then the unranked ones by id, rather than comparing a computed key on every row.

Step = tuple[str, bool, int]  # which samples ("ranked", "unranked" or "any"), after (or before), from where


def _after(query: QueueQuery, here: int) -> list[Step]:
    if query.order != "teach":
        return [("any", True, here)]
    unranked = ("unranked", True, max(here - UNRANKED, -1))
    return [unranked] if here >= UNRANKED else [("ranked", True, here), unranked]


def _before(query: QueueQuery, here: int) -> list[Step]:
    if query.order != "teach":
        return [("any", False, here)]
    ranked = ("ranked", False, min(here, UNRANKED))
    return [ranked] if here < UNRANKED else [("unranked", False, here - UNRANKED), ranked]


def _step(project: Project, qs: QuerySet[Sample], step: Step) -> Subquery:
    """The first sample of `qs` after (or the last before) a place in the order, among the samples of `step`."""
    which, after, bound = step
    if which == "ranked":
        key, qs = "priority__rank", _ranked(project, qs)
    else:
        key, qs = "id", qs.filter(priority__isnull=True) if which == "unranked" else qs
    found = qs.filter(**{f"{key}__{'gt' if after else 'lt'}": bound}).order_by(key if after else f"-{key}")
    return Subquery(found.values("id")[:1], output_field=BigIntegerField())


class _Count(Subquery):
    """How many rows a queryset of ids holds, as a subquery."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) counted)"
    output_field = IntegerField()


def _ranked(project: Project, qs: QuerySet[Sample]) -> QuerySet[Sample]:
    return qs.filter(priority__project=project)


class _Position(Subquery):
    """How many rows a queryset of ids holds if the sample `sample_id` is among them, else NULL: over the queue up
    to and including the sample, its position, and whether it is in the queue, in one subquery."""

    template = (
        "(SELECT CASE WHEN MAX(CASE WHEN counted.id = %(sample_id)d THEN 1 ELSE 0 END) = 1 THEN COUNT(*) END"
        " FROM (%(subquery)s) counted)"
    )
    output_field = IntegerField()


def _position(project: Project, qs: QuerySet[Sample], query: QueueQuery, sample_id: int, here: int) -> Combinable:
    def through(qs: QuerySet[Sample]) -> _Position:
        return _Position(qs.order_by().values("id"), sample_id=int(sample_id))

    if query.order != "teach":
        return through(qs.filter(id__lte=here))
    if here < UNRANKED:
        return through(_ranked(project, qs).filter(priority__rank__lte=here))
    ranked = _Count(_ranked(project, qs).order_by().values("id"))  # every ranked sample comes before it
    return ranked + through(qs.filter(priority__isnull=True, id__lte=here - UNRANKED))


def key_of(query: QueueQuery, sample: Sample) -> int:
    """The sample's place in the query's order (its id, or the teaching order's key), for `place`: its rank
    comes with it when it was read through `with_rank`."""
    if query.key == "id":
        return sample.pk
    if not hasattr(sample, "queue_rank"):
        return _key_of(query, sample.pk)
    return UNRANKED + sample.pk if sample.queue_rank is None else sample.queue_rank


def with_rank(qs: QuerySet[Sample]) -> QuerySet[Sample]:
    """Read the samples with their stored rank in the teaching order (`queue_rank`, None if not ranked yet)."""
    return qs.annotate(queue_rank=F("priority__rank"))


def _key_of(query: QueueQuery, sample_id: int) -> int:
    if query.key == "id":
        return sample_id
    rank = QueuePriority.objects.filter(sample_id=sample_id).values_list("rank", flat=True).first()
    return UNRANKED + sample_id if rank is None else rank
