"""The regression gate for memory versions (a project setting, off by default: it costs model calls).

A guard set of reviewed samples, chosen at random once and then fixed, is judged with the last good version's
principles and with a new version's. When agreement with the experts drops by more than the owner's threshold,
the new version is held: it is not the active version (judging.judge reads the active one's principles while a
version is held), and the dashboard shows the verdicts that flipped and the principles that changed, for the
owner to activate or discard (memory.versions.discard_held). With an LLM provider the guard verdicts get the
project's order and stability checks (judging.checks), and the check records both versions' position-bias and flip
rates.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from evaluation.models import GateCheck
from judging import checks, judge
from memory import budget
from memory.limiter import in_slots
from memory.llm import get_provider
from memory.llm.base import PrincipleText, Provider, Usage
from memory.models import EvaluationSettings, MemoryVersion, Principle
from reviews.models import Feedback, Project, Sample


def gate_settings(project: Project) -> EvaluationSettings:
    return EvaluationSettings.objects.get_or_create(project=project)[0]


def guard_samples(project: Project, gate: EvaluationSettings) -> list[Sample]:
    """The guard set: chosen at random among reviewed samples the first time, then the same samples (those
    still reviewed); topped up at random when the owner raised its size or samples lost their reviews."""
    reviewed = set(Feedback.objects.filter(project=project).values_list("sample_id", flat=True))
    kept = [i for i in gate.guard_sample_ids if i in reviewed][: gate.guard_size]
    if len(kept) < gate.guard_size:
        others = sorted(reviewed - set(kept))
        random.Random(project.pk).shuffle(others)
        kept += others[: gate.guard_size - len(kept)]
    if kept != gate.guard_sample_ids:
        gate.guard_sample_ids = kept
        gate.save(update_fields=["guard_sample_ids"])
    by_id = Sample.objects.in_bulk(kept)
    return [by_id[i] for i in kept]


def expert_labels(samples: list[Sample]) -> dict[int, str]:
    """Each sample's latest expert label."""
    labels: dict[int, str] = {}
    for sample_id, label in (
        Feedback.objects.filter(sample__in=samples).order_by("updated_at", "id").values_list("sample_id", "label")
    ):
        labels[sample_id] = label
    return labels


def verdicts(
    project: Project,
    samples: list[Sample],
    version: MemoryVersion,
    provider: Provider,
    usage: Usage,
    plan: checks.Plan | None = None,
    found: list[dict[str, Any]] | None = None,
) -> list[str]:
    """The aligned judge's verdicts on `samples` with `version`'s principles and the live episodic memory; each
    verdict's order and stability checks (`plan`) are appended to `found`."""
    pinned = set(
        Principle.objects.filter(pk__in=[p["id"] for p in version.principles], pinned=True).values_list("pk", flat=True)
    )
    principles = budget.PrincipleSet([PrincipleText(p["id"], p["text"]) for p in version.principles], pinned)
    values = []
    ask = in_slots(project.pk, project.provider_concurrency, provider.judge) if provider.remote else provider.judge
    for sample, memory in zip(samples, judge.working_memories(project, samples, principles), strict=True):
        verdict = ask(memory)
        if plan is not None and found is not None:
            pair = (sample.output_a, sample.output_b) if project.is_pairwise else None
            found.append(checks.check(plan, memory, verdict, ask, sample.pk, pair).checks)
        usage.add(verdict.usage)  # after the checks: their extra asks count too
        values.append(verdict.value or "")
    return values


def last_good(project: Project, before: MemoryVersion) -> MemoryVersion | None:
    return (
        MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK, number__lt=before.number)
        .order_by("-number")
        .first()
    )


def check(project: Project, versions: list[MemoryVersion], provider: Provider | None = None) -> GateCheck | None:
    """Gate the newest of `versions` (just written by one regeneration or consolidation) against the last good
    version; when it is held, the run's other new versions are held with it. None when the gate is off or has
    nothing to compare."""
    gate = gate_settings(project)
    newest = max((v for v in versions if v.status == MemoryVersion.Status.OK), key=lambda v: v.number, default=None)
    if not gate.gate_enabled or newest is None:
        return None
    good = last_good(project, newest)
    samples = guard_samples(project, gate)
    if good is None or not samples:
        return None
    provider = provider or get_provider(project)
    usage = Usage()
    # One salt for both versions: the stability check re-asks the same guard samples.
    plan = checks.project_plan(project, provider.remote, f"gate-{newest.pk}", repeats=False)
    checks_before: list[dict[str, Any]] = []
    checks_after: list[dict[str, Any]] = []
    before = verdicts(project, samples, good, provider, usage, plan, checks_before)
    after = verdicts(project, samples, newest, provider, usage, plan, checks_after)
    experts = expert_labels(samples)
    agreement_before = sum(b == experts.get(s.pk) for s, b in zip(samples, before)) / len(samples)
    agreement_after = sum(a == experts.get(s.pk) for s, a in zip(samples, after)) / len(samples)
    held = agreement_before - agreement_after > gate.gate_threshold
    good_texts = {p["id"]: p["text"] for p in good.principles}
    new_texts = {p["id"]: p["text"] for p in newest.principles}
    with transaction.atomic():
        if held:
            MemoryVersion.objects.filter(
                project=project, number__gt=good.number, number__lte=newest.number, status=MemoryVersion.Status.OK
            ).update(status=MemoryVersion.Status.HELD)
        return GateCheck.objects.create(
            version=newest,
            compared_with=good,
            guard_size=len(samples),
            threshold=gate.gate_threshold,
            held=held,
            agreement_before=round(agreement_before, 4),
            agreement_after=round(agreement_after, 4),
            flipped=[
                {
                    "sample_id": s.pk,
                    "external_id": s.external_id,
                    "expert": experts.get(s.pk, ""),
                    "before": b,
                    "after": a,
                }
                for s, b, a in zip(samples, before, after)
                if a != b
            ],
            added=[{"id": i, "text": t} for i, t in new_texts.items() if good_texts.get(i) != t],
            removed=[{"id": i, "text": t} for i, t in good_texts.items() if new_texts.get(i) != t],
            usage=usage.as_dict(),
            checks={
                "checked": provider.remote,
                "before": rates(checks_before),
                "after": rates(checks_after),
            },
        )


def estimated_calls(project: Project, gate: EvaluationSettings) -> int:
    """Model calls of one gate check with an LLM provider: the guard set judged twice, with the checks' extra asks."""
    plan = checks.project_plan(project, True, "", repeats=False)
    return round(2 * gate.guard_size * (1 + plan.both_orders + plan.stability_share))


def rates(found: list[dict[str, Any]]) -> dict[str, float | None]:
    summed = checks.summed(found)
    return {
        name: None if summed[name] is None else round(summed[name], 4) for name in ("position_bias_rate", "flip_rate")
    }


def held_versions(project: Project) -> QuerySet[MemoryVersion]:
    return MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD).order_by("number")


def activate_held(project: Project) -> int:
    """Make the held versions good: the newest becomes the active version. Return how many were activated."""
    return held_versions(project).update(status=MemoryVersion.Status.OK)
