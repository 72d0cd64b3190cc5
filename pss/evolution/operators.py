"""PSE-Net's evolutionary search operators (Sec. 3.4, SPOS protocol with a prior).

Pure functions of :class:`~pss.problem.space.Structure` values and
:class:`~pss.sampling.marginals.Marginals`: :func:`mutate`, :func:`crossover`
and the loop :func:`evolve`, which maximises whatever ``evaluate`` returns
(the search workflow passes calibrated validation accuracy, PSS-Net Eq. 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..problem.space import Structure
from ..sampling.marginals import Marginals

#: Default size of the search: distinct structures calibrated and evaluated per budget.
DEFAULT_EVALUATIONS = 512


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


@dataclass
class EvolutionResult:
    evaluated: dict[str, tuple[Structure, float]]      # key -> (structure, fitness), in evaluation order
    history: list[dict[str, Any]] = field(default_factory=list)
    offspring: dict[str, int] = field(default_factory=dict)


def evolve(
    seeds: Sequence[Structure],
    evaluate: Callable[[Sequence[Structure]], Sequence[float]],
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

    ``evaluate`` scores a whole generation at once (a list of new structures ->
    their fitness, in order), so the caller can calibrate them together; the
    search depends only on the scores, never on how they were computed.

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
        todo = list({s.key: s for s in batch if s.key not in evaluated}.values())[: max(0, max_evaluations - len(evaluated))]
        scores = list(evaluate(todo)) if todo else []
        if len(scores) != len(todo):
            raise ValueError(f"evaluate returned {len(scores)} scores for {len(todo)} structures")
        for s, score in zip(todo, scores):
            evaluated[s.key] = (s, float(score))
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
