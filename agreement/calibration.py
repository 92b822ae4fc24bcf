"""A verdict's confidence: named signals combined into a raw score, then calibrated against the experts.

Signals are each in [0, 1] and any may be missing (None): the share of the retrieved examples' vote behind the
verdict, the share of repeated asks that gave it, whether it held when a pairwise item's outputs were swapped,
and the learned local judge's probability for it. The raw score is their mean. An isotonic regression fitted
on reviewed verdicts (did the experts agree?) maps it to the probability that the experts would agree;
cross-fitted, so a reviewed item is never calibrated by a fit that saw it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

SIGNALS = ("neighbour_vote", "repeat_agreement", "order_consistent", "learned_probability")
FOLDS = 5
# A fit on fewer reviewed verdicts (or on one outcome only) is replaced by the smoothed overall agreement.
MIN_FIT = 10
ECE_BINS = 10

Calibrator = Callable[[np.ndarray], np.ndarray]


def raw_score(signals: Mapping[str, float | None]) -> float | None:
    """The mean of the named signals that are present; None when none is."""
    present = [float(signals[name]) for name in SIGNALS if signals.get(name) is not None]  # type: ignore[arg-type]
    return sum(present) / len(present) if present else None


def fit(scores: Sequence[float], agreed: Sequence[bool]) -> Calibrator:
    """Return a map from raw scores to the probability that the experts agree, fitted on reviewed verdicts."""
    x, y = np.asarray(scores, dtype=float), np.asarray(agreed, dtype=float)
    if len(x) < MIN_FIT or len(set(y.tolist())) < 2:
        constant = (y.sum() + 1) / (len(y) + 2)  # Laplace: never a certain 0 or 1 from a handful of items
        return lambda values: np.full(len(values), constant)
    from sklearn.isotonic import IsotonicRegression  # here: seconds to import, needed by few processes

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return lambda values: np.asarray(model.predict(np.asarray(values, dtype=float)), dtype=float)


def fold_of(item_id: int) -> int:
    """The fold an item belongs to, fixed by its id, so it lands in the same fold in every run."""
    return item_id % FOLDS


def cross_fitted(ids: Sequence[int], scores: Sequence[float], agreed: Sequence[bool]) -> np.ndarray:
    """Each reviewed item's calibrated confidence from a fit on the other folds only."""
    folds = np.array([fold_of(i) for i in ids])
    x, y = np.asarray(scores, dtype=float), np.asarray(agreed, dtype=bool)
    result = np.zeros(len(x))
    for fold in set(folds.tolist()):
        inside = folds == fold
        result[inside] = fit(x[~inside].tolist(), y[~inside].tolist())(x[inside])
    return result


def expected_calibration_error(confidences: Sequence[float], agreed: Sequence[bool], bins: int = ECE_BINS) -> float:
    """The gap between confidence and observed agreement, averaged over equal-width bins weighted by their size."""
    p, y = np.asarray(confidences, dtype=float), np.asarray(agreed, dtype=float)
    if not len(p):
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    gap = sum(
        abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum() for b in range(bins) if (which == b).any()
    )
    return float(gap / len(p))
