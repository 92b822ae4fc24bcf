"""Unalign in bulk: remove one feedback, all of a reviewer's, or a date range, from both memories at once.

Two ways: `apply` deletes the feedback (its label leaves every agreement figure too); `exclude` keeps it and its
label, and leaves it out of both memories (`reviews.adjudication.learnable`), which `include` undoes.

`preview` says beforehand what will change: the episodic entries removed, the principles retired (every live
source is in the selection), the principles to re-derive (some sources remain) and the hand-written or pinned
principles that stay (only their links go). `apply` deletes exactly the previewed feedback, removes its episodic
entries, retires what lost every source and records a memory version, in one transaction under the project's
writer lock; the principles that keep some sources are re-derived by the next regeneration (queued at once),
as for any deleted feedback.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from memory import dispatch, episodic, versions
from memory.llm.base import Usage
from memory.locks import memory_writer
from memory.models import Contradiction, DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from memory.signals import quiet_feedback_deletes
from reviews.adjudication import learnable
from reviews.models import Feedback, Project

log = logging.getLogger(__name__)
SHOWN = 200  # feedback rows listed on the confirmation page


class NothingSelected(Exception):
    """The selection names no feedback (or the selection changed since its preview)."""


@dataclass
class Criteria:
    feedback_id: int | None = None
    reviewer_id: int | None = None
    since: date | None = None  # inclusive, on the day the feedback was given
    until: date | None = None  # inclusive

    @property
    def empty(self) -> bool:
        return not (self.feedback_id or self.reviewer_id or self.since or self.until)

    def describe(self) -> str:
        parts = []
        if self.feedback_id:
            parts.append(f"feedback #{self.feedback_id}")
        if self.reviewer_id:
            parts.append("one reviewer's feedback")
        if self.since or self.until:
            parts.append(f"given {self.since or 'from the start'} to {self.until or 'today'}")
        return ", ".join(parts) or "nothing"


def select(feedback: QuerySet[Feedback], criteria: Criteria) -> QuerySet[Feedback]:
    """Narrow `feedback` (already limited to what the member may unalign) to the criteria; all must hold."""
    if criteria.empty:
        return feedback.none()
    rows = feedback
    if criteria.feedback_id:
        rows = rows.filter(pk=criteria.feedback_id)
    if criteria.reviewer_id:
        rows = rows.filter(author_id=criteria.reviewer_id)
    tz = timezone.get_current_timezone()
    if criteria.since:
        rows = rows.filter(created_at__gte=datetime.combine(criteria.since, clock.min, tzinfo=tz))
    if criteria.until:
        rows = rows.filter(created_at__lt=datetime.combine(criteria.until + timedelta(days=1), clock.min, tzinfo=tz))
    return rows.order_by("id")


def token(ids: list[int]) -> str:
    """A digest of the selected ids: the confirmation applies only if the selection is still the previewed one."""
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()[:32]


@dataclass
class Affected:
    principle: Principle
    selected: int  # its live sources in the selection
    remaining: int  # its live sources outside it


@dataclass
class Preview:
    ids: list[int]
    feedback: list[Feedback]  # the first SHOWN, for the page
    in_store: int | None  # of the selection, entries the episodic store holds (None: the store is unreachable)
    in_memory: int = 0  # of the selection, feedback the judge can retrieve (neither overruled nor left out)
    retire: list[Affected] = field(default_factory=list)
    rederive: list[Affected] = field(default_factory=list)
    keep: list[Affected] = field(default_factory=list)  # pinned or hand-written: kept, their links dropped

    @property
    def token(self) -> str:
        return token(self.ids)


def preview(project: Project, selection: QuerySet[Feedback], store: bool = True) -> Preview:
    """Say what unaligning the selection would change in both memories, changing nothing. `store`: count the
    selection's entries in the episodic store too."""
    ids = list(selection.values_list("pk", flat=True))
    shown = list(selection.select_related("sample", "author")[:SHOWN]) if store else []
    in_store = None
    try:
        if store:
            in_store = (
                len(episodic.collection(project.pk).get(ids=[str(i) for i in ids], include=[])["ids"]) if ids else 0
            )
    except Exception as error:  # the page says the store is unreachable; the database is the truth
        log.warning("episodic store unreachable for project %s: %s", project.pk, error)
    in_memory = learnable(Feedback.objects.filter(pk__in=ids)).count() if ids else 0
    result = Preview(ids, shown, in_store, in_memory)
    if not ids:
        return result
    chosen = set(ids)
    touched = PrincipleSource.objects.filter(feedback_id__in=chosen).values("principle_id")
    # Filtered by a subquery, not through `sources`: the counts below must see every link of the principle.
    live = Q(sources__feedback__isnull=False, sources__feedback__excluded_from_memory=False)
    principles = (
        Principle.objects.filter(project=project, retired=False, pk__in=touched)
        .annotate(
            live=Count("sources", filter=live, distinct=True),
            hit=Count("sources", filter=live & Q(sources__feedback_id__in=chosen), distinct=True),
        )
        .order_by("id")
    )
    for principle in principles:
        affected = Affected(principle, principle.hit, principle.live - principle.hit)
        if principle.pinned or principle.origin == Principle.Origin.MANUAL:
            result.keep.append(affected)
        elif affected.remaining == 0:
            result.retire.append(affected)
        else:
            result.rederive.append(affected)
    return result


@dataclass
class Result:
    version: MemoryVersion
    previous: MemoryVersion | None
    removed: int
    retired: list[Principle]
    rederive: list[Principle]


def apply(
    project: Project, selection: QuerySet[Feedback], expected_token: str, actor_name: str, actor: User | None = None
) -> Result:
    """Unalign the selection, which must still be the one previewed (`expected_token`); raise NothingSelected
    otherwise, and MemoryBusy when a regeneration holds the memory for longer than an edit waits."""
    started = time.monotonic()
    with memory_writer(project.pk, wait=versions.EDIT_WAIT_SECONDS), transaction.atomic():
        versions.lock_project(project)
        ids = list(selection.select_for_update().values_list("pk", flat=True))
        if not ids or token(ids) != expected_token:
            raise NothingSelected(
                "The selection changed since its preview (feedback was added, edited away or removed): "
                "look at the preview again."
                if ids
                else "Nothing to unalign: the selected feedback is already gone."
            )
        plan = preview(project, Feedback.objects.filter(pk__in=ids), store=False)
        previous = MemoryVersion.objects.filter(project=project).order_by("-number").first()
        with quiet_feedback_deletes():  # one store removal and one regeneration below, not one task per row
            Feedback.objects.filter(pk__in=ids).delete()
        retired = _retire(project, plan, f"all of its sources were unaligned by {actor_name}")
        # Kept by a human's decision: their links to the removed feedback go, the text stays.
        PrincipleSource.objects.filter(
            principle__in=[a.principle for a in plan.keep + plan.retire], feedback__isnull=True
        ).delete()
        summary = (
            f"unaligned {len(ids)} feedback by {actor_name}: {len(retired)} principle{'s' if len(retired) != 1 else ''}"
            f" retired, {len(plan.rederive)} to re-derive"
        )
        version = versions.new_version(
            project, MemoryVersion.Trigger.UNALIGN, actor=actor, summary=summary, usage=Usage(), started=started
        )
        transaction.on_commit(lambda: _after_commit(project.pk, ids, bool(plan.rederive)))
    return Result(version, previous, len(ids), retired, [a.principle for a in plan.rederive])


def _retire(project: Project, plan: Preview, reason: str) -> list[Principle]:
    """Retire the principles that learned only from the removed feedback, and resolve their contradictions."""
    retired = [a.principle for a in plan.retire]
    Principle.objects.filter(pk__in=[p.pk for p in retired]).update(
        retired=True, retired_reason=reason[:200], updated_at=timezone.now()
    )
    Contradiction.objects.filter(project=project, resolved=False).filter(
        Q(first__in=retired) | Q(second__in=retired)
    ).update(resolved=True)
    return retired


def _after_commit(project_id: int, ids: list[int], rederive: bool) -> None:
    try:
        episodic.delete(project_id, ids)
    except Exception:  # the periodic repair removes entries whose feedback is gone
        log.exception("could not remove %s unaligned entries of project %s from the store", len(ids), project_id)
    if rederive:
        try:
            dispatch.request_regeneration(project_id, delay=0)
        except Exception:  # the broker is down: the periodic repair re-derives stale principles
            log.exception("could not queue the re-derivation for project %s", project_id)


def exclude(
    project: Project, selection: QuerySet[Feedback], expected_token: str, actor_name: str, actor: User | None = None
) -> Result:
    """Leave the selection out of both memories and keep it, label and all (agreement figures still count it).

    As `apply`, but nothing is deleted: the feedback is marked, its episodic entries go, the principles that
    learned only from it retire and those that keep other sources are re-derived; `include` brings it back.
    """
    started = time.monotonic()
    with memory_writer(project.pk, wait=versions.EDIT_WAIT_SECONDS), transaction.atomic():
        versions.lock_project(project)
        ids = list(selection.select_for_update().values_list("pk", flat=True))
        if not ids or token(ids) != expected_token:
            raise NothingSelected(
                "The selection changed since its preview: look at the preview again."
                if ids
                else "Nothing to leave out: the selected feedback is gone."
            )
        plan = preview(project, Feedback.objects.filter(pk__in=ids), store=False)
        previous = MemoryVersion.objects.filter(project=project).order_by("-number").first()
        Feedback.objects.filter(pk__in=ids).update(
            excluded_from_memory=True, excluded_at=timezone.now(), excluded_by=actor
        )
        DistilledFeedback.objects.filter(feedback_id__in=ids).delete()  # so that `include` distils it again
        retired = _retire(project, plan, f"all of its sources were left out of the memory by {actor_name}")
        summary = (
            f"left {len(ids)} feedback out of the memory (labels kept) by {actor_name}: {len(retired)} "
            f"principle{'s' if len(retired) != 1 else ''} retired, {len(plan.rederive)} to re-derive"
        )
        version = versions.new_version(
            project, MemoryVersion.Trigger.UNALIGN, actor=actor, summary=summary, usage=Usage(), started=started
        )
        transaction.on_commit(lambda: _after_commit(project.pk, ids, bool(plan.rederive)))
    return Result(version, previous, len(ids), retired, [a.principle for a in plan.rederive])


def include(project: Project, selection: QuerySet[Feedback]) -> int:
    """Put feedback left out of the memory back in: its entries are stored again and it is distilled again."""
    with transaction.atomic():
        count = selection.filter(excluded_from_memory=True).update(
            excluded_from_memory=False, excluded_at=None, excluded_by=None
        )
        if count:
            transaction.on_commit(lambda: _after_include(project.pk), robust=True)
    return count


def _after_include(project_id: int) -> None:
    try:
        dispatch.sync_project(project_id)  # stores the missing entries (memory.sync)
        dispatch.request_regeneration(project_id, delay=0)
    except Exception:  # the broker is down: the periodic repair stores and distils what is missing
        log.exception("could not queue the return of left-out feedback of project %s", project_id)
