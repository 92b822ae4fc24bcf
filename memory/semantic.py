"""Semantic memory: distil critiques into principles, re-derive principles that lost sources, consolidate.

Every change happens after the provider has answered, inside one transaction that also writes the new
MemoryVersion: a failed or interrupted run leaves the memory exactly as it was, and running again is safe.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from memory.embeddings import embed
from memory.llm import get_provider
from memory.llm.base import Example, LabelSchema, PrincipleText, Provider, ProviderError, Usage
from memory.models import Contradiction, DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from reviews.models import Feedback, Project

EXAMPLE_INPUT_CHARS = 1_500
EXAMPLE_OUTPUT_CHARS = 2_000
DUPLICATE_SIMILARITY = 0.92  # a new principle this close to an active one only adds its sources to it


def schema(project: Project) -> LabelSchema:
    return LabelSchema(kind=project.label_kind, choices=project.label_choices)


def example(feedback: Feedback, similarity: float = 0.0) -> Example:
    """Return the provider's view of a feedback: the sample (trimmed), the expert's label and critique."""
    sample = feedback.sample
    return Example(
        feedback_id=feedback.pk,
        inputs=sample.inputs_text()[:EXAMPLE_INPUT_CHARS],
        output=sample.output_text()[:EXAMPLE_OUTPUT_CHARS],
        label=feedback.label,
        critique=feedback.critique,
        judge_value=sample.judge_value,
        similarity=similarity,
    )


def active_principles(project: Project) -> QuerySet[Principle]:
    return Principle.objects.filter(project=project, retired=False).order_by("id")


def principle_texts(project: Project) -> list[PrincipleText]:
    return [PrincipleText(p.pk, p.text) for p in active_principles(project)]


def pending_feedback(project: Project) -> QuerySet[Feedback]:
    """Feedback whose current revision has not been distilled yet, oldest first."""
    return (
        Feedback.objects.filter(project=project)
        .exclude(distilled__revision=F("revision"))
        .select_related("sample")
        .order_by("updated_at", "id")
    )


def broken_links(project: Project) -> QuerySet[PrincipleSource]:
    """Source links whose feedback was deleted, or edited since the principle learned from it."""
    return PrincipleSource.objects.filter(principle__project=project).filter(
        Q(feedback__isnull=True) | ~Q(feedback_revision=F("feedback__revision"))
    )


def stale_principles(project: Project) -> QuerySet[Principle]:
    """Active principles that lost a source: they must be re-derived from what remains (unalign)."""
    return active_principles(project).filter(pk__in=broken_links(project).values("principle_id"))


def estimated_tokens(feedback: Feedback) -> int:
    sample = feedback.sample
    chars = min(len(sample.inputs_text()), EXAMPLE_INPUT_CHARS) + min(len(sample.output_text()), EXAMPLE_OUTPUT_CHARS)
    return (chars + len(feedback.critique)) // 4 + 20


def next_batch(pending: list[Feedback]) -> list[Feedback]:
    """Return the first batch: at most MEMALIGN_DISTILL_BATCH_SIZE items within the token budget."""
    batch, tokens = [], 0
    for feedback in pending[: settings.MEMALIGN_DISTILL_BATCH_SIZE]:
        cost = estimated_tokens(feedback)
        if batch and tokens + cost > settings.MEMALIGN_DISTILL_BATCH_TOKENS:
            break
        batch.append(feedback)
        tokens += cost
    return batch


@dataclass
class Outcome:
    versions: list[MemoryVersion]
    wait_seconds: float = 0.0  # > 0: a partial batch waits for the burst to go quiet; run again then


def regenerate(project: Project, provider: Provider | None = None, force: bool = False, deadline: float | None = None) -> Outcome:
    """Bring the project's semantic memory up to date with its feedback.

    Principles that lost sources are re-derived first (unalign), then pending feedback is distilled in
    batches. A batch that is not full waits until no feedback arrived for MEMALIGN_DISTILL_QUIET_SECONDS,
    so a burst of N critiques costs about N / batch size calls, not N. `force` distils partial batches now.
    Past `deadline` (a time.monotonic() value) the run stops between batches and asks to be continued.
    """
    provider = provider or get_provider(project)
    versions = []
    if version := rederive_stale(project, provider):
        versions.append(version)
    while True:
        pending = list(pending_feedback(project)[: settings.MEMALIGN_DISTILL_BATCH_SIZE + 1])
        if not pending:
            break
        if deadline is not None and time.monotonic() > deadline:
            return Outcome(versions, wait_seconds=0.1)
        batch = next_batch(pending)
        full = len(batch) < len(pending) or len(batch) == settings.MEMALIGN_DISTILL_BATCH_SIZE
        if not full and not force:
            quiet_for = (timezone.now() - max(f.updated_at for f in pending)).total_seconds()
            if quiet_for < settings.MEMALIGN_DISTILL_QUIET_SECONDS:
                return Outcome(versions, settings.MEMALIGN_DISTILL_QUIET_SECONDS - quiet_for)
        version = distill_batch(project, batch, provider)
        if version is not None:
            versions.append(version)
    if due_for_consolidation(project) and (version := consolidate(project, provider)):
        versions.append(version)
    return Outcome(versions)


def distill_batch(project: Project, batch: list[Feedback], provider: Provider) -> MemoryVersion | None:
    """Distil one batch into new principles and record a version; feedback without a critique is only marked."""
    started = time.monotonic()
    with_critique = [f for f in batch if f.critique.strip()]
    usage = Usage()
    proposals = []
    if with_critique:
        try:
            result = provider.distill(project.criterion, schema(project), principle_texts(project), [example(f) for f in with_critique])
        except ProviderError as error:
            record_failure(project, MemoryVersion.Trigger.DISTILL, provider, error, started)
            raise
        usage, proposals = result.usage, result.principles
    vectors = _principle_vectors(project, proposals)
    with transaction.atomic():
        _lock(project)
        # Feedback edited or deleted while the provider worked is not marked: it will be distilled as it is now.
        current = dict(Feedback.objects.filter(pk__in=[f.pk for f in batch]).values_list("pk", "revision"))
        learned = {f.pk: f.revision for f in batch if current.get(f.pk) == f.revision}
        added = _add_principles(project, proposals, learned, vectors)
        version = None
        if added or with_critique:
            summary = f"distilled {len(with_critique)} critique{'s' if len(with_critique) != 1 else ''}: {len(added)} new principle{'s' if len(added) != 1 else ''}"
            version = _new_version(project, MemoryVersion.Trigger.DISTILL, provider, usage, started, summary)
            Principle.objects.filter(pk__in=[p.pk for p in added if p.created_in_id is None]).update(created_in=version)
        for feedback_id, revision in learned.items():
            DistilledFeedback.objects.update_or_create(feedback_id=feedback_id, defaults={"revision": revision, "version": version})
    return version


def _add_principles(project: Project, proposals, learned: dict[int, int], vectors: dict[str, np.ndarray]) -> list[Principle]:
    """Create principles from proposals; unknown sources are ignored, sourceless or duplicate ones not created."""
    added: list[Principle] = []
    existing = [p for p in active_principles(project) if p.text in vectors]
    matrix = np.array([vectors[p.text] for p in existing]) if existing else np.zeros((0, 384), dtype=np.float32)
    for proposal in proposals:
        text = _clean(proposal.text)
        sources = [i for i in dict.fromkeys(proposal.source_ids) if i in learned]
        if not text or not sources:
            continue
        vector = vectors[text]
        twin = _nearest(existing, matrix, vector)
        if twin is not None:
            _link(twin, sources, learned)  # a duplicate: credit its sources to the principle that says it already
            continue
        principle = Principle.objects.create(project=project, text=text)
        _link(principle, sources, learned)
        added.append(principle)
        existing.append(principle)
        matrix = np.vstack([matrix, vector])
    return added


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _principle_vectors(project: Project, proposals) -> dict[str, np.ndarray]:
    """Embed existing and proposed principle texts, before any transaction opens (embedding takes CPU time)."""
    texts = list(dict.fromkeys([p.text for p in active_principles(project)] + [t for t in (_clean(p.text) for p in proposals) if t]))
    return dict(zip(texts, embed(texts))) if texts else {}


def _nearest(existing: list[Principle], vectors: np.ndarray, vector: np.ndarray) -> Principle | None:
    if not existing:
        return None
    similarities = vectors @ vector
    best = int(np.argmax(similarities))
    return existing[best] if similarities[best] >= DUPLICATE_SIMILARITY else None


def _link(principle: Principle, feedback_ids: list[int], revisions: dict[int, int]) -> None:
    for feedback_id in feedback_ids:
        PrincipleSource.objects.update_or_create(
            principle=principle, feedback_id=feedback_id, defaults={"feedback_revision": revisions[feedback_id]}
        )


def rederive_stale(project: Project, provider: Provider) -> MemoryVersion | None:
    """Unalign: retire principles whose sources are all gone, re-derive those that lost some."""
    stale = list(stale_principles(project))
    if not stale:
        return None
    started = time.monotonic()
    usage = Usage()
    decisions: dict[int, tuple[str, str | None]] = {}  # principle id -> (action, new text)
    for principle in stale:
        remaining = _remaining_sources(principle)
        if principle.pinned or principle.origin == Principle.Origin.MANUAL:
            decisions[principle.pk] = ("keep", principle.text)  # a human's decision: keep the text, drop dead links
        elif not remaining:
            decisions[principle.pk] = ("retire", "all of its sources were removed")
        else:
            try:
                result = provider.rederive(project.criterion, principle.text, [example(f) for f in remaining])
            except ProviderError as error:
                record_failure(project, MemoryVersion.Trigger.UNALIGN, provider, error, started)
                raise
            usage.add(result.usage)
            if result.text is None:
                decisions[principle.pk] = ("retire", "its remaining sources no longer support it")
            else:
                decisions[principle.pk] = ("rewrite" if result.text.strip() != principle.text else "keep", result.text.strip())
    with transaction.atomic():
        _lock(project)
        counts = {"retire": 0, "rewrite": 0, "keep": 0}
        for principle in stale:
            action, text = decisions[principle.pk]
            counts[action] += 1
            broken_links(project).filter(principle=principle).delete()
            if action == "retire":
                Principle.objects.filter(pk=principle.pk).update(retired=True, retired_reason=text, updated_at=timezone.now())
            elif action == "rewrite":
                Principle.objects.filter(pk=principle.pk).update(text=text, updated_at=timezone.now())
        summary = f"unaligned: {counts['retire']} retired, {counts['rewrite']} rewritten, {counts['keep']} kept"
        return _new_version(project, MemoryVersion.Trigger.UNALIGN, provider, usage, started, summary)


def _remaining_sources(principle: Principle) -> list[Feedback]:
    links = principle.sources.filter(feedback__isnull=False, feedback_revision=F("feedback__revision"))
    return list(Feedback.objects.filter(pk__in=links.values("feedback_id")).select_related("sample").order_by("id"))


def due_for_consolidation(project: Project) -> bool:
    """Consolidate after every MEMALIGN_CONSOLIDATE_EVERY distillations, once there are principles to compare."""
    last = MemoryVersion.objects.filter(project=project, trigger=MemoryVersion.Trigger.CONSOLIDATE, status=MemoryVersion.Status.OK)
    last_number = last.aggregate(n=Max("number"))["n"] or 0
    since = MemoryVersion.objects.filter(
        project=project, trigger=MemoryVersion.Trigger.DISTILL, status=MemoryVersion.Status.OK, number__gt=last_number
    ).count()
    return since >= settings.MEMALIGN_CONSOLIDATE_EVERY and active_principles(project).count() >= 2


def consolidate(project: Project, provider: Provider | None = None) -> MemoryVersion | None:
    """Merge near-duplicate principles (sources united) and flag contradicting pairs; record a version."""
    provider = provider or get_provider(project)
    started = time.monotonic()
    candidates = [p for p in active_principles(project) if not p.pinned]
    if len(candidates) < 2:
        return None
    try:
        result = provider.consolidate(project.criterion, [PrincipleText(p.pk, p.text) for p in candidates])
    except ProviderError as error:
        record_failure(project, MemoryVersion.Trigger.CONSOLIDATE, provider, error, started)
        raise
    by_id = {p.pk: p for p in candidates}
    with transaction.atomic():
        _lock(project)
        merged = 0
        for merge in result.merges:
            group = [by_id[i] for i in merge.principle_ids if i in by_id and not by_id[i].retired]
            if len(group) < 2 or not merge.text.strip():
                continue
            keeper, others = group[0], group[1:]
            keeper.text = merge.text.strip()
            keeper.save(update_fields=["text", "updated_at"])
            for other in others:
                for link in other.sources.filter(feedback__isnull=False):
                    PrincipleSource.objects.get_or_create(
                        principle=keeper, feedback_id=link.feedback_id, defaults={"feedback_revision": link.feedback_revision}
                    )
                other.retired, other.retired_reason = True, f"merged into principle {keeper.pk}"
                other.save(update_fields=["retired", "retired_reason", "updated_at"])
                merged += 1
        version = _new_version(
            project, MemoryVersion.Trigger.CONSOLIDATE, provider, result.usage, started,
            f"consolidated: {merged} merged, {len(result.contradictions)} contradiction(s) flagged",
        )
        for first, second in result.contradictions:
            if first in by_id and second in by_id and not by_id[first].retired and not by_id[second].retired:
                low, high = sorted((first, second))
                Contradiction.objects.get_or_create(project=project, first_id=low, second_id=high, defaults={"found_in": version})
    return version


def _lock(project: Project) -> None:
    # Serialises version numbering per project even if two runs ever overlap (the Redis lock normally prevents it).
    # no_key: a reviewer inserting feedback (which takes a key-share lock on the project) is never blocked.
    Project.objects.select_for_update(no_key=True).filter(pk=project.pk).first()


def _new_version(project, trigger, provider, usage: Usage, started: float, summary: str) -> MemoryVersion:
    number = (MemoryVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    return MemoryVersion.objects.create(
        project=project,
        number=number,
        trigger=trigger,
        principles=[{"id": p.pk, "text": p.text} for p in active_principles(project)],
        summary=summary[:300],
        provider=provider.name,
        model=provider.model,
        usage=usage.as_dict(),
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def record_failure(project: Project, trigger: str, provider: Provider, error: Exception, started: float) -> MemoryVersion:
    """Record a failed run as a version that changes nothing, with the error, so the dashboard shows it."""
    with transaction.atomic():
        _lock(project)
        version = _new_version(project, trigger, provider, Usage(), started, f"failed: {error}"[:300])
        version.status = MemoryVersion.Status.FAILED
        version.error = str(error)
        version.save(update_fields=["status", "error"])
        return version


@transaction.atomic
def add_manual_principle(project: Project, text: str, author_name: str) -> Principle:
    """Add a hand-written principle (kept through unalign and consolidation) and record a version."""
    principle = Principle.objects.create(project=project, text=text.strip(), origin=Principle.Origin.MANUAL, pinned=True)
    _lock(project)
    version = _new_version(project, MemoryVersion.Trigger.MANUAL, _Manual(), Usage(), time.monotonic(), f"principle added by {author_name}")
    principle.created_in = version
    principle.save(update_fields=["created_in"])
    return principle


@transaction.atomic
def set_retired(project: Project, principle: Principle, retired: bool, author_name: str) -> MemoryVersion:
    """Retire or restore a principle by hand, and record a version."""
    principle.retired = retired
    principle.retired_reason = f"retired by {author_name}" if retired else ""
    principle.save(update_fields=["retired", "retired_reason", "updated_at"])
    _lock(project)
    verb = "retired" if retired else "restored"
    Contradiction.objects.filter(Q(first=principle) | Q(second=principle), resolved=False).filter(
        Q(first__retired=True) | Q(second__retired=True)
    ).update(resolved=True)
    return _new_version(project, MemoryVersion.Trigger.MANUAL, _Manual(), Usage(), time.monotonic(), f"principle {principle.pk} {verb} by {author_name}")


class _Manual:
    name = "human"
    model = ""
