"""Choosing among calibrated subnets (PSS-Net Eq. 5, Alg. 1 lines 11-17, Table 8), without torch.

A :class:`CalibratedSubnet` is one evaluated structure: its BN statistics were
re-estimated and its accuracy measured on the validation split. Every ranking
in the package (a pool's best, a search's top-k, the most accurate subnet
within a budget) orders candidates by :func:`candidate_order`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..problem.space import Structure
from .statistics import Accuracy


@dataclass
class CalibratedSubnet:
    """A structure with its calibrated accuracy, pool metric m (if any) and costs.

    ``accuracy`` is the validation accuracy that selection ranks by (``validation``
    holds its counts); ``test`` is measured on the test split, only to report it,
    and is None when the run has no test split or the subnet was not kept.
    ``fresh_m`` is the metric re-measured with the final weights (``calib_rescore``).
    """

    structure: Structure
    m: float | None
    accuracy: float
    costs: dict[str, float]
    seconds: float
    validation: Accuracy | None = None
    test: Accuracy | None = None
    fresh_m: float | None = None

    @property
    def key(self) -> str:
        return self.structure.key

    def to_json(self) -> dict[str, Any]:
        return {
            "structure": self.structure.to_json(),
            "key": self.structure.key,
            "m": self.m,
            **({"fresh_m": self.fresh_m} if self.fresh_m is not None else {}),
            "accuracy": self.accuracy,
            **({"validation": self.validation.to_json()} if self.validation is not None else {}),
            "test": None if self.test is None else self.test.to_json(),
            "costs": dict(self.costs),
            "calibration_seconds": round(self.seconds, 3),
        }


def candidate_order(candidates: Sequence[CalibratedSubnet]) -> list[int]:
    """Indices of ``candidates``, best first: Eq. 5's most accurate; ties go to the higher m, then the earlier."""
    def m_of(i: int) -> float:
        m = candidates[i].m
        return m if m is not None else -math.inf

    return sorted(range(len(candidates)), key=lambda i: (-candidates[i].accuracy, -m_of(i), i))


def select_best(candidates: Sequence[CalibratedSubnet]) -> int:
    """Eq. 5: index of the most accurate calibrated subnet (ties: the higher m, then the first)."""
    return candidate_order(candidates)[0]


def top_candidates(candidates: Sequence[CalibratedSubnet], k: int) -> list[CalibratedSubnet]:
    """The k most accurate calibrated subnets, best first (the order of :func:`candidate_order`)."""
    return [candidates[i] for i in candidate_order(candidates)[:k]]


@dataclass(frozen=True)
class FrontPoint:
    """One calibrated subnet of a front: its key, validation accuracy (what selection ranks by) and costs."""

    key: str
    accuracy: float
    costs: dict[str, float]


def best_within(points: Sequence[FrontPoint], budget: float, kind: str) -> FrontPoint | None:
    """Eq. 5 over a front: the most accurate point whose ``kind`` cost is <= budget (ties: the cheaper).

    None when nothing fits: a budget is a ceiling. The point returned is never
    dominated (a cheaper point at least as accurate would have won the tie).
    """
    fits = [p for p in points if p.costs.get(kind) is not None and p.costs[kind] <= budget]
    if not fits:
        return None
    return max(fits, key=lambda p: (p.accuracy, -p.costs[kind]))


def dominates(a: FrontPoint, b: FrontPoint, kind: str) -> bool:
    """Pareto dominance in (cost ``kind``, accuracy): ``a`` costs no more, is no less accurate, and is better in one."""
    ca, cb = a.costs[kind], b.costs[kind]
    return ca <= cb and a.accuracy >= b.accuracy and (ca < cb or a.accuracy > b.accuracy)


def dominated_by(point: FrontPoint, points: Sequence[FrontPoint], kind: str) -> FrontPoint | None:
    """The subnet to take instead of a dominated ``point``: the most accurate one that costs no more
    (ties: the cheaper), when that one dominates ``point``; None when ``point`` is on the Pareto front."""
    best = best_within([p for p in points if p.key != point.key and p.costs.get(kind) is not None], point.costs[kind], kind)
    return best if best is not None and dominates(best, point, kind) else None


def pareto_front(points: Sequence[FrontPoint], kind: str) -> list[FrontPoint]:
    """The non-dominated points in (cost ``kind`` lower, accuracy higher), cheapest first.

    Exactly the points :func:`best_within` can return for some budget: walking up
    in cost, a point joins when it is strictly more accurate than every cheaper
    one (of equal-cost points, the most accurate; of identical points, one).
    """
    unique = {p.key: p for p in points if p.costs.get(kind) is not None}
    ordered = sorted(unique.values(), key=lambda p: (p.costs[kind], -p.accuracy))
    front: list[FrontPoint] = []
    for p in ordered:
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front
