"""A verdict's confidence (agreement/calibration.py): signals, cross-fitting, calibration error."""

import numpy as np
import pytest

from agreement import calibration


def test_the_raw_score_is_the_mean_of_the_present_signals():
    assert calibration.raw_score({"neighbour_vote": 0.8, "order_consistent": 0.0, "learned_probability": None}) == 0.4
    assert calibration.raw_score({}) is None


def test_an_item_is_never_calibrated_by_a_fit_that_saw_it():
    """Every item at score 0.9 agrees except those of fold 0 (ids 0, 5, 10, ...); items at 0.1 disagree. A fit on
    the other folds sees only agreement at 0.9, so fold 0 gets 1.0; a fit that saw fold 0 would give less."""
    ids = list(range(100))
    scores = [0.9 if i % 2 == 0 else 0.1 for i in ids]
    agreed = [s == 0.9 and i % 5 != 0 for i, s in zip(ids, scores)]
    confidence = calibration.cross_fitted(ids, scores, agreed)
    fold0_high = [c for i, c, s in zip(ids, confidence, scores) if i % 5 == 0 and s == 0.9]
    assert len(fold0_high) == 10 and set(fold0_high) == {1.0}
    assert calibration.fit(scores, agreed)(np.array([0.9]))[0] < 1.0


def test_calibration_lowers_the_error_of_an_overconfident_score():
    rng = np.random.default_rng(0)
    scores = rng.random(2_000)
    agreed = rng.random(2_000) < scores**3  # the raw score overstates agreement
    before = calibration.expected_calibration_error(scores, agreed)
    after = calibration.expected_calibration_error(calibration.cross_fitted(range(2_000), scores, agreed), agreed)
    assert before > 0.2 and after < 0.05


def test_a_handful_of_items_or_one_outcome_gives_the_smoothed_rate():
    assert calibration.fit([0.5] * 3, [True] * 3)(np.array([0.1, 0.9])).tolist() == [0.8, 0.8]
    assert calibration.fit([0.2] * 20, [True] * 20)(np.array([0.5]))[0] == pytest.approx(21 / 22)


def test_expected_calibration_error_by_hand():
    # bin 9: confidence 0.95 twice, one agrees: gap 0.45; bin 1: confidence 0.15 twice, none agrees: gap 0.15
    assert calibration.expected_calibration_error([0.95, 0.95, 0.15, 0.15], [True, False, False, False]) == (
        pytest.approx((0.45 * 2 + 0.15 * 2) / 4)
    )
