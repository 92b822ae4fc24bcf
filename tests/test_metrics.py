"""Agreement figures (agreement/metrics.py) against values computed by hand."""

import pytest

from agreement import metrics


def test_a_skewed_set_has_high_raw_agreement_and_kappa_near_zero():
    """18 of 20 experts say pass; the judge says pass 19 times, and its one fail is on a pass item."""
    experts = ["pass"] * 18 + ["fail"] * 2
    judge = ["fail"] + ["pass"] * 19
    f = metrics.agreement(experts, judge, "pass_fail", ["pass", "fail"])
    # by hand: po = 17/20 = 0.85; pe = 0.9 * 0.95 + 0.1 * 0.05 = 0.86; kappa = (0.85 - 0.86) / 0.14
    assert f.exact == pytest.approx(0.85)
    assert f.kappa == pytest.approx(-0.01 / 0.14)
    assert f.headline_name == "kappa" and f.headline == f.kappa
    assert f.reading == "no better than chance"  # kappa -0.07: within 0.1 of zero
    assert (f.baseline_label, f.baseline_exact) == ("pass", pytest.approx(0.9))  # the baseline beats the judge
    assert f.confusion == [[17, 1], [2, 0]]  # rows experts (pass, fail), columns judge
    assert f.n == 20 and f.abstained == 0


def test_kappa_on_a_balanced_set():
    experts = ["pass"] * 6 + ["fail"] * 4
    judge = ["pass"] * 5 + ["fail"] * 4 + ["pass"]
    f = metrics.agreement(experts, judge, "pass_fail", ["pass", "fail"])
    # po = 0.8; judge 6 pass / 4 fail, experts the same: pe = 0.36 + 0.16 = 0.52; kappa = 0.28 / 0.48
    assert f.exact == pytest.approx(0.8)
    assert f.kappa == pytest.approx(0.28 / 0.48)
    assert f.reading == "good enough to watch trends"
    assert f.weighted_kappa is None and f.ccc is None and f.mae is None


def test_numeric_scale_weighted_kappa_concordance_and_mean_absolute_error():
    f = metrics.agreement(["1", "2", "3"], ["1", "3", "3"], "numeric", ["1", "2", "3"])
    # quadratic weights (i-j)^2/4: observed 1/12, expected 5/12, so 1 - 1/5; CCC 2*(2/3) / (2/3 + 8/9 + 1/9)
    assert f.weighted_kappa == pytest.approx(0.8)
    assert f.headline_name == "quadratic-weighted kappa" and f.headline == pytest.approx(0.8)
    assert f.reading == "too few samples to judge (3 of 10 needed)"  # 0.8 on 3 items is not graded
    assert metrics.reading(f.headline) == "good enough to gate a release"
    assert f.ccc == pytest.approx(0.8)
    assert f.mae == pytest.approx(1 / 3)


def test_ordered_categories_also_get_weighted_kappa():
    levels = ["Bad", "Acceptable", "Excellent"]
    f = metrics.agreement(["Bad", "Acceptable", "Excellent"], ["Bad", "Excellent", "Excellent"], "categorical", levels)
    assert f.weighted_kappa == pytest.approx(0.8)  # the numeric case above, in words
    assert f.headline_name == "kappa"
    pairwise = metrics.agreement(["A", "B"], ["A", "B"], "pairwise", ["A", "B"])
    assert pairwise.weighted_kappa is None and pairwise.kappa == pytest.approx(1.0)


def test_an_abstention_is_a_miss_of_its_own():
    f = metrics.agreement(["pass", "fail", "pass", "fail"], ["pass", "fail", None, ""], "pass_fail", ["pass", "fail"])
    assert f.exact == pytest.approx(0.5)
    assert f.abstained == 2
    assert f.labels == ["pass", "fail", "abstained"]
    assert f.confusion == [[1, 0, 1], [0, 1, 1], [0, 0, 0]]


def test_the_interval_is_seeded_and_brackets_the_figure():
    experts = ["pass"] * 30 + ["fail"] * 30
    judge = ["pass"] * 25 + ["fail"] * 5 + ["fail"] * 24 + ["pass"] * 6
    first = metrics.agreement(experts, judge, "pass_fail", ["pass", "fail"])
    again = metrics.agreement(experts, judge, "pass_fail", ["pass", "fail"])
    low, high = first.interval
    assert low < first.kappa < high and 0 < high - low < 0.6
    assert first.interval == again.interval  # seeded: the page shows the same interval on every load
    assert metrics.agreement(["pass"], ["pass"], "pass_fail", ["pass", "fail"]).interval is None


def test_undefined_kappa_and_no_pairs():
    f = metrics.agreement(["pass"] * 5, ["pass"] * 5, "pass_fail", ["pass", "fail"])
    assert f.exact == 1.0 and f.kappa is None and f.interval is None  # one label on both sides: undefined
    assert f.reading == "undefined"
    assert metrics.agreement([], [], "pass_fail", ["pass", "fail"]) is None
    with pytest.raises(ValueError):
        metrics.agreement(["pass"], [], "pass_fail", ["pass", "fail"])


@pytest.mark.parametrize(
    "kappa, text",
    [
        (-0.2, "worse than chance"),
        (0.05, "no better than chance"),
        (0.39, "weak: exploratory only"),
        (0.4, "good enough to watch trends"),
        (0.69, "good enough to watch trends"),
        (0.7, "good enough to gate a release"),
    ],
)
def test_readings(kappa, text):
    assert metrics.reading(kappa) == text


def test_below_the_minimum_a_figure_is_not_graded():
    """Kappa 1.00 on 5 items read "good enough to gate a release"; 0.00 on 1 item "no better than chance"."""
    perfect = metrics.agreement(
        ["pass", "fail", "pass", "fail", "pass"],
        ["pass", "fail", "pass", "fail", "pass"],
        "pass_fail",
        ["pass", "fail"],
    )
    assert perfect.kappa == pytest.approx(1.0)
    assert perfect.reading == "too few samples to judge (5 of 10 needed)"
    assert metrics.reading(0.0, 1) == "too few samples to judge (1 of 10 needed)"
    assert metrics.reading(0.0, metrics.MIN_ITEMS) == "no better than chance"
    assert metrics.reading(None, 3) == "undefined"


def test_a_collapsed_bootstrap_interval_is_not_printed_as_certain():
    """When all 30 pairs agree every resample gives kappa 1: the interval 1.00 to 1.00 says nothing is uncertain.
    The words say so, with the exact (Clopper–Pearson) interval of the agreement share, which does not collapse."""
    experts = ["pass"] * 15 + ["fail"] * 15
    f = metrics.agreement(experts, experts, "pass_fail", ["pass", "fail"])
    assert f.interval == (1.0, 1.0) and metrics.collapsed(f.interval)
    assert f.interval_words == (
        "all 30 agree, so the bootstrap interval collapses and cannot bound it; "
        "exact agreement 30 of 30, 95% interval 88% to 100%"
    )
    # (0.025)^(1/30) = 0.8843: the one-sided 97.5% bound of 30 successes in 30
    assert metrics.exact_interval(30, 30) == (pytest.approx(0.025 ** (1 / 30)), 1.0)
    low, high = metrics.exact_interval(8, 10)
    assert low == pytest.approx(0.4439, abs=1e-4) and high == pytest.approx(0.9748, abs=1e-4)
    assert metrics.exact_interval(0, 10)[0] == 0.0
    spread = metrics.agreement(
        ["pass"] * 30 + ["fail"] * 30,
        ["pass"] * 25 + ["fail"] * 5 + ["fail"] * 24 + ["pass"] * 6,
        "pass_fail",
        ["pass", "fail"],
    )
    assert not metrics.collapsed(spread.interval)
    assert spread.interval_words == f"95% interval {spread.interval[0]:.2f} to {spread.interval[1]:.2f}"
    assert metrics.interval_words(None, 5) == ""


def test_per_label_recall_and_precision_show_a_missed_rare_failure():
    """Exact match 85% and a fine-looking baseline hide that the judge found none of the two failures."""
    experts = ["pass"] * 18 + ["fail"] * 2
    judge = ["fail"] + ["pass"] * 19
    f = metrics.agreement(experts, judge, "pass_fail", ["pass", "fail"])
    by_label = {row.label: row for row in f.per_label}
    # pass: 17 of the experts' 18 found (recall 17/18); 17 of the judge's 19 right (precision 17/19)
    assert (by_label["pass"].experts, by_label["pass"].judge) == (18, 19)
    assert by_label["pass"].recall == pytest.approx(17 / 18)
    assert by_label["pass"].precision == pytest.approx(17 / 19)
    # fail: none of the 2 found; the judge's one fail was wrong
    assert by_label["fail"].recall == 0.0 and by_label["fail"].precision == 0.0
    assert f.as_dict()["per_label"][1] == {"label": "fail", "experts": 2, "judge": 1, "recall": 0.0, "precision": 0.0}


def test_per_label_leaves_undefined_rates_empty_and_skips_abstentions():
    f = metrics.agreement(["pass", "pass"], ["pass", None], "pass_fail", ["pass", "fail"])
    by_label = {row.label: row for row in f.per_label}
    assert set(by_label) == {"pass", "fail"}
    assert by_label["pass"].recall == pytest.approx(0.5) and by_label["pass"].precision == 1.0
    assert by_label["fail"].recall is None and by_label["fail"].precision is None  # no item on either side
