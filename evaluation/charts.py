"""Learning-curve charts, drawn on the server as SVG by matplotlib (installed with pip; nothing is fetched)."""

from __future__ import annotations

import io
import math
from typing import Any

COLOURS = {"none": "#888888", "semantic": "#d95f02", "episodic": "#1b9e77", "both": "#386cb0", "learned": "#e7298a"}
SPLIT_STYLES = {"test": "-", "seen": "--", "next": "-"}
SPLIT_NAMES = {"test": "held-out test", "seen": "seen (learned) items", "next": "next shard, judged before learned"}


def _x(shard: int) -> float:
    # A symlog axis would hide shard 0; shards grow geometrically, so plot them against log(1 + shard).
    return shard + 1


VARIANT_NAMES = {
    "none": "no memory",
    "semantic": "principles only",
    "episodic": "examples only",
    "both": "principles + examples",
    "learned": "learned judge only",
}
# Two shard labels closer than this on the log axis (in decades: about 0.2 inch at a panel's width) overlap, as 20
# and 21 did ("221"): the earlier one's label is left out, its tick kept.
MIN_LABEL_GAP = 0.12
PANEL_WIDTH, HEIGHT = 2.7, 3.3  # inches per panel, and the figure's height with its legend below


def point_area(n: int, largest: int) -> float:
    """A point's area (points squared) grows with the items it rests on: 3 items small, 300 large."""
    return 6 + 54 * n / max(1, largest)


def measured(point: dict[str, Any]) -> bool:
    """A point with an agreement to plot: not one where every item abstained (its exact match 0 is no figure)."""
    return point["exact_match"] is not None and point.get("abstained", 0) < point["n"]


def tick_labels(shards: list[int]) -> list[str]:
    """The shards' tick labels on the log axis, leaving out any too close to the next label kept (from the right,
    so the last shard, all critiques learned, is always labelled)."""
    labels, kept = [], math.inf
    for shard in reversed(shards):
        position = math.log10(_x(shard))
        labels.append(str(shard) if kept - position >= MIN_LABEL_GAP else "")
        kept = position if labels[-1] else kept
    return labels[::-1]


def _series(points: list[dict[str, Any]], variant: str, split: str) -> list[dict[str, Any]]:
    return sorted((p for p in points if p["variant"] == variant and p["split"] == split), key=lambda p: p["shard"])


def _baseline(axes: Any, value: float, text: str, colour: str, style: str) -> None:
    """A horizontal baseline with its name written on it, at the right end (no legend entry to look up)."""
    axes.axhline(value, color=colour, linestyle=style, linewidth=1)
    axes.annotate(
        text,
        xy=(1, value),
        xycoords=("axes fraction", "data"),
        xytext=(-2, 2),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=6.5,
        color=colour,
    )


def learning_curve(result: dict[str, Any], curve: str) -> str:
    """The chart of `curve` ("heldout" or "prequential") as small multiples: one panel per variant, sharing the
    axes, exact match against critiques learned with its 95% interval as a band, each point sized by the number
    of items it rests on (and that number written beside the last one), the baselines named on their lines, the
    legend below the panels. Returns SVG text."""
    import matplotlib  # here: a second to import, and most processes draw no chart

    matplotlib.use("svg")  # no display, no GUI toolkit: the SVG backend only
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph outlines: a tenth of the size
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    everything = [p for p in result["points"] if p["curve"] == curve]
    points = [p for p in everything if measured(p)]
    variants = [v for v in VARIANT_NAMES if any(p["variant"] == v for p in everything)] or ["both"]
    figure = Figure(figsize=(max(4.2, PANEL_WIDTH * len(variants) + 0.6), HEIGHT))
    panels = figure.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    shards = sorted({p["shard"] for p in everything})
    largest = max((p["n"] for p in points), default=1) or 1
    handles: dict[str, Any] = {}
    base = result["baselines"]
    for axes, variant in zip(panels, variants):
        colour = COLOURS.get(variant, "#000000")
        for split in SPLIT_NAMES:
            series = _series(points, variant, split)
            if not series:
                continue
            xs = [_x(p["shard"]) for p in series]
            axes.plot(xs, [p["exact_match"] for p in series], SPLIT_STYLES[split], color=colour, linewidth=1.4)
            sizes = [point_area(p["n"], largest) for p in series]
            axes.scatter(xs, [p["exact_match"] for p in series], s=sizes, color=colour, zorder=3, linewidths=0)
            handles.setdefault(SPLIT_NAMES[split], Line2D([], [], color="#333333", linestyle=SPLIT_STYLES[split]))
            shaded = [(x, p["interval"]) for x, p in zip(xs, series) if p.get("interval")]
            if shaded:
                axes.fill_between(
                    [x for x, _ in shaded],
                    [i[0] for _, i in shaded],
                    [i[1] for _, i in shaded],
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
            if split != "seen":  # seen items are the same learned ones: one count per panel is enough
                # the first and last points' counts, the first only when it does not overprint the last
                counted = {xs[-1]: series[-1]}
                if math.log10(xs[-1]) - math.log10(xs[0]) >= MIN_LABEL_GAP:
                    counted[xs[0]] = series[0]
                for x, point in counted.items():
                    axes.annotate(
                        f"n={point['n']}",
                        xy=(x, point["exact_match"]),
                        xytext=(0, -11),
                        textcoords="offset points",
                        ha="center",
                        fontsize=6.5,
                        color=colour,
                    )
        abstained = sorted({p["shard"] for p in everything if p["variant"] == variant and not measured(p)})
        if abstained:  # nothing plotted there: saying so, rather than a line at 0
            every = not any(p["variant"] == variant for p in points)
            axes.text(
                0.5,
                0.25 if every else 0.04,
                "abstained on every item" if every else f"abstained at {', '.join(map(str, abstained))}",
                transform=axes.transAxes,
                ha="center",
                va="center" if every else "bottom",
                fontsize=7,
                color=colour,
            )
        _baseline(axes, base["majority"], "majority label", "#555555", ":")
        if base.get("imported_judge") is not None:
            _baseline(axes, base["imported_judge"], "imported judge", "#7570b3", "-.")
        axes.set_title(VARIANT_NAMES.get(variant, variant), fontsize=9, color=colour)
        axes.set_xscale("log")
        axes.set_xticks([_x(s) for s in shards], tick_labels(shards), fontsize=7)
        axes.minorticks_off()
        axes.set_ylim(-0.02, 1.02)
        axes.tick_params(axis="y", labelsize=7)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("exact match with the experts", fontsize=8)
    figure.supxlabel(
        "critiques learned" if curve == "heldout" else "critiques learned before the shard was judged",
        fontsize=8,
        y=0.1,
    )
    figure.suptitle("Held-out learning curve" if curve == "heldout" else "Prequential curve (cannot leak)", fontsize=10)
    handles["point area: items measured (n)"] = Line2D([], [], color="#333333", marker="o", linestyle="")
    figure.legend(
        list(handles.values()), list(handles), loc="lower center", ncol=len(handles), fontsize=7, frameon=False
    )
    figure.tight_layout(rect=(0, 0.13, 1, 1))
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()
