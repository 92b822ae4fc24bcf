"""The evaluation page's sentences, read from its own figures: what the held-out test points show against the
baselines, with an interval that does not collapse on a few items (no fixed claim a table can contradict)."""

from __future__ import annotations

from typing import Any

from agreement import metrics
from evaluation.charts import VARIANT_NAMES


def last_test_points(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant, the held-out test point after the most critiques learned, in the charts' order."""
    latest: dict[str, dict[str, Any]] = {}
    for point in result["points"]:
        if point["curve"] != "heldout" or point["split"] != "test" or not point["n"]:
            continue
        if point["variant"] not in latest or point["shard"] > latest[point["variant"]]["shard"]:
            latest[point["variant"]] = point
    order = list(VARIANT_NAMES)
    return sorted(latest.values(), key=lambda p: order.index(p["variant"]) if p["variant"] in order else len(order))


def held_out_reading(result: dict[str, Any]) -> list[str]:
    """One sentence per variant on its last held-out test point: all abstained; or its exact match with a 95%
    Clopper–Pearson interval, above, below or not distinguishable from the better baseline."""
    base = result["baselines"]
    best, best_name = base["majority"], f"majority label {base['majority']:.3f}"
    if base.get("imported_judge") is not None and base["imported_judge"] > best:
        best, best_name = base["imported_judge"], f"imported judge {base['imported_judge']:.3f}"
    sentences = []
    for point in last_test_points(result):
        name, n = VARIANT_NAMES.get(point["variant"], point["variant"]), point["n"]
        where = f"after {point['shard']} critique{'s' if point['shard'] != 1 else ''} learned, on {n} held-out test item{'s' if n != 1 else ''}"
        if point["exact_match"] is None or point["abstained"] >= n:
            sentences.append(f"“{name}” {where}: abstained on every one, so no agreement to measure.")
            continue
        hits = round(point["exact_match"] * n)
        low, high = metrics.exact_interval(hits, n)
        if low > best:
            verdict = f"above the better baseline ({best_name})"
        elif high < best:
            verdict = f"below the better baseline ({best_name})"
        else:
            verdict = f"not distinguishable from the better baseline ({best_name})"
        sentences.append(
            f"“{name}” {where}: exact match {point['exact_match']:.3f} ({hits} of {n}; 95% interval {low:.2f} to "
            f"{high:.2f}), {verdict}."
        )
    return sentences
