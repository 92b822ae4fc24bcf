"""Agreement between experts (reviews.team and the Team page) against values computed by hand."""

from __future__ import annotations

import random

import pytest

from reviews import team
from reviews.models import Decision, Membership, Role
from reviews.projects import create_project
from tests.conftest import add_feedback, add_sample, make_user


@pytest.fixture
def trio(personas):
    """A (ana), B (ben), C (cy) review s1..s6 of a pass/fail project:

    A: P P F F P P      B: P F F F P -      C: - - - - - F
    """
    users = {name: make_user(name) for name in ("ana", "ben", "cy")}
    for user in users.values():
        Membership.objects.create(project=personas.project, user=user, role=Role.REVIEWER)
    samples = {n: add_sample(personas.project, f"s{n}") for n in range(1, 7)}
    labels = {"ana": "ppffpp", "ben": "pfffp", "cy": "     f"}
    for name, row in labels.items():
        for n, code in enumerate(row, start=1):
            if code != " ":
                add_feedback(samples[n], users[name], {"p": "pass", "f": "fail"}[code], "Because.")
    return samples, users


def test_pairwise_kappa_alpha_and_final_label_match_hand_computation(personas, trio):
    samples, _ = trio
    Decision.objects.create(project=personas.project, sample=samples[2], label="fail", reason="Curt.")
    result = team.team_agreement(personas.project)
    # Krippendorff's alpha, nominal, over the six samples with two labels: o_pp = o_ff = 4, o_pf = o_fp = 2,
    # n = 12, n_p = n_f = 6: alpha = 1 - 11 * 4 / 72 = 7/18.
    assert result.level == "nominal" and result.overlapping == 6
    assert result.alpha == pytest.approx(7 / 18)
    assert result.alpha_interval[0] <= result.alpha <= result.alpha_interval[1]
    pairs = {(p.first, p.second): p for p in result.pairs}
    assert set(pairs) == {("ana", "ben"), ("ana", "cy")}  # ben and cy share no sample
    # ana-ben on s1..s5: p_o = 4/5; ana has 3 pass, ben 2: p_e = 3/5*2/5 + 2/5*3/5 = 0.48; kappa = 0.32/0.52.
    ab = pairs[("ana", "ben")].figures
    assert (ab.n, ab.exact) == (5, pytest.approx(0.8))
    assert ab.kappa == pytest.approx(8 / 13) and ab.headline_name == "kappa"
    assert ab.interval is not None and ab.interval[0] <= 8 / 13 <= ab.interval[1]
    assert pairs[("ana", "cy")].n == 1
    reviewers = {r.username: r for r in result.reviewers}
    # Final labels: s1 pass, s3 fail, s4 fail, s5 pass (all agreed), s2 fail (decided); s6 has none.
    assert (reviewers["ana"].final_agree, reviewers["ana"].final_n) == (4, 5)
    assert (reviewers["ben"].final_agree, reviewers["ben"].final_n) == (5, 5)
    assert reviewers["cy"].final_share is None and reviewers["cy"].count == 1
    assert reviewers["ana"].count == 6


def test_numeric_scales_use_interval_alpha_and_ccc(personas):
    project = create_project(
        personas.owner, name="Scores", criterion="c", label_kind="numeric", scale_min=1, scale_max=5
    )
    a, b = make_user("ana"), make_user("ben")
    for n, (x, y) in enumerate(zip("12345", "12344")):
        sample = add_sample(project, f"n{n}", judge_value="3")
        add_feedback(sample, a, x, "Because.")
        add_feedback(sample, b, y, "Because.")
    result = team.team_agreement(project)
    # Interval alpha: D_o = 2/10, D_e = 338/90 (values 1 1 2 2 3 3 4 4 5 4): alpha = 1 - 18/338 = 160/169.
    assert result.level == "interval" and result.alpha == pytest.approx(160 / 169)
    # Lin's CCC: means 3 and 2.8, variances 2 and 1.36, covariance 1.6: 3.2 / 3.4 = 16/17.
    (pair,) = result.pairs
    assert pair.figures.ccc == pytest.approx(16 / 17)
    assert pair.figures.headline_name == "quadratic-weighted kappa" and pair.figures.headline is not None


def test_undefined_figures_say_so(personas):
    sample = add_sample(personas.project, "same")
    add_feedback(sample, personas.reviewer, "pass", "")
    add_feedback(sample, personas.owner, "pass", "")
    result = team.team_agreement(personas.project)
    assert result.alpha is None and result.overlapping == 1  # one value only: nothing to expect
    assert team.team_agreement(personas.other).overlapping == 0


def test_team_page_and_overview_show_the_experts_agreement(client, personas, trio):
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/team/").content.decode()
    assert "<span data-alpha>0.39</span>" in page
    assert 'data-pair="ana+ben"' in page and 'data-reviewer="cy"' in page
    overview = client.get(f"/p/{personas.project.slug}/").content.decode()
    assert 'data-headline="experts">0.39<' in overview
    client.force_login(personas.other_owner)
    assert client.get(f"/p/{personas.project.slug}/team/").status_code == 404


def test_too_few_shared_samples_are_not_graded(client, personas, trio):
    """Alpha over 6 samples reviewed twice and a pair's kappa on 1 shared sample read "no better than chance" and the
    like (a walk-through); below metrics.MIN_ITEMS the figure stands with "too few samples to judge" instead."""
    client.force_login(personas.viewer)
    page = client.get(f"/p/{personas.project.slug}/team/").content.decode()
    overview = client.get(f"/p/{personas.project.slug}/").content.decode()

    assert '<em data-reading="alpha">too few samples to judge (6 of 10 needed)</em>' in page
    cy = page.split('data-pair="ana+cy"')[1].split("</tr>")[0]
    assert "<td>1</td>" in cy and "data-too-few>— too few samples to judge (1 of 10 needed)<" in cy
    assert 'data-reading="experts">too few samples to judge (6 of 10 needed)<' in overview
    for body in (page, overview):
        assert "than chance" not in body and "exploratory" not in body


def test_the_vectorised_kappa_interval_equals_the_bootstrap_one_resample_at_a_time():
    """metrics.kappa_interval draws every resample at once (the Team page: 15.9 s → 0.55 s for 10 pairs at 2,000
    samples); with the same seed it gives metrics.bootstrap's interval over sklearn's kappa, to rounding."""
    import numpy as np

    from agreement import metrics

    rng = np.random.default_rng(5)
    for k, quadratic in ((2, False), (3, False), (5, True)):
        first = rng.integers(0, k, 137)
        second = np.where(rng.random(137) < 0.7, first, rng.integers(0, k, 137))
        codes = list(range(k))
        kappa = metrics._weighted_kappa if quadratic else metrics._kappa
        canonical = np.lexsort((second, first))  # kappa_interval resamples the pairs in this order
        expected = metrics.bootstrap(
            first[canonical], second[canonical], lambda t, p, kappa=kappa, codes=codes: kappa(t, p, codes), 300, 0
        )
        assert metrics.kappa_interval(first, second, k, quadratic, 300, 0) == pytest.approx(expected, abs=1e-12)
        shuffled = rng.permutation(len(first))  # the same pairs listed in another order: the same interval
        assert metrics.kappa_interval(first[shuffled], second[shuffled], k, quadratic, 300, 0) == pytest.approx(
            expected, abs=1e-12
        )
    assert metrics.kappa_interval(np.zeros(5, int), np.zeros(5, int), 2, False) is None  # undefined throughout


def test_the_imported_judge_shows_one_interval_on_the_overview_and_the_team_page(personas):
    """The same pairs give the same interval on both pages (they listed them in different orders and resampled a
    different number of times: -0.50 to 0.47 on one, -0.52 to 0.48 on the other)."""
    from judging import run_agreement

    rng = random.Random(3)
    for i in range(16):
        verdict = rng.choice(["pass", "fail"])
        sample = add_sample(personas.project, f"j{i}", judge_value=verdict)
        other = "fail" if verdict == "pass" else "pass"
        label = verdict if rng.random() < 0.6 else other
        add_feedback(sample, personas.reviewer, label, "" if label == verdict else "The judge missed the point.")
    overview, _ = run_agreement.imported_judge_agreement(personas.project)
    (group,) = team.agreement_with_judge_by_visibility(personas.project)
    assert group.figures.n == overview.n == 16
    assert group.figures.kappa == pytest.approx(overview.kappa)
    assert overview.interval is not None and group.figures.interval == pytest.approx(overview.interval)
