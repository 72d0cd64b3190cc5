"""EAS against its baselines on equal terms: pooled superclass means, effort and draw tallies, paired tests (no torch).

What a fair comparison of ways of finding a scenario's architecture needs, as small
pure functions on per-image correctness and on scenarios.json's records:

* **Which superclasses count.** A superclass of one class is 100% for every model
  (argmax over one logit), so it says nothing and would pull every mean towards
  100; :func:`split_one_class` sets such superclasses apart, reported on their own.
* **One mean per method and ceiling.** The test images of the counted
  superclasses are concatenated (:func:`pooled_correct`): images of different
  superclasses are different images, so the mean is the accuracy over all of
  them, each judged by its own superclass's architecture (a superclass weighs as
  many images as it has). Rows are seeds: generator seed s for EAS, search seed s
  for the baselines, so ``per_seed`` pairs like with like.
* **Equal effort, checked.** :func:`effort_summary` reads how many calibrated
  evaluations each scenario was given and actually made; :func:`draw_summary`
  pools the draw tallies (in-budget rate, draws per resolution) of the methods
  that draw within the ceiling.
* **A family of tests.** :func:`compare_family` runs
  :func:`pss.evaluate.statistics.paired_difference` for each pair (reference
  minus other, same images), Holm-adjusts the p-values and the equivalence (TOST)
  p-values over the whole family, and gives each a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..evaluate.statistics import EQUIVALENCE_MARGIN, PairedDifference, holm_adjust, paired_difference, verdict


def split_one_class(class_counts: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(superclasses with two or more classes, superclasses of one class), each in the order given."""
    counted = [s for s, n in class_counts.items() if int(n) >= 2]
    single = [s for s, n in class_counts.items() if int(n) < 2]
    return counted, single


def stack_seeds(per_seed: Mapping[int, np.ndarray]) -> np.ndarray:
    """One (seeds x images) bool array from each seed's per-image correctness, rows in ascending seed order."""
    if not per_seed:
        raise ValueError("no seed measured")
    rows = [np.asarray(per_seed[s], dtype=bool).ravel() for s in sorted(per_seed)]
    if len({r.size for r in rows}) != 1:
        raise ValueError("every seed must be measured on the same images")
    return np.stack(rows)


def pooled_correct(per_superclass: Mapping[str, np.ndarray], superclasses: Sequence[str]) -> np.ndarray:
    """The (seeds x images) correctness of ``superclasses`` side by side: their test images concatenated in the
    order given. Every superclass must have the same seeds (rows)."""
    if not superclasses:
        raise ValueError("no superclass to pool (all of them have one class?)")
    arrays = [np.asarray(per_superclass[s], dtype=bool) for s in superclasses]
    if any(a.ndim != 2 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("each superclass needs a (seeds x images) array with the same seeds")
    return np.concatenate(arrays, axis=1)


@dataclass(frozen=True)
class EffortSummary:
    """Calibrated evaluations per scenario of one method: what was asked (N) and what was made, over its records."""

    requested: tuple[int, ...]
    """The distinct N the records were given (one value when the comparison is like for like)."""
    made_min: float
    made_max: float
    made_mean: float
    scenarios: int
    short: int
    """Scenarios that made fewer evaluations than requested (fewer distinct candidates existed or were found)."""
    unknown: int
    """Records without an evaluation count (written before it was recorded)."""


def effort_summary(records: Sequence[Mapping[str, Any]]) -> EffortSummary:
    """How many calibrated evaluations ``records`` (scenarios.json records of one method) asked for and made."""
    known = [r for r in records if r.get("evaluations") is not None]
    made = [float(r["evaluations"]) for r in known]
    requested = tuple(sorted({int(r["evaluations_requested"]) for r in known if r.get("evaluations_requested") is not None}))
    short = sum(1 for r in known if r.get("evaluations_requested") is not None
                and float(r["evaluations"]) < int(r["evaluations_requested"]))
    nan = float("nan")
    return EffortSummary(requested, min(made) if made else nan, max(made) if made else nan,
                         float(np.mean(made)) if made else nan, len(records), short, len(records) - len(known))


@dataclass(frozen=True)
class DrawSummary:
    """Draws within the ceiling of one method, pooled over its records: the in-budget rate (all draws together and
    its range over scenarios) and the share of draws (before and after rejection) at each input resolution."""

    draws: int
    in_budget: int
    rate_min: float
    rate_max: float
    resolution_share: dict[int, float]
    in_budget_resolution_share: dict[int, float]
    scenarios: int

    @property
    def in_budget_rate(self) -> float:
        return self.in_budget / self.draws if self.draws else float("nan")


def _shares(counts: Mapping[int, int]) -> dict[int, float]:
    total = sum(counts.values())
    return {r: (n / total if total else float("nan")) for r, n in sorted(counts.items())}


def draw_summary(records: Sequence[Mapping[str, Any]]) -> DrawSummary | None:
    """:class:`DrawSummary` of the records that carry a draw tally (eas, random); None when none does."""
    tallied = [r for r in records if r.get("in_budget") is not None and r.get("draws")]
    if not tallied:
        return None
    res: dict[int, int] = {}
    fit: dict[int, int] = {}
    for r in tallied:
        for key, n in (r.get("draw_resolutions") or {}).items():
            res[int(key)] = res.get(int(key), 0) + int(n)
        for key, n in (r.get("in_budget_resolutions") or {}).items():
            fit[int(key)] = fit.get(int(key), 0) + int(n)
    for r in res:
        fit.setdefault(r, 0)
    rates = [int(r["in_budget"]) / int(r["draws"]) for r in tallied]
    return DrawSummary(sum(int(r["draws"]) for r in tallied), sum(int(r["in_budget"]) for r in tallied), min(rates),
                       max(rates), _shares(res), _shares(fit), len(tallied))


@dataclass(frozen=True)
class Comparison:
    """One test of a family: reference minus other at one ceiling, with Holm-adjusted p-values and the verdict."""

    reference: str
    other: str
    budget: float
    result: PairedDifference
    p_holm: float
    tost_holm: float
    verdict: str
    family: int
    """How many tests the Holm adjustment covered."""


def compare_family(pairs: Sequence[tuple[str, str, float, np.ndarray, np.ndarray]],
                   margin: float = EQUIVALENCE_MARGIN) -> list[Comparison]:
    """Each (reference, other, budget, reference correctness, other correctness) pair, both (seeds x images) on the
    same images: the paired difference, then Holm over the family for both the difference test and the
    equivalence test (TOST at ±``margin``), and :func:`pss.evaluate.statistics.verdict` on the adjusted pair."""
    results = [paired_difference(a, b, margin) for _, _, _, a, b in pairs]
    p = holm_adjust([r.p_value for r in results])
    tost = holm_adjust([r.tost_p for r in results])
    return [Comparison(ref, other, float(budget), r, p[i], tost[i], verdict(p[i], tost[i]), len(pairs))
            for i, ((ref, other, budget, _, _), r) in enumerate(zip(pairs, results))]
