"""The aligned judge: every active principle plus the k most similar reviewed examples, then the provider."""

from __future__ import annotations

from dataclasses import dataclass

from memory import episodic, semantic
from memory.embeddings import example_text
from memory.llm import get_provider
from memory.llm.base import Example, Verdict, WorkingMemory
from memory.models import MemoryVersion
from reviews.models import Feedback, Project


@dataclass
class Judgement:
    verdict: Verdict
    memory: WorkingMemory
    version: int | None  # the memory version whose principles were used
    provider: str
    model: str


def retrieve(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None, k: int | None = None) -> list[Example]:
    """Return the most similar reviewed examples, most similar first, never the excluded sample's own."""
    text = example_text(inputs, output)
    neighbours = episodic.query(project.pk, text, project.retrieval_k if k is None else k, exclude_sample_id)
    by_id = Feedback.objects.select_related("sample").in_bulk([n.feedback_id for n in neighbours])
    # An entry whose feedback is already gone (deleted a moment ago) is skipped, never shown.
    return [semantic.example(by_id[n.feedback_id], n.similarity) for n in neighbours if n.feedback_id in by_id]


def working_memory(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None) -> WorkingMemory:
    return WorkingMemory(
        criterion=project.criterion,
        schema=semantic.schema(project),
        principles=semantic.principle_texts(project),
        examples=retrieve(project, inputs, output, exclude_sample_id),
        inputs=inputs,
        output=output,
    )


def judge(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None) -> Judgement:
    """Judge one input/output with the project's aligned judge; raise ProviderError when the provider fails."""
    provider = get_provider(project)
    memory = working_memory(project, inputs, output, exclude_sample_id)
    latest = MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()
    verdict = provider.judge(memory)
    return Judgement(verdict, memory, latest.number if latest else None, provider.name, provider.model)
