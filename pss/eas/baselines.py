"""The baselines EAS compares its generator with (Sec. 4, "Compared methods" and Fig. 5), on our search code.

* **random** -- architectures drawn uniformly from S (Sec. 3.1's sampler) and
  kept when within the budget: N distinct uniform draws within the ceiling. EAS
  draws one per scenario; we give it the same N calibrated evaluations as the
  generator, which draws from its own distribution with the same rejection and
  the same distinctness. So EAS minus random isolates the generator: everything
  but the distribution the N candidates come from is the same.
* **OFA-T** -- an evolutionary search per (superclass, budget), its fitness the
  superclass's validation accuracy (OFA's search, per task), N evaluations.
* **OFA-V** -- one evolutionary search per budget over all classes; the
  architecture it finds is used for every superclass. It gets N evaluations per
  scenario that shares it (N x K for K superclasses at that budget).

The evolutionary loop is the library's (:func:`pss.evolution.operators.evolve`:
mutation and crossover under the budget, SPOS protocol) with uniform marginals
(OFA has no PSE-Net prior). Fitness is a callback, so this module knows nothing
of tensors.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..evolution.operators import EvolutionResult, evolve
from ..problem.costs import CostModel
from ..problem.space import Structure
from ..sampling.marginals import Marginals
from .draws import DrawTally


def uniform_within_budget(cost_model: CostModel, budget: float, n: int, rng: np.random.Generator, kind: str = "macs",
                          exclude: set[str] | None = None, max_trials: int = 100_000) -> tuple[list[Structure], DrawTally]:
    """Up to n distinct structures drawn uniformly from S (Sec. 3.1) whose cost is <= budget (rejection sampling),
    and the tally of every draw made (in rounds of at least 64; the whole last round is counted)."""
    space = cost_model.space
    seen = set(exclude or ())
    out: list[Structure] = []
    tally = DrawTally()
    while len(out) < n and tally.draws < max_trials:
        chunk = max(64, 4 * (n - len(out)))
        widths, res = space.sample_uniform_arrays(chunk, rng)
        fits = cost_model.cost_array(kind, widths, res) <= budget
        tally.add(res, fits)
        for w, r in zip(widths[fits], res[fits]):
            s = Structure(tuple(w), int(r))
            if s.key not in seen:
                seen.add(s.key)
                out.append(s)
                if len(out) == n:
                    break
    return out, tally


def uniform_tally(cost_model: CostModel, budget: float, draws: int, rng: np.random.Generator, kind: str = "macs") -> DrawTally:
    """The tally of ``draws`` uniform draws from S at this ceiling, nothing kept: how often S itself fits."""
    tally = DrawTally()
    while tally.draws < draws:
        widths, res = cost_model.space.sample_uniform_arrays(min(4096, draws - tally.draws), rng)
        tally.add(res, cost_model.cost_array(kind, widths, res) <= budget)
    return tally


def random_within_budget(cost_model: CostModel, budget: float, n: int, rng: np.random.Generator, kind: str = "macs",
                         exclude: set[str] | None = None, max_trials: int = 100_000) -> list[Structure]:
    """:func:`uniform_within_budget` without the tally (the evolutionary search's refill)."""
    return uniform_within_budget(cost_model, budget, n, rng, kind, exclude, max_trials)[0]


def evolutionary_search(cost_model: CostModel, budget: float, fitness: Callable[[Sequence[Structure]], Sequence[float]],
                        evaluations: int, rng: np.random.Generator, kind: str = "macs", population: int | None = None,
                        mutation_prob: float = 0.2) -> EvolutionResult:
    """OFA's search under a ceiling: ``evaluations`` distinct structures scored by ``fitness`` at most.

    Population ``P`` (default ``max(4, evaluations // 4)``, so about four
    generations), the top half are parents; children over the budget are rejected.
    """
    population = population or max(4, evaluations // 4)
    marginals = Marginals.uniform(cost_model.space)

    def refill(k: int, exclude: set[str], r: np.random.Generator) -> list[Structure]:
        return random_within_budget(cost_model, budget, k, r, kind, exclude)

    def in_budget(s: Structure) -> bool:
        return cost_model.cost(kind, s) <= budget

    seeds = refill(population, set(), rng)
    return evolve(seeds, fitness, in_budget, refill, marginals, rng, population=population, parents=max(2, population // 2),
                  mutation_prob=mutation_prob, generations=1000, max_evaluations=evaluations)


def best_of(result: EvolutionResult) -> Structure | None:
    """The evolution's fittest structure (the first evaluated among equals)."""
    if not result.evaluated:
        return None
    return max(result.evaluated.values(), key=lambda v: v[1])[0]
