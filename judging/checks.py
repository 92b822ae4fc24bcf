"""Checks on one verdict, made while it is judged: the signals its confidence is built from.

- neighbour vote: the share of the retrieved examples' similarity-weighted vote behind the verdict (any provider);
- repeated asks (a project setting, LLM judges): the share of n answers that gave the verdict;
- order (pairwise, LLM judges): the item asked again with its outputs swapped; a verdict that follows the slot
  and not the content is "flipped", and escalated;
- stability (a share of verdicts, LLM judges): one more ask; "flipped" when it differs.
- learned probability: a verdict the learned local judge decided (judging/learned.py: the offline provider's
  learned tier, or the cascade in front of an LLM) carries its calibrated probability, stored as the signal
  "learned_probability", which agreement.calibration averages in.

Every extra ask goes through the caller's `ask`, which holds one of the project's provider slots, so the
project's concurrency holds. A provider failure on an extra ask never touches the verdict: the check is marked
"missing".
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from judging.models import JudgingSettings
from memory.llm.base import ProviderError, Verdict, WorkingMemory
from memory.llm.offline import vote
from reviews.labels import PAIRWISE_CHOICES
from reviews.models import Project

SWAPPED = {PAIRWISE_CHOICES[0]: PAIRWISE_CHOICES[1], PAIRWISE_CHOICES[1]: PAIRWISE_CHOICES[0]}


@dataclass
class Plan:
    """Which extra asks a project's verdicts get (from judging.models.JudgingSettings and the provider)."""

    asks: int = 1
    both_orders: bool = False
    stability_share: float = 0.0
    salt: str = ""  # the run: which verdicts the stability draw picks


@dataclass
class Checked:
    signals: dict[str, float | None] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


def project_plan(project: Project, remote: bool, salt: str, repeats: bool = True) -> Plan:
    """The extra asks of a project's verdicts (its JudgingSettings). The offline judge is deterministic: asking
    it again tells nothing. `repeats=False` leaves out the repeated asks: an evaluation and the regression gate
    measure the judge's order and stability, not each verdict's confidence."""
    if not remote:
        return Plan()
    setting = JudgingSettings.of(project)
    return Plan(
        asks=setting.asks if repeats else 1,
        both_orders=setting.both_orders and project.is_pairwise,
        stability_share=setting.stability_percent / 100,
        salt=salt,
    )


NOT_CHECKED = "not checked: the offline judge is deterministic, asking it again tells nothing"


def summed(found: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Verdicts' checks summed: counts, the position-bias rate and the flip rate (None when unchecked)."""
    found = list(found)
    order = Counter(c.get("order") for c in found)
    stability = Counter(c.get("stability") for c in found)
    asked_both = order["consistent"] + order["flipped"]
    first_slot = sum(1 for c in found if c.get("first_slot"))
    reasked = stability["same"] + stability["flipped"]
    return {
        "order": {"consistent": order["consistent"], "flipped": order["flipped"], "missing": order["missing"]},
        "position_bias_rate": first_slot / asked_both if asked_both else None,
        "stability": {"same": stability["same"], "flipped": stability["flipped"], "missing": stability["missing"]},
        "flip_rate": stability["flipped"] / reasked if reasked else None,
        "repeats_missing": sum(1 for c in found if c.get("repeats") == "missing"),
    }


def neighbour_vote(memory: WorkingMemory, value: str | None) -> float | None:
    """The share of the retrieved examples' vote that backs `value`; None without a verdict or any vote."""
    if not value:
        return None
    scores = vote([e.label for e in memory.examples], [e.similarity for e in memory.examples], memory.schema.choices)
    total = sum(scores.values())
    return scores.get(value, 0.0) / total if total > 0 else None


def swapped(memory: WorkingMemory, output_a: str, output_b: str) -> WorkingMemory:
    """The same working memory with the two outputs in the other order (as reviews.Sample shows them)."""
    return replace(memory, output=f"Output A:\n{output_b}\n\nOutput B:\n{output_a}")


def stability_drawn(salt: str, sample_id: int, share: float) -> bool:
    """A stable draw: whether this verdict is re-asked for the stability check."""
    digest = hashlib.sha256(f"memalign-stability:{salt}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def check(
    plan: Plan,
    memory: WorkingMemory,
    verdict: Verdict,
    ask: Callable[[WorkingMemory], Verdict],
    sample_id: int,
    outputs: tuple[str, str] | None = None,
) -> Checked:
    """Run the plan's extra asks on a verdict and return its signals and checks (the verdict itself never changes).

    `outputs` are a pairwise item's two outputs (for the order check); usage of the extra asks is added to the
    verdict's, so the run's token count stays true.
    """
    result = Checked(signals={"neighbour_vote": neighbour_vote(memory, verdict.value)})
    if verdict.tier == "learned" and verdict.probability is not None:
        result.signals["learned_probability"] = verdict.probability
    if not verdict.value:
        return result  # an abstention has nothing to confirm
    answers = [verdict.value]
    for _ in range(plan.asks - 1):
        again = _ask(ask, memory, verdict)
        if again is None:
            result.checks["repeats"] = "missing"
        else:
            answers.append(again.value or "")
    if plan.asks > 1:
        result.signals["repeat_agreement"] = answers.count(verdict.value) / len(answers)
        result.checks["repeats_answered"] = len(answers)
    if plan.both_orders and outputs is not None and verdict.value in SWAPPED:
        other = _ask(ask, swapped(memory, *outputs), verdict)
        if other is None:
            result.checks["order"] = "missing"
        else:
            back = SWAPPED.get(other.value or "", "")
            result.checks["order"] = "consistent" if back == verdict.value else "flipped"
            # Both answers name the first slot: the judge followed the position, not the content.
            result.checks["first_slot"] = verdict.value == other.value == PAIRWISE_CHOICES[0]
            result.signals["order_consistent"] = 1.0 if back == verdict.value else 0.0
    if plan.stability_share > 0 and stability_drawn(plan.salt, sample_id, plan.stability_share):
        again = _ask(ask, memory, verdict)
        result.checks["stability"] = (
            "missing" if again is None else ("same" if again.value == verdict.value else "flipped")
        )
    return result


def _ask(ask: Callable[[WorkingMemory], Verdict], memory: WorkingMemory, verdict: Verdict) -> Verdict | None:
    try:
        answer = ask(memory)
    except ProviderError:
        return None
    verdict.usage.add(answer.usage)
    return answer
