"""`pss search`: search each budget band of a trained supernet, and write the front like `pss calibrate`.

`pss calibrate` only looks at what the pools collected during training (PSS-Net
Alg. 1 lines 11-17). :func:`search_run` instead searches the structure space S
of a trained supernet for each budget theta +/- delta: every structure it
evaluates gets its BN statistics re-estimated on training images and its
accuracy measured on the validation split (PSS-Net Eq. 5), exactly as in
calibration, and the top-k per budget are written as the run's calibrated
front (the `pss calibrate` format, plus a ``method`` and a ``search``
section), so `pss export` and the dashboard work on the result unchanged.

Three methods:

* ``random``: uniform draws from S (Sec. 3.1 of PSS-Net), rejected unless the
  cost lies in the band, ``evaluations_per_budget`` distinct ones evaluated.
* ``uniform``: the same with uniform-width subnets only (the fair search for
  US-Net and MutualNet runs, which never train layer-wise widths).
* ``evolution``: PSE-Net Sec. 3.3-3.4. A prior h^(A | eps) over structures is
  built per budget from the training-loss records of the run (Eq. 15-20,
  :mod:`pss.evolution.prior`); P seeds (half the best records in the band, half
  drawn from the prior), top-k parents by calibrated validation accuracy,
  mutation and uniform crossover (:mod:`pss.evolution.operators`), offspring
  outside the band rejected and replaced by prior draws.

Candidates are evaluated in groups (a band's draws; a generation of the
evolution) that share the work of their common prefixes
(:meth:`~pss.workflows.evaluation.SubnetEvaluator.evaluate_many`): the same
statistics and accuracies as one at a time, bit for bit, so the same front.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import SEARCH_METHODS
from ..errors import PssError
from ..evaluate.selection import CalibratedSubnet, top_candidates
from ..io.files import ensure_writable
from ..io.run import RunDir, open_run
from ..nn.device import resolve_device
from ..problem.budgets import Budget
from ..problem.problem import Problem
from ..problem.space import Structure, StructureSpace
from ..sampling.strategies import trained_family
from ..sampling.marginals import (
    CostArrayFn,
    Marginals,
    draw_in_band,
    generate_structure_set,
    marginals_draw,
    trials_per_valid_sample,
    uniform_draw,
    uniform_width_draw,
)
from ..evolution.operators import DEFAULT_EVALUATIONS, evolve
from ..evolution.prior import prior_marginals
from ..evolution.records import LossRecords, band_records, records_from_snapshots
from ..units import format_quantity
from ..version import utc_timestamp
from .evaluation import SubnetEvaluator, open_evaluator, write_calibrated_front
from .loaded import load_trained
from .progress import Progress, ProgressFn

METHODS = SEARCH_METHODS


def load_loss_records(run: RunDir) -> LossRecords:
    """:func:`~pss.evolution.records.records_from_snapshots` over every readable snapshot of a run."""
    return records_from_snapshots(run.read_snapshots())


def resolve_budgets(run_json: dict, problem: Problem, constraint: str | None, budgets: Sequence[float] | None,
                    tolerance: float | None) -> tuple[str, list[Budget]]:
    """The bands to search: the run's own Theta and delta, or ``budgets`` (ascending) with delta = ``tolerance`` or the run's."""
    run_constraint = run_json.get("constraint", problem.budgets[0].kind if problem.budgets else "macs")
    kind = run_constraint if constraint is None else str(constraint)
    kinds = problem.cost_model.kinds  # + "latency" when the run has a LUT
    if kind not in kinds:
        raise PssError(f"unknown constraint {kind!r} for this run; choose one of {', '.join(kinds)}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise PssError(f"tolerance must be a positive number, got {tolerance}")
    own = [Budget.from_json(b) for b in run_json.get("budgets") or []] or list(problem.budgets)
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
    lo, hi = problem.cost_range(kind)
    for v in values:
        if not (math.isfinite(v) and lo - tolerance <= v <= hi + tolerance):
            raise PssError(f"budget {format_quantity(v)} is outside this space's range {format_quantity(lo)}..{format_quantity(hi)} {kind}")
    return kind, [Budget(kind, v, float(tolerance)) for v in values]


@dataclass
class EvolutionSettings:
    """Knobs of the evolutionary search (PSE-Net Sec. 3.4) and of its prior (Eq. 16, 20)."""

    population: int = 128
    parents: int = 64
    mutation_prob: float = 0.2
    crossover_fraction: float = 0.5
    generations: int = 20
    prior_temperature: float = 1.0
    prior_strength: float = 16.0

    def validate(self) -> None:
        for name, least in (("population", 1), ("parents", 1), ("generations", 0)):
            if int(getattr(self, name)) < least:
                raise PssError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if not 0.0 <= self.mutation_prob <= 1.0 or not 0.0 <= self.crossover_fraction <= 1.0:
            raise PssError("mutation_prob and crossover_fraction must lie in [0, 1]")


def _ratio(trials: int, valid: int) -> float | None:
    return trials / valid if valid else None


class _BandSearch:
    """What every band's search shares: the problem, its cost function, the evaluator and the counters."""

    def __init__(self, problem: Problem, kind: str, evaluator: SubnetEvaluator, progress: Progress, seed: int,
                 evaluations: int, max_trials: int, stats_samples: int, space: StructureSpace | None = None) -> None:
        self.problem, self.space, self.kind = problem, space or problem.space, kind
        self.cost_fn: CostArrayFn = problem.cost_fn(kind)
        self.evaluator, self.progress, self.seed = evaluator, progress, seed
        self.evaluations, self.max_trials, self.stats_samples = evaluations, max_trials, stats_samples

    def trials_per_valid(self, draw, band: Budget, stream: int, t: int) -> float | None:
        """Fig. 4a's figure for one draw function in one band, with an RNG stream of its own."""
        rng = np.random.default_rng([self.seed, stream, t])
        return trials_per_valid_sample(draw, band, self.cost_fn, rng, valid=self.stats_samples, max_trials=self.max_trials)["trials_per_valid"]

    def evaluate_into(self, evaluated: list[CalibratedSubnet], t: int, n_bands: int) -> _BandEvaluations:
        """What a band's search evaluates with: structures are recorded into ``evaluated``, one progress tick each."""
        def tick(r: CalibratedSubnet) -> None:
            self.progress.tick(f"budget {t + 1}/{n_bands}: acc {r.accuracy:.3f}")

        return _BandEvaluations(self.evaluator, evaluated, tick)

    def by_drawing(self, draw, band: Budget, evaluate: _BandEvaluations, rng: np.random.Generator) -> dict[str, Any]:
        """random / uniform: up to ``evaluations`` distinct in-band draws, evaluated together."""
        found, counters = draw_in_band(draw, band, self.cost_fn, self.evaluations, rng, max_trials=self.max_trials)
        evaluate(found)
        return {"draws": counters["trials"], "valid_samples": counters["in_band"],
                "search_draws": _ratio(counters["trials"], counters["in_band"])}

    def by_enumeration(self, members: Sequence[Structure], draw, band: Budget, evaluate: _BandEvaluations,
                       rng: np.random.Generator) -> dict[str, Any]:
        """uniform: the family's uniform-width subnets in the band are few and known; all of them when they
        number at most ``evaluations``, else ``evaluations`` distinct ones as uniform draws find them."""
        costs = self.cost_fn(np.array([s.widths for s in members], dtype=np.int64).reshape(len(members), -1),
                             np.array([s.resolution for s in members], dtype=np.int64)) if members else np.zeros(0)
        inside = [s for s, ok in zip(members, band.contains_array(costs)) if ok]
        if len(inside) <= self.evaluations:
            evaluate(inside)
            return {"available": len(inside), "draws": 0, "valid_samples": len(inside), "search_draws": None}
        found = self.by_drawing(draw, band, evaluate, rng)
        return {"available": len(inside), **found}

    def by_evolution(self, band: Budget, evaluate: _BandEvaluations, rng: np.random.Generator, records: LossRecords,
                     set_marginals: Marginals, knobs: EvolutionSettings, t: int) -> dict[str, Any]:
        """evolution: seeds from the best records and the prior, then PSE-Net's evolutionary loop."""
        br = band_records(records, self.space, self.cost_fn, band)
        marg = prior_marginals(records, self.space, self.cost_fn, band, quality=True, temperature=knobs.prior_temperature,
                               base=set_marginals, pseudo_count=knobs.prior_strength)
        plain = prior_marginals(records, self.space, self.cost_fn, band, quality=False, base=set_marginals,
                                pseudo_count=knobs.prior_strength)
        draw = marginals_draw(marg)
        draws = {"trials": 0, "in_band": 0}

        def refill(n: int, exclude: set[str], r: np.random.Generator) -> list[Structure]:
            got, c = draw_in_band(draw, band, self.cost_fn, n, r, exclude=exclude, max_trials=self.max_trials)
            draws["trials"] += c["trials"]
            draws["in_band"] += c["in_band"]
            return got

        def in_band(s: Structure) -> bool:
            return band.contains(self.problem.cost_model.cost(self.kind, s))

        top_records = [Structure.from_key(k) for k in br.ranked_keys()[: knobs.population // 2]]
        drawn = refill(knobs.population - len(top_records), {s.key for s in top_records}, rng)
        # Interleaved, so an evaluation budget below P still gets both kinds of seed.
        seeds = [s for pair in zip(top_records, drawn) for s in pair]
        seeds += top_records[len(drawn):] + drawn[len(top_records):]
        result = evolve(seeds, evaluate, in_band, refill, marg, rng,
                        population=knobs.population, parents=knobs.parents, mutation_prob=knobs.mutation_prob,
                        crossover_fraction=knobs.crossover_fraction, generations=knobs.generations,
                        max_evaluations=self.evaluations)
        return {
            "records_in_band": len(br), "structures_in_records": len(br.keys), "seeds_from_records": len(top_records),
            "draws": draws["trials"], "valid_samples": draws["in_band"],
            "prior_eq16": self.trials_per_valid(marginals_draw(plain), band, 4, t),
            "prior": self.trials_per_valid(draw, band, 5, t),
            "search_prior_draws": _ratio(draws["trials"], draws["in_band"]),
            "generations": len(result.history) - 1, "offspring": result.offspring,
            "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in result.history],
            "prior_marginals": marg.to_json(),
        }


class _BandEvaluations:
    """Every structure one band's search evaluates, in the order asked, with a progress tick each.

    Called with a list (random / uniform draws, or one generation of the
    evolution), it calibrates the list together
    (:meth:`SubnetEvaluator.evaluate_many`) and returns their accuracies.
    """

    def __init__(self, evaluator: SubnetEvaluator, evaluated: list[CalibratedSubnet],
                 tick: Callable[[CalibratedSubnet], None]) -> None:
        self.evaluator, self.evaluated, self.tick = evaluator, evaluated, tick

    def __call__(self, structures: Sequence[Structure]) -> list[float]:
        return [r.accuracy for r in self.evaluator.evaluate_many(structures, on_result=self._record)]

    def _record(self, r: CalibratedSubnet) -> None:
        self.evaluated.append(r)
        self.tick(r)


#: per-band statistics that are trials-per-valid-sample figures (grouped under that name in the front)
_RATE_KEYS = ("search_draws", "prior_eq16", "prior", "search_prior_draws")


def search_run(
    run_dir: str | Path | RunDir,
    method: str | None = None,
    budgets: Sequence[float] | None = None,
    constraint: str | None = None,
    tolerance: float | None = None,
    evaluations_per_budget: int = DEFAULT_EVALUATIONS,
    top_k: int | None = None,
    images: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
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

    Budgets are the run's Theta (with its delta, or ``tolerance``) unless
    ``budgets`` gives values (in ``constraint``, default the run's; delta from
    ``tolerance`` or the run's). Per budget at most ``evaluations_per_budget``
    distinct structures are BN-calibrated on ``images`` training images
    (default: the run's ``calib_images``) and evaluated on the validation
    split; the ``top_k`` most accurate (default: the run's ``calib_top_k``)
    become the budget's candidates and the best is the most accurate (Eq. 5).
    phi_max and phi_min are calibrated as references. The front's ``search``
    section records the settings and, per budget, the evaluations, in-band
    draws and trials per valid sample of the prior vs uniform sampling
    (PSE-Net Fig. 4a). Evolution knobs: :class:`EvolutionSettings`.
    ``on_progress(done, total, message)`` is called after each evaluated
    subnet; ``total`` (budgets x evaluations_per_budget + 2 references) is an
    upper bound, reached only when every band yields that many distinct structures.
    """
    if method is not None and method not in METHODS:
        raise PssError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    if int(evaluations_per_budget) < 1:
        raise PssError(f"evaluations_per_budget must be at least 1, got {evaluations_per_budget}")
    knobs = EvolutionSettings(population, parents, mutation_prob, crossover_fraction, generations, prior_temperature, prior_strength)
    knobs.validate()

    run = run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    ensure_writable(run.front_file.parent)  # before the search, not after it
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    kind, bands = resolve_budgets(trained.run_json, trained.problem, constraint, budgets, tolerance)
    top_k = trained.cfg.calib_top_k if top_k is None else int(top_k)
    if top_k < 1:
        raise PssError("top_k must be at least 1")
    evaluations = int(evaluations_per_budget)
    t_start = time.perf_counter()
    family = trained_family(trained.cfg.strategy, trained.problem.space)
    if method is None:  # what the run trained decides: uniform widths, or PSE-Net's evolution over layer-wise widths
        method = "uniform" if family.uniform_widths else "evolution"
    if family.uniform_widths and method != "uniform":
        raise PssError(f"this run ({trained.cfg.strategy}) trained {family.describe()} only; a {method} search would pick "
                       "layer-wise widths it never trained: use --method uniform")
    evaluator = open_evaluator(trained, images, dev)
    space = family.space(trained.problem.space)  # search only what the run trained (its resolutions)

    records = load_loss_records(run) if method == "evolution" else LossRecords.empty()
    g_widths, g_res = generate_structure_set(space, max(1000, int(trained.cfg.structure_set_size)), np.random.default_rng([seed, 1]))

    per_pool: list[list[CalibratedSubnet]] = []
    per_budget_stats: list[dict[str, Any]] = []
    kept: set[str] = set()
    with Progress(len(bands) * evaluations + 2, f"{method} search", bar=progress, on_progress=on_progress) as bar:
        search = _BandSearch(trained.problem, kind, evaluator, bar, seed, evaluations, max_trials, stats_samples, space)
        uniform_members = [s for r in space.resolutions for s in space.uniform_structures(r)] if method == "uniform" else []
        g_costs = search.cost_fn(g_widths, g_res)
        for t, band in enumerate(bands):
            t0, calibrations_before = time.perf_counter(), evaluator.calibrations
            rng = np.random.default_rng([seed, 2, t])
            evaluated: list[CalibratedSubnet] = []
            evaluate = search.evaluate_into(evaluated, t, len(bands))
            in_g = band.contains_array(g_costs)
            if method == "evolution":
                found = search.by_evolution(band, evaluate, rng, records, Marginals.count(space, g_widths[in_g], g_res[in_g]), knobs, t)
            elif method == "uniform":
                found = search.by_enumeration(uniform_members, uniform_width_draw(space), band, evaluate, rng)
            else:
                found = search.by_drawing(uniform_draw(space), band, evaluate, rng)
            rates = {"uniform": search.trials_per_valid(uniform_draw(space), band, 3, t),
                     **{k: found.pop(k) for k in _RATE_KEYS if k in found}}
            prior = found.pop("prior_marginals", None)
            cands = top_candidates(evaluated, top_k)
            kept |= {c.key for c in cands}
            evaluator.keep_only(kept)
            per_pool.append(cands)
            per_budget_stats.append({
                "index": t, "budget": band.to_json(), "structure_set_in_band": int(in_g.sum()), **found,
                "trials_per_valid_sample": rates, **({"prior": prior} if prior is not None else {}),
                "evaluations": len(evaluated), "calibrations": evaluator.calibrations - calibrations_before,
                "best_accuracy": cands[0].accuracy if cands else None, "seconds": round(time.perf_counter() - t0, 3),
            })
        search_section = {
            "method": method,
            "searched": utc_timestamp(),
            "seed": int(seed),
            "evaluations_per_budget": evaluations,
            "settings": dataclasses.asdict(knobs) if method == "evolution" else {},
            "records": {"source": records.source, "rows": len(records), "structures": len(records.keys)} if method == "evolution" else None,
            "budgets": per_budget_stats,
        }

        def extra() -> dict[str, Any]:  # after the references, so the time covers the whole search
            search_section["seconds"] = round(time.perf_counter() - t_start, 3)
            return {"method": method, "search": search_section}

        front = write_calibrated_front(trained, evaluator, kind, top_k, bands, per_pool, bar, extra=extra)
    return front
