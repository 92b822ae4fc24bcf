"""Which tier decided a run's verdicts (same item, learned judge, vote, model), and what the cascade saved."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from judging.models import Judgement, JudgeRun
from memory.llm.base import TIER_LEARNED, TIER_LLM, TIER_SAME_ITEM, TIER_VOTE, TIERS

TIER_NAMES = {
    "same_item": "the same item, reviewed before",
    "learned": "the learned local judge",
    "vote": "the vote of the nearest reviewed examples",
    "llm": "the model",
}


def decided_by(provider: str, model: str, tier: str) -> str:
    """What produced a verdict: the provider's model only when the model decided, the tier that decided otherwise
    (a verdict carries the run's provider and model whichever tier decided)."""
    if tier == TIER_LEARNED:
        return f"{provider}: learned local judge" + (f" (no {model} call)" if provider != "offline" else "")
    if tier == TIER_SAME_ITEM:
        return f"{provider}: the same item, reviewed before"
    if tier == TIER_VOTE:
        return f"{provider}: similarity vote ({model})"
    return f"{provider} {model}".strip()


def summary(run: JudgeRun) -> dict[str, Any]:
    """Verdicts per tier and their share; with an LLM provider, the model calls the learned judge saved and the
    tokens they would have cost (at the run's mean tokens per model call)."""
    counted = dict(
        Judgement.objects.filter(run=run, error="")
        .exclude(tier="")
        .values_list("tier")
        .annotate(n=Count("id"))
        .values_list("tier", "n")
    )
    total = sum(counted.values())
    tiers = {tier: {"verdicts": counted.get(tier, 0), "share": _share(counted.get(tier, 0), total)} for tier in TIERS}
    model_calls = (run.usage or {}).get("calls", 0)
    model_tokens = (run.usage or {}).get("input_tokens", 0) + (run.usage or {}).get("output_tokens", 0)
    saved_calls = counted.get(TIER_LEARNED, 0) if counted.get(TIER_LLM) else 0
    per_call = model_tokens / model_calls if model_calls else 0
    return {
        "verdicts": total,
        "tiers": tiers,
        "calls_saved": saved_calls,
        "tokens_saved": round(saved_calls * per_call),
    }


def _share(part: int, total: int) -> float:
    return round(part / total, 4) if total else 0.0
