"""Many subnets calibrated together give the results of one at a time (pss/evaluate/calibration.py, workflows).

``BNCalibrator.calibrate_many`` / ``measure_many`` run a prefix tree of blocks (structures with the same
resolution and the same channels in blocks 1..b share those blocks' forwards); ``SubnetEvaluator.evaluate_many``
groups structures for it, and `pss calibrate` and `pss search` use it. The claim checked here is exactness:
the same BN statistics and validation counts as calibrating and measuring one structure at a time, and so the
same front, bit for bit, for the same seed.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import helpers
from pss.data import load_data
from pss.evaluate import calibration
from pss.evaluate.calibration import BNCalibrator, block_channels, calibrate_and_evaluate
from pss.io.checkpoint import read_bn_stats
from pss.io.run import RunDir
from pss.problem.space import Structure
from pss.workflows import evaluation
from pss.workflows.calibrate import calibrate_run
from pss.workflows.evaluation import SubnetEvaluator
from pss.workflows.loaded import load_trained
from pss.workflows.search import search_run


@pytest.fixture(scope="module")
def opened(trained_run):
    trained = load_trained(trained_run, "cpu")
    return trained, load_data(trained.cfg, create=False)


def _mixed_structures(space) -> list[Structure]:
    """Max, min, random ones at every resolution, near-twins that share all but the last block, and a duplicate."""
    rng = np.random.default_rng(7)
    drawn = [space.sample_uniform(rng) for _ in range(6)]
    s = drawn[0]
    twin = Structure(s.widths[:-1] + (space.min_structure.widths[-1] if s.widths[-1] != space.min_structure.widths[-1]
                                      else space.max_structure.widths[-1],), s.resolution)
    other_res = Structure(s.widths, next(r for r in space.resolutions if r != s.resolution))
    out = [space.max_structure, space.min_structure, *drawn, twin, other_res, drawn[2]]
    assert {x.resolution for x in out} == set(space.resolutions)
    return out


def _batches(data, images: int, batch: int, seed: int = 0):
    """Calibration batches with a partial last one (``images`` not a multiple of ``batch``)."""
    return list(data.calibration_batches(images, batch, torch.Generator().manual_seed(seed), "cpu"))


def test_the_tree_shares_blocks_of_structures_with_equal_prefixes(opened):
    trained, _ = opened
    space = trained.problem.space
    structures = _mixed_structures(space)
    cal = BNCalibrator(trained.supernet)
    roots = cal._tree(structures, None)
    nodes = []

    def walk(node):
        for child in node.children.values():
            nodes.append(child)
            walk(child)

    for root in roots.values():
        walk(root)
    blocks = len(trained.problem.spec.blocks)
    assert len(roots) == len(space.resolutions)
    # the twin shares every block but the last with its original, the duplicate shares everything
    assert len(nodes) <= (len(structures) - 2) * blocks + 1
    assert sum(len(n.members) for n in nodes) == len(structures)
    assert block_channels(trained.problem.spec, structures[0])[-1] == tuple(
        int(c.out_channels(structures[0].widths)) for b, _, c in trained.problem.spec.convs() if b == blocks - 1)


def test_calibrate_many_and_measure_many_equal_one_at_a_time(opened):
    trained, data = opened
    structures = _mixed_structures(trained.problem.space)
    calib = _batches(data, 100, 32)  # 32, 32, 32, 4 images
    val = list(data.val_batches(48, "cpu"))
    cal = BNCalibrator(trained.supernet)
    one = []
    for s in structures:
        stats = cal.calibrate(s, calib)
        one.append((stats, cal.measure(s, val)))
    many = cal.calibrate_many(structures, calib)
    accs = cal.measure_many(structures, many, val)
    for s, (stats, acc), got, got_acc in zip(structures, one, many, accs):
        assert list(got) == list(stats), s.key  # same layers, same order as bn_state
        for k in stats:
            assert got[k].shape == stats[k].shape
            assert torch.equal(got[k], stats[k]), (s.key, k, float((got[k] - stats[k]).abs().max()))
        assert got_acc == acc, s.key
    # each structure gets tensors of its own, as calibrate() returns them
    assert many[2]["blocks.0.body.0.bn.running_mean"] is not many[-1]["blocks.0.body.0.bn.running_mean"]
    with pytest.raises(ValueError, match="no calibration images"):
        cal.calibrate_many(structures[:2], [])


def test_measure_many_keeps_apart_equal_structures_with_different_statistics(opened):
    trained, data = opened
    s = trained.problem.space.min_structure
    cal = BNCalibrator(trained.supernet)
    a = cal.calibrate(s, _batches(data, 64, 32, seed=1))
    b = cal.calibrate(s, _batches(data, 16, 16, seed=2))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    val = list(data.val_batches(64, "cpu"))
    expected = []
    for stats in (a, b, a):
        cal.load(stats)
        expected.append(cal.measure(s, val))
    assert cal.measure_many([s, s, s], [a, b, a], val) == expected


def test_evaluate_many_fills_the_cache_like_calls_one_by_one(opened):
    trained, data = opened
    structures = _mixed_structures(trained.problem.space)
    pool_entry = trained.pools[0].entries[0]
    structures.append(pool_entry.structure)
    ms = [None] * (len(structures) - 2) + [0.5, None]
    one = SubnetEvaluator(trained, data, 64, torch.device("cpu"))
    many = SubnetEvaluator(trained, data, 64, torch.device("cpu"), group_size=4)
    expected = [one(s, m) for s, m in zip(structures, ms)]
    seen = []
    got = many.evaluate_many(structures, ms, on_result=seen.append)

    def strip(r):  # a group's time is shared among its structures
        return dataclasses.replace(r, seconds=0.0)

    assert [strip(r) for r in got] == [strip(r) for r in expected] == [strip(r) for r in seen]
    assert got[-1].m == pool_entry.m and got[-2].m == 0.5  # the pool's m unless one is given
    assert many.calibrations == one.calibrations == len({s.key for s in structures})
    assert set(many.stats) == set(one.stats)
    assert all(torch.equal(many.stats[k][n], one.stats[k][n]) for k in one.stats for n in one.stats[k])
    assert many.evaluate_many(structures[:3]) == got[:3]  # cached: nothing recalibrated
    assert many.calibrations == one.calibrations


# ----------------------------------------------------------------- workflows: the same front either way
def _one_at_a_time(monkeypatch) -> None:
    """Route the workflows through the one-structure functions (the path before calibrate_many existed)."""
    def calibrate_each(calibrator, structures, calib_batches, val_batches, costs, ms):
        return [calibrate_and_evaluate(calibrator, s, calib_batches, val_batches, c, m) for s, c, m in zip(structures, costs, ms)]

    def measure_each(self, structures, stats, batches):
        batches = list(batches)
        out = []
        for s, st in zip(structures, stats):
            self.load(st)
            out.append(self.measure(s, batches))
        return out

    monkeypatch.setattr(evaluation, "calibrate_and_evaluate_many", calibrate_each)
    monkeypatch.setattr(calibration.BNCalibrator, "measure_many", measure_each)


def _without_times(doc):
    """A front document without wall times and timestamps (all else must match)."""
    if isinstance(doc, dict):
        return {k: _without_times(v) for k, v in doc.items() if k not in ("seconds", "calibration_seconds", "searched")}
    if isinstance(doc, list):
        return [_without_times(v) for v in doc]
    return doc


def _front_and_stats(run):
    front = json.loads((run / "calibration" / "front.json").read_text())
    return _without_times(front), read_bn_stats(RunDir(run))


def _same_outputs(a, b) -> None:
    (front_a, stats_a), (front_b, stats_b) = _front_and_stats(a), _front_and_stats(b)
    assert front_a == front_b
    assert list(stats_a) == list(stats_b)
    for key in stats_a:
        assert list(stats_a[key]) == list(stats_b[key])
        assert all(torch.equal(stats_a[key][n], stats_b[key][n]) for n in stats_a[key])


@pytest.mark.parametrize("rescore", [False, True])
def test_calibrate_run_writes_the_same_front_as_one_at_a_time(trained_run, tmp_path, monkeypatch, rescore):
    together = helpers.copy_run(trained_run, tmp_path / "together", calibration=False)
    alone = helpers.copy_run(trained_run, tmp_path / "alone", calibration=False)
    front = calibrate_run(together, top_k=3, images=48, device="cpu", progress=False, rescore=rescore)
    assert sum(len(p["candidates"]) for p in front["pools"]) >= 4
    with monkeypatch.context() as m:
        _one_at_a_time(m)
        calibrate_run(alone, top_k=3, images=48, device="cpu", progress=False, rescore=rescore)
    _same_outputs(together, alone)


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_search_finds_the_same_front_as_one_at_a_time(trained_run, tmp_path, monkeypatch, method):
    kwargs = {"evaluations_per_budget": 6, "top_k": 2, "images": 32, "device": "cpu", "progress": False, "seed": 3}
    if method == "evolution":
        kwargs.update(population=4, parents=2, generations=2)
    together = helpers.copy_run(trained_run, tmp_path / "together", calibration=False)
    alone = helpers.copy_run(trained_run, tmp_path / "alone", calibration=False)
    calls = []
    front = search_run(together, method, on_progress=lambda d, t, msg: calls.append(d), **kwargs)
    with monkeypatch.context() as m:
        _one_at_a_time(m)
        search_run(alone, method, **kwargs)
    _same_outputs(together, alone)
    stats = front["search"]["budgets"]
    assert all(s["calibrations"] <= s["evaluations"] <= 6 for s in stats)  # nothing evaluated beyond what was asked
    if method == "evolution":
        assert any(s["generations"] >= 1 for s in stats)  # offspring were evaluated in groups too
    assert calls == sorted(calls) and calls[-1] == len(calls)
