"""Bias-corrected rates (agreement/ppi.py): PPI++ against ppi-python, by hand, and on a simulated biased judge."""

import numpy as np
import pytest

from agreement import ppi

# ppi_py.ppi_mean_pointestimate and ppi_py.ppi_mean_ci(alpha=0.05) of ppi-python 0.2.3 on the data below. The
# package cannot be a test dependency: its wheel installs a top-level `tests` package that shadows ours.
PPI_PYTHON = {
    (40, 1_000, 0.2): (0.31858401955738547, 0.18936702438070288, 0.4478010147340681),
    (200, 5_000, 0.45): (0.31095942033075324, 0.24769089872419342, 0.37422794193731307),
    (25, 300, 0.05): (0.2919576018306636, 0.2423127506821786, 0.3416024529791486),
}


def test_the_closed_form_matches_ppi_python():
    rng = np.random.default_rng(3)
    for (n, big_n, noise), (point, low, high) in PPI_PYTHON.items():
        truth = rng.random(n + big_n) < 0.3
        judge = np.where(rng.random(n + big_n) < noise, ~truth, truth).astype(float)
        y, yhat, yhat_u = truth[:n].astype(float), judge[:n], judge[n:]
        estimate, error, power = ppi.ppi_mean(y, yhat, yhat_u)
        assert estimate == pytest.approx(point, abs=1e-9)
        z = 1.959963984540054
        assert (estimate - z * error, estimate + z * error) == (
            pytest.approx(low, abs=1e-9),
            pytest.approx(high, abs=1e-9),
        )
        assert 0 <= power <= 1


def test_a_hand_computed_case():
    """Experts [1,1,0,0], judge on them [1,0,0,0], judge on 4 unreviewed [1,1,1,0].
    cov = mean((y-.5)(yhat-.25)) = (.5*.75 + .5*-.25 - .5*-.25 - .5*-.25) / 4 = .125;
    var of all 8 judge values (3 of 8 ones... here 4 of 8), ddof 1: 8/7 * .25 = 2/7;
    lambda = .125 / ((1 + 4/4) * 2/7) = 0.21875; estimate = .21875 * .75 + mean(y - .21875 yhat) = .5 + .21875 * .5."""
    estimate, error, power = ppi.ppi_mean([1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0])
    assert power == pytest.approx(0.21875)
    assert estimate == pytest.approx(0.5 + 0.21875 * 0.5) == pytest.approx(0.609375)  # ppi-python: 0.609375
    residual = np.array([1, 1, 0, 0]) - 0.21875 * np.array([1, 0, 0, 0])
    assert error == pytest.approx(np.sqrt((0.21875**2 * 0.1875) / 4 + residual.var() / 4))


def test_the_corrected_interval_covers_the_truth_for_a_judge_with_a_known_bias():
    """A judge that calls 30% of true fails "pass" inflates the pass rate; over 200 simulated runs, the
    corrected 95% interval covers the true rate in most of them, the raw rate never, and it is narrower than
    the experts-only interval."""
    rng = np.random.default_rng(7)
    covered = raw_covered = narrower = 0
    for _ in range(200):
        truth = np.where(rng.random(2_100) < 0.7, "pass", "fail")
        flipped = (truth == "fail") & (rng.random(2_100) < 0.3)
        judge = np.where(flipped, "pass", truth)
        (rate,) = [
            r for r in ppi.corrected_rates(["pass", "fail"], truth[:100], judge[:100], judge[100:]) if r.label == "pass"
        ]
        true_rate = float(np.mean(truth[100:] == "pass"))
        covered += rate.corrected_interval[0] <= true_rate <= rate.corrected_interval[1]
        raw_covered += abs(rate.judge_rate - true_rate) < 0.03
        width = rate.corrected_interval[1] - rate.corrected_interval[0]
        narrower += width < rate.experts_interval[1] - rate.experts_interval[0]
    assert covered >= 180  # about 95% expected
    assert raw_covered == 0  # the raw rate is off by about 0.3 * 0.3 = 9 points
    assert narrower >= 190


def test_a_judge_no_better_than_chance_gets_no_weight():
    rng = np.random.default_rng(1)
    experts = np.where(rng.random(300) < 0.5, "pass", "fail")
    judge = np.where(rng.random(1_300) < 0.5, "pass", "fail")
    rate = ppi.corrected_rates(["pass", "fail"], experts, judge[:300], judge[300:])[0]
    assert rate.power < 0.15  # the covariance is about zero: lambda goes to about 0
    assert rate.effective_labels == pytest.approx(300, rel=0.05)


def test_too_few_labels_say_why():
    assert "Only 3 expert labels" in ppi.why_not(3, 100)
    assert "Only 1 expert label on the audit slice has a verdict" in ppi.why_not(1, 100)
    assert ppi.why_not(50, 0) == "No unreviewed verdicts to correct."
    assert ppi.why_not(50, 100) == ""
    with pytest.raises(ValueError):
        ppi.ppi_mean([1], [1], [1, 0])
