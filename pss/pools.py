"""Resource constraints Theta and subnet pools Pi (PSS-Net Eq. 1-2, Alg. 3 lines 8-17).

A :class:`Budget` is one constraint theta^t with tolerance delta: a subnet
satisfies it when C(phi) lies in [theta - delta, theta + delta] (Eq. 1).
A :class:`SubnetPool` pi^t keeps at most M entries (structure, m, times
sampled, costs), sorted by the performance metric m in decreasing order, and
is keyed by the canonical :attr:`Structure.key`.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import PssError
from .space import Structure

UNIT_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
COST_UNITS = {"macs": "MACs", "params": "params", "latency": "ms"}


@dataclass(frozen=True)
class Budget:
    """theta^t of kind ``kind`` ("macs", "params", ...) with tolerance delta."""

    kind: str
    value: float
    tolerance: float

    def contains(self, cost: float) -> bool:
        return self.value - self.tolerance <= cost <= self.value + self.tolerance

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


def format_quantity(value: float) -> str:
    """1.2e9 -> '1.2G', 30e6 -> '30M', 512 -> '512'."""
    for unit in ("T", "G", "M", "K"):
        if abs(value) >= UNIT_SCALE[unit]:
            return f"{value / UNIT_SCALE[unit]:.4g}{unit}"
    return f"{value:.4g}"


def format_cost(value: float, kind: str) -> str:
    """A cost with its unit: '5.352M MACs', '122.3K params', '3.21 ms' (latency is in milliseconds)."""
    if kind == "latency":
        return f"{value:.3g} ms" if abs(value) < 1000 else f"{value:.0f} ms"
    return f"{format_quantity(value)} {COST_UNITS.get(kind, kind)}"


def parse_quantity(text: str) -> float:
    """'30M' -> 3e7, '1.2G' -> 1.2e9, '4500' -> 4500.0, '3.2ms' -> 3.2 (latency); one-line error otherwise."""
    text = str(text)
    ms = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*ms\s*\Z", text)
    if ms:
        return float(ms.group(1))
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgGtT]?)\s*\Z", text)
    if not m:
        raise PssError(
            f"malformed budget {text!r}: write a number with an optional unit K, M, G or T, e.g. 30M or 1.2G (latency: 3.2ms)"
        )
    return float(m.group(1)) * UNIT_SCALE[m.group(2).upper()]


# ---------------------------------------------------------------------- pools
@dataclass
class PoolEntry:
    """One tuple of pi^t: (phi, m) plus bookkeeping."""

    structure: Structure
    m: float
    times_sampled: int
    costs: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "structure": self.structure.to_json(),
            "key": self.structure.key,
            "m": self.m,
            "times_sampled": self.times_sampled,
            "costs": dict(self.costs),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "PoolEntry":
        return cls(Structure.from_json(d["structure"]), float(d["m"]), int(d["times_sampled"]), dict(d["costs"]))


def moving_average_metric(m: float, batch_metric: float, lam: float) -> float:
    """Alg. 3 line 15: m <- lambda * m + (1 - lambda) * (-batch_loss).

    ``batch_metric`` is already the metric of this batch, i.e. -batch_loss.
    """
    return lam * m + (1.0 - lam) * batch_metric


@dataclass
class PoolCounters:
    """What happened to a pool since the last snapshot."""

    from_space: int = 0
    from_pool: int = 0
    pushes: int = 0
    evictions: int = 0
    updates: int = 0
    trials: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "from_space": self.from_space,
            "from_pool": self.from_pool,
            "pushes": self.pushes,
            "evictions": self.evictions,
            "updates": self.updates,
            "mean_trials": (sum(self.trials) / len(self.trials)) if self.trials else None,
        }


class SubnetPool:
    """pi^t: at most M (structure, m) entries kept in decreasing order of m."""

    def __init__(self, budget: Budget, capacity: int = 50) -> None:
        if capacity < 1:
            raise PssError(f"pool_size M must be at least 1, got {capacity}")
        self.budget = budget
        self.capacity = int(capacity)
        self._entries: list[PoolEntry] = []  # sorted, best (largest m) first
        self._by_key: dict[str, PoolEntry] = {}
        self.counters = PoolCounters()

    # ------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, s: Structure) -> bool:
        return s.key in self._by_key

    def __iter__(self):
        return iter(self._entries)

    @property
    def entries(self) -> list[PoolEntry]:
        return list(self._entries)

    @property
    def is_full(self) -> bool:
        return len(self._entries) >= self.capacity

    def get(self, s: Structure) -> PoolEntry | None:
        return self._by_key.get(s.key)

    def metrics(self) -> list[float]:
        return [e.m for e in self._entries]

    def top(self, k: int) -> list[PoolEntry]:
        return self._entries[:k]

    # ------------------------------------------------------------- Alg. 3 lines 8-17
    def _place(self, entry: PoolEntry) -> None:
        # Negated keys keep the list in decreasing m; ties go after existing entries.
        keys = [-e.m for e in self._entries]
        self._entries.insert(bisect.bisect_right(keys, -entry.m), entry)

    def insert(self, s: Structure, m: float, costs: dict[str, float]) -> PoolEntry | None:
        """Alg. 3 lines 9-13: insert (phi, m) in order; if |pi| > M remove the worst.

        Returns the evicted entry, which is the new one itself when it is worse
        than all M entries already held. (The text of Sec. 3.3 says the worst is
        removed *before* inserting, which would always keep the newcomer; we
        follow Alg. 3, which compares the newcomer too, since the pool is meant
        to hold the M best subnets seen.)
        """
        if s.key in self._by_key:
            raise ValueError(f"{s.key} is already in the pool; use update()")
        entry = PoolEntry(s, float(m), 1, dict(costs))
        self._place(entry)
        self._by_key[s.key] = entry
        self.counters.pushes += 1
        if len(self._entries) > self.capacity:
            worst = self._entries.pop()
            del self._by_key[worst.structure.key]
            self.counters.evictions += 1
            return worst
        return None

    def update(self, s: Structure, batch_metric: float, lam: float) -> PoolEntry:
        """Alg. 3 lines 15-16: moving-average update of m for a structure already held."""
        entry = self._by_key[s.key]
        self._entries.remove(entry)
        entry.m = moving_average_metric(entry.m, float(batch_metric), lam)
        entry.times_sampled += 1
        self._place(entry)
        self.counters.updates += 1
        return entry

    def admits(self, costs: dict[str, float]) -> bool:
        """Whether ``costs`` satisfy this pool's budget, judged by the budget's own kind.

        A pool of a multi-constraint run (PSS-Net_M) checks e.g. ``costs["params"]``
        for a params budget, whatever the run's primary constraint. Costs that
        lack the budget's kind cannot be judged and are admitted.
        """
        kind = self.budget.kind
        return kind not in costs or self.budget.contains(float(costs[kind]))

    def record(
        self, s: Structure, batch_metric: float, costs: dict[str, float], lam: float, check: bool = False
    ) -> PoolEntry | None:
        """Alg. 3 lines 8-17 for a structure just trained with metric m = -batch_loss.

        With ``check`` a new structure whose cost of the pool's own kind lies
        outside the budget raises ValueError (the trainer passes it: a sampler
        wired to the wrong kind must not fill a pool silently).
        Returns the evicted entry, if any.
        """
        if check and s not in self and not self.admits(costs):
            kind = self.budget.kind
            raise ValueError(
                f"{s.key} costs {format_cost(float(costs[kind]), kind)}, outside pool budget {self.budget.label} "
                f"+/- {format_cost(self.budget.tolerance, kind)}"
            )
        if s in self:
            self.update(s, batch_metric, lam)
            return None
        return self.insert(s, batch_metric, costs)

    # ------------------------------------------------------------- persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget.to_json(),
            "capacity": self.capacity,
            "entries": [e.to_json() for e in self._entries],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SubnetPool":
        pool = cls(Budget.from_json(d["budget"]), int(d["capacity"]))
        for e in (PoolEntry.from_json(x) for x in d["entries"]):
            pool._place(e)
            pool._by_key[e.structure.key] = e
        return pool


def pools_from_budgets(budgets: Iterable[Budget], capacity: int) -> list[SubnetPool]:
    return [SubnetPool(b, capacity) for b in budgets]
