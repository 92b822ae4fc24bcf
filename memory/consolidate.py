"""Consolidation: near-duplicate principles merged (sources united, never across labels), the active principles
kept within the project's budget, contradictions flagged; one version records it.
"""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from memory.clustering import average_linkage
from memory.embeddings import embed_cached
from memory.limiter import provider_slot
from memory.llm import get_provider
from memory.llm.base import PrincipleText, Provider, ProviderError
from memory.models import Contradiction, MemoryVersion, Principle, PrincipleSource
from memory.vectors import for_samples as stored_sample_vectors
from memory.versions import active_principles, clean_text, lock_project, new_version, record_failure
from reviews.models import Project, Sample

# Two principles with different labels contradict each other when they are on one topic (text cosine >= 0.75)
# and were drawn from near-identical samples (cosine >= 0.90 between a source sample of each): experts judged
# the same kind of case both ways. Two critiques that merely share a topic are not a contradiction.
CONTRADICTION_TOPIC = 0.75
CONTRADICTION_SAMPLES = 0.90
CONTRADICTION_SOURCES = 5  # source samples compared per principle, the most recent


def due_for_consolidation(project: Project) -> bool:
    """Consolidate after every MEMALIGN_CONSOLIDATE_EVERY distillations, once there are principles to compare."""
    last = MemoryVersion.objects.filter(
        project=project, trigger=MemoryVersion.Trigger.CONSOLIDATE, status=MemoryVersion.Status.OK
    )
    last_number = last.aggregate(n=Max("number"))["n"] or 0
    since = MemoryVersion.objects.filter(
        project=project, trigger=MemoryVersion.Trigger.DISTILL, status=MemoryVersion.Status.OK, number__gt=last_number
    ).count()
    return since >= settings.MEMALIGN_CONSOLIDATE_EVERY and active_principles(project).count() >= 2


def consolidate(project: Project, provider: Provider | None = None) -> MemoryVersion | None:
    """Merge near-duplicate principles (sources united, never across labels), keep the active principles within
    `project.max_principles`, flag contradictions; record a version. Pinned principles are never merged.

    The provider merges first (an LLM rewrites groups into one rule; the offline provider merges near-identical
    ones). If the memory is still over budget, the closest principles with the same label are merged,
    represented by their most central member, until it fits.
    """
    provider = provider or get_provider(project)
    started = time.monotonic()
    active = list(active_principles(project))
    candidates = [p for p in active if not p.pinned]
    budget = project.max_principles
    if len(candidates) < 2:
        return None
    try:
        with provider_slot(project.pk, project.provider_concurrency):
            result = provider.consolidate(
                project.criterion, [PrincipleText(p.pk, p.text, p.label) for p in candidates], budget=budget
            )
    except ProviderError as error:
        record_failure(project, MemoryVersion.Trigger.CONSOLIDATE, provider, error, started)
        raise
    by_id = {p.pk: p for p in candidates}
    groups = []
    for merge in result.merges:
        group = [by_id[i] for i in merge.principle_ids if i in by_id]
        group = [p for p in group if p.label == group[0].label]  # a merge never crosses labels
        if len(group) >= 2 and merge.text.strip():
            groups.append((group, clean_text(merge.text)))
    merged_away = {p.pk for group, _ in groups for p in group[1:]}
    remaining = [p for p in candidates if p.pk not in merged_away]
    pinned = len(active) - len(candidates)
    groups += _groups_within_budget(remaining, budget - pinned)
    with transaction.atomic():
        lock_project(project)
        merged = sum(_merge(keeper, others, text) for (keeper, *others), text in groups)
        survivors = [p for p in active_principles(project)]
        pairs = set(result.contradictions) | _contradicting_pairs(survivors)
        alive = {p.pk for p in survivors}
        pairs = {(min(a, b), max(a, b)) for a, b in pairs if a in alive and b in alive}
        over = len(survivors) - budget
        summary = f"consolidated: {merged} merged, {len(pairs)} contradiction(s) flagged"
        if over > 0:
            summary += f"; {over} over the budget of {budget} (pinned principles and labels that cannot merge)"
        version = new_version(
            project,
            MemoryVersion.Trigger.CONSOLIDATE,
            summary=summary,
            provider=provider,
            usage=result.usage,
            started=started,
        )
        for low, high in sorted(pairs):
            Contradiction.objects.get_or_create(
                project=project, first_id=low, second_id=high, defaults={"found_in": version}
            )
    return version


def _groups_within_budget(principles: list[Principle], budget: int) -> list[tuple[list[Principle], str]]:
    """Groups of same-label principles to merge so that at most `budget` remain: average linkage on their
    texts, closest first, never across labels; each group is kept as its most central member's text."""
    if len(principles) <= max(budget, 1):
        return []
    vectors = embed_cached([p.text for p in principles])
    groups = average_linkage(vectors, threshold=-1.0, labels=[p.label for p in principles], target=max(budget, 1))
    out = []
    for group in groups:
        if len(group) < 2:
            continue
        members = vectors[group]
        keeper = group[int(np.argmax((members @ members.T).sum(axis=1)))]
        ordered = [principles[keeper]] + [principles[i] for i in group if i != keeper]
        out.append((ordered, principles[keeper].text))
    return out


def _merge(keeper: Principle, others: list[Principle], text: str) -> int:
    """Fold `others` into `keeper` (their sources united under it); return how many were retired."""
    if keeper.text != text:
        keeper.text = text
        keeper.save(update_fields=["text", "updated_at"])
    for other in others:
        for link in other.sources.filter(feedback__isnull=False):
            PrincipleSource.objects.get_or_create(
                principle=keeper, feedback_id=link.feedback_id, defaults={"feedback_revision": link.feedback_revision}
            )
        Principle.objects.filter(pk=other.pk).update(
            retired=True, retired_reason=f"merged into principle {keeper.pk}", updated_at=timezone.now()
        )
    return len(others)


def _contradicting_pairs(principles: list[Principle]) -> set[tuple[int, int]]:
    """Pairs of principles with different labels, on one topic, drawn from near-identical samples."""
    labelled = [p for p in principles if p.label]
    if len({p.label for p in labelled}) < 2:
        return set()
    topics = embed_cached([p.text for p in labelled])
    similar = topics @ topics.T
    candidates = [
        (i, j)
        for i, j in combinations(range(len(labelled)), 2)
        if labelled[i].label != labelled[j].label and similar[i, j] >= CONTRADICTION_TOPIC
    ]
    if not candidates:
        return set()
    involved = sorted({i for pair in candidates for i in pair})
    samples = {i: _source_samples(labelled[i]) for i in involved}
    unique = list({sample.pk: sample for i in involved for sample in samples[i]}.values())
    stored = dict(zip((sample.pk for sample in unique), stored_sample_vectors(unique))) if unique else {}
    pairs = set()
    for i, j in candidates:
        if samples[i] and samples[j]:
            a = np.array([stored[sample.pk] for sample in samples[i]])
            b = np.array([stored[sample.pk] for sample in samples[j]])
            if float((a @ b.T).max()) >= CONTRADICTION_SAMPLES:
                pairs.add((labelled[i].pk, labelled[j].pk))
    return pairs


def _source_samples(principle: Principle) -> list[Sample]:
    """The samples of the principle's most recent sources; their stored vectors say how alike two cases are."""
    links = (
        principle.sources.filter(feedback__isnull=False)
        .select_related("feedback__sample")
        .order_by("-feedback__updated_at")
    )
    return [link.feedback.sample for link in links[:CONTRADICTION_SOURCES] if link.feedback]
