"""Bias-corrected rates on unreviewed data: prediction-powered inference with power tuning (PPI++).

Angelopoulos, Duchi and Zrnic, "PPI++: Efficient Prediction-Powered Inference" (2023). The judge's rate of a
label over N unreviewed items is corrected by how far the judge was off on n items the experts also labelled:

    rate = lambda * mean(judge on unreviewed) + mean(experts - lambda * judge on labelled)

lambda = 0 is the experts-only estimate, lambda = 1 classic PPI; the power-tuning lambda minimises the variance,
cov(experts, judge) / ((1 + n / N) var(judge)), clipped to [0, 1]. This is the closed form `ppi_py.ppi_mean_ci`
computes for a mean (tests/test_ppi.py checks it against the package), without its numba and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
# Below this many expert labels on the audit slice the intervals are not worth printing.
MIN_LABELLED = 10


@dataclass
class CorrectedRate:
    label: str
    judge_rate: float  # the judge's raw rate over the unreviewed items
    corrected: float
    corrected_interval: tuple[float, float]
    experts_only: float
    experts_interval: tuple[float, float]
    power: float  # lambda: 0 means the judge's verdicts added nothing
    effective_labels: float  # how many expert labels the corrected estimate is worth

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ppi_mean(
    labelled: Sequence[float] | np.ndarray,
    predicted: Sequence[float] | np.ndarray,
    unlabelled_predicted: Sequence[float] | np.ndarray,
) -> tuple[float, float, float]:
    """Return the PPI++ estimate of the mean of the experts' values, its standard error and the power lambda.

    `labelled` are the experts' values on n items, `predicted` the judge's on the same items, and
    `unlabelled_predicted` the judge's on N other items.
    """
    y, yhat, yhat_u = (np.asarray(v, dtype=float) for v in (labelled, predicted, unlabelled_predicted))
    n, big_n = len(y), len(yhat_u)
    if n < 2 or big_n < 1 or len(yhat) != n:
        raise ValueError("PPI needs two or more labelled items paired with the judge's, and unlabelled items")
    spread = np.var(np.concatenate([yhat, yhat_u]), ddof=1)
    covariance = np.mean((y - y.mean()) * (yhat - yhat.mean()))
    power = float(np.clip(covariance / ((1 + n / big_n) * spread), 0.0, 1.0)) if spread > 0 else 0.0
    estimate = power * yhat_u.mean() + np.mean(y - power * yhat)
    error = np.sqrt(np.var(power * yhat_u) / big_n + np.var(y - power * yhat) / n)
    return float(estimate), float(error), power


def corrected_rates(
    choices: Sequence[str],
    experts: Sequence[str],
    judge_on_labelled: Sequence[str],
    judge_on_unlabelled: Sequence[str],
) -> list[CorrectedRate]:
    """The rate of every label over the unreviewed items: the judge's raw rate, PPI++ corrected, experts-only."""
    if len(experts) != len(judge_on_labelled):
        raise ValueError("the experts' labels and the judge's must pair up one to one")
    from scipy.stats import norm  # type: ignore[import-untyped]  # no types; here: seconds to import

    z = norm.ppf(0.5 + CONFIDENCE / 2)
    rates = []
    for label in choices:
        y = np.array([value == label for value in experts], dtype=float)
        yhat = np.array([value == label for value in judge_on_labelled], dtype=float)
        yhat_u = np.array([value == label for value in judge_on_unlabelled], dtype=float)
        estimate, error, power = ppi_mean(y, yhat, yhat_u)
        experts_error = float(np.std(y) / np.sqrt(len(y)))
        rates.append(
            CorrectedRate(
                label=label,
                judge_rate=float(yhat_u.mean()),
                corrected=estimate,
                corrected_interval=_rate_interval(estimate, z * error),
                experts_only=float(y.mean()),
                experts_interval=_rate_interval(float(y.mean()), z * experts_error),
                power=power,
                effective_labels=float(len(y) * experts_error**2 / error**2) if error > 0 else float(len(y)),
            )
        )
    return rates


def _rate_interval(centre: float, half_width: float) -> tuple[float, float]:
    """A normal interval for a rate, clipped to [0, 1]: a rate outside it is impossible, not uncertain."""
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def why_not(labelled: int, unlabelled: int) -> str:
    """The sentence that replaces the corrected rates when they cannot be computed; "" when they can."""
    if unlabelled == 0:
        return "No unreviewed verdicts to correct."
    if labelled < MIN_LABELLED:
        return (
            f"Only {labelled} expert label{'s' if labelled != 1 else ''} on the audit slice "
            f"{'have' if labelled != 1 else 'has'} a verdict of this "
            f"judge; the correction needs {MIN_LABELLED} or more."
        )
    return ""
