"""Intervals, rank correlation and Pareto selection: the pure math behind honest numbers (issue 10)."""

from __future__ import annotations

import math
import random

import pytest

from pss.evaluate.selection import FrontPoint, best_within, dominated_by, dominates, pareto_front
from pss.evaluate.statistics import Accuracy, average_ranks, rank_correlation, wilson_interval


@pytest.mark.parametrize("correct,n,lo,hi", [
    (5, 10, 0.2366, 0.7634),      # textbook value (Wilson 1927; Newcombe 1998, Table I)
    (0, 10, 0.0, 0.2775),         # the Wald interval would be [0, 0]
    (10, 10, 0.7225, 1.0),
    (81, 263, 0.2553, 0.3662),    # Newcombe 1998's example 81/263
])
def test_wilson_interval_known_values(correct, n, lo, hi):
    got = wilson_interval(correct, n)
    assert got == pytest.approx((lo, hi), abs=6e-5)


def test_wilson_interval_narrows_with_images_and_stays_in_range():
    widths = [wilson_interval(round(0.64 * n), n) for n in (100, 1000, 10_000)]
    assert [hi - lo for lo, hi in widths] == sorted((hi - lo for lo, hi in widths), reverse=True)
    # 509 images (the sample's test split): about +-4 points, one image is 0.2 points
    lo, hi = wilson_interval(326, 509)
    assert 0.07 < hi - lo < 0.09
    for bad in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_accuracy_round_trips_and_prints_its_interval():
    a = Accuracy(326, 509)
    doc = a.to_json()
    assert doc["accuracy"] == pytest.approx(326 / 509) and doc["ci95"] == list(wilson_interval(326, 509))
    assert Accuracy.from_json(doc) == a
    assert str(a) == "64.0% (95% CI 59.8-68.1%, 509 images)"


def test_rank_correlation_with_ties_matches_pearson_of_average_ranks():
    assert average_ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # hand-computed: ranks a = 1,2,3,4,5; b = 2,1,4,3,5 -> rho = 1 - 6*4/(5*24) = 0.8
    assert rank_correlation([1, 2, 3, 4, 5], [0.2, 0.1, 0.4, 0.3, 0.5]) == pytest.approx(0.8)
    assert rank_correlation([1, 2], [3, 3]) is None and rank_correlation([1], [2]) is None
    rng = random.Random(0)
    x = [rng.random() for _ in range(50)]
    assert rank_correlation(x, [math.exp(v) for v in x]) == pytest.approx(1.0)  # monotone transform


def _points(rows):
    return [FrontPoint(k, a, {"macs": c}) for k, c, a in rows]


def test_pareto_front_and_dominance_against_brute_force():
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(1, 12)
        pts = _points([(f"s{i}", float(rng.randint(1, 8)), rng.randint(0, 5) / 10) for i in range(n)])
        front = pareto_front(pts, "macs")
        brute = [p for p in pts if not any(dominates(q, p, "macs") for q in pts)]
        # identical points: both are non-dominated, the front keeps one of them
        assert {(p.costs["macs"], p.accuracy) for p in front} == {(p.costs["macs"], p.accuracy) for p in brute}
        assert [p.costs["macs"] for p in front] == sorted(p.costs["macs"] for p in front)
        assert all(a.accuracy < b.accuracy for a, b in zip(front, front[1:]))
        for p in pts:
            beat = dominated_by(p, pts, "macs")
            is_dominated = any(dominates(q, p, "macs") for q in pts)
            assert (beat is not None) == is_dominated
            if beat is not None:
                assert dominates(beat, p, "macs")
            # a ceiling never buys a dominated subnet
            chosen = best_within(pts, p.costs["macs"], "macs")
            assert not any(dominates(q, chosen, "macs") for q in pts)


def test_the_issue_example_min_subnet_dominates_pool_bests():
    """The sample run of issue 10: min 4.51M at 63.85% beats 6.21M at 63.3% and 7.06M at 62.5%."""
    pts = _points([("min", 4.51e6, 0.6385), ("p1", 6.21e6, 0.633), ("p2", 7.06e6, 0.625), ("p4", 9.17e6, 0.6424)])
    assert [p.key for p in pareto_front(pts, "macs")] == ["min", "p4"]
    assert dominated_by(pts[2], pts, "macs").key == "min"
    assert best_within(pts, 8.7e6, "macs").key == "min"
    assert best_within(pts, 4.5e6, "macs") is None


def test_mcnemar_exact_known_values():
    from pss.evaluate.statistics import mcnemar_exact

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    # b=1, c=9: p = 2 * (1 + 10) / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)  # symmetric
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32) and mcnemar_exact(0, 5) > 0.05  # 5 to 0 is not significant
    # large counts stay finite and exact: 600 vs 500 discordant images of a 10,000-image test set
    p = mcnemar_exact(600, 500)
    assert 0.002 < p < 0.004
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_bootstrap_over_seeds_and_images():
    import numpy as np

    from pss.evaluate.statistics import bootstrap_seed_image_means, percentile_interval

    rng = np.random.default_rng(0)
    a = rng.random((3, 2000)) < 0.70
    reps = bootstrap_seed_image_means(a, 500, seed=1)
    lo, hi = percentile_interval(reps)
    assert lo < a.mean() < hi and 0.02 < hi - lo < 0.06  # ~ +-2 points on 2,000 images
    assert np.array_equal(reps, bootstrap_seed_image_means(a, 500, seed=1))  # seeded: reproducible
    # a paired difference of identical classifiers is exactly 0 in every replicate
    assert np.all(bootstrap_seed_image_means(a.astype(np.int8) - a.astype(np.int8), 200) == 0)
    # one seed: only images are resampled; the interval still covers the mean
    lo1, hi1 = percentile_interval(bootstrap_seed_image_means(a[:1], 500))
    assert lo1 < a[0].mean() < hi1
    with pytest.raises(ValueError):
        bootstrap_seed_image_means(np.zeros(5), 10)
