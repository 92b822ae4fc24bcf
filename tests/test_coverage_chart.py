"""The selective-judging chart drawn like the learning curves: the bound as a band, each point's n, the target and
the threshold named on their lines, the legend outside the plot; SVG drawn on the server, nothing fetched."""

from __future__ import annotations

import re

from agreement import selective
from judging import coverage_chart


def guarantee() -> dict:
    """A real selection on 40 reviewed verdicts: calibrated confidences come in a few values (a threshold takes
    every verdict of its value at once); the confident ones are right, the doubtful ones often wrong."""
    confidences = [0.95] * 24 + [0.8] * 8 + [0.6] * 8
    agreed = [True] * 24 + [True] * 6 + [False] * 2 + [True] * 3 + [False] * 5
    return selective.select_threshold(confidences, agreed, target=0.8, risk=0.05).as_dict()


def texts(svg: str) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg)]


def test_the_target_and_the_threshold_are_named_on_their_lines_and_the_ends_counted():
    chosen = guarantee()
    assert chosen["threshold"] is not None  # the data above lets one pass
    words = texts(coverage_chart.coverage_chart(chosen))

    assert "target 0.80" in words
    assert f"threshold {chosen['threshold']:.2f}: {chosen['coverage']:.0%} accepted" in words
    first = chosen["curve"][0][1]  # the most confident threshold accepts 24 of the 40
    assert f"n={round(first * 40)}" in words and "n=40" in words  # the first point, and the last: every verdict
    assert "lower bound (95% confidence)" in words and "observed agreement (point area: verdicts accepted)" in words
    assert "the bound's margin" in words


def test_the_bound_is_a_band_and_the_chart_is_self_contained():
    svg = coverage_chart.coverage_chart(guarantee())

    assert 'id="agreement-band"' in svg and 'id="coverage-legend"' in svg
    assert "<script" not in svg and not re.search(r'(href|src)="https?:', svg)


def test_the_legend_sits_below_the_plot_not_over_it():
    figure = coverage_chart.coverage_figure(guarantee())
    figure.draw_without_rendering()  # lays the figure out as saving it does
    (axes,) = figure.axes
    legend = figure.legends[0].get_window_extent()
    plot = axes.get_tightbbox()  # the plot with its tick labels and axis titles
    assert legend.y1 <= plot.y0  # under the plot, its axis title included
    assert legend.x0 >= 0 and legend.x1 <= figure.bbox.width  # and whole, at the page's width


def test_no_threshold_draws_no_threshold_line():
    few = selective.select_threshold([0.9, 0.8] * 10, [True, False] * 10, target=0.9, risk=0.05).as_dict()
    words = texts(coverage_chart.coverage_chart(few))
    assert few["threshold"] is None and not any(w.startswith("threshold") for w in words)
    assert "target 0.90" in words
