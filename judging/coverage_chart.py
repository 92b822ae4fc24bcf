"""The selective-judging chart: coverage (share of verdicts accepted) against their agreement with the experts,
drawn on the server as SVG by matplotlib like evaluation.charts (judging cannot import evaluation)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("svg")  # no display, no GUI toolkit: the SVG backend only
matplotlib.rcParams["svg.fonttype"] = "none"  # text as <text>, not glyph outlines

from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)


def coverage_chart(guarantee: dict[str, Any]) -> str:
    """Observed agreement and its lower bound against coverage, one point per candidate threshold, the target as a
    horizontal line and the chosen threshold marked. Returns SVG text."""
    figure = Figure(figsize=(6.4, 3.4))
    axes = figure.subplots()
    curve = guarantee.get("curve") or []
    coverage = [point[1] for point in curve]
    axes.plot(coverage, [point[2] for point in curve], "-o", color="#386cb0", markersize=3, label="observed agreement")
    axes.plot(
        coverage,
        [point[3] for point in curve],
        "--",
        color="#1b9e77",
        label=f"lower bound ({1 - guarantee['risk']:.0%} confidence)",
    )
    axes.axhline(guarantee["target"], color="#b42318", linestyle=":", linewidth=1, label="target")
    if guarantee.get("threshold") is not None:
        axes.axvline(
            guarantee["coverage"], color="#555555", linewidth=1, label=f"threshold {guarantee['threshold']:.2f}"
        )
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("coverage (share of reviewed verdicts accepted)")
    axes.set_ylabel("agreement with the experts")
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue()
