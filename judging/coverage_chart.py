"""The selective-judging chart: coverage (share of verdicts accepted) against their agreement with the experts,
drawn on the server as SVG by matplotlib in the learning curves' manner (evaluation.charts; judging cannot import
evaluation): the bound as a band, each point sized by the verdicts it rests on, the target and the threshold
named on their lines, the legend below the plot."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib takes a second to import: a process that draws no chart does not pay for it
    from matplotlib.figure import Figure

OBSERVED, BOUND, TARGET, THRESHOLD = "#386cb0", "#1b9e77", "#b42318", "#555555"
WIDTH, HEIGHT = 6.4, 3.8  # inches: the run page's width, with room for the legend below the plot
LEGEND_BAND = 0.1  # the figure's bottom share kept for the legend


def point_area(n: int, largest: int) -> float:
    """A point's area (points squared) grows with the verdicts it rests on: 3 small, 300 large."""
    return 6 + 54 * n / max(1, largest)


def _on_line(axes: Any, text: str, xy: tuple[float, float], coords: tuple[str, str], colour: str, **where: Any) -> None:
    """Write a line's name on the line itself (no legend entry to look up)."""
    axes.annotate(text, xy=xy, xycoords=coords, textcoords="offset points", fontsize=7, color=colour, **where)


def coverage_figure(guarantee: dict[str, Any]) -> Figure:
    """The chart as a matplotlib figure: observed agreement against coverage, one point per candidate threshold
    (its area the verdicts accepted there, the first and last counted), the one-sided lower bound below it as a
    band, the target and the chosen threshold named on their lines, the legend under the plot."""
    import matplotlib

    matplotlib.use("svg")  # no display, no GUI toolkit: the SVG backend only
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph outlines
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    figure = Figure(figsize=(WIDTH, HEIGHT))
    axes = figure.subplots()
    curve = guarantee.get("curve") or []
    coverage = [point[1] for point in curve]
    observed = [point[2] for point in curve]
    lower = [point[3] for point in curve]
    counts = [round(share * guarantee["reviewed"]) for share in coverage]
    confidence = f"{1 - guarantee['risk']:.0%}"
    band = axes.fill_between(coverage, lower, observed, color=OBSERVED, alpha=0.15, linewidth=0)
    band.set_gid("agreement-band")
    axes.plot(coverage, lower, "--", color=BOUND, linewidth=1.2)
    axes.plot(coverage, observed, "-", color=OBSERVED, linewidth=1.4)
    largest = max(counts, default=1)
    axes.scatter(coverage, observed, s=[point_area(n, largest) for n in counts], color=OBSERVED, zorder=3, linewidths=0)
    ends = {0: (4, 6, "left"), len(curve) - 1: (-4, 6, "right")} if curve else {}  # written inwards, inside the plot
    for i, (dx, dy, side) in ends.items():
        _on_line(
            axes, f"n={counts[i]}", (coverage[i], observed[i]), ("data", "data"), OBSERVED, xytext=(dx, dy), ha=side
        )
    axes.axhline(guarantee["target"], color=TARGET, linestyle=":", linewidth=1)
    _on_line(
        axes,
        f"target {guarantee['target']:.2f}",
        (0, guarantee["target"]),
        ("axes fraction", "data"),
        TARGET,
        xytext=(3, 2),
        ha="left",
        va="bottom",
    )
    if guarantee.get("threshold") is not None:
        axes.axvline(guarantee["coverage"], color=THRESHOLD, linewidth=1)
        _on_line(
            axes,
            f"threshold {guarantee['threshold']:.2f}: {guarantee['coverage']:.0%} accepted",
            (guarantee["coverage"], 0),
            ("data", "axes fraction"),
            THRESHOLD,
            xytext=(-3, 4),
            ha="right",
            va="bottom",
            rotation=90,
        )
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("coverage (share of reviewed verdicts accepted)", fontsize=8)
    axes.set_ylabel("agreement with the experts", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, alpha=0.3)
    handles = [
        Line2D([], [], color=OBSERVED, marker="o", linewidth=1.4),
        Line2D([], [], color=BOUND, linestyle="--", linewidth=1.2),
        Patch(color=OBSERVED, alpha=0.15, linewidth=0),
    ]
    names = [
        "observed agreement (point area: verdicts accepted)",
        f"lower bound ({confidence} confidence)",
        "the bound's margin",
    ]
    legend = figure.legend(handles, names, loc="lower center", ncol=3, fontsize=7, frameon=False)
    legend.set_gid("coverage-legend")
    figure.tight_layout(rect=(0, LEGEND_BAND, 1, 1))
    return figure


def coverage_chart(guarantee: dict[str, Any]) -> str:
    """The chart (coverage_figure) as SVG text."""
    buffer = io.StringIO()
    coverage_figure(guarantee).savefig(buffer, format="svg")
    return buffer.getvalue()
