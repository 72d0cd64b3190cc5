"""Prioritized subnet sampling: the math of Eq. 3, 4 and 6 (PSS-Net Sec. 3.3).

Samplers know nothing of tensors: they turn budgets, pools and metrics into
:class:`~pss.space.Structure` values. Each equation is a small pure function
so notebooks can show it and tests can pin it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from .pools import Budget, SubnetPool
from .space import Structure, StructureSpace


# ---------------------------------------------------------------------- Eq. 3
def training_progress(epoch: int, batch: int, batches_per_epoch: int, epochs: int) -> float:
    """(e - 1) / E of Eq. 3 with a fractional epoch.

    ``epoch`` and ``batch`` are 0-based, so the first batch of the first epoch
    gives 0 and the last batch of the last epoch approaches 1. Computing it per
    iteration lets short runs anneal smoothly instead of in E jumps.
    """
    return (epoch + batch / max(1, batches_per_epoch)) / max(1, epochs)


def space_sampling_probability(p_end: float, progress: float, pool_full: bool) -> float:
    """Eq. 3: p, the probability of sampling from the structure space S.

    As printed, p = p_end ** (I(|pi| < M) * (e-1)/E), which would anneal p
    while the pool is *not* full and give p = 1 once it is. The text says the
    opposite ("we sample subnets from S until pi^t is full. In this situation,
    we expect p = 1"), and so does the reference code. We implement the
    intent: p = 1 while the pool is not full, then p_end ** ((e-1)/E).
    """
    if not pool_full:
        return 1.0
    return float(p_end) ** float(progress)


def pool_temperature(eta_end: float, progress: float, pool_full: bool) -> float:
    """Eq. 6's temperature eta = eta_end ** (I(.) * (e-1)/E), with the same reading as Eq. 3.

    eta starts at 1 (near-uniform q over the pool) and falls to eta_end
    (near one-hot on the best m) as training goes.
    """
    return space_sampling_probability(eta_end, progress, pool_full)


# ---------------------------------------------------------------------- Eq. 6
def prioritized_probs(metrics: Sequence[float], eta: float) -> np.ndarray:
    """Eq. 6: q_j = exp(m_j / eta) / sum_i exp(m_i / eta), computed stably."""
    m = np.asarray(metrics, dtype=np.float64)
    if m.size == 0:
        return m
    z = (m - m.max()) / float(eta)
    e = np.exp(z)
    return e / e.sum()


# ---------------------------------------------------------------------- Eq. 4
def structure_marginals(index_rows: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Eq. 4: tau(o_i | theta) ~= (1/|G^t|) * sum_{phi in G^t} I(o_i(phi) = o_i), per dimension.

    ``index_rows`` holds, for each structure of G^t, the index of its value
    among each dimension's choices (the last column may be the resolution);
    ``sizes`` is the number of choices per column. Returns one probability
    vector per column.
    """
    rows = np.asarray(index_rows)
    return [np.bincount(rows[:, i], minlength=n) / max(1, rows.shape[0]) for i, n in enumerate(sizes)]


def generate_structure_set(space: StructureSpace, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """G: a large set of structures to estimate Eq. 4's marginals from.

    Half are drawn uniformly from S as in Sec. 3.1. Uniform draws concentrate
    their cost near the middle of the range (a sum of many independent
    widths), leaving the lowest and highest budgets nearly empty, so the other
    half is drawn around a per-structure width level u ~ U(0, 1) (each width
    near the u-quantile of its range, with jitter). Both halves are real
    members of S; the mixture only ensures every budget's G^t is populated.
    """
    n_uniform = n // 2
    w_u, r_u = space.sample_uniform_arrays(n_uniform, rng)
    m = n - n_uniform
    level = rng.random(m)
    w_a = np.empty((m, len(space)), dtype=np.int64)
    for i, pool in enumerate(space.integer_pools):
        size = len(pool)
        pos = np.rint(level * (size - 1) + rng.normal(0.0, 0.15 * size, m))
        w_a[:, i] = pool[np.clip(pos, 0, size - 1).astype(np.int64)]
    r_a = np.asarray(space.resolutions)[rng.integers(0, len(space.resolutions), m)]
    return np.concatenate([w_u, w_a]), np.concatenate([r_u, r_a])


CostArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
CostArrayFns = Union[CostArrayFn, Mapping[str, CostArrayFn]]


@dataclass
class _Bucket:
    members: np.ndarray  # indices into G
    marginals: list[np.ndarray]


class StructureDistributionSampler:
    """Case 1 of Alg. 3: draw phi in S with C(phi) in [theta - delta, theta + delta] via Eq. 4.

    G is generated once; it is split into T buckets G^t (the structures whose
    cost satisfies budget t); each bucket yields per-dimension marginals.
    A draw samples every dimension independently from its marginal and keeps
    the first candidate inside the budget, up to ``max_trials``; after that it
    falls back to a random member of G^t (which satisfies the budget by
    construction). Candidates are drawn ``chunk`` at a time for speed; the
    reported trial count is the position of the first accepted candidate.

    ``cost_array`` is one vectorised cost function used for every budget, or
    (multi-constraint training, PSS-Net_M) a mapping ``kind -> function``:
    each budget is then judged by the function of its own ``Budget.kind``; the
    costs of G are computed once per kind.
    """

    def __init__(
        self,
        space: StructureSpace,
        cost_array: CostArrayFns,
        budgets: Sequence[Budget],
        rng: np.random.Generator,
        set_size: int = 100_000,
        max_trials: int = 1000,
        chunk: int = 64,
    ) -> None:
        self.space = space
        self.budgets = list(budgets)
        if callable(cost_array):
            self._fns: dict[str, CostArrayFn] = {b.kind: cost_array for b in self.budgets}
            self.cost_array = cost_array
        else:
            self._fns = dict(cost_array)
            missing = sorted({b.kind for b in self.budgets} - set(self._fns))
            if missing:
                raise ValueError(f"no cost function for budget kind(s) {', '.join(missing)}")
            self.cost_array = self._fns[self.budgets[0].kind] if self.budgets else next(iter(self._fns.values()))
        self.max_trials = int(max_trials)
        self.chunk = int(chunk)
        self._choices = [np.asarray(d.choices) for d in space.dimensions] + [np.asarray(space.resolutions)]
        self._sizes = [len(c) for c in self._choices]
        widths, res = generate_structure_set(space, set_size, rng)
        costs_by_kind = {k: self._fns[k](widths, res) for k in dict.fromkeys(b.kind for b in self.budgets)}
        index_rows = np.stack(
            [np.searchsorted(self._choices[i], widths[:, i]) for i in range(len(space))]
            + [np.searchsorted(self._choices[-1], res)],
            axis=1,
        )
        self._widths, self._res, self._costs_by_kind = widths, res, costs_by_kind
        self._costs = costs_by_kind[self.budgets[0].kind] if self.budgets else None
        self.buckets: list[_Bucket] = []
        for b in self.budgets:
            members = np.flatnonzero(np.abs(costs_by_kind[b.kind] - b.value) <= b.tolerance)
            self.buckets.append(_Bucket(members, structure_marginals(index_rows[members], self._sizes)))
        self.fallbacks = 0

    @property
    def kinds(self) -> list[str]:
        """The budgets' kinds in order of first appearance (one entry for a single-kind Theta)."""
        return list(dict.fromkeys(b.kind for b in self.budgets))

    def cost_fn(self, kind: str) -> CostArrayFn:
        """The vectorised cost function budgets of ``kind`` are judged by."""
        return self._fns[kind]

    @property
    def bucket_sizes(self) -> list[int]:
        return [len(b.members) for b in self.buckets]

    def sample(self, t: int, rng: np.random.Generator) -> tuple[Structure, int]:
        """One structure for budget t and the number of trials it took."""
        bucket, budget = self.buckets[t], self.budgets[t]
        if len(bucket.members) == 0:
            raise RuntimeError(f"budget {budget.label} has no structures in G; it cannot be sampled")
        drawn = 0
        while drawn < self.max_trials:
            n = min(self.chunk, self.max_trials - drawn)
            cols = [c[rng.choice(len(c), size=n, p=p)] for c, p in zip(self._choices, bucket.marginals)]
            widths = np.stack(cols[:-1], axis=1)
            costs = self._fns[budget.kind](widths, cols[-1])
            ok = np.flatnonzero(np.abs(costs - budget.value) <= budget.tolerance)
            if ok.size:
                i = int(ok[0])
                return Structure(tuple(widths[i]), int(cols[-1][i])), drawn + i + 1
            drawn += n
        self.fallbacks += 1
        j = int(rng.choice(bucket.members))
        return Structure(tuple(self._widths[j]), int(self._res[j])), drawn


def naive_trials(
    space: StructureSpace, cost_array: CostArrayFn, budget: Budget, rng: np.random.Generator, cap: int = 10_000_000, chunk: int = 65536
) -> int:
    """Trials that naive uniform sampling from S needs to hit ``budget`` once (capped)."""
    drawn = 0
    while drawn < cap:
        n = min(chunk, cap - drawn)
        w, r = space.sample_uniform_arrays(n, rng)
        ok = np.flatnonzero(np.abs(cost_array(w, r) - budget.value) <= budget.tolerance)
        if ok.size:
            return drawn + int(ok[0]) + 1
        drawn += n
    return cap


def sample_from_pool(pool: SubnetPool, eta: float, rng: np.random.Generator) -> Structure:
    """Case 2 of Alg. 3: phi ~ q of Eq. 6 over the pool's entries."""
    entries = pool.entries
    q = prioritized_probs([e.m for e in entries], eta)
    return entries[int(rng.choice(len(entries), p=q))].structure


def prioritized_sample(
    pool: SubnetPool,
    sampler: StructureDistributionSampler,
    t: int,
    progress: float,
    p_end: float,
    eta_end: float,
    rng: np.random.Generator,
) -> tuple[Structure, str, int]:
    """Alg. 3 lines 1-7: choose the medium subnet for budget t.

    Returns (structure, source, trials): source is "space" or "pool"; trials
    is the Eq. 4 trial count (0 for pool draws). Updating the pool with the
    structure's metric (lines 8-17) happens after the training forward, in
    :meth:`SubnetPool.record`.
    """
    p = space_sampling_probability(p_end, progress, pool.is_full)
    if len(pool) == 0 or rng.random() < p:
        s, trials = sampler.sample(t, rng)
        return s, "space", trials
    eta = pool_temperature(eta_end, progress, pool.is_full)
    return sample_from_pool(pool, eta, rng), "pool", 0
