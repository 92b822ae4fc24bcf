"""The aligned judge: every active principle plus the k most similar reviewed examples, then the provider."""

from __future__ import annotations

from dataclasses import dataclass

from memory import episodic, semantic
from memory import vectors as sample_vectors
from memory.embeddings import example_vectors, fingerprint, sample_parts
from memory.llm import get_provider
from memory.llm.base import Example, PrincipleText, Verdict, WorkingMemory
from memory.models import MemoryVersion
from reviews.models import Feedback, Project, Sample


@dataclass
class AlignedVerdict:
    verdict: Verdict
    memory: WorkingMemory
    version: int | None  # the memory version whose principles were used
    provider: str
    model: str


def retrieve(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None, k: int | None = None) -> list[Example]:
    """Return the most similar reviewed examples, most similar first, never the excluded sample's own."""
    vectors = example_vectors([sample_parts(inputs, output)])
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k if k is None else k, [exclude_sample_id])
    return _examples(neighbours, [fingerprint(inputs, output)])[0]


def _examples(neighbour_lists: list[list[episodic.Neighbour]], fingerprints: list[str]) -> list[list[Example]]:
    """The retrieved examples of each query, each marked when it is the query's own item (same content)."""
    wanted = {n.feedback_id for neighbours in neighbour_lists for n in neighbours}
    by_id = Feedback.objects.select_related("sample").in_bulk(wanted)
    result = []
    for neighbours, query in zip(neighbour_lists, fingerprints):
        # An entry whose feedback is already gone (deleted a moment ago) is skipped, never shown.
        examples = [semantic.example(by_id[n.feedback_id], n.similarity) for n in neighbours if n.feedback_id in by_id]
        for example, feedback in zip(examples, (by_id[n.feedback_id] for n in neighbours if n.feedback_id in by_id)):
            example.same_item = sample_vectors.sample_fingerprint(feedback.sample) == query
        result.append(examples)
    return result


def working_memory(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None) -> WorkingMemory:
    return WorkingMemory(
        criterion=project.criterion,
        schema=semantic.schema(project),
        principles=semantic.principle_texts(project),
        examples=retrieve(project, inputs, output, exclude_sample_id),
        inputs=inputs,
        output=output,
    )


def working_memories(project: Project, samples: list[Sample], principles: list[PrincipleText]) -> list[WorkingMemory]:
    """Build the working memories of many stored samples at once: one embedding batch, one store query."""
    texts = [(s.inputs_text(), s.output_text()) for s in samples]
    vectors = sample_vectors.for_samples(samples)  # embedded once, in the background after import
    neighbours = episodic.query_vectors(project.pk, vectors, project.retrieval_k, [s.pk for s in samples])
    retrieved = _examples(neighbours, [fingerprint(inputs, output) for inputs, output in texts])
    schema = semantic.schema(project)
    return [
        WorkingMemory(project.criterion, schema, principles, examples, inputs, output)
        for (inputs, output), examples in zip(texts, retrieved)
    ]


def latest_version(project: Project) -> MemoryVersion | None:
    return MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()


def judge(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None) -> AlignedVerdict:
    """Judge one input/output with the project's aligned judge; raise ProviderError when the provider fails."""
    provider = get_provider(project)
    memory = working_memory(project, inputs, output, exclude_sample_id)
    latest = latest_version(project)
    verdict = provider.judge(memory)
    return AlignedVerdict(verdict, memory, latest.number if latest else None, provider.name, provider.model)


def judgement_fields(memory: WorkingMemory, verdict: Verdict | None, error: str = "") -> dict:
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
