"""How good a judge is: the agreement of a run's verdicts, and of the imported judge's, with the experts' labels."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypedDict

from django.db.models import Count, Max

from agreement import metrics
from judging.models import JudgeRun
from reviews import figures
from reviews.adjudication import standing
from reviews.models import Feedback, Project, QueuePriority, Sample


class AgreementFigures(TypedDict):
    """RunAgreement as JSON (the run's stored figures, the API): `aligned` and `imported` are Figures.as_dict()."""

    aligned: dict[str, Any] | None
    imported: dict[str, Any] | None
    samples: int
    reviewers: int
    corroborated: int
    conflicted: int


class StoredFigures(AgreementFigures):
    """The figures stored on a run, with the state of the experts' labels they were computed on."""

    experts_state: list[int | str | None]


@dataclass
class RunAgreement:
    aligned: metrics.Figures | None
    imported: metrics.Figures | None  # the imported judge, on the same samples (those that have its verdict)
    samples: int  # judged samples with an expert label the experts agree on
    reviewers: int  # distinct experts behind those labels
    corroborated: int  # samples where two or more experts gave the same label
    conflicted: int  # judged samples left out because their experts disagree

    def as_dict(self) -> AgreementFigures:
        return {
            "aligned": self.aligned.as_dict() if self.aligned else None,
            "imported": self.imported.as_dict() if self.imported else None,
            "samples": self.samples,
            "reviewers": self.reviewers,
            "corroborated": self.corroborated,
            "conflicted": self.conflicted,
        }


@dataclass
class ExpertLabels:
    labels: dict[int, str]  # sample id -> the label every expert on it gave
    reviewers: int
    corroborated: int
    conflicted: int


def expert_labels(project: Project, sample_ids: Collection[int] | None = None) -> ExpertLabels:
    """Return the experts' label per sample, where they agree or a decision settled it (overruled feedback is
    left out, feedback left out of the memory counts); samples with conflicting labels are left out."""
    rows = standing(Feedback.objects.filter(project=project)).order_by()
    if sample_ids is not None:
        rows = rows.filter(sample_id__in=sample_ids)
    by_sample: dict[int, set[str]] = {}
    count: dict[int, int] = {}
    authors: dict[int, set[int]] = {}
    for sample_id, label, author_id, decision in rows.values_list(
        "sample_id", "label", "author_id", "decision__id"
    ).iterator():
        by_sample.setdefault(sample_id, set()).add(label)
        if decision is None:  # a decision's own row is the final label, not one more reviewer
            count[sample_id] = count.get(sample_id, 0) + 1
            authors.setdefault(sample_id, set()).add(author_id)
    labels = {s: next(iter(ls)) for s, ls in by_sample.items() if len(ls) == 1}
    return ExpertLabels(
        labels=labels,
        reviewers=len(set().union(*(authors.get(s, set()) for s in labels))) if labels else 0,
        corroborated=sum(1 for s in labels if count.get(s, 0) > 1),
        conflicted=len(by_sample) - len(labels),
    )


def agreement(run: JudgeRun) -> RunAgreement:
    """Agreement of a run's verdicts, and of the imported judge's on the same samples, with the experts.

    Failed verdicts are left out (they are errors to retry, not answers); abstentions count as misses.
    """
    project = run.project
    verdicts = dict(run.judgements.filter(error="").values_list("sample_id", "value"))
    experts = expert_labels(project, list(verdicts))
    ids = sorted(experts.labels)
    kind, choices = project.label_kind, project.label_choices
    aligned = metrics.agreement([experts.labels[i] for i in ids], [verdicts[i] for i in ids], kind, choices)
    imported_by_sample = dict(
        Sample.objects.filter(pk__in=ids).exclude(judge_value="").values_list("id", "judge_value")
    )
    with_verdict = [i for i in ids if i in imported_by_sample]
    imported = metrics.agreement(
        [experts.labels[i] for i in with_verdict], [imported_by_sample[i] for i in with_verdict], kind, choices
    )
    return RunAgreement(aligned, imported, len(ids), experts.reviewers, experts.corroborated, experts.conflicted)


def _experts_state(project: Project) -> list[int | str | None]:
    """What the figures depend on besides the verdicts: how many expert labels, and the latest change to one."""
    return figures.cached(project.pk, "experts-state", lambda: _count_experts_state(project))


def _count_experts_state(project: Project) -> list[int | str | None]:
    state = Feedback.objects.filter(project=project).order_by().aggregate(n=Count("id"), latest=Max("updated_at"))
    return [state["n"], state["latest"].isoformat() if state["latest"] else None]


def stored_agreement(run: JudgeRun) -> StoredFigures:
    """The run's agreement as stored on it, with the state of the experts' labels it was computed on."""
    return {**agreement(run).as_dict(), "experts_state": _experts_state(run.project)}


def current_figures(run: JudgeRun) -> StoredFigures | None:
    """A finished run's figures, recomputed (and stored again) when the experts' labels changed since."""
    if run.status != JudgeRun.Status.DONE or run.figures is None:
        return run.figures
    if run.figures.get("experts_state") != _experts_state(run.project):
        run.figures = stored_agreement(run)
        JudgeRun.objects.filter(pk=run.pk).update(figures=run.figures)
    return run.figures


@dataclass(frozen=True)
class ExpertSummary:
    """ExpertLabels without the labels: what the overview and the API show (small enough to cache)."""

    samples: int  # samples with a label the experts agree on
    reviewers: int
    corroborated: int
    conflicted: int


def imported_judge_agreement(
    project: Project, within: set[int] | None = None
) -> tuple[metrics.Figures | None, ExpertSummary]:
    """Agreement of the imported judge with the experts over every reviewed sample (the project overview), or
    over the reviewed samples among `within`.

    The bootstrap interval costs up to a second on a large project: over every sample, the figures are kept in
    the figures cache (reviews.figures) until the project's reviews or samples change.
    """

    def compute() -> tuple[metrics.Figures | None, ExpertSummary]:
        found, experts = _imported_judge_agreement(project, within)
        summary = ExpertSummary(len(experts.labels), experts.reviewers, experts.corroborated, experts.conflicted)
        return found, summary

    if within is not None:
        return compute()
    return figures.cached(project.pk, "imported-agreement", compute)


def imported_judge_agreement_on_audit(project: Project) -> tuple[metrics.Figures | None, bool]:
    """The imported judge's agreement over the reviewed samples of the teaching order's audit slice, and whether
    the order is stored at all (kept in the figures cache: teaching.rank replaces the order's rows)."""

    def compute() -> tuple[metrics.Figures | None, bool]:
        audit = set(QueuePriority.objects.filter(project=project, audit=True).values_list("sample_id", flat=True))
        return (_imported_judge_agreement(project, audit)[0] if audit else None), bool(audit)

    return figures.cached(project.pk, "imported-agreement-audit", compute)


def _imported_judge_agreement(project: Project, within: set[int] | None) -> tuple[metrics.Figures | None, ExpertLabels]:
    experts = expert_labels(project)
    reviewed = list(experts.labels) if within is None else [i for i in experts.labels if i in within]
    verdicts = dict(
        Sample.objects.filter(project=project)
        .exclude(judge_value="")
        .filter(pk__in=reviewed)
        .values_list("id", "judge_value")
    )
    ids = sorted(verdicts)
    figures = metrics.agreement(
        [experts.labels[i] for i in ids], [verdicts[i] for i in ids], project.label_kind, project.label_choices
    )
    return figures, experts
