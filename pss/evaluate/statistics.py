"""How sure an accuracy is: intervals for a measured proportion (torch-free).

An accuracy read off n test images is a binomial proportion; on a few hundred
images one image moves it by several tenths of a point, so every accuracy a
user reads comes with its image count and a 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
