"""Selective judging with a guarantee ("Trust or Escalate", Jung et al., ICLR 2025).

Given the experts' verdict on reviewed items (did the judge agree?) and the judge's confidence on each, pick the
lowest confidence threshold whose accepted verdicts agree with the experts at `target` or better, with
probability at least 1 - `risk`. Each candidate threshold is tested with an exact one-sided Clopper-Pearson
lower bound, in a fixed sequence from the most confident down, stopping at the first that fails: testing in a
fixed order keeps the overall error at `risk` without splitting it across the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Below this many reviewed items no threshold can be trusted, whatever the bound says: the sentence says so.
MIN_REVIEWED = 10
MAX_REVIEWS_TO_SUGGEST = 100_000


def clopper_pearson_lower(agreed: int, n: int, risk: float) -> float:
    """The exact one-sided lower confidence bound (level 1 - risk) of a success rate seen as agreed / n."""
    if n <= 0 or agreed <= 0:
        return 0.0
    from scipy.stats import beta  # type: ignore[import-untyped]  # no types; here: seconds to import

    return float(beta.ppf(risk, agreed, n - agreed + 1))


@dataclass
class Selection:
    target: float
    risk: float
    reviewed: int
    threshold: float | None  # None: no threshold meets the target
    coverage: float  # the share of reviewed verdicts at or above the threshold (0 without one)
    agreement: float | None  # the accepted verdicts' observed agreement
    lower: float | None  # and its lower bound
    # (threshold, coverage, observed agreement, lower bound) at every candidate, most confident first: the chart
    curve: list[tuple[float, float, float, float]] = field(default_factory=list)
    more_reviews: int | None = None  # when none meets the target: about how many more reviews could let one
    reason: str = ""  # why there is no threshold, in a sentence

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def sentence(self) -> str:
        return guarantee_sentence(self)


def select_threshold(confidences: Sequence[float], agreed: Sequence[bool], target: float, risk: float) -> Selection:
    """Return the lowest threshold whose accepted verdicts' agreement is at least `target` with probability
    1 - `risk` (fixed-sequence testing of Clopper-Pearson bounds), with the coverage curve."""
    if len(confidences) != len(agreed):
        raise ValueError("confidences and agreements must pair up one to one")
    if not 0 < target < 1 or not 0 < risk < 1:
        raise ValueError("the target and the risk must lie strictly between 0 and 1")
    n = len(confidences)
    selection = Selection(target, risk, n, None, 0.0, None, None)
    if n < MIN_REVIEWED:
        selection.reason = f"only {n} reviewed verdict{'s' if n != 1 else ''}; a guarantee needs {MIN_REVIEWED} or more"
        selection.more_reviews = MIN_REVIEWED - n
        return selection
    pairs = sorted(zip(confidences, agreed), key=lambda pair: -pair[0])
    accepted = hits = 0
    passing = True
    for i, (confidence, agrees) in enumerate(pairs):
        accepted += 1
        hits += int(agrees)
        if i + 1 < n and pairs[i + 1][0] == confidence:
            continue  # a threshold accepts every verdict of its confidence at once
        lower = clopper_pearson_lower(hits, accepted, risk)
        selection.curve.append((float(confidence), accepted / n, hits / accepted, lower))
        if passing and lower >= target:
            selection.threshold, selection.coverage = float(confidence), accepted / n
            selection.agreement, selection.lower = hits / accepted, lower
        else:
            passing = False  # fixed sequence: once a threshold fails, no lower one may be chosen
    if selection.threshold is None:
        selection.more_reviews = reviews_needed(selection.curve, n, target, risk)
        selection.reason = (
            "no confidence threshold reaches the target"
            if selection.more_reviews is not None
            else "the judge agrees with the experts less often than the target at every threshold"
        )
    return selection


def reviews_needed(
    curve: Sequence[tuple[float, float, float, float]], reviewed: int, target: float, risk: float
) -> int | None:
    """About how many more reviews would let a threshold pass if its observed agreement held; None if none could."""
    best: int | None = None
    for _, coverage, observed, _ in curve:
        if observed <= target or coverage <= 0:
            continue
        needed = _items_for_bound(observed, target, risk)
        if needed is None:
            continue
        more = max(math.ceil(needed / coverage) - reviewed, 1)
        best = more if best is None else min(best, more)
    return best


def _items_for_bound(observed: float, target: float, risk: float) -> int | None:
    """The fewest accepted items at which `observed` agreement has a lower bound of `target` or more."""
    low, high = 1, MAX_REVIEWS_TO_SUGGEST
    if clopper_pearson_lower(math.floor(observed * high), high, risk) < target:
        return None
    while low < high:
        middle = (low + high) // 2
        if clopper_pearson_lower(math.floor(observed * middle), middle, risk) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def guarantee_sentence(selection: Selection) -> str:
    """The guarantee in one sentence, or why there is none and what would help."""
    target, confidence = f"{selection.target:.0%}", f"{1 - selection.risk:.0%}"
    if selection.threshold is not None:
        return (
            f"Verdicts with confidence {selection.threshold:.2f} or more ({selection.coverage:.0%} of the "
            f"{selection.reviewed} reviewed) agree with the experts at least {target} of the time, with "
            f"{confidence} confidence; the rest are escalated to an expert."
        )
    help_text = (
        f" About {selection.more_reviews} more review{'s' if selection.more_reviews != 1 else ''} could change that."
        if selection.more_reviews
        else " More reviews will not help until the judge improves."
    )
    return f"No guarantee: {selection.reason} ({target} agreement with {confidence} confidence).{help_text}"
