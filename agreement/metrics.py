"""Agreement between a judge and the experts: chance-corrected, with an interval, a baseline and a reading.

Pure functions on label strings (no database), so runs, the overview and benchmarks share one definition.
Kappa, weighted kappa, mean absolute error and the confusion matrix are scikit-learn's; the concordance
correlation coefficient (Lin, 1989) is not in scikit-learn and is computed from numpy's moments.

An abstention is a verdict of its own ("abstained"): it never matches an expert label, so it lowers exact
match and kappa instead of being silently left out.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agreement.selective import clopper_pearson_lower

ABSTAINED = "abstained"
BOOTSTRAP_RESAMPLES = 500
CONFIDENCE = 0.95
# The plain reading of the headline figure (kappa or its weighted form), from the top. Kappa 0 is what a judge
# guessing with the right label frequencies gets; within CHANCE_BAND of it the judge has learnt nothing.
READINGS = (
    (0.7, "good enough to gate a release"),
    (0.4, "good enough to watch trends"),
    (0.1, "weak: exploratory only"),
)
CHANCE_BAND = 0.1
NO_BETTER = "no better than chance"
WORSE = "worse than chance"
UNDEFINED = "undefined"
# Below this many paired items a figure is shown but not graded: one disagreement among 5 moves kappa by about
# 0.4, across two readings. 10 is the floor the rest of the code already keeps for a figure to mean something
# (calibration.MIN_FIT, selective.MIN_REVIEWED, ppi.MIN_LABELLED, the evaluation's MIN_REVIEWED).
MIN_ITEMS = 10


@dataclass
class LabelFigures:
    """How one label fares: of the items the experts gave it, the share the judge found (recall); of the items
    the judge gave it, the share the experts agree with (precision). None where there is nothing to divide by."""

    label: str
    experts: int  # items the experts gave this label
    judge: int  # items the judge gave this label
    recall: float | None
    precision: float | None


@dataclass
class Figures:
    """How well `predictions` match `references` (the experts), on `n` pairs."""

    kind: str
    n: int
    labels: list[str]  # rows and columns of `confusion`, the schema's order, then "abstained" when any
    confusion: list[list[int]]  # rows: the experts' label, columns: the judge's
    exact: float
    kappa: float | None  # None when undefined (e.g. every label the same on both sides)
    weighted_kappa: float | None  # quadratic, for ordered labels (numeric scales, categories in listed order)
    ccc: float | None  # numeric scales only, on the pairs where the judge did not abstain
    mae: float | None  # likewise
    abstained: int
    headline_name: str
    headline: float | None
    interval: tuple[float, float] | None  # 95% percentile bootstrap of the headline
    baseline_label: str  # the experts' most frequent label
    baseline_exact: float  # exact match of a judge that always says it (its kappa is 0)
    # Recall and precision per label (for pass/fail: the true pass and true fail rates): kappa and exact match
    # can look healthy while a rare label is mostly missed.
    per_label: list[LabelFigures] = field(default_factory=list)

    @property
    def reading(self) -> str:
        return reading(self.headline, self.n)

    @property
    def interval_words(self) -> str:
        return interval_words(self.interval, self.n, self.exact)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reading": self.reading}


def too_few(n: int | None) -> str:
    """ "too few samples to judge (3 of 10 needed)" below MIN_ITEMS paired items, else ""."""
    if n is None or n >= MIN_ITEMS:
        return ""
    return f"too few samples to judge ({n} of {MIN_ITEMS} needed)"


def reading(kappa: float | None, n: int | None = None) -> str:
    """Read a kappa plainly: 0.7 and above "good enough to gate a release", 0.4–0.7 "good enough to watch
    trends", 0.1–0.4 "weak", within 0.1 of zero "no better than chance", below that "worse than chance";
    on fewer than MIN_ITEMS items (`n`), "too few samples to judge" whatever the figure."""
    if kappa is None:
        return UNDEFINED
    if too_few(n):
        return too_few(n)
    for threshold, text in READINGS:
        if kappa >= threshold:
            return text
    return NO_BETTER if kappa > -CHANCE_BAND else WORSE


def agreement(
    references: Sequence[str],
    predictions: Sequence[str | None],
    kind: str,
    choices: Sequence[str],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Figures | None:
    """Compare a judge's labels (None or "" = abstained) with the experts' on the same items; None if no pairs."""
    if len(references) != len(predictions):
        raise ValueError("references and predictions must pair up one to one")
    if not references:
        return None
    predicted = [p or ABSTAINED for p in predictions]
    labels = list(choices) + sorted({*references, *predicted} - set(choices) - {ABSTAINED})
    if ABSTAINED in predicted:
        labels.append(ABSTAINED)
    code = {label: i for i, label in enumerate(labels)}
    y_true = np.array([code[r] for r in references])
    y_pred = np.array([code[p] for p in predicted])
    ordered = kind == "numeric" or (kind == "categorical" and len(choices) > 2)
    headline_name, headline_of = (
        ("quadratic-weighted kappa", _weighted_kappa) if kind == "numeric" else ("kappa", _kappa)
    )
    from sklearn.metrics import confusion_matrix, mean_absolute_error  # here: seconds to import, used by few

    codes = list(range(len(labels)))
    ccc = mae = None
    if kind == "numeric":
        answered = y_pred != code.get(ABSTAINED, -1)
        if answered.any():
            truth = np.array([float(r) for r, p in zip(references, predicted) if p != ABSTAINED])
            guess = np.array([float(p) for p in predicted if p != ABSTAINED])
            ccc, mae = concordance(truth, guess), float(mean_absolute_error(truth, guess))
    majority, count = Counter(references).most_common(1)[0]
    confusion = confusion_matrix(y_true, y_pred, labels=codes)
    return Figures(
        kind=kind,
        n=len(references),
        labels=labels,
        confusion=confusion.tolist(),
        exact=float(np.mean(y_true == y_pred)),
        kappa=_kappa(y_true, y_pred, codes),
        weighted_kappa=_weighted_kappa(y_true, y_pred, codes) if ordered else None,
        ccc=ccc,
        mae=mae,
        abstained=predicted.count(ABSTAINED),
        headline_name=headline_name,
        headline=headline_of(y_true, y_pred, codes),
        interval=kappa_interval(y_true, y_pred, len(labels), headline_of is _weighted_kappa, resamples, seed),
        baseline_label=majority,
        baseline_exact=count / len(references),
        per_label=per_label(labels, confusion),
    )


def exact_interval(hits: int, n: int) -> tuple[float, float]:
    """The 95% Clopper–Pearson interval of a share (`hits` of `n`): exact, and never zero-width, even at n of n
    (30 of 30 agreeing bounds the agreement from below at 88%, not at 100%)."""
    tail = (1 - CONFIDENCE) / 2
    return clopper_pearson_lower(hits, n, tail), 1 - clopper_pearson_lower(n - hits, n, tail)


def collapsed(interval: Sequence[float] | None) -> bool:
    """True when a bootstrap interval prints as one value ("1.00 to 1.00"): every resample gave (about) the
    same figure, which says the sample is too small or too uniform to bound it, not that the figure is certain."""
    return interval is not None and round(interval[0], 2) == round(interval[1], 2)


def interval_words(interval: Sequence[float] | None, n: int, exact: float | None = None) -> str:
    """The interval as the pages print it: "95% interval 0.41 to 0.77"; when the bootstrap collapses to one value,
    say so, with the Clopper–Pearson interval of exact agreement (`exact`, a share of `n`) when there is one."""
    if interval is None:
        return ""
    low, high = interval
    if not collapsed(interval):
        return f"95% interval {low:.2f} to {high:.2f}"
    if exact is None:
        return f"every resample of the {n} gives {low:.2f}: too few, or too uniform, to bound it"
    hits = round(exact * n)
    share_low, share_high = exact_interval(hits, n)
    share = f"exact agreement {hits} of {n}, 95% interval {share_low:.0%} to {share_high:.0%}"
    if hits == n:
        return f"all {n} agree, so the bootstrap interval collapses and cannot bound it; {share}"
    return f"every resample of the {n} gives {low:.2f}, so the bootstrap cannot bound it; {share}"


def per_label(labels: Sequence[str], confusion: np.ndarray) -> list[LabelFigures]:
    """Recall and precision of every label but "abstained", from a confusion matrix (rows: experts)."""
    result = []
    for i, label in enumerate(labels):
        if label == ABSTAINED:
            continue
        experts, judge, hits = int(confusion[i].sum()), int(confusion[:, i].sum()), int(confusion[i, i])
        result.append(
            LabelFigures(
                label=label,
                experts=experts,
                judge=judge,
                recall=hits / experts if experts else None,
                precision=hits / judge if judge else None,
            )
        )
    return result


def _kappa(y_true: np.ndarray, y_pred: np.ndarray, codes: list[int]) -> float | None:
    return _defined(y_true, y_pred, codes, None)


def _weighted_kappa(y_true: np.ndarray, y_pred: np.ndarray, codes: list[int]) -> float | None:
    # An abstention has no place on the scale: its code comes after the top label, so it counts as a miss
    # at least one step away from every label.
    return _defined(y_true, y_pred, codes, "quadratic")


def _defined(y_true: np.ndarray, y_pred: np.ndarray, codes: list[int], weights: str | None) -> float | None:
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # undefined is reported as None, not warned
        value = cohen_kappa_score(y_true, y_pred, labels=codes, weights=weights, replace_undefined_by=np.nan)
    return None if np.isnan(value) else float(value)


def concordance(truth: np.ndarray, guess: np.ndarray) -> float | None:
    """Lin's concordance correlation coefficient: agreement on a scale, penalising both shift and spread."""
    if len(truth) < 2:
        return None
    spread = truth.var() + guess.var() + (truth.mean() - guess.mean()) ** 2
    if spread == 0:
        return None  # every value the same on both sides: agreement is perfect but the figure is undefined
    return float(2 * np.mean((truth - truth.mean()) * (guess - guess.mean())) / spread)


def kappa_interval(
    first: np.ndarray, second: np.ndarray, k: int, quadratic: bool, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval of Cohen's kappa (quadratic-weighted with `quadratic`) between two
    coded label arrays (codes 0..k-1), every resample at once with numpy (sklearn once per resample took about
    1 s at 2,000 pairs); the same interval as `bootstrap` over sklearn's kappa with the same seed: kappa = 1 - sum(w * observed) / sum(w * expected), as sklearn
    computes it; resamples where it is undefined are left out, and fewer than half defined give None."""
    n = len(first)
    if n < 2 or resamples <= 0:
        return None
    # The pairs in one canonical order, so that the same pairs give the same interval whichever page listed them
    # (the overview by sample, the Team page by review): the seeded resamples pick by position.
    canonical = np.lexsort((second, first))
    first, second = first[canonical], second[canonical]
    picked = np.random.default_rng(seed).integers(0, n, (resamples, n))
    cells = first[picked] * k + second[picked] + np.arange(resamples)[:, None] * k * k
    observed = np.bincount(cells.ravel(), minlength=resamples * k * k).reshape(resamples, k, k).astype(float)
    expected = observed.sum(axis=2)[:, :, None] * observed.sum(axis=1)[:, None, :] / n
    steps = np.arange(k)
    weights = (steps[:, None] - steps[None, :]) ** 2 if quadratic else (steps[:, None] != steps[None, :]) * 1.0
    disagreement, chance = (weights * observed).sum(axis=(1, 2)), (weights * expected).sum(axis=(1, 2))
    defined = chance > 0
    if defined.sum() < resamples / 2:
        return None
    values = 1 - disagreement[defined] / chance[defined]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float | None],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    """The 95% percentile bootstrap interval of `statistic` over resampled pairs (seeded: the same every time)."""
    if len(y_true) < 2 or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        picked = rng.integers(0, len(y_true), len(y_true))
        value = statistic(y_true[picked], y_pred[picked])
        if value is not None:
            values.append(value)
    if len(values) < resamples / 2:
        return None  # undefined on most resamples: no honest interval
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
