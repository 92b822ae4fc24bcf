"""Learning-curve charts people can read: one panel per variant, intervals as bands, each point's n shown, the
baselines named on their lines, the legend outside the panels; SVG drawn on the server, nothing fetched."""

from __future__ import annotations

import re

from evaluation import charts


def result(variants=("none", "both")) -> dict:
    points = []
    for variant in variants:
        for split in ("test", "seen"):
            for shard, n in ((0, 3), (5, 40), (20, 300)):
                exact = 0.5 + shard / 100
                points.append(
                    {
                        "curve": "heldout",
                        "variant": variant,
                        "split": split,
                        "shard": shard,
                        "n": n,
                        "exact_match": exact,
                        "interval": [exact - 0.1, exact + 0.1],
                    }
                )
    return {"points": points, "baselines": {"majority": 0.6, "imported_judge": 0.55}}


def texts(svg: str) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg)]


def test_one_panel_per_variant_with_its_name():
    svg = charts.learning_curve(result(("none", "semantic", "both")), "heldout")

    words = texts(svg)
    assert {"no memory", "principles only", "principles + examples"} <= set(words)
    assert "examples only" not in words  # no panel for a variant the evaluation did not run


def test_each_panel_shows_how_many_items_its_points_rest_on_and_names_the_baselines():
    words = texts(charts.learning_curve(result(), "heldout"))

    assert words.count("n=3") == 2 and words.count("n=300") == 2  # first and last point of each panel
    assert words.count("majority label") == 2 and words.count("imported judge") == 2
    assert "point area: items measured (n)" in words and "held-out test" in words


def test_points_resting_on_few_items_are_drawn_smaller():
    areas = [charts.point_area(n, largest=300) for n in (3, 40, 300)]

    assert areas == sorted(areas) and areas[2] > 5 * areas[0]


def test_the_chart_is_self_contained():
    svg = charts.learning_curve(result(), "prequential")  # no prequential points: an empty, labelled chart

    assert "<script" not in svg and not re.search(r'(href|src)="https?:', svg)  # nothing fetched
    assert "Prequential curve (cannot leak)" in texts(svg)
