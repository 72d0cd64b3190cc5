"""Search after training: random search and PSE-Net's prior-distributed evolutionary search.

`pss calibrate` only looks at what the pools collected during training (PSS-Net
Alg. 1 lines 11-17). :func:`search_run` instead searches the structure space S
of a trained supernet for each budget theta +/- delta: every structure it
evaluates gets its BN statistics re-estimated on training images and its
accuracy measured on the validation split (PSS-Net Eq. 5), exactly as in
calibration, and the top-k per budget are written as the run's
``calibration/front.json`` + ``bn_stats.pt`` (same format as `pss calibrate`,
plus a ``method`` and a ``search`` section), so `pss export` and the dashboard
work on the result unchanged.

Two methods:

* ``random``: uniform draws from S (Sec. 3.1 of PSS-Net), rejected unless the
  cost lies in the band, ``evaluations_per_budget`` distinct ones evaluated.
* ``evolution``: PSE-Net Sec. 3.3-3.4. A prior h^(A | eps) over structures is
  built per budget from the training-loss records of the run (Eq. 15-20);
  P seeds (half the best records in the band, half drawn from the prior),
  top-k parents by calibrated validation accuracy, mutation (resample a gene
  from its prior marginal) and uniform crossover, offspring outside the band
  rejected and replaced by prior draws.

The operators (:func:`proxy_loss`, :func:`record_weights`,
:func:`prior_marginals`, :func:`sample_from_prior`, :func:`mutate`,
:func:`crossover`, :func:`trials_per_valid_sample`, :func:`evolve`) are small
pure functions of numpy arrays and :class:`~pss.space.Structure` values, so
tests and notebooks can use them without a model.

Where PSE-Net's formulas and text disagree we follow the text and say so:

* Eq. 19 as printed multiplies a loss by L_max^t / L_max^T, which *inflates*
  early-training losses instead of putting them on one scale; we divide by the
  max subnet's loss at the same step (:func:`proxy_loss`).
* Eq. 20 as printed gives each width choice mass proportional to the summed
  (proxy) *losses* of the records using it, so bad subnets would get more
  prior mass; the text wants good subnets favoured. We weight each record by a
  decreasing function of its normalised loss (:func:`record_weights`) and
  normalise within the budget band so each marginal sums to 1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import PssError
from .pools import Budget
from .space import Structure, StructureSpace

METHODS = ("random", "evolution", "uniform")
#: Default size of the search: distinct structures calibrated and evaluated per budget.
DEFAULT_EVALUATIONS = 512

CostArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
SamplerFn = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# ====================================================================== loss records (Eq. 17-18)
@dataclass
class LossRecords:
    """The loss collection L of Eq. 17-18: one row per (training step, sampled subnet).

    Same layout as a snapshot's ``samples`` field: ``keys`` are structure keys,
    ``key[i]`` indexes ``keys``, ``loss[i]`` is the subnet's training CE at
    ``step[i]`` and ``max_loss[i]`` the max subnet's CE at that step.
    ``source`` says where the rows came from: ``"samples"`` (per-step records
    the trainer wrote), ``"pool"`` (pool entries of the snapshots, for runs
    without ``samples``) or ``"none"``.
    """

    keys: list[str]
    key: np.ndarray
    step: np.ndarray
    loss: np.ndarray
    max_loss: np.ndarray
    source: str = "samples"
    _parsed: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = np.asarray(self.key, dtype=np.int64)
        self.step = np.asarray(self.step, dtype=np.int64)
        self.loss = np.asarray(self.loss, dtype=np.float64)
        self.max_loss = np.asarray(self.max_loss, dtype=np.float64)
        n = len(self.key)
        if not (len(self.step) == len(self.loss) == len(self.max_loss) == n):
            raise PssError("loss records: step, key, loss and max_loss must have one value per row")
        if n and (self.key.min() < 0 or self.key.max() >= len(self.keys)):
            raise PssError("loss records: a key index points outside keys")

    def __len__(self) -> int:
        return len(self.key)

    @classmethod
    def empty(cls, source: str = "none") -> "LossRecords":
        return cls([], [], [], [], [], source)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Structure | str, float, float, int]], source: str = "samples") -> "LossRecords":
        """Rows of (structure or key, loss, max_loss, step)."""
        keys: list[str] = []
        index: dict[str, int] = {}
        key, step, loss, max_loss = [], [], [], []
        for s, l, ml, st in rows:
            k = s.key if isinstance(s, Structure) else str(s)
            if k not in index:
                index[k] = len(keys)
                keys.append(k)
            key.append(index[k])
            loss.append(l)
            max_loss.append(ml)
            step.append(st)
        return cls(keys, key, step, loss, max_loss, source)

    @property
    def final_max_loss(self) -> float:
        """L_max^T of Eq. 19: the max subnet's loss at the last recorded step (mean if several rows)."""
        if not len(self):
            return float("nan")
        last = self.step == self.step.max()
        return float(np.mean(self.max_loss[last]))


def _concat(parts: list[LossRecords], source: str) -> LossRecords:
    keys: list[str] = []
    index: dict[str, int] = {}
    key, step, loss, max_loss = [], [], [], []
    for p in parts:
        remap = np.empty(len(p.keys), dtype=np.int64)
        for i, k in enumerate(p.keys):
            if k not in index:
                index[k] = len(keys)
                keys.append(k)
            remap[i] = index[k]
        key.append(remap[p.key] if len(p) else p.key)
        step.append(p.step)
        loss.append(p.loss)
        max_loss.append(p.max_loss)
    if not keys:
        return LossRecords.empty(source)
    return LossRecords(keys, np.concatenate(key), np.concatenate(step), np.concatenate(loss), np.concatenate(max_loss), source)


def records_from_snapshots(snapshots: Sequence[dict[str, Any]]) -> LossRecords:
    """The loss records of a run from its snapshots (oldest first).

    Snapshots with the optional ``samples`` field (one row per training step and
    sampled subnet) give Eq. 17-18 directly. For older runs without it, the
    pool entries stand in: an entry (key, m) gives loss = -m (m is the moving
    average of -batch CE, Alg. 3) and max_loss = that epoch's mean CE of the
    max subnet. An entry that did not change since the previous snapshot (same
    m and times sampled) carries no new measurement and is counted once, at the
    epoch where it was last updated.
    """
    with_samples = [s for s in snapshots if isinstance(s.get("samples"), dict)]
    if with_samples:
        parts = []
        for snap in with_samples:
            smp = snap["samples"]
            try:
                parts.append(LossRecords(list(smp["keys"]), smp["key"], smp["step"], smp["loss"], smp["max_loss"], "samples"))
            except (KeyError, TypeError, ValueError) as exc:
                raise PssError(f"snapshot of epoch {snap.get('epoch')}: malformed 'samples' field ({exc})") from None
        return _concat(parts, "samples")
    rows = []
    previous: dict[str, tuple[float, int]] = {}
    for snap in snapshots:
        max_loss = float((snap.get("losses") or {}).get("max", float("nan")))
        step = int(snap.get("step", snap.get("epoch", 0)))
        current: dict[str, tuple[float, int]] = {}
        for pool in snap.get("pools", []):
            for e in pool.get("entries", []):
                sig = (float(e["m"]), int(e.get("times_sampled", 0)))
                current[e["key"]] = sig
                if previous.get(e["key"]) != sig:
                    rows.append((e["key"], -sig[0], max_loss, step))
        previous = current
    return LossRecords.from_rows(rows, source="pool") if rows else LossRecords.empty()


def load_loss_records(run) -> LossRecords:
    """:func:`records_from_snapshots` over every readable snapshot of a :class:`~pss.runs.RunDir`."""
    snaps = []
    for path in run.snapshot_paths():
        try:
            snaps.append(run.read_snapshot(path))
        except PssError:
            continue  # a half-copied or foreign snapshot: skip it, as the dashboard does
    return records_from_snapshots(snaps)


# ====================================================================== Eq. 19-20
def proxy_loss(loss: np.ndarray, max_loss: np.ndarray, final_max_loss: float) -> np.ndarray:
    """Eq. 19, as the text intends: p_i^t = L_i^t * L_max^T / L_max^t.

    The supernet keeps improving, so a raw loss from step t is not comparable
    with one from step T. Dividing by the max subnet's loss at the *same* step
    removes that trend (and the difficulty of that batch) and multiplying by
    L_max^T puts every record on the scale of the end of training. The printed
    Eq. 19 multiplies by L_max^t / L_max^T instead, which makes early records
    look *worse* by the same factor; a subnet that stays 10% behind the max
    subnet all through training would get very different proxy losses.
    """
    return np.asarray(loss, dtype=np.float64) * float(final_max_loss) / np.asarray(max_loss, dtype=np.float64)


def record_weights(normalised_loss: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Weight of each record in Eq. 20: a *decreasing* function of its normalised loss.

    w = exp(-(rho - min rho) / (temperature * std(rho))), rho the records'
    normalised losses (:func:`proxy_loss` / L_max^T = L_i^t / L_max^t), the
    spread taken over the records given (those of one budget band). The
    printed Eq. 20 sums the proxy losses themselves, i.e. gives *more* prior
    mass to width choices of *worse* subnets; the text ("a network
    configuration that performs well on the training set also has a greater
    chance of performing better", Fig. 2c) wants the opposite, which this
    implements. Dividing by the spread makes the weights scale-free (the same
    for CE losses of 0.3 or 3); ``temperature`` -> infinity gives Eq. 16's
    plain counts. Fewer than two records, or no spread: equal weights.
    """
    rho = np.asarray(normalised_loss, dtype=np.float64)
    if rho.size < 2:
        return np.ones_like(rho)
    spread = float(rho.std())
    if not math.isfinite(spread) or spread <= 0 or not math.isfinite(temperature) or temperature <= 0:
        return np.ones_like(rho)
    return np.exp(-(rho - rho.min()) / (temperature * spread))


@dataclass(frozen=True)
class Marginals:
    """h^(C_l | eps_0) of Eq. 15: one probability vector per gene.

    Genes are the width dimensions of S in order, then the resolution;
    ``choices[g]`` holds the gene's values (integer channels or pixels) and
    ``probs[g]`` their probabilities (each sums to 1).
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

    def to_json(self) -> list[list[float]]:
        return [[round(float(x), 6) for x in p] for p in self.probs]


def space_choices(space: StructureSpace) -> tuple[np.ndarray, ...]:
    """Per gene its values: every dimension's channel choices, then the resolutions."""
    return tuple(np.asarray(d.choices, dtype=np.int64) for d in space.dimensions) + (np.asarray(space.resolutions, dtype=np.int64),)


def _gene_indices(space: StructureSpace, widths: np.ndarray, res: np.ndarray) -> np.ndarray:
    choices = space_choices(space)
    cols = [np.searchsorted(choices[i], widths[:, i]) for i in range(len(space))] + [np.searchsorted(choices[-1], res)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(res), 0), dtype=np.int64)


def _record_arrays(records: LossRecords, space: StructureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_keys_to_arrays` of a record set's keys, parsed once per space (every band reuses them)."""
    if space not in records._parsed:
        records._parsed[space] = _keys_to_arrays(records.keys, space)
    return records._parsed[space]


def _keys_to_arrays(keys: Sequence[str], space: StructureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(widths (u, L), resolutions (u,), valid (u,) bool): parse keys; keys outside S are invalid."""
    L = len(space)
    widths = np.zeros((len(keys), L), dtype=np.int64)
    res = np.full(len(keys), space.resolutions[0], dtype=np.int64)
    valid = np.zeros(len(keys), dtype=bool)
    for i, k in enumerate(keys):
        try:
            s = Structure.from_key(k)
        except PssError:
            continue
        if space.contains(s):
            widths[i], res[i], valid[i] = s.widths, s.resolution, True
    return widths, res, valid


def in_band(costs: np.ndarray, band: Budget) -> np.ndarray:
    """Vectorised :meth:`Budget.contains`: theta - delta <= C <= theta + delta."""
    costs = np.asarray(costs)
    return (costs >= band.value - band.tolerance) & (costs <= band.value + band.tolerance)


@dataclass
class BandRecords:
    """The records of one budget band, with what Eq. 19-20 derive from them."""

    keys: list[str]              # unique structure keys in the band
    key: np.ndarray              # per row, index into keys
    normalised: np.ndarray       # per row, rho = L_i^t / L_max^t
    proxy: np.ndarray            # per row, p_i^t of Eq. 19 (as intended)
    gene_index: np.ndarray       # per unique key, index of each gene's value (u, genes)
    final_max_loss: float

    def __len__(self) -> int:
        return len(self.key)

    def ranked_keys(self) -> list[str]:
        """Unique keys by mean proxy loss, best (lowest) first: 'the top p_i^t' of Sec. 3.4."""
        if not len(self):
            return []
        sums = np.bincount(self.key, weights=self.proxy, minlength=len(self.keys))
        counts = np.bincount(self.key, minlength=len(self.keys))
        mean = sums / np.maximum(counts, 1)
        return [self.keys[i] for i in np.lexsort((np.arange(len(self.keys)), mean))]


def band_records(records: LossRecords, space: StructureSpace, cost_fn: CostArrayFn, band: Budget) -> BandRecords:
    """Rows of ``records`` whose structure is in S and whose cost lies in the band (eps = eps_0)."""
    final = records.final_max_loss
    widths, res, valid = _record_arrays(records, space)
    ok_key = valid.copy()
    if valid.any():
        ok_key[valid] = in_band(cost_fn(widths[valid], res[valid]), band)
    rows = np.zeros(len(records), dtype=bool)
    if len(records):
        finite = np.isfinite(records.loss) & np.isfinite(records.max_loss) & (records.max_loss > 0)
        rows = ok_key[records.key] & finite
    used = np.flatnonzero(ok_key)
    remap = np.full(len(records.keys), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    key = remap[records.key[rows]]
    normalised = records.loss[rows] / records.max_loss[rows]
    return BandRecords(
        keys=[records.keys[i] for i in used],
        key=key,
        normalised=normalised,
        proxy=proxy_loss(records.loss[rows], records.max_loss[rows], final) if rows.any() else normalised,
        gene_index=_gene_indices(space, widths[used], res[used]),
        final_max_loss=final,
    )


def prior_marginals(
    records: LossRecords,
    space: StructureSpace,
    cost_fn: CostArrayFn,
    band: Budget,
    *,
    quality: bool = True,
    temperature: float = 1.0,
    base: Marginals | None = None,
    pseudo_count: float = 0.0,
) -> Marginals:
    """h^(C_l | eps_0) of Eq. 15-16 and 20, per gene (widths, then resolution).

    Only records whose structure's cost (``cost_fn(widths, resolutions)``, the
    vectorised C(.) of the budget's kind) lies in ``band`` count (eps = eps_0).
    ``quality=False`` is Eq. 16: the fraction of those records with C_l = k.
    ``quality=True`` is Eq. 20 as intended: the same counts, each record
    weighted by :func:`record_weights` of its normalised loss (Eq. 19), so
    width choices of low-loss subnets get more mass. Each vector is normalised
    within the band and sums to 1.

    ``base`` (default: uniform over the gene's choices) with ``pseudo_count``
    n0 > 0 smooths the estimate like a Dirichlet prior: probs = (n_eff * h^ +
    n0 * base) / (n_eff + n0), n_eff = (sum w)^2 / sum w^2 the effective number
    of records. With no record in the band the result is ``base``.
    """
    choices = space_choices(space)
    if base is None:
        base = Marginals.uniform(space)
    br = band_records(records, space, cost_fn, band)
    if not len(br):
        return Marginals(choices, tuple(p.copy() for p in base.probs))
    w = record_weights(br.normalised, temperature) if quality else np.ones(len(br))
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    w = w * (n_eff / w.sum())
    per_key = np.bincount(br.key, weights=w, minlength=len(br.keys))
    probs = []
    for g, c in enumerate(choices):
        counts = np.bincount(br.gene_index[:, g], weights=per_key, minlength=len(c))
        p = (counts + pseudo_count * base.probs[g]) / (n_eff + pseudo_count)
        probs.append(p / p.sum())
    return Marginals(choices, tuple(probs))


def counting_marginals(space: StructureSpace, widths: np.ndarray, res: np.ndarray) -> Marginals:
    """Eq. 16 (and PSS-Net Eq. 4) over a set of structures: per gene, the fraction with each value.

    An empty set gives uniform marginals.
    """
    if len(res) == 0:
        return Marginals.uniform(space)
    choices = space_choices(space)
    idx = _gene_indices(space, np.asarray(widths), np.asarray(res))
    return Marginals(choices, tuple(np.bincount(idx[:, g], minlength=len(c)) / len(res) for g, c in enumerate(choices)))


# ====================================================================== sampling and operators
def sample_from_prior(marginals: Marginals, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n draws from h^(A | eps_0) = prod_l h^(C_l | eps_0) (Eq. 15): (widths (n, L), resolutions (n,)).

    Genes are drawn independently from their marginals; no cost check here
    (the caller rejects draws outside the band).
    """
    cols = [c[rng.choice(len(c), size=n, p=p)] for c, p in zip(marginals.choices, marginals.probs)]
    widths = np.stack(cols[:-1], axis=1) if len(cols) > 1 else np.zeros((n, 0), dtype=np.int64)
    return widths.astype(np.int64), cols[-1].astype(np.int64)


def uniform_sampler(space: StructureSpace) -> SamplerFn:
    """Naive uniform sampling from S (PSS-Net Sec. 3.1), as a sampler for :func:`trials_per_valid_sample`."""
    return lambda n, rng: space.sample_uniform_arrays(n, rng)


def uniform_width_sampler(space: StructureSpace) -> SamplerFn:
    """US-Net / MutualNet subnets: one width multiplier w ~ U[lower_bound, 1] for every layer, a resolution of S.

    Widths are realised exactly as :meth:`StructureSpace.uniform_structure`
    does (nearest multiple of the divisor, clipped into each dimension's
    choices), so every draw is a member of S. Searching these is the fair
    search for runs trained with ``strategy=uniform`` or ``mutual``, which
    never train layer-wise widths.
    """
    o_max = np.array([d.o_max for d in space.dimensions], dtype=np.float64)
    low = np.array([d.choices[0] for d in space.dimensions], dtype=np.int64)
    top = o_max.astype(np.int64)
    div = space.divisor
    resolutions = np.asarray(space.resolutions, dtype=np.int64)

    def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        w = rng.uniform(space.lower_bound, 1.0, size=n)
        widths = np.maximum(div, np.floor(w[:, None] * o_max[None, :] / div + 0.5).astype(np.int64) * div)
        widths = np.minimum(top[None, :], np.maximum(low[None, :], widths))
        return widths, resolutions[rng.integers(0, len(resolutions), size=n)]

    return draw


def prior_sampler(marginals: Marginals) -> SamplerFn:
    return lambda n, rng: sample_from_prior(marginals, n, rng)


def mutate(structure: Structure, marginals: Marginals, prob: float, rng: np.random.Generator) -> Structure:
    """Mutation of the evolutionary search (Sec. 3.4, probability 0.2 in PSE-Net).

    Each gene (every width, then the resolution) mutates with probability
    ``prob``: its value is redrawn from the gene's prior marginal h^(C_l | eps_0)
    *excluding the current value* (renormalised), so ``prob`` is the chance a
    gene actually changes. A gene whose marginal has no mass besides its
    current value stays. The result is in S whenever the marginals' choices
    are S's choices.
    """
    genes = list(structure.widths) + [structure.resolution]
    flips = rng.random(len(genes)) < prob
    for g in np.flatnonzero(flips):
        c, p = marginals.choices[g], marginals.probs[g]
        q = np.where(c == genes[g], 0.0, p)
        total = q.sum()
        if total <= 0:
            continue
        genes[g] = int(c[rng.choice(len(c), p=q / total)])
    return Structure(tuple(genes[:-1]), genes[-1])


def crossover(a: Structure, b: Structure, rng: np.random.Generator) -> Structure:
    """Uniform crossover (Sec. 3.4, as in SPOS): each gene, resolution included, from ``a`` or ``b`` with probability 1/2."""
    if len(a.widths) != len(b.widths):
        raise ValueError("crossover of structures with different numbers of dimensions")
    take_a = rng.random(len(a.widths) + 1) < 0.5
    widths = tuple(x if t else y for x, y, t in zip(a.widths, b.widths, take_a[:-1]))
    return Structure(widths, a.resolution if take_a[-1] else b.resolution)


def trials_per_valid_sample(
    sampler: SamplerFn,
    budget: Budget,
    cost_fn: CostArrayFn,
    rng: np.random.Generator,
    valid: int = 200,
    max_trials: int = 2_000_000,
    chunk: int = 8192,
) -> dict[str, Any]:
    """PSE-Net Fig. 4a: mean draws of ``sampler`` per structure whose cost lies in ``budget``.

    Draws ``chunk`` at a time until ``valid`` in-band structures were seen (the
    count stops exactly at the ``valid``-th) or ``max_trials`` draws were made.
    Returns {"trials", "valid", "trials_per_valid"}; trials_per_valid is None
    when no draw was valid (at least ``max_trials`` draws per valid sample).
    """
    drawn = found = 0
    while drawn < max_trials and found < valid:
        n = min(chunk, max_trials - drawn)
        w, r = sampler(n, rng)
        hits = np.flatnonzero(in_band(cost_fn(w, r), budget))
        need = valid - found
        if hits.size >= need:
            drawn += int(hits[need - 1]) + 1
            found = valid
            break
        found += int(hits.size)
        drawn += n
    return {"trials": int(drawn), "valid": int(found), "trials_per_valid": (drawn / found) if found else None}


def draw_in_band(
    sampler: SamplerFn,
    band: Budget,
    cost_fn: CostArrayFn,
    n: int,
    rng: np.random.Generator,
    exclude: set[str] | frozenset[str] = frozenset(),
    max_trials: int = 1_000_000,
    chunk: int = 4096,
) -> tuple[list[Structure], dict[str, int]]:
    """Up to ``n`` distinct structures from ``sampler`` inside ``band`` (rejection sampling), none in ``exclude``.

    Returns the structures and counters {"trials", "in_band"} (in_band counts
    every in-band draw, duplicates included).
    """
    out: list[Structure] = []
    seen = set(exclude)
    trials = hits = 0
    while len(out) < n and trials < max_trials:
        m = min(chunk, max_trials - trials)
        w, r = sampler(m, rng)
        ok = np.flatnonzero(in_band(cost_fn(w, r), band))
        last = m
        for i in ok:
            hits += 1
            s = Structure(tuple(w[i]), int(r[i]))
            if s.key not in seen:
                seen.add(s.key)
                out.append(s)
                if len(out) >= n:
                    last = int(i) + 1
                    break
        trials += last
    return out, {"trials": int(trials), "in_band": int(hits)}


# ====================================================================== the evolutionary loop
@dataclass
class EvolutionResult:
    evaluated: dict[str, tuple[Structure, float]]      # key -> (structure, fitness), in evaluation order
    history: list[dict[str, Any]] = field(default_factory=list)
    offspring: dict[str, int] = field(default_factory=dict)


def evolve(
    seeds: Sequence[Structure],
    evaluate: Callable[[Structure], float],
    in_band_fn: Callable[[Structure], bool],
    refill: Callable[[int, set[str], np.random.Generator], list[Structure]],
    marginals: Marginals,
    rng: np.random.Generator,
    population: int = 128,
    parents: int = 64,
    mutation_prob: float = 0.2,
    crossover_fraction: float = 0.5,
    generations: int = 20,
    max_evaluations: int = DEFAULT_EVALUATIONS,
    attempts_per_child: int = 10,
) -> EvolutionResult:
    """Evolutionary search of Sec. 3.4 (SPOS protocol, PSE-Net's prior), maximising ``evaluate``.

    Generation 0 evaluates ``seeds`` (P of them: the caller puts half the best
    records and half prior draws there). Each later generation takes the top
    ``parents`` (k) of everything evaluated so far, makes
    ``(1 - crossover_fraction) * P`` children by :func:`mutate` of a random
    parent and the rest by :func:`crossover` of two random parents; children
    outside the band or already seen are rejected (up to
    ``attempts_per_child`` tries per child), and the shortfall is filled by
    ``refill(n, exclude_keys, rng)``, i.e. draws from h^(A | eps_0). The
    search stops after ``generations`` generations, ``max_evaluations``
    distinct evaluations, or when no new structure can be found.
    """
    evaluated: dict[str, tuple[Structure, float]] = {}
    history: list[dict[str, Any]] = []
    counts = {"mutation": 0, "crossover": 0, "prior": 0, "rejected_out_of_band": 0, "rejected_seen": 0}

    def run(batch: Sequence[Structure], gen: int) -> None:
        for s in batch:
            if len(evaluated) >= max_evaluations:
                break
            if s.key not in evaluated:
                evaluated[s.key] = (s, float(evaluate(s)))
        top = sorted(evaluated.values(), key=lambda v: -v[1])[: max(1, parents)]
        history.append({
            "generation": gen, "evaluations": len(evaluated),
            "best": top[0][1] if top else None,
            "parents_mean": float(np.mean([v[1] for v in top])) if top else None,
        })

    first, seen = [], set()
    for s in seeds:
        if s.key not in seen:
            seen.add(s.key)
            first.append(s)
    run(first[:population], 0)
    for gen in range(1, generations + 1):
        if len(evaluated) >= max_evaluations or not evaluated:
            break
        pool = [v[0] for v in sorted(evaluated.values(), key=lambda v: -v[1])[: max(1, parents)]]
        want = min(population, max_evaluations - len(evaluated))
        n_mut = int(round(want * (1.0 - crossover_fraction)))
        children: list[Structure] = []
        taken = set(evaluated)

        def offer(child: Structure, how: str) -> bool:
            if child.key in taken:
                counts["rejected_seen"] += 1
                return False
            if not in_band_fn(child):
                counts["rejected_out_of_band"] += 1
                return False
            taken.add(child.key)
            children.append(child)
            counts[how] += 1
            return True

        for _ in range(n_mut * attempts_per_child):
            if len(children) >= n_mut:
                break
            offer(mutate(pool[int(rng.integers(len(pool)))], marginals, mutation_prob, rng), "mutation")
        if len(pool) >= 2:
            for _ in range((want - n_mut) * attempts_per_child):
                if len(children) >= want:
                    break
                i, j = rng.choice(len(pool), size=2, replace=False)
                offer(crossover(pool[int(i)], pool[int(j)], rng), "crossover")
        if len(children) < want:
            extra = refill(want - len(children), taken, rng)
            counts["prior"] += len(extra)
            children.extend(extra)
        if not children:
            break
        run(children, gen)
    return EvolutionResult(evaluated, history, counts)


# ====================================================================== search_run
class _Evaluator:
    """BN calibration + validation (Eq. 5) of structures, cached by key; keeps BN stats only of kept subnets."""

    def __init__(self, calibrator, calib_batches, val_batches, cost_model, pool_m: dict[str, float]) -> None:
        self.calibrator = calibrator
        self.calib_batches = calib_batches
        self.val_batches = val_batches
        self.cost_model = cost_model
        self.pool_m = pool_m
        self.results: dict[str, Any] = {}      # key -> CalibratedSubnet
        self.stats: dict[str, dict] = {}       # key -> BN statistics (kept subnets only)
        self.calibrations = 0

    def __call__(self, s: Structure):
        from .calibration import calibrate_and_evaluate

        r = self.results.get(s.key)
        if r is None:
            r, stats = calibrate_and_evaluate(self.calibrator, s, self.calib_batches, self.val_batches,
                                              self.cost_model.costs(s), self.pool_m.get(s.key))
            self.results[s.key] = r
            self.stats[s.key] = stats
            self.calibrations += 1
        return r

    def keep_only(self, keys: set[str]) -> None:
        for k in [k for k in self.stats if k not in keys]:
            del self.stats[k]

    def stats_of(self, s: Structure) -> dict:
        if s.key not in self.stats:  # evicted earlier; the calibration is deterministic, so redo it
            self.stats[s.key] = self.calibrator.calibrate(s, self.calib_batches())
        return self.stats[s.key]


def top_candidates(results: Sequence[Any], k: int) -> list[Any]:
    """The k most accurate calibrated subnets, most accurate first (ties: higher m, then evaluation order)."""
    order = sorted(range(len(results)), key=lambda i: (-results[i].accuracy,
                                                        -(results[i].m if results[i].m is not None else -math.inf), i))
    return [results[i] for i in order[:k]]


def resolve_budgets(run_json: dict, ctx, constraint: str | None, budgets: Sequence[float] | None,
                    tolerance: float | None) -> tuple[str, list[Budget]]:
    """The bands to search: the run's own Theta and delta, or ``budgets`` (ascending) with delta = ``tolerance`` or the run's."""
    from .costs import COST_KINDS
    from .pools import format_quantity

    run_constraint = run_json.get("constraint", ctx.budgets[0].kind if ctx.budgets else "macs")
    kind = run_constraint if constraint is None else str(constraint)
    kinds = tuple(getattr(ctx.cost_model, "kinds", COST_KINDS))  # + "latency" when the run has a LUT
    if kind not in kinds:
        raise PssError(f"unknown constraint {kind!r} for this run; choose one of {', '.join(kinds)}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise PssError(f"tolerance must be a positive number, got {tolerance}")
    own = [Budget.from_json(b) for b in run_json.get("budgets") or []] or list(ctx.budgets)
    if budgets is None:
        if kind != run_constraint:
            raise PssError(f"this run's budgets are in {run_constraint}; give budgets (and a tolerance) in {kind}")
        run_budgets = own
        if tolerance is not None:
            run_budgets = [Budget(b.kind, b.value, float(tolerance)) for b in run_budgets]
        return kind, run_budgets
    values = sorted(float(v) for v in budgets)
    if not values:
        raise PssError("give at least one budget")
    if tolerance is None:
        if kind != run_constraint:
            raise PssError(f"budgets in {kind} need a tolerance (the run's delta is in {run_constraint})")
        tolerance = own[0].tolerance
    lo = ctx.cost_model.cost(kind, ctx.space.min_structure)
    hi = ctx.cost_model.cost(kind, ctx.space.max_structure)
    for v in values:
        if not (math.isfinite(v) and lo - tolerance <= v <= hi + tolerance):
            raise PssError(f"budget {format_quantity(v)} is outside this space's range {format_quantity(lo)}..{format_quantity(hi)} {kind}")
    return kind, [Budget(kind, v, float(tolerance)) for v in values]


def search_run(
    run_dir,
    method: str = "evolution",
    budgets: Sequence[float] | None = None,
    constraint: str | None = None,
    tolerance: float | None = None,
    evaluations_per_budget: int = DEFAULT_EVALUATIONS,
    top_k: int | None = None,
    images: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    on_progress: Callable[[int, int, str], None] | None = None,
    *,
    population: int = 128,
    parents: int = 64,
    mutation_prob: float = 0.2,
    crossover_fraction: float = 0.5,
    generations: int = 20,
    prior_temperature: float = 1.0,
    prior_strength: float = 16.0,
    max_trials: int = 2_000_000,
    stats_samples: int = 200,
) -> dict:
    """`pss search`: search each budget band of a trained run; write the front like `pss calibrate`.

    ``method`` is ``"random"`` (uniform draws from S kept when C in theta +/- delta),
    ``"uniform"`` (uniform-width subnets only, :func:`uniform_width_sampler`: the
    fair search for US-Net/MutualNet runs) or ``"evolution"`` (PSE-Net's
    prior-distributed evolutionary search, see the module docstring). Budgets are the run's Theta (with its delta, or
    ``tolerance``) unless ``budgets`` gives values (in ``constraint``, default
    the run's; delta from ``tolerance`` or the run's). Per budget at most
    ``evaluations_per_budget`` distinct structures are BN-calibrated on
    ``images`` training images (default: the run's ``calib_images``) and
    evaluated on the validation split; the ``top_k`` most accurate (default:
    the run's ``calib_top_k``) become the pool's candidates and the best is
    the most accurate (Eq. 5). phi_max and phi_min are calibrated as
    references. Writes ``calibration/front.json`` (the `pss calibrate` format,
    plus ``method`` and ``search``: settings, and per budget evaluations,
    in-band draws and trials per valid sample of the prior vs uniform
    sampling, PSE-Net Fig. 4a) and ``calibration/bn_stats.pt``; returns the
    front. Evolution knobs: ``population`` P, ``parents`` k,
    ``mutation_prob``, ``crossover_fraction``, ``generations``; the prior:
    ``prior_temperature`` (:func:`record_weights`) and ``prior_strength``
    (pseudo-count of the Eq. 16 marginals of a generated structure set in the
    band, :func:`prior_marginals`). ``on_progress(done, total, message)`` is
    called after each evaluated subnet; ``total`` (budgets x
    evaluations_per_budget + 2 references) is an upper bound, reached only
    when every band yields that many distinct structures.
    """
    import functools

    import torch

    from .calibration import BNCalibrator, calibrate_and_evaluate, front_record
    from .context import load_trained_supernet, resolve_device
    from .data import load_data
    from .runs import atomic_torch_save, atomic_write_json, open_run, utc_timestamp
    from .sampling import generate_structure_set
    from .trainer import data_config

    if method not in METHODS:
        raise PssError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    for name, value, least in (("evaluations_per_budget", evaluations_per_budget, 1), ("population", population, 1),
                               ("parents", parents, 1), ("generations", generations, 0)):
        if int(value) < least:
            raise PssError(f"{name} must be at least {least}, got {value}")
    if not 0.0 <= mutation_prob <= 1.0 or not 0.0 <= crossover_fraction <= 1.0:
        raise PssError("mutation_prob and crossover_fraction must lie in [0, 1]")

    run = open_run(run_dir)
    run_json = run.read_run()
    dev = resolve_device(device)
    cfg, ctx, model, state = load_trained_supernet(run, dev)
    kind, bands = resolve_budgets(run_json, ctx, constraint, budgets, tolerance)
    top_k = cfg.calib_top_k if top_k is None else int(top_k)
    images = cfg.calib_images if images is None else int(images)
    if top_k < 1 or images < 1:
        raise PssError(f"{'top_k' if top_k < 1 else 'images'} must be at least 1")
    evaluations_per_budget = int(evaluations_per_budget)
    cost_fn = functools.partial(ctx.cost_model.cost_array, kind)
    space = ctx.space

    t_start = time.perf_counter()
    data = load_data(data_config(cfg))
    calibrator = BNCalibrator(model)
    calib_seed = cfg.seed + 8192  # the same images `pss calibrate` uses
    bs = cfg.eval_batch_size

    def calib_batches():
        return data.calibration_batches(images, bs, torch.Generator().manual_seed(calib_seed), dev)

    def val_batches():
        return data.val_batches(bs, dev)

    pool_m = {e.structure.key: e.m for p in state["pools"] for e in p.entries}
    evaluator = _Evaluator(calibrator, calib_batches, val_batches, ctx.cost_model, pool_m)

    records = load_loss_records(run) if method == "evolution" else LossRecords.empty()
    set_rng = np.random.default_rng([seed, 1])
    g_widths, g_res = generate_structure_set(space, max(1000, int(cfg.structure_set_size)), set_rng)
    g_costs = cost_fn(g_widths, g_res)

    total = len(bands) * evaluations_per_budget + 2
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"{method} search", unit="subnet", dynamic_ncols=True)
    done = [0]

    def tick(message: str) -> None:
        done[0] += 1
        if bar is not None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(1)
        if on_progress is not None:
            on_progress(done[0], total, message)

    per_pool: list[list[Any]] = []
    per_budget_stats: list[dict[str, Any]] = []
    kept: set[str] = set()
    for t, band in enumerate(bands):
        t0 = time.perf_counter()
        calibrations_before = evaluator.calibrations
        rng = np.random.default_rng([seed, 2, t])
        evaluated: list[Any] = []

        def evaluate(s: Structure) -> float:
            r = evaluator(s)
            evaluated.append(r)
            tick(f"budget {t + 1}/{len(bands)}: acc {r.accuracy:.3f}")
            return r.accuracy

        in_g = in_band(g_costs, band)
        set_marginals = counting_marginals(space, g_widths[in_g], g_res[in_g])
        uniform_rate = trials_per_valid_sample(uniform_sampler(space), band, cost_fn, np.random.default_rng([seed, 3, t]),
                                               valid=stats_samples, max_trials=max_trials)
        stat: dict[str, Any] = {"index": t, "budget": band.to_json(), "structure_set_in_band": int(in_g.sum())}
        if method in ("random", "uniform"):
            draw = uniform_sampler(space) if method == "random" else uniform_width_sampler(space)
            found, counters = draw_in_band(draw, band, cost_fn, evaluations_per_budget, rng, max_trials=max_trials)
            for s in found:
                evaluate(s)
            stat.update(draws=counters["trials"], valid_samples=counters["in_band"],
                        trials_per_valid_sample={"uniform": uniform_rate["trials_per_valid"],
                                                 "search_draws": _ratio(counters["trials"], counters["in_band"])})
        else:
            br = band_records(records, space, cost_fn, band)
            marg = prior_marginals(records, space, cost_fn, band, quality=True, temperature=prior_temperature,
                                   base=set_marginals, pseudo_count=prior_strength)
            plain = prior_marginals(records, space, cost_fn, band, quality=False, base=set_marginals, pseudo_count=prior_strength)
            sampler = prior_sampler(marg)
            draws = {"trials": 0, "in_band": 0}

            def refill(n: int, exclude: set[str], r: np.random.Generator) -> list[Structure]:
                got, c = draw_in_band(sampler, band, cost_fn, n, r, exclude=exclude, max_trials=max_trials)
                draws["trials"] += c["trials"]
                draws["in_band"] += c["in_band"]
                return got

            top_records = [Structure.from_key(k) for k in br.ranked_keys()[: population // 2]]
            drawn = refill(population - len(top_records), {s.key for s in top_records}, rng)
            # Interleaved, so an evaluation budget below P still gets both kinds of seed.
            seeds = [s for pair in zip(top_records, drawn) for s in pair]
            seeds += top_records[len(drawn):] + drawn[len(top_records):]

            def fits(s: Structure) -> bool:
                return band.contains(ctx.cost_model.cost(kind, s))

            result = evolve(seeds, evaluate, fits, refill, marg, rng, population=population, parents=parents,
                            mutation_prob=mutation_prob, crossover_fraction=crossover_fraction,
                            generations=generations, max_evaluations=evaluations_per_budget)
            rates = {
                "uniform": uniform_rate["trials_per_valid"],
                "prior_eq16": trials_per_valid_sample(prior_sampler(plain), band, cost_fn, np.random.default_rng([seed, 4, t]),
                                                      valid=stats_samples, max_trials=max_trials)["trials_per_valid"],
                "prior": trials_per_valid_sample(sampler, band, cost_fn, np.random.default_rng([seed, 5, t]),
                                                 valid=stats_samples, max_trials=max_trials)["trials_per_valid"],
                "search_prior_draws": _ratio(draws["trials"], draws["in_band"]),
            }
            stat.update(
                records_in_band=len(br), structures_in_records=len(br.keys), seeds_from_records=len(top_records),
                draws=draws["trials"], valid_samples=draws["in_band"], trials_per_valid_sample=rates,
                generations=len(result.history) - 1, offspring=result.offspring,
                history=[{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in result.history],
                prior=marg.to_json(),
            )
        cands = top_candidates(evaluated, top_k)
        kept |= {c.structure.key for c in cands}
        evaluator.keep_only(kept)
        per_pool.append(cands)
        stat.update(evaluations=len(evaluated), calibrations=evaluator.calibrations - calibrations_before,
                    best_accuracy=cands[0].accuracy if cands else None, seconds=round(time.perf_counter() - t0, 3))
        per_budget_stats.append(stat)

    bn_stats: dict[str, dict[str, torch.Tensor]] = {}
    for cands in per_pool:
        for c in cands:
            bn_stats[c.structure.key] = evaluator.stats_of(c.structure)
    references = {}
    for name, s in (("max", space.max_structure), ("min", space.min_structure)):
        r, stats = calibrate_and_evaluate(calibrator, s, calib_batches, val_batches, ctx.cost_model.costs(s))
        references[name] = r.to_json()
        bn_stats[s.key] = stats
        tick(f"reference {name}: acc {r.accuracy:.3f}")
    if bar is not None:
        bar.close()

    front = front_record(int(state["epoch"]), kind, top_k, min(images, data.num_train), data.num_val, bands, per_pool, references)
    front["method"] = method
    front["search"] = {
        "method": method,
        "searched": utc_timestamp(),
        "seed": int(seed),
        "evaluations_per_budget": evaluations_per_budget,
        "settings": ({"population": population, "parents": parents, "mutation_prob": mutation_prob,
                      "crossover_fraction": crossover_fraction, "generations": generations,
                      "prior_temperature": prior_temperature, "prior_strength": prior_strength}
                     if method == "evolution" else {}),
        "records": {"source": records.source, "rows": len(records), "structures": len(records.keys)} if method == "evolution" else None,
        "seconds": round(time.perf_counter() - t_start, 3),
        "budgets": per_budget_stats,
    }
    atomic_torch_save(bn_stats, run.bn_stats_file)
    atomic_write_json(run.front_file, front)
    return front


def _ratio(trials: int, valid: int) -> float | None:
    return trials / valid if valid else None
