"""The aligned judge: every active principle plus the k most similar reviewed examples, then the provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judging import learned, tiers
from judging.learned_model import part_lengths
from memory import budget, episodic, examples, versions
from memory import vectors as sample_vectors
from memory.embeddings import example_vectors, fingerprint, sample_parts
from memory.llm import get_provider
from memory.llm.base import TIER_LEARNED, TIER_LLM, Example, Provider, Verdict, WorkingMemory
from reviews.models import Project, Sample


@dataclass
class AlignedVerdict:
    verdict: Verdict
    memory: WorkingMemory
    version: int | None  # the memory version whose principles were used
    provider: str
    model: str

    @property
    def decided_by(self) -> str:
        return tiers.decided_by(self.provider, self.model, self.verdict.tier)


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
    """The retrieved examples of each query, one per sample (memory.examples: its final label, the other
    reviews' critiques attached), each marked when it is the query's own item (same content)."""
    found = examples.by_sample({n.sample_id for neighbours in neighbour_lists for n in neighbours})
    result = []
    for neighbours, query in zip(neighbour_lists, fingerprints):
        retrieved = []
        # A sample whose feedback is already gone (deleted a moment ago) or left the memory is skipped.
        for neighbour in neighbours:
            if (reviewed := found.get(neighbour.sample_id)) is None:
                continue
            example = versions.example(reviewed.feedback, neighbour.similarity, reviewed.critiques)
            example.label = reviewed.label
            example.disputed = reviewed.disputed
            example.same_item = sample_vectors.sample_fingerprint(reviewed.feedback.sample) == query
            retrieved.append(example)
        result.append(retrieved)
    return result


def working_memory(
    project: Project,
    inputs: str,
    output: str = "",
    exclude_sample_id: int | None = None,
    output_a: str = "",
    output_b: str = "",
    principles: budget.PrincipleSet | None = None,
) -> WorkingMemory:
    """The working memory for an item given as text (not stored), embedded now: the "try the judge" box.
    `principles`: the project's principle set when the caller read it already."""
    shown = (
        f"Output A:\n{output_a}\n\nOutput B:\n{output_b}" if (output_a or output_b) else output
    )  # as Sample shows it
    vectors = example_vectors([sample_parts(inputs, output, output_a, output_b)])
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k, [exclude_sample_id])
    (examples,) = _examples(neighbours, [fingerprint(inputs, shown)])
    principles = principles or budget.principle_set(project)
    chosen = budget.within_budget(project, principles, vectors)
    texts = [sample_vectors.part_texts(inputs, output, output_a, output_b)]
    parts, lengths = sample_vectors.embed_parts(texts), part_lengths(texts)
    (local,) = learned.predictions(project, parts, lengths, learned.usable(project, version=principles.version))
    return WorkingMemory(project.criterion, versions.schema(project), chosen, examples, inputs, shown, local)


def working_memories(
    project: Project, samples: list[Sample], principles: budget.PrincipleSet | None = None
) -> list[WorkingMemory]:
    """Build the working memories of many stored samples at once (a run's chunk): stored vectors, one store
    query, and one choice of principles shared by them all."""
    texts = [(s.inputs_text(), s.output_text()) for s in samples]
    vectors = sample_vectors.for_samples(samples)  # embedded once, in the background after import
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k, [s.pk for s in samples])
    retrieved = _examples(neighbours, [fingerprint(inputs, output) for inputs, output in texts])
    shared = budget.within_budget(project, principles or budget.principle_set(project), vectors)
    schema = versions.schema(project)
    local = learned.predictions(project, sample_vectors.part_vectors(samples), learned.sample_lengths(samples))
    return [
        WorkingMemory(project.criterion, schema, shared, examples, inputs, output, prediction)
        for (inputs, output), examples, prediction in zip(texts, retrieved, local)
    ]


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
    principles = budget.principle_set(project)
    memory = working_memory(project, inputs, output, output_a=output_a, output_b=output_b, principles=principles)
    verdict = decide(project, provider, memory)
    return AlignedVerdict(verdict, memory, principles.version, provider.name, provider.model)


def version_number(project: Project) -> int | None:
    """The number of the active memory version (the one whose principles a verdict uses), None before any."""
    latest = budget.latest_version(project)
    return latest.number if latest else None


def cascaded(project: Project, provider: Provider, memory: WorkingMemory) -> Verdict | None:
    """The learned judge's verdict when the project's cascade lets it stand in front of an LLM provider (it is
    at least `cascade_threshold` sure): no model call is made. None: the provider judges."""
    threshold = project.cascade_threshold
    local = memory.local
    if threshold is None or not provider.remote or local is None or local.value is None:
        return None
    if local.probability < threshold:
        return None
    return Verdict(
        local.value,
        f"Learned local judge, {local.probability:.0%} sure (the cascade lets it decide at {threshold:.0%} or more): "
        "no model call.",
        tier=TIER_LEARNED,
        probability=local.probability,
    )


def decide(project: Project, provider: Provider, memory: WorkingMemory) -> Verdict:
    """The cascade's verdict when it has one, else the provider's (raises ProviderError when that fails)."""
    return cascaded(project, provider, memory) or with_tier(provider.judge(memory))


def with_tier(verdict: Verdict) -> Verdict:
    """A provider that does not say which tier decided is a model."""
    verdict.tier = verdict.tier or TIER_LLM
    return verdict


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
        "tier": verdict.tier if verdict else "",
        "probability": verdict.probability if verdict else None,
        "probabilities": memory.local.probabilities if memory.local else {},
    }
