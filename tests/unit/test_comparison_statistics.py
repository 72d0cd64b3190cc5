"""The statistics every study verdict rests on, pinned against values computed by hand or printed in tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pss.evaluate.statistics import (arm_accuracy, holm_adjust, minimum_detectable_difference, paired_difference,
                                     student_t_cdf, student_t_quantile, tost_p_value, verdict, welch_satterthwaite_df)


@pytest.mark.parametrize("p, df, expected", [
    (0.975, 4, 2.776445), (0.975, 8, 2.306004), (0.975, 10, 2.228139), (0.95, 10, 1.812461),
    (0.80, 10, 0.879058), (0.975, math.inf, 1.959964), (0.80, math.inf, 0.841621), (0.025, 4, -2.776445),
])
def test_student_t_quantiles_match_the_printed_tables(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=2e-6)
    assert student_t_cdf(student_t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_student_t_cdf_known_values():
    assert student_t_cdf(0.0, 3) == pytest.approx(0.5)
    assert student_t_cdf(2.0, 5) == pytest.approx(0.949030, abs=1e-6)
    assert student_t_cdf(1.0, 1) == pytest.approx(0.75)  # Cauchy: 1/2 + atan(1)/pi
    assert student_t_cdf(-1.0, 2) == pytest.approx(0.5 - 1 / (2 * math.sqrt(3)))  # closed form for df = 2


def test_welch_satterthwaite_by_hand():
    assert welch_satterthwaite_df([(4.0, 9), (1.0, 4)]) == pytest.approx(25 / (16 / 9 + 1 / 4))
    assert welch_satterthwaite_df([(0.0, 0), (0.0, 3)]) == math.inf


def test_minimum_detectable_difference_by_hand():
    # (z_0.975 + z_0.80) se = (1.959964 + 0.841621) x 0.002
    assert minimum_detectable_difference(0.002, math.inf) == pytest.approx(2.801585 * 0.002, rel=1e-6)
    # with 10 degrees of freedom: (2.228139 + 0.879058) x 0.002
    assert minimum_detectable_difference(0.002, 10) == pytest.approx(3.107197 * 0.002, rel=1e-5)
    assert minimum_detectable_difference(0.0, 10) == 0.0


def test_tost_verdicts_by_hand():
    # d = 0.1 points, se = 0.2 points, margin 0.5: p_low = 1 - Phi(3) = 0.00135, p_high = Phi(-2) = 0.02275
    assert tost_p_value(0.001, 0.002, math.inf, 0.005) == pytest.approx(0.0227501, abs=1e-6)
    assert verdict(0.6, tost_p_value(0.001, 0.002, math.inf, 0.005)) == "equivalent"
    # d = 0.3 points: p_high = Phi(-1) = 0.1587: a difference beyond the margin is not ruled out
    assert tost_p_value(0.003, 0.002, math.inf, 0.005) == pytest.approx(0.158655, abs=1e-6)
    assert verdict(0.3, tost_p_value(0.003, 0.002, math.inf, 0.005)) == "inconclusive"
    assert verdict(0.01, 0.01) == "different"  # a real difference is reported as such even when small
    with pytest.raises(ValueError):
        tost_p_value(0.0, 0.1, 5, 0.0)


def test_holm_step_down_by_hand():
    assert holm_adjust([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert holm_adjust([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []


def test_paired_difference_by_hand():
    # reference: seeds 0.75 and 0.50; other: 0.50 and 0.25; per-image difference of seed means (0, 1, 0, 0)
    a = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
    b = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], dtype=bool)
    d = paired_difference(a, b, margin=0.05)
    var_seeds = 0.03125 / 2  # each arm: s^2 / n with s^2 = 0.03125
    var_images = 0.25 / 4  # variance (ddof 1) of (0, 1, 0, 0), over N = 4
    assert d.difference == pytest.approx(0.25)
    assert d.se == pytest.approx(math.sqrt(2 * var_seeds + var_images))
    assert d.df == pytest.approx((2 * var_seeds + var_images) ** 2 / (2 * var_seeds ** 2 + var_images ** 2 / 3))
    t = student_t_quantile(0.975, d.df)
    assert d.ci95 == pytest.approx((0.25 - t * d.se, 0.25 + t * d.se))
    assert d.p_value == pytest.approx(2 * (1 - student_t_cdf(0.25 / d.se, d.df)))
    assert [(s.only_reference, s.only_other) for s in d.per_seed] == [(1, 0), (1, 0)]
    assert d.mdd80 == pytest.approx(minimum_detectable_difference(d.se, d.df))


def test_arms_may_have_different_seed_counts_and_the_seeds_spread_widens_the_interval():
    rng = np.random.default_rng(0)
    easy = rng.random(2000) < 0.9
    steady = np.stack([easy] * 5)  # five seeds that agree image for image
    shaky = np.stack([easy ^ (rng.random(2000) < f) for f in (0.0, 0.05, 0.1)])  # three seeds that disagree
    d = paired_difference(steady, shaky)
    assert len(d.per_seed) == 3 and d.per_seed[0].difference == 0
    assert arm_accuracy(shaky).ci95[1] - arm_accuracy(shaky).ci95[0] > arm_accuracy(steady).ci95[1] - arm_accuracy(steady).ci95[0]
    with pytest.raises(ValueError):
        paired_difference(steady, shaky[:, :10])
