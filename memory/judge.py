"""The aligned judge: every active principle plus the k most similar reviewed examples, then the provider."""

from __future__ import annotations

import time
from dataclasses import dataclass

from memory import episodic, semantic
from memory.embeddings import example_text
from memory.llm import get_provider
from memory.llm.base import Example, Verdict, WorkingMemory
from memory.models import Judgement, JudgeRun, MemoryVersion
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


def judge(project: Project, inputs: str, output: str, exclude_sample_id: int | None = None) -> AlignedVerdict:
    """Judge one input/output with the project's aligned judge; raise ProviderError when the provider fails."""
    provider = get_provider(project)
    memory = working_memory(project, inputs, output, exclude_sample_id)
    latest = MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()
    verdict = provider.judge(memory)
    return AlignedVerdict(verdict, memory, latest.number if latest else None, provider.name, provider.model)


def judge_sample(sample: Sample, run: JudgeRun | None = None, provider=None) -> Judgement:
    """Judge a stored sample (its own feedback is never retrieved) and record the verdict with what it used."""
    project = sample.project
    provider = provider or get_provider(project)
    started = time.monotonic()
    memory = working_memory(project, sample.inputs_text(), sample.output_text(), exclude_sample_id=sample.pk)
    version = MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK).order_by("-number").first()
    verdict = provider.judge(memory)
    judgement, _ = Judgement.objects.update_or_create(
        run=run,
        sample=sample,
        defaults={
            "project": project,
            "value": verdict.value or "",
            "rationale": verdict.rationale,
            "memory_version": version,
            "retrieved": [e.feedback_id for e in memory.examples],
            "provider": provider.name,
            "model": provider.model,
            "usage": verdict.usage.as_dict(),
            "latency_ms": int((time.monotonic() - started) * 1000),
        },
    )
    return judgement


def run_samples(run: JudgeRun):
    """Return the samples a run covers, in id order."""
    samples = Sample.objects.filter(project=run.project).order_by("id")
    if run.scope == JudgeRun.Scope.REVIEWED:
        samples = samples.filter(feedback__isnull=False).distinct()
    return samples


@dataclass
class Agreement:
    reviewed: int  # samples with expert feedback that the run judged
    aligned: float | None  # share of expert labels the aligned judge matched
    base: float | None  # the same for the imported judge's verdicts, on the same samples
    abstained: int


def agreement(run: JudgeRun) -> Agreement:
    """Compare a run's verdicts and the imported judge's with the experts' labels (every feedback counts once)."""
    verdicts = dict(run.judgements.values_list("sample_id", "value"))
    pairs = Feedback.objects.filter(project=run.project, sample_id__in=verdicts).values_list("sample_id", "label", "sample__judge_value")
    aligned = base = counted = based = abstained = 0
    for sample_id, label, judge_value in pairs:
        if not verdicts[sample_id]:
            abstained += 1
        counted += 1
        aligned += verdicts[sample_id] == label
        if judge_value:
            based += 1
            base += judge_value == label
    reviewed = len({sample_id for sample_id, _, _ in pairs})
    return Agreement(reviewed, aligned / counted if counted else None, base / based if based else None, abstained)
