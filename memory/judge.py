"""The aligned judge: every active principle plus the k most similar reviewed examples, then the provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from memory import episodic, semantic
from memory import vectors as sample_vectors
from memory.embeddings import embed, example_vectors, fingerprint, sample_parts
from memory.llm import get_provider
from memory.llm.base import Example, PrincipleText, Provider, Verdict, WorkingMemory
from memory.models import MemoryVersion
from reviews.adjudication import team_feedback
from reviews.models import Feedback, Project, Sample


@dataclass
class AlignedVerdict:
    verdict: Verdict
    memory: WorkingMemory
    version: int | None  # the memory version whose principles were used
    provider: str
    model: str


def retrieve(
    project: Project, inputs: str, output: str, exclude_sample_id: int | None = None, k: int | None = None
) -> list[Example]:
    """Return the most similar reviewed examples, most similar first, never the excluded sample's own."""
    vectors = example_vectors([sample_parts(inputs, output)])
    neighbours = episodic.query_vectors(
        project.pk, vectors, project.retrieval_k if k is None else k, [exclude_sample_id]
    )
    return _examples(neighbours, [fingerprint(inputs, output)])[0]


def _examples(neighbour_lists: list[list[episodic.Neighbour]], fingerprints: list[str]) -> list[list[Example]]:
    """The retrieved examples of each query, each marked when it is the query's own item (same content)."""
    wanted = {n.feedback_id for neighbours in neighbour_lists for n in neighbours}
    by_id = Feedback.objects.select_related("sample").in_bulk(wanted)
    disputes = _disputes({f.sample_id for f in by_id.values()})
    result = []
    for neighbours, query in zip(neighbour_lists, fingerprints):
        # An entry whose feedback is already gone (deleted a moment ago) is skipped, never shown.
        examples = [semantic.example(by_id[n.feedback_id], n.similarity) for n in neighbours if n.feedback_id in by_id]
        for example, feedback in zip(examples, (by_id[n.feedback_id] for n in neighbours if n.feedback_id in by_id)):
            example.same_item = sample_vectors.sample_fingerprint(feedback.sample) == query
            example.disputed = disputes.get(feedback.sample_id, [])
        result.append(examples)
    return result


def _disputes(sample_ids: set[int]) -> dict[int, list[str]]:
    """The labels of each sample whose reviewers disagree and no one has decided yet (reviews.adjudication)."""
    rows = team_feedback(Feedback.objects.filter(sample_id__in=sample_ids, sample__decision__isnull=True))
    labels: dict[int, set[str]] = {}
    for sample_id, label in rows.values_list("sample_id", "label"):
        labels.setdefault(sample_id, set()).add(label)
    return {s: sorted(found) for s, found in labels.items() if len(found) > 1}


def working_memory(
    project: Project,
    inputs: str,
    output: str = "",
    exclude_sample_id: int | None = None,
    output_a: str = "",
    output_b: str = "",
) -> WorkingMemory:
    """The working memory for an item given as text (not stored), embedded now: the "try the judge" box."""
    shown = (
        f"Output A:\n{output_a}\n\nOutput B:\n{output_b}" if (output_a or output_b) else output
    )  # as Sample shows it
    vectors = example_vectors([sample_parts(inputs, output, output_a, output_b)])
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k, [exclude_sample_id])
    (examples,) = _examples(neighbours, [fingerprint(inputs, shown)])
    principles = within_budget(project, principle_set(project), vectors)
    return WorkingMemory(project.criterion, semantic.schema(project), principles, examples, inputs, shown)


def working_memories(
    project: Project, samples: list[Sample], principles: PrincipleSet | None = None
) -> list[WorkingMemory]:
    """Build the working memories of many stored samples at once (a run's chunk): stored vectors, one store
    query, and one choice of principles shared by them all."""
    texts = [(s.inputs_text(), s.output_text()) for s in samples]
    vectors = sample_vectors.for_samples(samples)  # embedded once, in the background after import
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k, [s.pk for s in samples])
    retrieved = _examples(neighbours, [fingerprint(inputs, output) for inputs, output in texts])
    shared = within_budget(project, principles or principle_set(project), vectors)
    schema = semantic.schema(project)
    return [
        WorkingMemory(project.criterion, schema, shared, examples, inputs, output)
        for (inputs, output), examples in zip(texts, retrieved)
    ]


# --- the principles within the project's token budget ------------------------------------------------------

CHARS_PER_TOKEN = 4  # a rough average for English text: the budget bounds the prompt, it does not bill it
_principle_vectors: dict[tuple[int, str], np.ndarray] = {}  # per process; principles change rarely


@dataclass
class PrincipleSet:
    principles: list[PrincipleText]  # every active principle, in id order
    pinned: set[int]

    @property
    def tokens(self) -> int:
        return sum(principle_tokens(p) for p in self.principles)


def principle_tokens(principle: PrincipleText) -> int:
    return len(principle.text) // CHARS_PER_TOKEN + 1


def principle_set(project: Project) -> PrincipleSet:
    """The principles of the active version: the live set, unless the regression gate holds a newer version,
    in which case the last good version's (memory.gate)."""
    if MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD).exists():
        good = latest_version(project)
        snapshot = good.principles if good else []
        pinned = set(semantic.active_principles(project).filter(pinned=True).values_list("pk", flat=True))
        return PrincipleSet([PrincipleText(p["id"], p["text"]) for p in snapshot], pinned)
    active = list(semantic.active_principles(project).values_list("id", "text", "pinned"))
    return PrincipleSet([PrincipleText(pk, text) for pk, text, _ in active], {pk for pk, _, pinned in active if pinned})


def over_budget(project: Project) -> bool:
    """Whether the active principles exceed the working-memory budget: consolidation is due."""
    return principle_set(project).tokens > project.principle_budget_tokens


def within_budget(project: Project, principles: PrincipleSet, vectors: np.ndarray) -> list[PrincipleText]:
    """Return the principles of the working memory shared by the items whose vectors are given (a run's chunk,
    or one item), so that every verdict among them sends one byte-identical, cacheable prompt prefix.

    Within the budget that is every principle. Over it: the pinned principles, then every item's most similar
    principle, then every item's second most similar, and so on (the closer first within a rank), as many as
    fit; kept in id order. For one item that is simply its most similar principles.
    """
    budget = project.principle_budget_tokens
    if principles.tokens <= budget:
        return principles.principles
    listed = principles.principles
    matrix = _vectors_of(listed)
    similarity = np.asarray(vectors, dtype=np.float32).reshape(-1, matrix.shape[1]) @ matrix.T
    picked = [i for i, p in enumerate(listed) if p.id in principles.pinned]
    used = sum(principle_tokens(listed[i]) for i in picked)
    if len(similarity):
        ranks = np.argsort(np.argsort(-similarity, axis=1, kind="stable"), axis=1, kind="stable")
        for i in np.lexsort((-similarity.max(axis=0), ranks.min(axis=0))):
            i = int(i)
            if listed[i].id not in principles.pinned and used + principle_tokens(listed[i]) <= budget:
                picked.append(i)
                used += principle_tokens(listed[i])
    return [listed[i] for i in sorted(picked)]


def _vectors_of(principles: list[PrincipleText]) -> np.ndarray:
    missing = [p for p in principles if (p.id, p.text) not in _principle_vectors]
    if missing:
        if len(_principle_vectors) > 50_000:
            _principle_vectors.clear()
        for p, vector in zip(missing, embed([p.text for p in missing])):
            _principle_vectors[(p.id, p.text)] = vector
    return np.array([_principle_vectors[(p.id, p.text)] for p in principles])


def latest_version(project: Project) -> MemoryVersion | None:
    """The active version: the newest that succeeded and is not held by the regression gate."""
    return MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()


def judge(
    project: Project,
    inputs: str,
    output: str = "",
    output_a: str = "",
    output_b: str = "",
    provider: Provider | None = None,
) -> AlignedVerdict:
    """Judge one item given as text with the project's aligned judge; raise ProviderError when the provider fails."""
    provider = provider or get_provider(project)
    memory = working_memory(project, inputs, output, output_a=output_a, output_b=output_b)
    latest = latest_version(project)
    verdict = provider.judge(memory)
    return AlignedVerdict(verdict, memory, latest.number if latest else None, provider.name, provider.model)


def judgement_fields(memory: WorkingMemory, verdict: Verdict | None, error: str = "") -> dict[str, Any]:
    """The stored form of a verdict (or of a provider failure) with what it used."""
    return {
        "value": (verdict.value or "") if verdict else "",
        "rationale": verdict.rationale if verdict else "",
        "error": error[:2000],
        "principle_ids": [p.id for p in memory.principles],
        "retrieved": [e.feedback_id for e in memory.examples],
        "similarities": [e.similarity for e in memory.examples],
        "usage": verdict.usage.as_dict() if verdict else {},
    }
