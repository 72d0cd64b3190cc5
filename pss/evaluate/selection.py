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


@dataclass
class CalibratedSubnet:
    """A structure with its calibrated validation accuracy, pool metric m (if any) and costs."""

    structure: Structure
    m: float | None
    accuracy: float
    costs: dict[str, float]
    seconds: float

    @property
    def key(self) -> str:
        return self.structure.key

    def to_json(self) -> dict[str, Any]:
        return {
            "structure": self.structure.to_json(),
            "key": self.structure.key,
            "m": self.m,
            "accuracy": self.accuracy,
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
    """One calibrated subnet of a front: its key, accuracy and costs."""

    key: str
    accuracy: float
    costs: dict[str, float]


def best_within(points: Sequence[FrontPoint], budget: float, kind: str) -> FrontPoint | None:
    """Eq. 5 over a front: the most accurate point whose ``kind`` cost is <= budget (ties: the cheaper).

    None when nothing fits: a budget is a ceiling.
    """
    fits = [p for p in points if p.costs.get(kind) is not None and p.costs[kind] <= budget]
    if not fits:
        return None
    return max(fits, key=lambda p: (p.accuracy, -p.costs[kind]))
