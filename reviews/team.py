"""Agreement between the experts themselves (the Team page, and the overview beside the judge's figures).

For every pair of reviewers who labelled the same samples: agreement.metrics.agreement between their labels (Cohen's
kappa, quadratic-weighted kappa for ordered labels, Lin's CCC for numeric scales, with the seeded bootstrap
interval of the headline). Over all reviewers at once: Krippendorff's alpha (the `krippendorff` package; nominal
for pass/fail, pairwise and unordered categories, ordinal for ordered categories, interval for numeric scales),
with a seeded bootstrap over samples. Per reviewer: their count, pace, and agreement with the final label (the
adjudicated label where reviewers disagreed, the shared one where they all agreed).

The team's feedback only: a decision's own feedback row (reviews.adjudication) is the final label, not a rater.

Beside them, the experts' agreement with the imported judge on labels chosen blind and on labels chosen with the
judge's verdict on screen (Project.judge_blind, Feedback.verdict_shown): whether showing it changes the labels.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import krippendorff
import numpy as np

from agreement import metrics
from reviews import figures
from reviews.labels import LabelKind
from reviews.models import Decision, Feedback, Project

ALPHA_RESAMPLES = 200
PAIR_RESAMPLES = 300
BREAK_SECONDS = 30 * 60  # a longer gap between two reviews is a break, not the time one review took
Level = Literal["nominal", "ordinal", "interval"]  # krippendorff's levels of measurement that MemAlign uses


@dataclass
class Pair:
    first: str
    second: str
    figures: metrics.Figures

    @property
    def n(self) -> int:
        return self.figures.n


@dataclass
class Reviewer:
    username: str
    count: int
    seconds_per_review: float | None  # median gap between consecutive reviews, breaks left out
    final_n: int  # their reviews of samples that have a final label
    final_agree: int

    @property
    def final_share(self) -> float | None:
        return self.final_agree / self.final_n if self.final_n else None


@dataclass
class TeamAgreement:
    kind: str
    level: str  # Krippendorff's level of measurement
    alpha: float | None
    alpha_interval: tuple[float, float] | None
    overlapping: int  # samples with at least two reviewers
    pairs: list[Pair] = field(default_factory=list)
    reviewers: list[Reviewer] = field(default_factory=list)

    @property
    def reading(self) -> str:
        return metrics.reading(self.alpha, self.overlapping)

    @property
    def interval_words(self) -> str:
        return metrics.interval_words(self.alpha_interval, self.overlapping)


def level(project: Project) -> Level:
    if project.label_kind == LabelKind.NUMERIC:
        return "interval"
    if project.label_kind == LabelKind.CATEGORICAL and len(project.label_choices) > 2:
        return "ordinal"  # categories are listed in order (reviews.labels)
    return "nominal"


def ratings(project: Project) -> dict[int, dict[str, str]]:
    """Return {sample id: {reviewer's username: label}} for the team's feedback (decisions left out)."""
    rows = (
        Feedback.objects.filter(project=project, decision__isnull=True)
        .order_by()
        .values_list("sample_id", "author__username", "label")
    )
    by_sample: dict[int, dict[str, str]] = defaultdict(dict)
    for sample_id, username, label in rows.iterator():
        by_sample[sample_id][username] = label
    return dict(by_sample)


def final_labels(project: Project, by_sample: dict[int, dict[str, str]]) -> dict[int, str]:
    """The final label of each sample reviewed more than once: the decision's, else the one all reviewers gave."""
    decided = dict(Decision.objects.filter(project=project).values_list("sample_id", "label"))
    final = {}
    for sample_id, labels in by_sample.items():
        if sample_id in decided:
            final[sample_id] = decided[sample_id]
        elif len(labels) > 1 and len(set(labels.values())) == 1:
            final[sample_id] = next(iter(labels.values()))
    return final


def alpha(
    project: Project, by_sample: dict[int, dict[str, str]], resamples: int = ALPHA_RESAMPLES, seed: int = 0
) -> tuple[float | None, tuple[float, float] | None]:
    """Krippendorff's alpha over every reviewer and its 95% bootstrap interval (resampling samples)."""
    units = [labels for labels in by_sample.values() if len(labels) > 1]
    if not units:
        return None, None
    raters = sorted({r for labels in units for r in labels})
    data = np.full((len(raters), len(units)), np.nan)
    row = {r: i for i, r in enumerate(raters)}
    for j, labels in enumerate(units):
        for rater, label in labels.items():
            data[row[rater], j] = _value(project, label)
    how = level(project)
    value = _alpha(data, how)
    if value is None or len(units) < 2 or resamples <= 0:
        return value, None
    rng = np.random.default_rng(seed)
    drawn = [_alpha(data[:, rng.integers(0, len(units), len(units))], how) for _ in range(resamples)]
    draws = [d for d in drawn if d is not None]
    if len(draws) < resamples / 2:
        return value, None
    tail = (1 - metrics.CONFIDENCE) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return value, (float(low), float(high))


def _value(project: Project, label: str) -> float:
    if project.label_kind == LabelKind.NUMERIC:
        return float(label)
    choices = project.label_choices
    return float(choices.index(label)) if label in choices else float(len(choices))


def _alpha(data: np.ndarray, how: Level) -> float | None:
    values = data[~np.isnan(data)]
    if len(np.unique(values)) < 2:
        return None  # one value only: no disagreement to expect, alpha is undefined
    with np.errstate(divide="ignore", invalid="ignore"):
        result = krippendorff.alpha(reliability_data=data, level_of_measurement=how)
    return None if np.isnan(result) else float(result)


def pairs(project: Project, by_sample: dict[int, dict[str, str]], resamples: int = PAIR_RESAMPLES) -> list[Pair]:
    """Agreement of every pair of reviewers on the samples both labelled, most shared samples first."""
    shared: dict[tuple[str, str], list[int]] = defaultdict(list)
    for sample_id, labels in sorted(by_sample.items()):
        for a, b in combinations(sorted(labels), 2):
            shared[(a, b)].append(sample_id)
    found = []
    for (a, b), sample_ids in shared.items():
        first, second = [by_sample[s][a] for s in sample_ids], [by_sample[s][b] for s in sample_ids]
        figures = metrics.agreement(first, second, project.label_kind, project.label_choices, resamples=resamples)
        assert figures is not None  # every pair shares at least one sample
        found.append(Pair(a, b, figures))
    return sorted(found, key=lambda p: (-p.n, p.first, p.second))


def reviewers(project: Project, by_sample: dict[int, dict[str, str]], final: dict[int, str]) -> list[Reviewer]:
    times: dict[str, list[Any]] = defaultdict(list)
    for username, created in (
        Feedback.objects.filter(project=project, decision__isnull=True)
        .order_by("created_at")
        .values_list("author__username", "created_at")
        .iterator()
    ):
        times[username].append(created)
    found = []
    for username, stamps in times.items():
        gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
        gaps = [g for g in gaps if 0 <= g <= BREAK_SECONDS]
        theirs = [(s, labels[username]) for s, labels in by_sample.items() if username in labels and s in final]
        found.append(
            Reviewer(
                username=username,
                count=len(stamps),
                seconds_per_review=statistics.median(gaps) if gaps else None,
                final_n=len(theirs),
                final_agree=sum(1 for s, label in theirs if final[s] == label),
            )
        )
    return sorted(found, key=lambda r: (-r.count, r.username))


def team_agreement(project: Project, with_pairs: bool = True) -> TeamAgreement:
    """The experts' agreement with each other (the Team page; the overview asks for alpha alone, without its
    interval, to stay quick)."""
    by_sample = ratings(project)
    value, interval = alpha(project, by_sample, resamples=ALPHA_RESAMPLES if with_pairs else 0)
    result = TeamAgreement(
        kind=project.label_kind,
        level=level(project),
        alpha=value,
        alpha_interval=interval,
        overlapping=sum(1 for labels in by_sample.values() if len(labels) > 1),
    )
    if with_pairs:
        result.pairs = pairs(project, by_sample)
        result.reviewers = reviewers(project, by_sample, final_labels(project, by_sample))
    return result


def overview_agreement(project: Project) -> TeamAgreement:
    """The overview's alpha, without its interval, kept in the figures cache until the reviews change."""
    return figures.cached(project.pk, "team-alpha", lambda: team_agreement(project, with_pairs=False))


@dataclass
class VerdictGroup:
    name: str  # "blind", "shown" or "unknown"
    description: str
    figures: metrics.Figures | None  # the experts' labels against the imported judge's verdicts


VERDICT_GROUPS = {
    "blind": (False, "Chosen before the judge's verdict was shown (judge-blind first pass)"),
    "shown": (True, "Chosen with the judge's verdict on screen"),
    "unknown": (None, "Not recorded (reviews given before it was, imported or through the API)"),
}


def agreement_with_judge_by_visibility(project: Project) -> list[VerdictGroup]:
    """The experts' agreement with the imported judge, separately for labels chosen blind and with the verdict
    shown (groups without reviews are left out). Every review counts, in or out of the memory."""
    rows = (
        Feedback.objects.filter(project=project, decision__isnull=True)
        .exclude(sample__judge_value="")
        .values_list("verdict_shown", "label", "sample__judge_value")
    )
    grouped: dict[bool | None, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for shown, label, judge_value in rows.iterator():
        grouped[shown][0].append(label)
        grouped[shown][1].append(judge_value)
    found = []
    for name, (shown, description) in VERDICT_GROUPS.items():
        if shown in grouped:
            labels, verdicts = grouped[shown]
            figures = metrics.agreement(labels, verdicts, project.label_kind, project.label_choices)
            found.append(VerdictGroup(name, description, figures))
    return found
