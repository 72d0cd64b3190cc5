"""Eq. 3, 4, 6 and Alg. 3 (pool insert / evict / update), pinned."""

from __future__ import annotations


import numpy as np
import pytest

from pss.errors import PssError
from pss.problem.budgets import Budget, make_budgets
from pss.problem.costs import CostModel
from pss.problem.models import build_spec
from pss.problem.space import Structure, StructureSpace, resolution_range
from pss.sampling.marginals import StructureDistributionSampler, naive_trials, structure_marginals
from pss.sampling.pools import SubnetPool, moving_average_metric
from pss.sampling.prioritized import (
    pool_temperature,
    prioritized_probs,
    prioritized_sample,
    space_sampling_probability,
    training_progress,
)


def _space(model="mobilenet_v2", wm=0.5):
    spec = build_spec(model, 10, width_mult=wm, stem="cifar")
    space = StructureSpace(spec.dim_names, spec.dim_max, resolution_range(24, 32, 4))
    return spec, space, CostModel(spec, space)


def _s(*w, r=32):
    return Structure(tuple(w), r)


# ---------------------------------------------------------------- Eq. 3
def test_eq3_p_is_one_while_pool_not_full():
    for progress in (0.0, 0.3, 0.99, 1.0):
        assert space_sampling_probability(0.01, progress, pool_full=False) == 1.0


def test_eq3_p_anneals_to_p_end_once_full():
    assert space_sampling_probability(0.01, 0.0, True) == 1.0
    assert space_sampling_probability(0.01, 0.5, True) == pytest.approx(0.1)
    assert space_sampling_probability(0.01, 1.0, True) == pytest.approx(0.01)
    values = [space_sampling_probability(0.01, x, True) for x in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_eq3_fractional_epoch_progress():
    assert training_progress(0, 0, 10, 4) == 0.0
    assert training_progress(1, 5, 10, 4) == pytest.approx(1.5 / 4)
    assert training_progress(3, 9, 10, 4) == pytest.approx(3.9 / 4)
    # a 2-epoch run still anneals smoothly inside each epoch
    ps = [space_sampling_probability(0.01, training_progress(0, b, 10, 2), True) for b in range(10)]
    assert len(set(ps)) == 10


def test_eta_follows_the_same_schedule():
    assert pool_temperature(0.01, 0.7, False) == 1.0
    assert pool_temperature(0.001, 1.0, True) == pytest.approx(0.001)


# ---------------------------------------------------------------- Eq. 6
def test_eq6_softmax_values():
    q = prioritized_probs([-1.0, -2.0, -3.0], 1.0)
    e = np.exp([-1.0, -2.0, -3.0])
    np.testing.assert_allclose(q, e / e.sum())
    assert q.sum() == pytest.approx(1.0)


def test_eq6_temperature_limits_and_stability():
    m = [-0.5, -0.6, -2.0]
    assert np.allclose(prioritized_probs(m, 1e6), 1 / 3, atol=1e-5)  # hot: uniform
    assert prioritized_probs(m, 0.01)[0] > 0.99  # cold: one-hot on the best m
    q = prioritized_probs([-1000.0, -1001.0], 0.01)  # no overflow / nan
    assert np.isfinite(q).all() and q[0] == pytest.approx(1.0)
    np.testing.assert_allclose(prioritized_probs(m, 0.3), prioritized_probs(np.array(m) + 7, 0.3))


# ---------------------------------------------------------------- Eq. 4
def test_eq4_marginals_count_values():
    rows = np.array([[0, 1], [0, 2], [1, 2], [0, 2]])
    marg = structure_marginals(rows, [2, 3])
    np.testing.assert_allclose(marg[0], [0.75, 0.25])
    np.testing.assert_allclose(marg[1], [0.0, 0.25, 0.75])


def test_eq4_sampler_meets_every_budget_with_few_trials():
    spec, space, cm = _space()
    budgets = make_budgets("macs", cm.macs(space.min_structure), cm.macs(space.max_structure), count=8)
    rng = np.random.default_rng(0)
    sampler = StructureDistributionSampler(space, cm.macs_array, budgets, rng, set_size=40_000)
    assert min(sampler.bucket_sizes) > 50, sampler.bucket_sizes
    for t, b in enumerate(budgets):
        trials = []
        for _ in range(20):
            s, n = sampler.sample(t, rng)
            assert space.contains(s)
            assert b.contains(cm.macs(s))
            trials.append(n)
        assert 1 <= np.mean(trials) < 50
    assert sampler.fallbacks == 0


def test_eq4_fallback_after_max_trials_still_meets_budget():
    spec, space, cm = _space()
    budgets = make_budgets("macs", cm.macs(space.min_structure), cm.macs(space.max_structure), count=40)
    rng = np.random.default_rng(1)
    sampler = StructureDistributionSampler(space, cm.macs_array, budgets, rng, set_size=20_000, max_trials=1, chunk=1)
    t = 1
    for _ in range(200):
        s, n = sampler.sample(t, rng)
        assert budgets[t].contains(cm.macs(s)) and n == 1
    assert sampler.fallbacks > 0


def test_eq4_beats_naive_uniform_sampling_at_the_extreme_pools():
    """The paper's observation (Sec. 3.3): ~10 trials with Eq. 4 instead of ~1e6 naive ones."""
    spec, space, cm = _space()
    budgets = make_budgets("macs", cm.macs(space.min_structure), cm.macs(space.max_structure), count=40)
    rng = np.random.default_rng(2)
    sampler = StructureDistributionSampler(space, cm.macs_array, budgets, rng, set_size=40_000)
    for t in (0, len(budgets) - 1):
        eq4 = np.mean([sampler.sample(t, rng)[1] for _ in range(30)])
        naive = naive_trials(space, cm.macs_array, budgets[t], rng, cap=200_000)
        assert eq4 < 5 and naive > 100 * eq4, (t, eq4, naive)


# ---------------------------------------------------------------- budgets
def test_budgets_by_count_and_step():
    bs = make_budgets("macs", 10.0, 20.0, count=4)
    assert [b.value for b in bs] == pytest.approx([12, 14, 16, 18])
    assert all(b.tolerance == pytest.approx(1.0) for b in bs)  # delta = step / 2
    bs = make_budgets("macs", 10.0, 20.0, step=3.0)
    assert [b.value for b in bs] == pytest.approx([13, 16, 19])
    assert make_budgets("macs", 10.0, 20.0, step=3.0, tolerance=0.2)[0].tolerance == 0.2
    with pytest.raises(PssError):
        make_budgets("macs", 10.0, 20.0, step=30.0)
    with pytest.raises(PssError):
        make_budgets("macs", 10.0, 20.0)
    assert Budget("macs", 10, 1).contains(11) and not Budget("macs", 10, 1).contains(11.01)


# ---------------------------------------------------------------- Alg. 3 lines 8-17
def test_pool_insert_keeps_decreasing_m_and_evicts_worst():
    pool = SubnetPool(Budget("macs", 1.0, 1.0), capacity=3)
    for i, m in enumerate([-2.0, -1.0, -3.0]):
        assert pool.insert(_s(8 * (i + 1)), m, {"macs": 1}) is None
    assert pool.metrics() == [-1.0, -2.0, -3.0] and pool.is_full
    evicted = pool.insert(_s(40), -1.5, {"macs": 1})  # better than the worst: worst goes
    assert evicted.m == -3.0 and len(pool) == 3
    assert pool.metrics() == [-1.0, -1.5, -2.0]
    evicted = pool.insert(_s(48), -9.0, {"macs": 1})  # worse than all M: the newcomer goes
    assert evicted.structure == _s(48) and _s(48) not in pool
    assert pool.counters.pushes == 5 and pool.counters.evictions == 2


def test_pool_update_is_the_moving_average_of_alg3():
    lam = 0.9
    pool = SubnetPool(Budget("macs", 1.0, 1.0), capacity=5)
    pool.insert(_s(8), -1.0, {})
    pool.insert(_s(16), -2.0, {})
    pool.record(_s(16), -0.1, {}, lam)  # already held: m = lam * m + (1 - lam) * (-batch_loss)
    entry = pool.get(_s(16))
    assert entry.m == pytest.approx(0.9 * -2.0 + 0.1 * -0.1) == pytest.approx(moving_average_metric(-2.0, -0.1, lam))
    assert entry.times_sampled == 2 and len(pool) == 2
    for _ in range(30):
        pool.record(_s(16), -0.1, {}, lam)
    assert pool.entries[0].structure == _s(16)  # re-sorted after updates
    with pytest.raises(ValueError):
        pool.insert(_s(8), 0.0, {})


def test_pool_json_round_trip_keyed_by_structure():
    pool = SubnetPool(Budget("macs", 5e6, 5e5), capacity=4)
    for i in range(6):
        pool.record(_s(8 * (i + 1), r=24 + 4 * (i % 3)), -float(i), {"macs": i}, 0.9)
    again = SubnetPool.from_json(pool.to_json())
    assert [e.structure.key for e in again] == [e.structure.key for e in pool]
    assert again.metrics() == pool.metrics() and again.capacity == 4
    assert again.budget == pool.budget


def test_prioritized_sample_sources():
    spec, space, cm = _space()
    budgets = make_budgets("macs", cm.macs(space.min_structure), cm.macs(space.max_structure), count=3)
    rng = np.random.default_rng(3)
    sampler = StructureDistributionSampler(space, cm.macs_array, budgets, rng, set_size=20_000)
    pool = SubnetPool(budgets[0], capacity=4)
    s, src, trials = prioritized_sample(pool, sampler, 0, 1.0, 0.01, 0.01, rng)
    assert src == "space" and trials >= 1  # empty pool: always S
    while not pool.is_full:
        pool.record(sampler.sample(0, rng)[0], -float(rng.random()), {}, 0.9)
    srcs = [prioritized_sample(pool, sampler, 0, 1.0, 0.01, 0.01, rng)[1] for _ in range(300)]
    assert 0.95 < srcs.count("pool") / 300  # p = p_end = 0.01 at the end of training
    best = pool.entries[0].structure
    picks = [prioritized_sample(pool, sampler, 0, 1.0, 1e-6, 1e-3, rng)[0] for _ in range(50)]
    assert all(p == best for p in picks)  # eta -> 0: one-hot on the best m
