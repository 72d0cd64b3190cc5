"""Prioritized subnet sampling: the math of Eq. 3 and 6 and Alg. 3 lines 1-7 (PSS-Net Sec. 3.3).

Samplers know nothing of tensors: they turn budgets, pools and metrics into
:class:`~pss.problem.space.Structure` values. Each equation is a small pure
function so notebooks can show it and tests can pin it; Eq. 4 is in
:mod:`pss.sampling.marginals`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..problem.space import Structure
from .marginals import StructureDistributionSampler
from .pools import SubnetPool


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
