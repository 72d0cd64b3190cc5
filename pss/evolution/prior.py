"""PSE-Net's prior over structures in a budget band (Eq. 15-16, 20 as intended).

h^(A | eps_0) = prod_l h^(C_l | eps_0): per gene, how often each value occurs
among the training records of the band, each record weighted by how good it
was (:func:`record_weights`), smoothed towards a base distribution.
"""

from __future__ import annotations

import math

import numpy as np

from ..problem.budgets import Budget
from ..problem.space import StructureSpace
from ..sampling.marginals import CostArrayFn, Marginals, space_choices
from .records import LossRecords, band_records


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
