"""How sure an accuracy is: intervals for a measured proportion (torch-free).

An accuracy read off n test images is a binomial proportion; on a few hundred
images one image moves it by several tenths of a point, so every accuracy a
user reads comes with its image count and a 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

Z_95 = 1.959963984540054
"""The standard normal quantile of 0.975: a two-sided 95% interval."""


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (Wilson 1927), two-sided, ``z`` = 1.96 for 95%.

    Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps its
    coverage near 0% and 100% accuracy and for small n:

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
    """
    if n <= 0:
        raise ValueError("an interval needs at least one image")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in [0, n], got {correct} of {n}")
    p = correct / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """Top-1 accuracy measured on a split: how many of how many images, with its 95% Wilson interval."""

    correct: int
    images: int

    @property
    def value(self) -> float:
        return self.correct / self.images if self.images else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.images)

    def to_json(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"accuracy": self.value, "correct": self.correct, "images": self.images, "ci95": [lo, hi]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Accuracy":
        return cls(int(doc["correct"]), int(doc["images"]))

    def __str__(self) -> str:
        """``63.9% (95% CI 59.6-68.0%, 509 images)``."""
        lo, hi = self.interval
        return f"{self.value:.1%} (95% CI {100 * lo:.1f}-{100 * hi:.1f}%, {self.images:,} images)"


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` (smallest first), ties sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks of ``a`` and ``b``; None when undefined
    (fewer than 2 pairs, or all values of one side tied)."""
    if len(a) != len(b):
        raise ValueError("rank_correlation needs two sequences of equal length")
    if len(a) < 2:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return None if va == 0 or vb == 0 else cov / math.sqrt(va * vb)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test of two classifiers on the same images (McNemar 1947; the exact binomial form).

    ``b`` images only the first gets right, ``c`` only the second; images both get right or both wrong say
    nothing about which is better. Under "equally accurate" each discordant image is a fair coin:

        p = min(1, 2 * sum_{i <= min(b, c)} C(b + c, i) / 2^(b + c))

    p = 1 when there is no discordant image.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must not be negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # exact integer arithmetic, then one division: no underflow for the 10,000-image test sets
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def bootstrap_seed_image_means(correct: np.ndarray, replicates: int = 2000, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the mean accuracy over seeds of per-image correctness ``correct`` (seeds x images).

    Two-level resampling, seeds and test images, each with replacement, with one generator seeded
    ``seed``: call it with the same ``seed`` for two strategies evaluated on the same images and the
    replicates are paired (same images, same seed positions), so replicate-wise differences bootstrap
    the paired difference. Returns ``replicates`` means.
    """
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError("correct must be a (seeds x images) array")
    rng = np.random.default_rng(seed)
    n_seeds, n_images = c.shape
    out = np.empty(replicates)
    for r in range(replicates):
        s = rng.integers(0, n_seeds, n_seeds)
        i = rng.integers(0, n_images, n_images)
        out[r] = c[np.ix_(s, i)].mean()
    return out


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap replicates."""
    lo, hi = np.quantile(np.asarray(replicates, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------ comparing two ways of training, over seeds and images
ALPHA = 0.05
"""Significance level of every test and interval of a comparison (two-sided; TOST: each side)."""

POWER = 0.80
"""The power at which :func:`minimum_detectable_difference` is stated."""

EQUIVALENCE_MARGIN = 0.005
"""Default equivalence margin m: two methods within ±0.5 points of each other are 'equivalent' (TOST)."""


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction of the incomplete beta function (converges for x < (a + 1) / (a + b + 2))."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (what Student's t distribution function is made of)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df = inf: the standard normal)."""
    if math.isinf(df) or df > 1e7:
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on :func:`student_t_cdf`)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if math.isinf(df) or df > 1e7:
        return NormalDist().inv_cdf(p)
    lo, hi = -1.0, 1.0
    while student_t_cdf(lo, df) > p:
        lo *= 2.0
    while student_t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def welch_satterthwaite_df(components: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of variance estimates, each ``(variance, its df)`` (Satterthwaite 1946).

        df = (sum v_k)^2 / sum (v_k^2 / df_k)

    A component with no spread (v = 0) adds nothing; with none left, df is infinite.
    """
    total = sum(v for v, _ in components)
    denom = sum(v * v / d for v, d in components if v > 0 and d > 0)
    return math.inf if total <= 0 or denom <= 0 else total * total / denom


@dataclass(frozen=True)
class ArmAccuracy:
    """Mean test accuracy of one way of training over its seeds, with a 95% interval from both noise sources.

    ``se`` combines the spread between seeds (training noise, s^2 / n) and the test images'
    sampling noise (the variance of the seed-averaged per-image correctness / N); ``df`` by
    :func:`welch_satterthwaite_df`. With one seed the training noise is not measured (``seeds`` says so).
    """

    mean: float
    se: float
    df: float
    ci95: tuple[float, float]
    seeds: int
    images: int
    per_seed: tuple[float, ...]


def _seed_component(per_seed: np.ndarray) -> tuple[float, float]:
    n = per_seed.size
    return (float(per_seed.var(ddof=1)) / n, float(n - 1)) if n > 1 else (0.0, 0.0)


def _image_component(per_image: np.ndarray) -> tuple[float, float]:
    n = per_image.size
    return (float(per_image.var(ddof=1)) / n, float(n - 1)) if n > 1 else (0.0, 0.0)


def _as_marks(correct: np.ndarray, name: str) -> np.ndarray:
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"{name} must be a (seeds x images) array of per-image correctness")
    return c


def arm_accuracy(correct: np.ndarray) -> ArmAccuracy:
    """:class:`ArmAccuracy` of per-image correctness ``correct`` (seeds x images; one row per training seed)."""
    c = _as_marks(correct, "correct")
    per_seed = c.mean(axis=1)
    parts = [_seed_component(per_seed), _image_component(c.mean(axis=0))]
    se = math.sqrt(sum(v for v, _ in parts))
    df = welch_satterthwaite_df(parts)
    mean = float(per_seed.mean())
    half = student_t_quantile(1 - ALPHA / 2, df) * se if se > 0 else 0.0
    return ArmAccuracy(mean, se, df, (mean - half, mean + half), int(c.shape[0]), int(c.shape[1]),
                       tuple(float(x) for x in per_seed))


def minimum_detectable_difference(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true difference a two-sided t test at ``alpha`` finds with probability ``power``.

        MDD = (t_{1 - alpha/2, df} + t_{power, df}) * se

    (the usual normal-approximation formula with t quantiles; 2.80 se for large df at 5% and 80%).
    A study that reports 'no difference' has only ruled out differences of about this size.
    """
    if se <= 0:
        return 0.0
    return (student_t_quantile(1 - alpha / 2, df) + student_t_quantile(power, df)) * se


def tost_p_value(difference: float, se: float, df: float, margin: float) -> float:
    """Two one-sided tests (Schuirmann 1987) of |true difference| < ``margin``: the larger one-sided p.

    p_low = P(T >= (d + m) / se), p_high = P(T <= (d - m) / se); equivalence at level alpha when
    max(p_low, p_high) < alpha, i.e. when the 1 - 2 alpha interval lies inside (-m, m).
    """
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    if se <= 0:
        return 0.0 if abs(difference) < margin else 1.0
    p_low = 1.0 - student_t_cdf((difference + margin) / se, df)
    p_high = student_t_cdf((difference - margin) / se, df)
    return max(p_low, p_high)


@dataclass(frozen=True)
class SeedDifference:
    """One seed's difference (reference minus other) on the same images, with McNemar's exact test."""

    seed_index: int
    difference: float
    only_reference: int
    only_other: int
    mcnemar_p: float


@dataclass(frozen=True)
class PairedDifference:
    """Reference minus other on the same test images, over both arms' seeds (the seeds need not be paired).

    ``difference`` = mean over the reference's seeds minus mean over the other's; ``se`` adds each arm's
    spread between seeds (s^2 / n) and the variance of the per-image difference of seed means over the
    N shared images; ``df`` Welch-Satterthwaite. ``p_value``: two-sided t test of no difference;
    ``tost_p``: equivalence within ±``margin``; ``mdd80``: :func:`minimum_detectable_difference`.
    ``per_seed``: the first min(n_ref, n_other) seeds paired by position, each with McNemar's test.
    """

    difference: float
    se: float
    df: float
    ci95: tuple[float, float]
    p_value: float
    tost_p: float
    margin: float
    mdd80: float
    per_seed: tuple[SeedDifference, ...]


def paired_difference(reference: np.ndarray, other: np.ndarray, margin: float = EQUIVALENCE_MARGIN) -> PairedDifference:
    """:class:`PairedDifference` of two (seeds x images) correctness arrays on the same images."""
    a, b = _as_marks(reference, "reference"), _as_marks(other, "other")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two arms were measured on different images ({a.shape[1]} vs {b.shape[1]})")
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    parts = [_seed_component(pa), _seed_component(pb), _image_component(a.mean(axis=0) - b.mean(axis=0))]
    se = math.sqrt(sum(v for v, _ in parts))
    df = welch_satterthwaite_df(parts)
    d = float(pa.mean() - pb.mean())
    if se > 0:
        half = student_t_quantile(1 - ALPHA / 2, df) * se
        p = 2.0 * (1.0 - student_t_cdf(abs(d) / se, df))
    else:
        half, p = 0.0, 1.0 if d == 0 else 0.0
    per_seed = []
    for i in range(min(a.shape[0], b.shape[0])):
        x, y = a[i] > 0.5, b[i] > 0.5
        only_a, only_b = int((x & ~y).sum()), int((~x & y).sum())
        per_seed.append(SeedDifference(i, float(pa[i] - pb[i]), only_a, only_b, mcnemar_exact(only_a, only_b)))
    return PairedDifference(d, se, df, (d - half, d + half), min(1.0, max(0.0, p)), tost_p_value(d, se, df, margin),
                            float(margin), minimum_detectable_difference(se, df), tuple(per_seed))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): family-wise error at alpha over all the tests given.

    Sorted ascending, the k-th smallest (k = 0..m-1) becomes max over j <= k of min(1, (m - j) p_(j)).
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


VERDICTS = ("different", "equivalent", "inconclusive", "not comparable")
"""What a comparison can conclude: a real difference, one ruled out within the margin, neither, or no like-for-like pair."""


def verdict(p_adjusted: float, tost_p_adjusted: float, alpha: float = ALPHA) -> str:
    """``different`` when the (Holm-adjusted) test rejects no difference, else ``equivalent`` when the
    (Holm-adjusted) TOST rules out differences beyond the margin, else ``inconclusive``."""
    if p_adjusted < alpha:
        return "different"
    if tost_p_adjusted < alpha:
        return "equivalent"
    return "inconclusive"
