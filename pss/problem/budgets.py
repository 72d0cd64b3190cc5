"""Resource constraints Theta (PSS-Net Eq. 1-2): budgets theta^t with a tolerance delta.

A :class:`Budget` is one constraint theta^t of one cost kind: a subnet
satisfies it when C(phi) lies in [theta - delta, theta + delta] (Eq. 1). Every
membership test in the package (pools, the Eq. 4 sampler, search bands) goes
through :meth:`Budget.contains` or its vectorised twin :meth:`Budget.contains_array`,
so a structure the sampler accepts is always one its pool admits (before,
the pools compared with theta -/+ delta and the sampler with |C - theta|, which
can disagree by one rounding at an edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PssError
from ..units import format_cost, format_quantity


@dataclass(frozen=True)
class Budget:
    """theta^t of cost kind ``kind`` ("macs", "params" or "latency") with tolerance delta."""

    kind: str
    value: float
    tolerance: float

    @property
    def low(self) -> float:
        """theta - delta."""
        return self.value - self.tolerance

    @property
    def high(self) -> float:
        """theta + delta."""
        return self.value + self.tolerance

    def contains(self, cost: float) -> bool:
        """Eq. 1: |C - theta| <= delta.

        Written as the paper writes it (not as theta - delta <= C <= theta + delta,
        which rounds differently at the edges), so the Eq. 4 sampler, the pools
        and the searches agree on a cost that lies exactly on an edge.
        """
        return abs(cost - self.value) <= self.tolerance

    def contains_array(self, costs: np.ndarray) -> np.ndarray:
        """:meth:`contains` for an array of costs (the same comparison, element-wise)."""
        return np.abs(np.asarray(costs) - self.value) <= self.tolerance

    @property
    def label(self) -> str:
        return format_cost(self.value, self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "tolerance": self.tolerance, "label": self.label}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Budget":
        return cls(d["kind"], float(d["value"]), float(d["tolerance"]))


def make_budgets(
    kind: str, c_min: float, c_max: float, step: float | None = None, count: int | None = None, tolerance: float | None = None
) -> list[Budget]:
    """Theta: T budgets spanning C(phi_min)..C(phi_max), by a step or a count (Sec. 4.1).

    The budgets lie strictly between the two ends, at ``c_min + k * step``:
    the minimal and maximal subnets already get trained in every batch by the
    sandwich rule, and at the exact ends only one structure qualifies, so a
    pool there could never fill. With ``count`` the step is
    ``(c_max - c_min) / (count + 1)``. The default tolerance delta is half the
    step, so neighbouring pools tile the range without overlapping.
    """
    if c_max <= c_min:
        if kind == "latency":
            raise PssError(
                f"cannot make latency budgets: the LUT predicts the max subnet ({c_max:.3f} ms) no slower than the min "
                f"subnet ({c_min:.3f} ms), so its timings are mostly noise; rebuild it with more --repeats on a quieter machine"
            )
        raise PssError(f"cannot make budgets: C(max)={c_max} is not above C(min)={c_min}")
    if (step is None) == (count is None):
        raise PssError("give exactly one of budget_step or budget_count")
    if count is not None:
        if count < 1:
            raise PssError(f"budget_count must be at least 1, got {count}")
        step = (c_max - c_min) / (count + 1)
        values = [c_min + k * step for k in range(1, count + 1)]
    else:
        if step <= 0:
            raise PssError(f"budget_step must be positive, got {step}")
        n = int(math.ceil((c_max - c_min) / step)) - 1
        if n < 1:
            raise PssError(
                f"budget_step {format_quantity(step)} leaves no budget between C(min)={format_quantity(c_min)} "
                f"and C(max)={format_quantity(c_max)}; use a smaller step"
            )
        values = [c_min + k * step for k in range(1, n + 1)]
    delta = step / 2 if tolerance is None else float(tolerance)
    return [Budget(kind, float(v), float(delta)) for v in values]
