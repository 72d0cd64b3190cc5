"""Subnet pools Pi (PSS-Net Alg. 3 lines 8-17).

A :class:`SubnetPool` pi^t for a budget theta^t keeps at most M entries (structure, m, times
sampled, costs), sorted by the performance metric m in decreasing order, and
is keyed by the canonical :attr:`Structure.key`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import PssError
from ..problem.budgets import Budget
from ..problem.space import Structure
from ..units import format_cost


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
