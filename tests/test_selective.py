"""Selective judging (agreement/selective.py): Clopper-Pearson bounds in a fixed sequence, against hand values."""

import pytest

from agreement import selective


def test_the_bound_of_an_all_agreeing_set_is_the_risk_to_the_power_one_over_n():
    # With k = n, P(X >= n) = p^n = risk gives the lower bound risk ** (1 / n).
    assert selective.clopper_pearson_lower(20, 20, 0.1) == pytest.approx(0.1 ** (1 / 20))
    assert selective.clopper_pearson_lower(0, 20, 0.1) == 0.0
    # k = n - 1: the bound p solves n p^(n-1) (1-p) + p^n = risk; check the equation holds at it.
    p = selective.clopper_pearson_lower(9, 10, 0.1)
    assert 10 * p**9 * (1 - p) + p**10 == pytest.approx(0.1)


def test_the_lowest_threshold_that_passes_in_sequence_is_chosen():
    """20 verdicts at 0.9 all agree (bound 0.1^(1/20) = 0.891), 10 more at 0.6 all agree (30 of 30: 0.1^(1/30)
    = 0.926), 10 at 0.3 all disagree (30 of 40: 75% observed, below the 85% target)."""
    confidences = [0.9] * 20 + [0.6] * 10 + [0.3] * 10
    agreed = [True] * 30 + [False] * 10
    s = selective.select_threshold(confidences, agreed, target=0.85, risk=0.1)
    assert s.threshold == 0.6
    assert s.coverage == pytest.approx(0.75)
    assert s.agreement == 1.0 and s.lower == pytest.approx(0.1 ** (1 / 30))
    assert [round(point[3], 4) for point in s.curve[:2]] == [round(0.1 ** (1 / 20), 4), round(0.1 ** (1 / 30), 4)]
    assert s.curve[2][2] == pytest.approx(0.75) and s.curve[2][3] < 0.85
    assert "0.60 or more (75% of the 40 reviewed)" in s.sentence and "90% confidence" in s.sentence


def test_a_failure_ends_the_sequence_even_if_a_lower_threshold_would_pass():
    """The 5 most confident agree 3 times (bound far below 80%): the sequence stops there, although all 105
    verdicts together agree 103 times (a bound above 95%)."""
    confidences = [0.9] * 5 + [0.5] * 100
    agreed = [True, True, True, False, False] + [True] * 100
    assert selective.clopper_pearson_lower(103, 105, 0.1) > 0.95
    s = selective.select_threshold(confidences, agreed, target=0.8, risk=0.1)
    assert s.threshold is None and s.coverage == 0.0
    assert s.sentence.startswith("No guarantee")


def test_too_few_reviews_give_a_sentence_not_a_number():
    s = selective.select_threshold([0.9, 0.8], [True, True], target=0.9, risk=0.1)
    assert s.threshold is None and s.agreement is None and s.lower is None
    assert "only 2 reviewed verdicts" in s.sentence and "8 more reviews" in s.sentence


def test_it_says_how_many_more_reviews_could_help_when_the_judge_is_good_enough():
    """All 12 agree: 0.1^(1/12) = 0.825 < 0.9; at 100% agreement the bound reaches 0.9 at n = 22 (0.1^(1/22)
    = 0.9006, while 0.1^(1/21) = 0.8962), so 10 more."""
    s = selective.select_threshold([0.7] * 12, [True] * 12, target=0.9, risk=0.1)
    assert s.threshold is None and s.more_reviews == 10
    assert "About 10 more reviews" in s.sentence


def test_a_judge_below_the_target_everywhere_is_told_reviews_will_not_help():
    s = selective.select_threshold([0.9] * 10 + [0.1] * 10, [True] * 5 + [False] * 15, target=0.9, risk=0.1)
    assert s.threshold is None and s.more_reviews is None
    assert "will not help until the judge improves" in s.sentence


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="pair up"):
        selective.select_threshold([0.5], [], 0.9, 0.1)
    with pytest.raises(ValueError, match="strictly between"):
        selective.select_threshold([0.5], [True], 1.0, 0.1)
