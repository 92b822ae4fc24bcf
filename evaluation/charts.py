"""Learning-curve charts, drawn on the server as SVG by matplotlib (installed with pip; nothing is fetched)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("svg")  # no display, no GUI toolkit: the SVG backend only
matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph outlines: a tenth of the size

from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

COLOURS = {"none": "#888888", "semantic": "#d95f02", "episodic": "#1b9e77", "both": "#386cb0"}
SPLIT_STYLES = {"test": "-", "seen": "--", "next": "-"}
SPLIT_NAMES = {"test": "held-out test", "seen": "seen (learned) items", "next": "next shard, judged before learned"}


def _x(shard: int) -> float:
    # A symlog axis would hide shard 0; shards grow geometrically, so plot them against log(1 + shard).
    return shard + 1


def learning_curve(result: dict[str, Any], curve: str) -> str:
    """One chart of `curve` ("heldout" or "prequential"): exact match against critiques learned, one line per
    variant and split, the 95% bootstrap interval shaded, the baselines as horizontal lines. Returns SVG text."""
    figure = Figure(figsize=(6.4, 3.8))
    axes = figure.subplots()
    points = [p for p in result["points"] if p["curve"] == curve and p["exact_match"] is not None]
    lines = sorted({(p["variant"], p["split"]) for p in points})
    for variant, split in lines:
        series = sorted(
            (p for p in points if p["variant"] == variant and p["split"] == split), key=lambda p: p["shard"]
        )
        xs = [_x(p["shard"]) for p in series]
        colour = COLOURS.get(variant, "#000000")
        label = f"{variant}, {SPLIT_NAMES[split]}" if curve == "heldout" else SPLIT_NAMES[split]
        axes.plot(
            xs,
            [p["exact_match"] for p in series],
            SPLIT_STYLES[split],
            color=colour,
            marker="o",
            markersize=3,
            label=label,
        )
        shaded = [(x, p["interval"]) for x, p in zip(xs, series) if p.get("interval")]
        if shaded:
            axes.fill_between(
                [x for x, _ in shaded],
                [i[0] for _, i in shaded],
                [i[1] for _, i in shaded],
                color=colour,
                alpha=0.12,
                linewidth=0,
            )
    base = result["baselines"]
    axes.axhline(base["majority"], color="#555555", linestyle=":", linewidth=1, label="majority label (baseline)")
    if base.get("imported_judge") is not None:
        axes.axhline(
            base["imported_judge"], color="#7570b3", linestyle="-.", linewidth=1, label="imported judge (baseline)"
        )
    axes.set_xscale("log")
    shards = sorted({p["shard"] for p in points})
    axes.set_xticks([_x(s) for s in shards], [str(s) for s in shards], fontsize=7)
    axes.minorticks_off()
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("critiques learned" if curve == "heldout" else "critiques learned before the shard was judged")
    axes.set_ylabel("exact match with the experts")
    axes.set_title("Held-out learning curve" if curve == "heldout" else "Prequential curve (cannot leak)", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()
