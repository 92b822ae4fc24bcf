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


def abstaining_result() -> dict:
    """Offline, "no memory" abstained on every item (exact match 0.0 in the table, 9 of 9 abstained); the learned
    judge abstained until it had labels enough, then agreed on every item."""
    points = []
    for shard in (0, 2, 5, 10, 20, 21):
        points.append(
            {
                "curve": "heldout",
                "variant": "none",
                "split": "test",
                "shard": shard,
                "n": 9,
                "exact_match": 0.0,
                "abstained": 9,
                "interval": [0.0, 0.0],
            }
        )
        learned_yet = shard >= 20
        points.append(
            {
                "curve": "heldout",
                "variant": "learned",
                "split": "test",
                "shard": shard,
                "n": 9,
                "exact_match": 1.0 if learned_yet else 0.0,
                "abstained": 0 if learned_yet else 9,
                "interval": [1.0, 1.0] if learned_yet else [0.0, 0.0],
            }
        )
    return {"points": points, "baselines": {"majority": 0.444, "imported_judge": 0.667}}


def test_a_variant_that_abstained_on_every_item_is_not_drawn_at_zero():
    words = texts(charts.learning_curve(abstaining_result(), "heldout"))

    assert "no memory" in words and "abstained on every item" in words
    assert "abstained at 0, 2, 5, 10" in words  # the learned judge's shards before it had labels enough
    # n is written beside the first and last point of each series drawn: only the learned judge's, at 20 and 21,
    # once, since the two would overprint each other
    assert words.count("n=9") == 1


def test_the_learned_variant_has_its_panel():
    assert "learned judge only" in texts(charts.learning_curve(abstaining_result(), "heldout"))


def test_shard_labels_too_close_on_the_log_axis_are_left_out():
    assert charts.tick_labels([0, 2, 5, 10, 20, 21]) == ["0", "2", "5", "10", "", "21"]  # "20" and "21" read "221"
    assert charts.tick_labels([0, 2, 5, 10, 20, 50, 100]) == ["0", "2", "5", "10", "20", "50", "100"]
    words = texts(charts.learning_curve(abstaining_result(), "heldout"))
    assert "21" in words and "20" not in words
