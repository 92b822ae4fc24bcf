"""Semantic memory: distil critiques into principles, re-derive principles that lost sources, consolidate.

Every change happens after the provider has answered, inside one transaction that also writes the new
MemoryVersion: a failed or interrupted run leaves the memory exactly as it was, and running again is safe.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from memory.clustering import average_linkage
from memory.embeddings import embed_cached
from memory.limiter import provider_slot
from memory.llm import get_provider
from memory.llm.base import Distillation, Example, LabelSchema, PrincipleText, Provider, ProviderError, Usage
from memory.locks import memory_writer
from memory.models import Contradiction, DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from memory.vectors import for_samples as stored_sample_vectors
from reviews import adjudication
from reviews.adjudication import learnable
from reviews.models import Feedback, Project, Sample

EXAMPLE_INPUT_CHARS = 1_500
EXAMPLE_OUTPUT_CHARS = 2_000
DUPLICATE_SIMILARITY = 0.92  # a new principle this close to an active one with its label only adds its sources
# Two principles with different labels contradict each other when they are on one topic (text cosine >= 0.75)
# and were drawn from near-identical samples (cosine >= 0.90 between a source sample of each): experts judged
# the same kind of case both ways. Two critiques that merely share a topic are not a contradiction.
CONTRADICTION_TOPIC = 0.75
CONTRADICTION_SAMPLES = 0.90
CONTRADICTION_SOURCES = 5  # source samples compared per principle, the most recent
# A round of concurrent distillation takes up to this many batches per allowed call in flight: the calls are
# pipelined (a slot that frees takes the next batch), and the round is written as one version.
ROUND_WAVES = 4


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


def estimated_tokens(feedback: Feedback) -> int:
    sample = feedback.sample
    chars = min(len(sample.inputs_text()), EXAMPLE_INPUT_CHARS) + min(len(sample.output_text()), EXAMPLE_OUTPUT_CHARS)
    return (chars + len(feedback.critique)) // 4 + 20


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
        _lock(project)
        # Feedback edited or deleted while the provider worked is not marked: it will be distilled as it is now.
        current = dict(Feedback.objects.filter(pk__in=[f.pk for f in feedback]).values_list("pk", "revision"))
        learned = {f.pk: f.revision for f in feedback if current.get(f.pk) == f.revision}
        labels = {f.pk: f.label for f in feedback}
        added = _add_principles(project, proposals, learned, labels, vectors)
        version = None
        with_critique = sum(map(len, calls))
        if added or with_critique:
            summary = (
                f"distilled {with_critique} critique{'s' if with_critique != 1 else ''} in {len(calls)} "
                f"call{'s' if len(calls) != 1 else ''}: {len(added)} new principle{'s' if len(added) != 1 else ''}"
            )
            version = _new_version(project, MemoryVersion.Trigger.DISTILL, provider, usage, started, summary)
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
    project: Project, proposals, learned: dict[int, int], labels: dict[int, str], vectors: dict[str, np.ndarray]
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
        text = _clean(proposal.text)
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


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _principle_vectors(project: Project, proposals) -> dict[str, np.ndarray]:
    """Embed existing and proposed principle texts, before any transaction opens (embedding takes CPU time)."""
    texts = list(
        dict.fromkeys(
            [p.text for p in active_principles(project)] + [t for t in (_clean(p.text) for p in proposals) if t]
        )
    )
    return dict(zip(texts, embed_cached(texts))) if texts else {}


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
        _lock(project)
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
        return _new_version(project, MemoryVersion.Trigger.UNALIGN, provider, usage, started, summary)


def _remaining_sources(principle: Principle) -> list[Feedback]:
    links = principle.sources.filter(feedback__isnull=False, feedback_revision=F("feedback__revision"))
    remaining = learnable(Feedback.objects.filter(pk__in=links.values("feedback_id")))
    return list(remaining.select_related("sample").order_by("id"))


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
            groups.append((group, _clean(merge.text)))
    merged_away = {p.pk for group, _ in groups for p in group[1:]}
    remaining = [p for p in candidates if p.pk not in merged_away]
    pinned = len(active) - len(candidates)
    groups += _groups_within_budget(remaining, budget - pinned)
    with transaction.atomic():
        _lock(project)
        merged = sum(_merge(keeper, others, text) for (keeper, *others), text in groups)
        survivors = [p for p in active_principles(project)]
        pairs = set(result.contradictions) | _contradicting_pairs(survivors)
        alive = {p.pk for p in survivors}
        pairs = {(min(a, b), max(a, b)) for a, b in pairs if a in alive and b in alive}
        over = len(survivors) - budget
        summary = f"consolidated: {merged} merged, {len(pairs)} contradiction(s) flagged"
        if over > 0:
            summary += f"; {over} over the budget of {budget} (pinned principles and labels that cannot merge)"
        version = _new_version(project, MemoryVersion.Trigger.CONSOLIDATE, provider, result.usage, started, summary)
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
        _lock(project)
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
        return _new_version(project, MemoryVersion.Trigger.UNALIGN, provider, Usage(), started, summary)


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


def _lock(project: Project) -> None:
    # Serialises version numbering per project even if two runs ever overlap (the Redis lock normally prevents it).
    # no_key: a reviewer inserting feedback (which takes a key-share lock on the project) is never blocked.
    Project.objects.select_for_update(no_key=True).filter(pk=project.pk).first()


def new_version(
    project: Project,
    trigger: str,
    *,
    actor=None,
    summary: str = "",
    provider: Provider | _Manual | None = None,
    usage: Usage | None = None,
    started: float | None = None,
) -> MemoryVersion:
    """Record the project's active principles as its next memory version and return it.

    Call it inside the transaction that made the changes, while holding the project's writer lock
    (memory.locks.memory_writer, or `memory.principles.changing`, which takes both): version numbers never
    interleave and the version holds exactly those changes. `trigger` is a MemoryVersion.Trigger value (edit
    by hand is MANUAL; UNALIGN, ROLLBACK, IMPORT…); `actor` is the user who made the change (None for a
    worker); `provider` is the one whose calls made it (None for a person), `usage` its token counts, `started`
    a time.monotonic() value for the duration. The principles' audit-log entries written since the last version
    are stamped with this version (memory.audit).
    """
    from memory import audit

    _lock(project)
    number = (MemoryVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    made_by = provider or _Manual()
    version = MemoryVersion.objects.create(
        project=project,
        number=number,
        trigger=trigger,
        actor=actor,
        principles=[
            {"id": p.pk, "text": p.text, "label": p.label, "pinned": p.pinned} for p in active_principles(project)
        ],
        summary=summary[:300],
        provider=made_by.name,
        model=made_by.model,
        usage=(usage or Usage()).as_dict(),
        duration_ms=int((time.monotonic() - started) * 1000) if started is not None else 0,
    )
    audit.record_version(project, version)
    return version


def _new_version(project, trigger, provider, usage: Usage, started: float, summary: str, actor=None) -> MemoryVersion:
    return new_version(project, trigger, actor=actor, summary=summary, provider=provider, usage=usage, started=started)


def record_failure(
    project: Project, trigger: str, provider: Provider, error: Exception, started: float
) -> MemoryVersion:
    """Record a failed run as a version that changes nothing, with the error, so the dashboard shows it."""
    with transaction.atomic():
        _lock(project)
        version = _new_version(project, trigger, provider, Usage(), started, f"failed: {error}"[:300])
        version.status = MemoryVersion.Status.FAILED
        version.error = str(error)
        version.save(update_fields=["status", "error"])
        return version


EDIT_WAIT_SECONDS = 10  # an edit from the dashboard waits this long for a running regeneration, then says so


def add_manual_principle(
    project: Project, text: str, author_name: str, actor=None, label: str = "", pinned: bool = True
) -> Principle:
    """Add a hand-written principle (kept through unalign and consolidation) and record a version."""
    from memory.audit import acting_as

    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic(), acting_as(actor):
        _lock(project)
        principle = Principle.objects.create(
            project=project, text=text.strip(), label=label, origin=Principle.Origin.MANUAL, pinned=pinned
        )
        version = _new_version(
            project,
            MemoryVersion.Trigger.MANUAL,
            _Manual(),
            Usage(),
            time.monotonic(),
            f"principle {principle.pk} added by {author_name}",
            actor=actor,
        )
        principle.created_in = version
        principle.save(update_fields=["created_in"])
        return principle


def set_retired(project: Project, principle: Principle, retired: bool, author_name: str, actor=None) -> MemoryVersion:
    """Retire or restore a principle by hand, and record a version."""
    from memory.audit import acting_as

    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic(), acting_as(actor):
        _lock(project)
        principle.retired = retired
        principle.retired_reason = f"retired by {author_name}" if retired else ""
        principle.save(update_fields=["retired", "retired_reason", "updated_at"])
        verb = "retired" if retired else "restored"
        Contradiction.objects.filter(Q(first=principle) | Q(second=principle), resolved=False).filter(
            Q(first__retired=True) | Q(second__retired=True)
        ).update(resolved=True)
        return _new_version(
            project,
            MemoryVersion.Trigger.MANUAL,
            _Manual(),
            Usage(),
            time.monotonic(),
            f"principle {principle.pk} {verb} by {author_name}",
            actor=actor,
        )


class _Manual:
    name = "human"
    model = ""


def discard_held(project: Project, author_name: str) -> MemoryVersion | None:
    """Discard the versions the regression gate held: the principles go back to the active version's (those
    added since are retired, those retired or rewritten since restored) and a version records it. None when
    nothing is held. The critiques distilled into the discarded versions stay marked as distilled."""
    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic():
        _lock(project)
        held = list(MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD).order_by("number"))
        if not held:
            return None
        good = (
            MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK, number__lt=held[0].number)
            .order_by("-number")
            .first()
        )
        texts = {p["id"]: p["text"] for p in (good.principles if good else [])}
        reason = f"discarded with held version {held[-1].number}"
        active_principles(project).exclude(pk__in=texts).update(
            retired=True, retired_reason=reason[:200], updated_at=timezone.now()
        )
        for principle in Principle.objects.filter(project=project, pk__in=texts):
            if principle.retired or principle.text != texts[principle.pk]:
                principle.retired, principle.retired_reason, principle.text = False, "", texts[principle.pk]
                principle.save(update_fields=["retired", "retired_reason", "text", "updated_at"])
        MemoryVersion.objects.filter(pk__in=[v.pk for v in held]).update(status=MemoryVersion.Status.DISCARDED)
        back_to = f"v{good.number}" if good else "no principles"
        summary = f"held version{'s' if len(held) > 1 else ''} {', '.join(str(v.number) for v in held)} discarded by {author_name}: back to {back_to}"
        return _new_version(project, MemoryVersion.Trigger.MANUAL, _Manual(), Usage(), time.monotonic(), summary)
