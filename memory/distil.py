"""Distillation: pending feedback distilled into principles batch by batch, their sources credited; principles
that lost sources re-derived (unalign) and links to feedback of another label than the principle's removed (realign).

Every change happens after the provider has answered, inside one transaction that also writes the new
MemoryVersion: a failed or interrupted run leaves the memory exactly as it was, and running again is safe.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from memory import principle_vectors
from memory.limiter import provider_slot
from memory.llm.base import Distillation, DistilledPrinciple, Example, PrincipleText, Provider, ProviderError, Usage
from memory.models import DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from memory.versions import (
    active_principles,
    clean_text,
    example,
    lock_project,
    new_version,
    record_failure,
    schema,
)
from reviews import adjudication
from reviews.adjudication import learnable
from reviews.models import Feedback, Project

DUPLICATE_SIMILARITY = 0.92  # a new principle this close to an active one with its label only adds its sources


def principle_texts(project: Project) -> list[PrincipleText]:
    return [PrincipleText(p.pk, p.text, p.label) for p in active_principles(project)]


def pending_feedback(project: Project) -> QuerySet[Feedback]:
    """Feedback whose current revision has not been distilled yet, oldest first (overruled feedback never)."""
    return (
        learnable(Feedback.objects.filter(project=project))
        .exclude(distilled__revision=F("revision"))
        .select_related("sample")
        .order_by("updated_at", "id")
    )


def broken_links(project: Project) -> QuerySet[PrincipleSource]:
    """Source links whose feedback was deleted, edited since the principle learned from it, overruled by a
    decision or left out of the memory by an owner (reviews.adjudication)."""
    overruled = Feedback.objects.filter(pk=OuterRef("feedback_id")).filter(adjudication.left_out())
    return PrincipleSource.objects.filter(principle__project=project).filter(
        Q(feedback__isnull=True) | ~Q(feedback_revision=F("feedback__revision")) | Q(Exists(overruled))
    )


def stale_principles(project: Project) -> QuerySet[Principle]:
    """Active principles that lost a source: they must be re-derived from what remains (unalign)."""
    return active_principles(project).filter(pk__in=broken_links(project).values("principle_id"))


def estimated_tokens(feedback: Feedback) -> int:
    shown = example(feedback)
    return (len(shown.inputs) + len(shown.output) + len(shown.critique)) // 4 + 20


def next_batch(pending: list[Feedback]) -> list[Feedback]:
    """Return the first batch: at most MEMALIGN_DISTILL_BATCH_SIZE items within the token budget."""
    batch: list[Feedback] = []
    tokens = 0
    for feedback in pending[: settings.MEMALIGN_DISTILL_BATCH_SIZE]:
        cost = estimated_tokens(feedback)
        if batch and tokens + cost > settings.MEMALIGN_DISTILL_BATCH_TOKENS:
            break
        batch.append(feedback)
        tokens += cost
    return batch


def split_batches(pending: list[Feedback], width: int) -> list[list[Feedback]]:
    """Up to `width` consecutive batches of `pending`, each as next_batch cuts it."""
    batches: list[list[Feedback]] = []
    rest = pending
    while rest and len(batches) < width:
        batch = next_batch(rest)
        batches.append(batch)
        rest = rest[len(batch) :]
    return batches


def distill_batches(project: Project, batches: list[list[Feedback]], provider: Provider) -> MemoryVersion | None:
    """Distil batches (concurrently when several) into new principles and record one version.

    Each batch is one provider call holding one of the project's provider slots (memory.limiter), so the
    project's concurrency holds across every worker. Feedback without a critique is only marked as distilled.
    """
    started = time.monotonic()
    feedback = [f for batch in batches for f in batch]
    calls = [[f for f in batch if f.critique.strip()] for batch in batches]
    calls = [c for c in calls if c]
    existing = principle_texts(project)
    usage = Usage()
    proposals = []
    if calls:
        try:
            results = _distill_concurrently(project, provider, existing, calls)
        except ProviderError as error:
            record_failure(project, MemoryVersion.Trigger.DISTILL, provider, error, started)
            raise
        for result in results:
            usage.add(result.usage)
            proposals += result.principles
    vectors = _principle_vectors(project, proposals)
    with transaction.atomic():
        lock_project(project)
        # Feedback edited or deleted while the provider worked is not marked: it will be distilled as it is now.
        current = dict(Feedback.objects.filter(pk__in=[f.pk for f in feedback]).values_list("pk", "revision"))
        learned = {f.pk: f.revision for f in feedback if current.get(f.pk) == f.revision}
        labels = {f.pk: f.label for f in feedback}
        added = _add_principles(project, proposals, learned, labels, vectors)
        version = None
        with_critique = sum(map(len, calls))
        # A version when the principles changed, or when a model was paid to read critiques (its usage is the
        # version's): the offline provider's batches that add nothing change nothing, and a version for each would
        # bury the ones that did (and set the learned judge aside until retrained) under "0 new principles".
        if added or (with_critique and provider.remote):
            unit = "call" if provider.remote else "batch"  # the offline provider makes no model call
            summary = (
                f"distilled {with_critique} critique{'s' if with_critique != 1 else ''} in {len(calls)} "
                f"{unit}{'s' if len(calls) != 1 else ''}: {len(added)} new principle{'s' if len(added) != 1 else ''}"
            )
            version = new_version(
                project, MemoryVersion.Trigger.DISTILL, summary=summary, provider=provider, usage=usage, started=started
            )
            Principle.objects.filter(pk__in=[p.pk for p in added if p.created_in_id is None]).update(created_in=version)
        DistilledFeedback.objects.filter(feedback_id__in=learned).delete()
        DistilledFeedback.objects.bulk_create(
            DistilledFeedback(feedback_id=feedback_id, revision=revision, version=version)
            for feedback_id, revision in learned.items()
        )
    return version


def _distill_concurrently(
    project: Project, provider: Provider, existing: list[PrincipleText], calls: list[list[Feedback]]
) -> list[Distillation]:
    """One provider call per batch, all against the same existing principles; results in batch order."""
    criterion, label_schema = project.criterion, schema(project)
    examples = [[example(f) for f in batch] for batch in calls]  # built here: the threads never touch the database

    def call(batch: list[Example]) -> Distillation:
        with provider_slot(project.pk, project.provider_concurrency):
            return provider.distill(criterion, label_schema, existing, batch)

    if len(examples) == 1:
        return [call(examples[0])]
    with ThreadPoolExecutor(max_workers=min(len(examples), max(1, project.provider_concurrency))) as pool:
        return list(pool.map(call, examples))


def _add_principles(
    project: Project,
    proposals: list[DistilledPrinciple],
    learned: dict[int, int],
    labels: dict[int, str],
    vectors: dict[str, np.ndarray],
) -> list[Principle]:
    """Create principles from proposals; each keeps only sources of its label (all for a principle naming none).

    Unknown sources are ignored and sourceless proposals dropped; a proposal that repeats an active principle
    with the same label (cosine >= DUPLICATE_SIMILARITY, including one added earlier in this pass) only adds its
    sources to it: so batches distilled side by side reconcile into one set.
    """
    choices = set(project.label_choices)
    added: list[Principle] = []
    existing = [p for p in active_principles(project) if p.text in vectors]
    matrix = np.array([vectors[p.text] for p in existing]) if existing else np.zeros((0, 384), dtype=np.float32)
    for proposal in proposals:
        text = clean_text(proposal.text)
        label = proposal.label if proposal.label in choices else ""
        sources = [i for i in dict.fromkeys(proposal.source_ids) if i in learned and (not label or labels[i] == label)]
        if not text or not sources:
            continue
        vector = vectors[text]
        twin = _nearest(existing, matrix, vector, label)
        if twin is not None:
            _link(twin, sources, learned)  # a duplicate: credit its sources to the principle that says it already
            continue
        principle = Principle.objects.create(project=project, text=text, label=label)
        _link(principle, sources, learned)
        added.append(principle)
        existing.append(principle)
        matrix = np.vstack([matrix, vector])
    return added


def _principle_vectors(project: Project, proposals: list[DistilledPrinciple]) -> dict[str, np.ndarray]:
    """The vectors of existing and proposed principle texts, before any transaction opens (embedding takes CPU
    time): stored ones read, the others embedded and stored (memory.principle_vectors), so a proposal that
    becomes a principle is never embedded again."""
    texts = list(
        dict.fromkeys(
            [p.text for p in active_principles(project)] + [t for t in (clean_text(p.text) for p in proposals) if t]
        )
    )
    return dict(zip(texts, principle_vectors.vectors_of(texts))) if texts else {}


def _nearest(existing: list[Principle], vectors: np.ndarray, vector: np.ndarray, label: str) -> Principle | None:
    """The most similar principle with the same label, if it is a near-duplicate."""
    same = [i for i, p in enumerate(existing) if p.label == label]
    if not same:
        return None
    similarities = vectors[same] @ vector
    best = int(np.argmax(similarities))
    return existing[same[best]] if similarities[best] >= DUPLICATE_SIMILARITY else None


def _link(principle: Principle, feedback_ids: list[int], revisions: dict[int, int]) -> None:
    """Link `principle` to each feedback at its learned revision: new links in one insert, old ones updated."""
    existing = dict(
        PrincipleSource.objects.filter(principle=principle, feedback_id__in=feedback_ids).values_list(
            "feedback_id", "pk"
        )
    )
    PrincipleSource.objects.bulk_create(
        PrincipleSource(principle=principle, feedback_id=f, feedback_revision=revisions[f])
        for f in feedback_ids
        if f not in existing
    )
    for feedback_id, pk in existing.items():
        PrincipleSource.objects.filter(pk=pk).exclude(feedback_revision=revisions[feedback_id]).update(
            feedback_revision=revisions[feedback_id]
        )


def rederive_stale(project: Project, provider: Provider) -> MemoryVersion | None:
    """Unalign: retire principles whose sources are all gone, re-derive those that lost some."""
    stale = list(stale_principles(project))
    if not stale:
        return None
    started = time.monotonic()
    usage = Usage()
    decisions: dict[int, tuple[str, str | None]] = {}  # principle id -> (action, new text)
    relabelled: dict[int, str] = {}
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
            if result.label is not None and result.label != principle.label:
                relabelled[principle.pk] = result.label
            if result.text is None:
                decisions[principle.pk] = ("retire", "its remaining sources no longer support it")
            else:
                decisions[principle.pk] = (
                    "rewrite" if result.text.strip() != principle.text else "keep",
                    result.text.strip(),
                )
    with transaction.atomic():
        lock_project(project)
        counts = {"retire": 0, "rewrite": 0, "keep": 0}
        for principle in stale:
            action, text = decisions[principle.pk]
            counts[action] += 1
            broken_links(project).filter(principle=principle).delete()
            if action == "retire":
                Principle.objects.filter(pk=principle.pk).update(
                    retired=True, retired_reason=text, updated_at=timezone.now()
                )
            elif action == "rewrite":
                label = relabelled.get(principle.pk, principle.label)
                Principle.objects.filter(pk=principle.pk).update(text=text, label=label, updated_at=timezone.now())
        summary = f"unaligned: {counts['retire']} retired, {counts['rewrite']} rewritten, {counts['keep']} kept"
        return new_version(
            project, MemoryVersion.Trigger.UNALIGN, summary=summary, provider=provider, usage=usage, started=started
        )


def _remaining_sources(principle: Principle) -> list[Feedback]:
    links = principle.sources.filter(feedback__isnull=False, feedback_revision=F("feedback__revision"))
    remaining = learnable(Feedback.objects.filter(pk__in=links.values("feedback_id")))
    return list(remaining.select_related("sample").order_by("id"))


def realign(project: Project, provider: Provider) -> MemoryVersion | None:
    """Repair principles credited with feedback of another label than theirs (memory written before labels
    were kept apart): drop those links, distil that feedback again, retire principles left without sources."""
    crossing = (
        PrincipleSource.objects.filter(principle__project=project, principle__retired=False, feedback__isnull=False)
        .exclude(principle__label="")
        .exclude(feedback__label=F("principle__label"))
    )
    if not crossing.exists():
        return None
    started = time.monotonic()
    with transaction.atomic():
        lock_project(project)
        links = list(crossing.values_list("pk", "feedback_id", "principle_id"))
        PrincipleSource.objects.filter(pk__in=[pk for pk, _, _ in links]).delete()
        DistilledFeedback.objects.filter(feedback_id__in={f for _, f, _ in links}).delete()
        orphans = Principle.objects.filter(
            pk__in={p for _, _, p in links}, pinned=False, origin=Principle.Origin.DISTILLED
        )
        orphans = orphans.exclude(sources__isnull=False)
        retired = orphans.update(
            retired=True, retired_reason="its sources chose another label", updated_at=timezone.now()
        )
        summary = (
            f"realigned: {len(links)} link(s) to feedback of another label removed, {retired} principle(s) retired"
        )
        return new_version(
            project, MemoryVersion.Trigger.UNALIGN, summary=summary, provider=provider, usage=Usage(), started=started
        )


def misaligned_principles(project: Project) -> list[Principle]:
    """Active principles whose sources mostly chose another label than the one the principle leads to, each
    with `sources_total` and `sources_other` (counted in the database: a project may have thousands of links)."""
    counts = (
        PrincipleSource.objects.filter(principle__project=project, principle__retired=False, feedback__isnull=False)
        .exclude(principle__label="")
        .values("principle_id")
        .annotate(total=Count("id"), other=Count("id", filter=~Q(feedback__label=F("principle__label"))))
    )
    wrong = {row["principle_id"]: row for row in counts if row["other"] * 2 > row["total"]}
    found = list(Principle.objects.filter(pk__in=wrong).order_by("id"))
    for principle in found:
        principle.sources_total = wrong[principle.pk]["total"]  # type: ignore[attr-defined]  # shown on the dashboard
        principle.sources_other = wrong[principle.pk]["other"]  # type: ignore[attr-defined]
    return found
