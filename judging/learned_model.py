"""The learned judge's estimator: features from a sample's part vectors, training, calibrated prediction.

Plain numpy and scikit-learn (no Django), so benchmarks and tests can train it on any vectors. Parts are each
sample's embedded input and outputs (memory.vectors.part_vectors): rows of shape (2, 384) for one output
(input, output) and (3, 384) for pairwise (input, A, B).

- Single output (pass/fail, categories): the input, the output, their product and their cosine, then a logistic
  regression whose probabilities are calibrated by cross-validation (Platt scaling on held-out folds).
- Pairwise: features of A minus features of B (the outputs' difference, its product with the input, the
  difference of their cosines to the input, and of their log lengths): antisymmetric, so swapping the outputs
  negates them. The length is there because people's preferences between two answers lean on it (the MT-Bench
  paper's verbosity bias), in either direction: each project's regression learns its own weight and sign. The regression
  has no intercept and learns each pair both ways round; the calibrated P(A) is averaged with 1 - P(A) of the
  swapped pair, so a swap gives exactly the opposite verdict with the same probability.
- Numeric scales: a ridge regressor (the order and distance of the steps count); the probability of each step is
  the mass a normal distribution of the cross-validated residuals puts on it.
- Categories of more than two labels are ordered as listed (reviews.labels): the decision is the label of least
  expected distance under the calibrated probabilities (absolute or squared distance, whichever gives the better
  quadratic-weighted kappa on held-out folds), so a verdict between two likely labels lands between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:  # scikit-learn takes seconds to import: only a process that trains a judge pays for it
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

# Inverse regularisation of the logistic regressions. Vectors are unit length and features few-hundred-wide; on
# the shared datasets' group-disjoint splits C between 0.5 and 2 did about the same, and a per-training choice by
# input-grouped cross-validation did not help (docs/BENCHMARKS.md).
C = 1.0
RIDGE_ALPHA = 10.0
MAX_FOLDS = 3
MAX_ITERATIONS = 300
# One BLAS thread: workers run side by side on a few cores, and measured on this 2-core machine under load,
# OpenBLAS's own threads made a fit 8x slower than one thread (bench/learned_judge.py).
BLAS_THREADS = 1


def single_features(parts: np.ndarray) -> np.ndarray:
    """(n, 2, d) input and output vectors -> (n, 3d + 1): input, output, their product, their cosine."""
    inputs, outputs = parts[:, 0, :], parts[:, 1, :]
    cosine = np.sum(inputs * outputs, axis=1, keepdims=True)
    return np.hstack([inputs, outputs, inputs * outputs, cosine]).astype(np.float32)


def pairwise_features(parts: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """(n, 3, d) input, A and B vectors -> (n, 2d + 1): A's features minus B's, so a swap negates them; with
    the parts' `lengths` (n, 3) one more column, A's log length minus B's."""
    inputs, a, b = parts[:, 0, :], parts[:, 1, :], parts[:, 2, :]
    difference = a - b
    cosine = np.sum(inputs * difference, axis=1, keepdims=True)
    columns = [difference, inputs * difference, cosine]
    if lengths is not None:
        columns.append((np.log1p(lengths[:, 1]) - np.log1p(lengths[:, 2])).reshape(-1, 1))
    return np.hstack(columns).astype(np.float32)


def part_lengths(texts: list[list[str]]) -> np.ndarray:
    """(n, parts) character counts of items' part texts (memory.vectors.part_texts), as the features take them."""
    width = len(texts[0]) if texts else 2
    return np.array([[len(text) for text in parts] for parts in texts], dtype=np.float64).reshape(-1, width)


@dataclass
class LearnedModel:
    """A trained judge as plain arrays (a linear decision plus its Platt calibration per class), so it loads in any
    process whatever the scikit-learn version, and a verdict costs a few vector products, not an estimator call.
    `probabilities` rows follow `choices`."""

    kind: str
    choices: list[str]
    classes: list[str]  # the labels the decision columns stand for (binary: one column, for classes[1])
    coef: np.ndarray  # (columns, features)
    intercept: np.ndarray  # (columns,)
    slope: np.ndarray = field(default_factory=lambda: np.zeros(0))  # Platt: p = 1 / (1 + exp(slope * d + offset))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    residual_std: float = 0.0  # numeric scales: spread of the cross-validated residuals
    # The decision divides each label's probability by its share of the training labels to this power: 0 is the
    # most probable label (best exact match), 1 favours rare labels (best balanced accuracy); `choose_decision`
    # picks it per project on held-out folds.
    prior: np.ndarray = field(default_factory=lambda: np.zeros(0))
    prior_power: float = 0.0
    # Ordered categories: "absolute" or "squared", the distance whose expected value the decision minimises; ""
    # decides the most probable label. A plain default, so models stored before it existed load with "".
    ordinal_cost: str = ""
    # Pairwise: whether the outputs' lengths are among the features (False: a model stored before they were).
    with_lengths: bool = False

    def probabilities(self, parts: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Return (n, len(choices)) calibrated probabilities for the samples' part vectors; `lengths`: the parts'
        character counts (part_lengths), which a pairwise model trained with them needs."""
        if self.kind == "pairwise":
            if self.with_lengths and lengths is None:
                raise ValueError("this pairwise judge was trained on the outputs' lengths: pass them")
            features = pairwise_features(parts, lengths if self.with_lengths else None)
            a = (self._classified(features)[:, 0] + 1.0 - self._classified(-features)[:, 0]) / 2.0
            return np.column_stack([a, 1.0 - a])
        features = single_features(parts)
        if self.kind == "numeric":
            predicted = features @ self.coef[0] + self.intercept[0]
            return _step_probabilities(predicted, self.choices, self.residual_std)
        return self._classified(features)

    def _classified(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities in `choices` order (as sklearn's CalibratedClassifierCV computes them)."""
        decision = features @ self.coef.T + self.intercept
        calibrated = 1.0 / (1.0 + np.exp(decision * self.slope + self.offset))
        found = np.zeros((len(features), len(self.classes)))
        if len(self.classes) == 2:
            found[:, 1] = calibrated[:, 0]
            found[:, 0] = 1.0 - calibrated[:, 0]
        else:
            total = calibrated.sum(axis=1, keepdims=True)
            found = np.divide(calibrated, total, out=np.full_like(calibrated, 1 / len(self.classes)), where=total != 0)
        result = np.zeros((len(features), len(self.choices)))
        for column, label in enumerate(self.choices):
            if label in self.classes:
                result[:, column] = found[:, self.classes.index(label)]
        return result

    def decide(
        self, probabilities: np.ndarray, prior_power: float | None = None, ordinal_cost: str | None = None
    ) -> list[str]:
        """The label of each row after the prior correction: the most probable one, or for ordered categories the
        one of least expected distance among the labels it learned (ties: schema order)."""
        power = self.prior_power if prior_power is None else prior_power
        cost = self.ordinal_cost if ordinal_cost is None else ordinal_cost
        scores = probabilities / np.maximum(self.prior, 1e-6) ** power if power and len(self.prior) else probabilities
        if not cost:
            return [self.choices[int(i)] for i in np.argmax(scores, axis=1)]
        steps = np.arange(len(self.choices))
        distance = np.abs(steps[:, None] - steps[None, :]).astype(np.float64) ** ORDINAL_COSTS[cost]
        expected = scores @ distance  # (rows, choices): the expected distance of deciding each label
        expected[:, [label not in self.classes for label in self.choices]] = np.inf
        return [self.choices[int(i)] for i in np.argmin(expected, axis=1)]


ORDINAL_COSTS = {"absolute": 1, "squared": 2}  # the power of the distance between two labels' positions


def ordered(kind: str, choices: list[str]) -> bool:
    """Categories of more than two labels are ordered as listed (as agreement.metrics weighs them)."""
    return kind == "categorical" and len(choices) > 2


def fit(
    kind: str,
    choices: list[str],
    parts: np.ndarray,
    labels: list[str],
    seed: int = 0,
    lengths: np.ndarray | None = None,
) -> LearnedModel:
    """Train on part vectors and their final labels; the caller has checked there are enough of each label.
    `lengths` (part_lengths): pairwise judges learn from the outputs' lengths too; other kinds ignore them."""
    with threadpool_limits(BLAS_THREADS):
        return _fit(kind, choices, parts, labels, seed, lengths)


def _fit(
    kind: str, choices: list[str], parts: np.ndarray, labels: list[str], seed: int, lengths: np.ndarray | None
) -> LearnedModel:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    if kind == "pairwise":
        features, y = _both_ways(pairwise_features(parts, lengths), labels)
        estimator = _calibrated(LogisticRegression(C=C, fit_intercept=False, max_iter=MAX_ITERATIONS), y, seed)
        estimator.fit(features, y)
        model = _linear(kind, choices, estimator)
        model.with_lengths = lengths is not None
        return model
    features = single_features(parts)
    if kind == "numeric":
        y_numeric = np.array([float(label) for label in labels])
        regressor = Ridge(alpha=RIDGE_ALPHA)
        folds = KFold(min(MAX_FOLDS, len(labels)), shuffle=True, random_state=seed)
        predicted = cross_val_predict(regressor, features, y_numeric, cv=folds)
        residual = float(np.std(y_numeric - predicted)) or 0.5
        regressor.fit(features, y_numeric)
        coef = np.asarray(regressor.coef_, dtype=np.float64).reshape(1, -1)
        return LearnedModel(
            kind, list(choices), [], coef, np.array([float(regressor.intercept_)]), residual_std=residual
        )
    y = np.array(labels)
    estimator = _calibrated(LogisticRegression(C=C, max_iter=MAX_ITERATIONS), y, seed)
    estimator.fit(features, y)
    model = _linear(kind, choices, estimator)
    model.prior = np.array([float(np.mean(y == label)) for label in choices])
    return model


def _both_ways(features: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each pair both ways round: the regression cannot prefer a position, only a content."""
    flipped = ["B" if label == "A" else "A" for label in labels]
    return np.vstack([features, -features]), np.array(list(labels) + flipped)


PRIOR_POWERS = (0.0, 0.5, 1.0)
TUNE_AT_MOST = 3000  # labels; beyond this the refits cost more than the training, and the default power is kept
# Out-of-fold probabilities need this many of each label: every fold's training then keeps the 2 of each that the
# calibration's own folds need (a label of 2 leaves 1 in some fold's training, which cannot be calibrated).
TUNE_AT_LEAST_PER_LABEL = 3


def fit_tuned(
    kind: str,
    choices: list[str],
    parts: np.ndarray,
    labels: list[str],
    seed: int = 0,
    lengths: np.ndarray | None = None,
) -> tuple[LearnedModel, np.ndarray | None]:
    """`fit`, then the decision (prior power; for ordered categories the distance) chosen on out-of-fold
    probabilities (returned too, for the training report; None above TUNE_AT_MOST labels, or when a label has
    fewer than TUNE_AT_LEAST_PER_LABEL: the default decision is kept)."""
    model = fit(kind, choices, parts, labels, seed, lengths)
    rarest = min(labels.count(label) for label in set(labels))
    if len(labels) > TUNE_AT_MOST or (kind != "pairwise" and rarest < TUNE_AT_LEAST_PER_LABEL):
        return model, None
    held_out = cross_validated(kind, choices, parts, labels, seed, lengths)
    model.prior_power, model.ordinal_cost = choose_decision(model, held_out, labels)
    return model, held_out


def choose_decision(model: LearnedModel, held_out: np.ndarray, labels: list[str]) -> tuple[float, str]:
    """The decision (prior power, distance) chosen on out-of-fold probabilities (ties: the smallest power).

    First the most probable label's prior power, by Cohen's kappa. Ordered categories then take the expected-distance
    decision (absolute or squared, any power) with the best quadratic-weighted kappa if it beats that one's and its
    exact match is at least the most common label's share: a judge that matches less often than "always the most
    common label" is not kept for a better weighted kappa. Pairwise and numeric judges keep 0 (no prior)."""
    if model.kind in ("pairwise", "numeric") or not len(model.prior) or len(set(labels)) < 2:
        return 0.0, model.ordinal_cost
    positions = {label: i for i, label in enumerate(model.choices)}
    truth = np.array([positions[label] for label in labels])

    from sklearn.metrics import cohen_kappa_score

    def decided(power: float, cost: str) -> np.ndarray:
        return np.array([positions[label] for label in model.decide(held_out, power, cost)])

    plain = max((float(cohen_kappa_score(truth, decided(p, ""))), -p) for p in PRIOR_POWERS)
    best: tuple[float, float, str] = (-np.inf, -plain[1], "")
    if ordered(model.kind, model.choices):
        best = (float(cohen_kappa_score(truth, decided(best[1], ""), weights="quadratic")), best[1], "")
        floor = max(np.mean(truth == i) for i in set(truth.tolist()))
        for cost in ORDINAL_COSTS:
            for power in PRIOR_POWERS:
                guess = decided(power, cost)
                weighted = float(cohen_kappa_score(truth, guess, weights="quadratic"))
                if np.mean(guess == truth) >= floor and weighted > best[0]:
                    best = (weighted, power, cost)
    return best[1], best[2]


def _linear(kind: str, choices: list[str], estimator: CalibratedClassifierCV) -> LearnedModel:
    """The fitted estimator's arrays: its regression's coefficients and each class's sigmoid calibration."""
    calibrated = estimator.calibrated_classifiers_[0]
    regression = calibrated.estimator
    return LearnedModel(
        kind,
        list(choices),
        [str(c) for c in estimator.classes_],
        np.asarray(regression.coef_, dtype=np.float64),
        np.asarray(regression.intercept_, dtype=np.float64).reshape(-1) * np.ones(len(regression.coef_)),
        np.array([c.a_ for c in calibrated.calibrators], dtype=np.float64),
        np.array([c.b_ for c in calibrated.calibrators], dtype=np.float64),
    )


def cross_validated(
    kind: str,
    choices: list[str],
    parts: np.ndarray,
    labels: list[str],
    seed: int = 0,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold probabilities of every labelled sample (for the training report and the cascade threshold)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array(labels)
    folds = min(MAX_FOLDS, min(int(np.sum(y == label)) for label in set(labels)))
    result = np.zeros((len(labels), len(choices)))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(parts, y):
        train_lengths, test_lengths = (lengths[train], lengths[test]) if lengths is not None else (None, None)
        model = fit(kind, choices, parts[train], [labels[i] for i in train], seed, train_lengths)
        result[test] = model.probabilities(parts[test], test_lengths)
    return result


def _calibrated(classifier: LogisticRegression, y: np.ndarray, seed: int) -> CalibratedClassifierCV:
    """Platt scaling fitted on held-out folds (as many as the rarest label allows, at most MAX_FOLDS)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    rarest = min(int(np.sum(y == label)) for label in set(y.tolist()))
    folds = StratifiedKFold(max(2, min(MAX_FOLDS, rarest)), shuffle=True, random_state=seed)
    return CalibratedClassifierCV(classifier, method="sigmoid", cv=folds, ensemble=False)


def _step_probabilities(predicted: np.ndarray, choices: list[str], spread: float) -> np.ndarray:
    """Mass of N(predicted, spread) on each step of the scale (the ends take the tails)."""
    steps = np.array([float(c) for c in choices])
    edges = np.concatenate([[-np.inf], (steps[:-1] + steps[1:]) / 2, [np.inf]])
    cdf = np.vectorize(lambda z: 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))), otypes=[float])  # 0 items too
    upper = cdf((edges[1:][None, :] - predicted[:, None]) / spread)
    lower = cdf((edges[:-1][None, :] - predicted[:, None]) / spread)
    return np.asarray(upper - lower)
