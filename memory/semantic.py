"""Semantic memory: distil critiques into principles, re-derive principles that lost sources, consolidate.

regenerate brings a project's semantic memory up to date: distillation (memory.distil), consolidation
(memory.consolidate), each change recorded as a version (memory.versions). Every change happens after the provider
has answered, inside one transaction that also writes the new MemoryVersion: a failed or interrupted run leaves the
memory exactly as it was, and running again is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from memory.consolidate import consolidate, due_for_consolidation
from memory.distil import distill_batches, pending_feedback, realign, rederive_stale, split_batches, stale_principles
from memory.llm import get_provider
from memory.llm.base import Provider
from memory.models import MemoryVersion, PrincipleSource
from memory.versions import active_principles
from reviews.models import Project

# A round of concurrent distillation takes up to this many batches per allowed call in flight: the calls are
# pipelined (a slot that frees takes the next batch), and the round is written as one version.
ROUND_WAVES = 4


def up_to_date(project: Project) -> bool:
    """Whether a regeneration would find nothing to do: no pending feedback, no principle to re-derive or to
    realign, the active principles within the project's budget."""
    crossing = PrincipleSource.objects.filter(
        principle__project=project, principle__retired=False, feedback__isnull=False
    ).exclude(Q(principle__label="") | Q(feedback__label=F("principle__label")))
    return not (
        pending_feedback(project).exists()
        or stale_principles(project).exists()
        or crossing.exists()
        or active_principles(project).count() > project.max_principles
    )


@dataclass
class Outcome:
    versions: list[MemoryVersion]
    wait_seconds: float = 0.0  # > 0: a partial batch waits for the burst to go quiet; run again then


def regenerate(
    project: Project, provider: Provider | None = None, force: bool = False, deadline: float | None = None
) -> Outcome:
    """Bring the project's semantic memory up to date with its feedback. The caller holds the project's
    regeneration lock (memory.locks): one writer at a time.

    Principles that lost sources are re-derived first (unalign), then links to feedback of another label than
    the principle's are dropped (and that feedback distilled again), then pending feedback is distilled. A
    backlog is distilled in rounds of up to ROUND_WAVES × `project.provider_concurrency` batches, at most
    `provider_concurrency` calls in flight, whose principles are reconciled (duplicates merged, sources united)
    into one version per round; a trickle distils batch by batch. A batch
    that is not full waits until no feedback arrived for MEMALIGN_DISTILL_QUIET_SECONDS, so a burst of N
    critiques costs about N / batch size calls, not N. `force` distils partial batches now. Past `deadline` (a
    time.monotonic() value) the run stops between rounds and asks to be continued. Last, when the active
    principles exceed `project.max_principles`, consolidation brings them within it.
    """
    provider = provider or get_provider(project)
    versions = []
    # Re-derive first: a principle rebuilt for a new label then sheds its sources of the old one in realign.
    for step in (rederive_stale, realign):
        if version := step(project, provider):
            versions.append(version)
    width = max(1, project.provider_concurrency) * ROUND_WAVES if provider.remote else 1
    size = settings.MEMALIGN_DISTILL_BATCH_SIZE
    while True:
        pending = list(pending_feedback(project)[: size * width + 1])
        if not pending:
            break
        if deadline is not None and time.monotonic() > deadline:
            return Outcome(versions, wait_seconds=0.1)
        batches = split_batches(pending, width)
        tail = batches[-1]
        tail_is_partial = len(tail) < size and sum(map(len, batches)) == len(pending)
        if tail_is_partial and not force:
            if len(batches) > 1:
                batches = batches[:-1]  # the full batches now; the tail waits for the burst to go quiet
            else:
                quiet_for = (timezone.now() - max(f.updated_at for f in pending)).total_seconds()
                if quiet_for < settings.MEMALIGN_DISTILL_QUIET_SECONDS:
                    return Outcome(versions, settings.MEMALIGN_DISTILL_QUIET_SECONDS - quiet_for)
        if version := distill_batches(project, batches, provider):
            versions.append(version)
    active = active_principles(project).count()
    over_budget = active > project.max_principles
    if (over_budget or due_for_consolidation(project)) and (version := consolidate(project, provider)):
        versions.append(version)
    return Outcome(versions)
