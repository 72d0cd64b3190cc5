"""Per-dimension marginals of structures in a budget band (PSS-Net Eq. 4, PSE-Net Eq. 15-16).

Both papers sample a structure dimension by dimension from marginals estimated
on structures whose cost lies in a band: PSS-Net Eq. 4 counts a large
generated set G^t, PSE-Net Eq. 16 counts the training records of the band. The
counting is one function (:func:`structure_marginals`), the draw one method
(:meth:`Marginals.sample`), and the rejection loop that keeps only draws inside
the band one family of functions (:func:`first_in_band`, :func:`draw_in_band`,
:func:`trials_per_valid_sample`), shared by the Eq. 4 training sampler and the
searches.

Samplers know nothing of tensors: a *draw function* ``draw(n, rng) ->
(widths (n, L), resolutions (n,))`` produces candidate structures as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from ..problem.budgets import Budget
from ..problem.space import Structure, StructureSpace

CostArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
CostArrayFns = Union[CostArrayFn, Mapping[str, CostArrayFn]]
DrawFn = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------- Eq. 4 / Eq. 16
def structure_marginals(index_rows: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Eq. 4: tau(o_i | theta) ~= (1/|G^t|) * sum_{phi in G^t} I(o_i(phi) = o_i), per dimension.

    PSE-Net's Eq. 16 is the same count over the records of a band.
    ``index_rows`` holds, for each structure, the index of its value among
    each gene's choices (the last column is the resolution); ``sizes`` is the
    number of choices per gene. Returns one probability vector per gene (all
    zeros for an empty set).
    """
    rows = np.asarray(index_rows)
    return [np.bincount(rows[:, i], minlength=n) / max(1, rows.shape[0]) for i, n in enumerate(sizes)]


def space_choices(space: StructureSpace) -> tuple[np.ndarray, ...]:
    """Per gene its values: every dimension's channel choices, then the resolutions."""
    return tuple(np.asarray(d.choices, dtype=np.int64) for d in space.dimensions) + (np.asarray(space.resolutions, dtype=np.int64),)


def gene_indices(space: StructureSpace, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
    """(n, genes) index of each structure's value among each gene's choices."""
    choices = space_choices(space)
    widths, resolutions = np.asarray(widths), np.asarray(resolutions)
    cols = [np.searchsorted(choices[i], widths[:, i]) for i in range(len(space))] + [np.searchsorted(choices[-1], resolutions)]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class Marginals:
    """One probability vector per gene (the widths of S in order, then the resolution).

    ``choices[g]`` holds the gene's values (integer channels or pixels) and
    ``probs[g]`` their probabilities. h^(A | eps) = prod_l h^(C_l | eps) of
    PSE-Net Eq. 15 and tau of PSS-Net Eq. 4 are both such products.
    """

    choices: tuple[np.ndarray, ...]
    probs: tuple[np.ndarray, ...]

    @property
    def genes(self) -> int:
        return len(self.choices)

    @classmethod
    def uniform(cls, space: StructureSpace) -> "Marginals":
        choices = space_choices(space)
        return cls(choices, tuple(np.full(len(c), 1.0 / len(c)) for c in choices))

    @classmethod
    def count(cls, space: StructureSpace, widths: np.ndarray, resolutions: np.ndarray) -> "Marginals":
        """:func:`structure_marginals` of a set of structures; an empty set gives uniform marginals."""
        if len(resolutions) == 0:
            return cls.uniform(space)
        choices = space_choices(space)
        probs = structure_marginals(gene_indices(space, widths, resolutions), [len(c) for c in choices])
        return cls(choices, tuple(probs))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n structures, every gene drawn independently from its marginal: (widths (n, L), resolutions (n,)).

        No cost check: the callers reject draws outside their band.
        """
        cols = [c[rng.choice(len(c), size=n, p=p)] for c, p in zip(self.choices, self.probs)]
        widths = np.stack(cols[:-1], axis=1) if len(cols) > 1 else np.zeros((n, 0), dtype=np.int64)
        return widths.astype(np.int64), cols[-1].astype(np.int64)

    def to_json(self) -> list[list[float]]:
        return [[round(float(x), 6) for x in p] for p in self.probs]


# ---------------------------------------------------------------------- draw functions
def uniform_draw(space: StructureSpace) -> DrawFn:
    """Naive uniform sampling from S (PSS-Net Sec. 3.1: sample each o_i, then round)."""
    return lambda n, rng: space.sample_uniform_arrays(n, rng)


def uniform_width_draw(space: StructureSpace) -> DrawFn:
    """US-Net / MutualNet subnets: one width multiplier w ~ U[lower_bound, 1] for every layer, a resolution of S.

    Widths are realised exactly as :meth:`StructureSpace.uniform_structure`
    does (:meth:`StructureSpace.realise`: the space's rounding, clipped into
    each dimension's choices), so every draw is a member of S. Searching these
    is the fair search for runs trained with ``strategy=uniform`` or
    ``mutual``, which never train layer-wise widths.
    """
    o_max = np.array([d.o_max for d in space.dimensions], dtype=np.float64)
    resolutions = np.asarray(space.resolutions, dtype=np.int64)

    def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        w = rng.uniform(space.lower_bound, 1.0, size=n)
        widths = space.realise(w[:, None] * o_max[None, :])
        return widths, resolutions[rng.integers(0, len(resolutions), size=n)]

    return draw


def marginals_draw(marginals: Marginals) -> DrawFn:
    """:meth:`Marginals.sample` as a draw function."""
    return marginals.sample


# ---------------------------------------------------------------------- rejection in a band
def _chunks_in_band(draw: DrawFn, band: Budget, cost_fn: CostArrayFn, rng: np.random.Generator, max_trials: int, chunk: int):
    """Draw ``chunk`` candidates at a time, ``max_trials`` in all; per chunk yield
    (widths, resolutions, indices of the in-band candidates, candidates drawn before this chunk, chunk size)."""
    drawn = 0
    while drawn < max_trials:
        n = min(chunk, max_trials - drawn)
        widths, res = draw(n, rng)
        yield widths, res, np.flatnonzero(band.contains_array(cost_fn(widths, res))), drawn, n
        drawn += n


def first_in_band(
    draw: DrawFn, band: Budget, cost_fn: CostArrayFn, rng: np.random.Generator, max_trials: int, chunk: int
) -> tuple[Structure | None, int]:
    """The first draw whose cost lies in ``band`` and its position (trials); (None, trials made) if none."""
    drawn = 0
    for widths, res, ok, before, n in _chunks_in_band(draw, band, cost_fn, rng, max_trials, chunk):
        if ok.size:
            i = int(ok[0])
            return Structure(tuple(widths[i]), int(res[i])), before + i + 1
        drawn = before + n
    return None, drawn


def trials_per_valid_sample(
    draw: DrawFn,
    band: Budget,
    cost_fn: CostArrayFn,
    rng: np.random.Generator,
    valid: int = 200,
    max_trials: int = 2_000_000,
    chunk: int = 8192,
) -> dict[str, Any]:
    """PSE-Net Fig. 4a: mean draws per structure whose cost lies in ``band``.

    Draws ``chunk`` at a time until ``valid`` in-band structures were seen (the
    count stops exactly at the ``valid``-th) or ``max_trials`` draws were made.
    Returns {"trials", "valid", "trials_per_valid"}; trials_per_valid is None
    when no draw was valid (at least ``max_trials`` draws per valid sample).
    """
    drawn = found = 0
    if valid > 0:
        for _, _, hits, before, n in _chunks_in_band(draw, band, cost_fn, rng, max_trials, chunk):
            need = valid - found
            if hits.size >= need:
                drawn, found = before + int(hits[need - 1]) + 1, valid
                break
            found += int(hits.size)
            drawn = before + n
    return {"trials": int(drawn), "valid": int(found), "trials_per_valid": (drawn / found) if found else None}


def draw_in_band(
    draw: DrawFn,
    band: Budget,
    cost_fn: CostArrayFn,
    n: int,
    rng: np.random.Generator,
    exclude: set[str] | frozenset[str] = frozenset(),
    max_trials: int = 1_000_000,
    chunk: int = 4096,
) -> tuple[list[Structure], dict[str, int]]:
    """Up to ``n`` distinct structures inside ``band`` (rejection sampling), none in ``exclude``.

    Returns the structures and counters {"trials", "in_band"} (in_band counts
    every in-band draw, duplicates included).
    """
    out: list[Structure] = []
    seen = set(exclude)
    trials = hits = 0
    if n > 0:
        for widths, res, ok, before, m in _chunks_in_band(draw, band, cost_fn, rng, max_trials, chunk):
            trials = before + m
            for i in ok:
                hits += 1
                s = Structure(tuple(widths[i]), int(res[i]))
                if s.key not in seen:
                    seen.add(s.key)
                    out.append(s)
                    if len(out) >= n:
                        trials = before + int(i) + 1
                        break
            if len(out) >= n:
                break
    return out, {"trials": int(trials), "in_band": int(hits)}


def naive_trials(
    space: StructureSpace, cost_array: CostArrayFn, budget: Budget, rng: np.random.Generator, cap: int = 10_000_000, chunk: int = 65536
) -> int:
    """Trials that naive uniform sampling from S needs to hit ``budget`` once (capped at ``cap``)."""
    return first_in_band(uniform_draw(space), budget, cost_array, rng, cap, chunk)[1]


# ---------------------------------------------------------------------- the set G and the Eq. 4 sampler
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


@dataclass
class _Bucket:
    members: np.ndarray  # indices into G
    marginals: Marginals


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
        else:
            self._fns = dict(cost_array)
            missing = sorted({b.kind for b in self.budgets} - set(self._fns))
            if missing:
                raise ValueError(f"no cost function for budget kind(s) {', '.join(missing)}")
        self.max_trials = int(max_trials)
        self.chunk = int(chunk)
        widths, res = generate_structure_set(space, set_size, rng)
        costs_by_kind = {k: self._fns[k](widths, res) for k in self.kinds}
        self._widths, self._res = widths, res
        self.buckets: list[_Bucket] = []
        for b in self.budgets:
            members = np.flatnonzero(b.contains_array(costs_by_kind[b.kind]))
            self.buckets.append(_Bucket(members, Marginals.count(space, widths[members], res[members])))
        self.fallbacks = 0

    @property
    def kinds(self) -> list[str]:
        """The budgets' kinds in order of first appearance (one entry for a single-kind Theta)."""
        return list(dict.fromkeys(b.kind for b in self.budgets))

    def cost_fn(self, kind: str) -> CostArrayFn:
        """The vectorised cost function budgets of ``kind`` are judged by."""
        return self._fns[kind]

    @property
    def cost_array(self) -> CostArrayFn:
        """The cost function of the primary kind (the first budget's)."""
        return self._fns[self.budgets[0].kind] if self.budgets else next(iter(self._fns.values()))

    @property
    def bucket_sizes(self) -> list[int]:
        return [len(b.members) for b in self.buckets]

    def sample(self, t: int, rng: np.random.Generator) -> tuple[Structure, int]:
        """One structure for budget t and the number of trials it took."""
        bucket, budget = self.buckets[t], self.budgets[t]
        if len(bucket.members) == 0:
            raise RuntimeError(f"budget {budget.label} has no structures in G; it cannot be sampled")
        s, trials = first_in_band(bucket.marginals.sample, budget, self._fns[budget.kind], rng, self.max_trials, self.chunk)
        if s is not None:
            return s, trials
        self.fallbacks += 1
        j = int(rng.choice(bucket.members))
        return Structure(tuple(self._widths[j]), int(self._res[j])), trials
