"""Search after training (pss/evolution/, pss/workflows/search.py): PSE-Net's prior (Eq. 15-20), its operators, and `search_run` end to end."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest

import helpers
from pss.config import TrainConfig
from pss.errors import PssError
from pss.problem.budgets import Budget
from pss.problem.problem import Problem
from pss.problem.space import Structure, StructureSpace
from pss.sampling.marginals import (
    Marginals,
    draw_in_band,
    generate_structure_set,
    marginals_draw,
    trials_per_valid_sample,
    uniform_draw,
)
from pss.evolution.operators import crossover, evolve, mutate
from pss.evolution.prior import prior_marginals, record_weights
from pss.evolution.records import LossRecords, proxy_loss, records_from_snapshots
from pss.io.checkpoint import read_bn_stats
from pss.io.run import RunDir
from pss.workflows.search import search_run



@pytest.fixture(scope="module")
def ctx() -> Problem:
    """The smoke preset's space and cost model (MobileNetV2 x0.25, 25 width dims, 24-32 px)."""
    cfg = TrainConfig.from_mapping(dict(model="mobilenet_v2", width_mult=0.25, resolution_min=24, resolution_max=32,
                                        resolution_step=4, budget_count=4))
    return Problem.build(cfg, 10, 3)


@pytest.fixture(scope="module")
def macs(ctx):
    return functools.partial(ctx.cost_model.cost_array, "macs")


def small_space() -> StructureSpace:
    """Three width dims with 2-4 choices each (divisor 8, lower bound 0.5) and two resolutions."""
    return StructureSpace(["a", "b", "c"], [16, 32, 24], [24, 32], lower_bound=0.5, divisor=8)


def toy_cost(widths: np.ndarray, res: np.ndarray) -> np.ndarray:
    """A cost for the small space: the sum of the widths (resolution-independent)."""
    return np.asarray(widths).sum(axis=1).astype(float)


# ---------------------------------------------------------------------- operators
def test_mutation_stays_in_space_and_changes_about_prob_of_genes(ctx):
    space, rng = ctx.space, np.random.default_rng(0)
    marg = Marginals.uniform(space)
    mutable = np.array([len(c) > 1 for c in marg.choices])
    changed = total = 0
    for _ in range(400):
        s = space.sample_uniform(rng)
        child = mutate(s, marg, 0.2, rng)
        assert space.contains(child)
        a = np.array(list(s.widths) + [s.resolution])
        b = np.array(list(child.widths) + [child.resolution])
        assert (a[~mutable] == b[~mutable]).all()  # a gene with one choice cannot change
        changed += int((a[mutable] != b[mutable]).sum())
        total += int(mutable.sum())
    assert changed / total == pytest.approx(0.2, abs=0.02)  # prob is the chance a gene actually changes
    s = space.sample_uniform(rng)
    assert mutate(s, marg, 0.0, rng) == s
    # Mutation draws from the prior marginal: all mass on one value -> that value.
    probs = tuple(np.eye(len(c))[-1] for c in marg.choices)
    top = mutate(space.min_structure, Marginals(marg.choices, probs), 1.0, rng)
    assert top == space.max_structure


def test_crossover_genes_come_from_parents(ctx):
    space, rng = ctx.space, np.random.default_rng(1)
    a, b = space.min_structure, space.max_structure
    from_a = []
    for _ in range(300):
        c = crossover(a, b, rng)
        assert space.contains(c)
        genes = list(c.widths) + [c.resolution]
        ga, gb = list(a.widths) + [a.resolution], list(b.widths) + [b.resolution]
        assert all(g in (x, y) for g, x, y in zip(genes, ga, gb))
        from_a.append(np.mean([g == x for g, x, y in zip(genes, ga, gb) if x != y]))
    assert np.mean(from_a) == pytest.approx(0.5, abs=0.05)  # uniform crossover
    assert crossover(a, a, rng) == a


def test_sample_from_prior_follows_the_marginals():
    space, rng = small_space(), np.random.default_rng(2)
    marg = Marginals.uniform(space)
    probs = list(marg.probs)
    probs[0] = np.array([0.9, 0.1])  # dim "a": choices (8, 16)
    w, r = Marginals(marg.choices, tuple(probs)).sample(20000, rng)
    assert w.shape == (20000, 3) and r.shape == (20000,)
    assert all(space.contains(Structure(tuple(x), int(y))) for x, y in zip(w[:200], r[:200]))
    assert (w[:, 0] == 8).mean() == pytest.approx(0.9, abs=0.01)
    assert set(r) == {24, 32}


# ---------------------------------------------------------------------- Eq. 16, 19, 20
def test_eq16_counts_width_choices_of_records_in_the_band():
    space = small_space()  # choices a: (8, 16), b: (16, 24, 32), c: (16, 24), resolution (24, 32)
    band = Budget("toy", 56.0, 0.0)  # only structures whose widths sum to 56
    rows = [
        (Structure((8, 32, 16), 24), 1.0, 1.0, 1),
        (Structure((8, 32, 16), 24), 1.0, 1.0, 2),   # the same structure again: counted twice
        (Structure((16, 24, 16), 32), 1.0, 1.0, 3),
        (Structure((16, 16, 24), 32), 1.0, 1.0, 4),
        (Structure((16, 32, 24), 32), 0.1, 1.0, 5),  # sum 72: outside the band, ignored
        ("r24-9.9.9", 0.1, 1.0, 6),                  # not in S: ignored
    ]
    marg = prior_marginals(LossRecords.from_rows(rows), space, toy_cost, band, quality=False)
    np.testing.assert_allclose(marg.probs[0], [2 / 4, 2 / 4])
    np.testing.assert_allclose(marg.probs[1], [1 / 4, 1 / 4, 2 / 4])
    np.testing.assert_allclose(marg.probs[2], [3 / 4, 1 / 4])
    np.testing.assert_allclose(marg.probs[3], [2 / 4, 2 / 4])
    # With no record in the band the marginals are the base (uniform by default); a pseudo-count smooths.
    empty = prior_marginals(LossRecords.from_rows(rows), space, toy_cost, Budget("toy", 40.0, 0.0))
    np.testing.assert_allclose(empty.probs[1], [1 / 3] * 3)
    smooth = prior_marginals(LossRecords.from_rows(rows), space, toy_cost, band, quality=False, pseudo_count=4)
    np.testing.assert_allclose(smooth.probs[0], [(2 + 2) / 8, (2 + 2) / 8])
    np.testing.assert_allclose(smooth.probs[1], [(1 + 4 / 3) / 8, (1 + 4 / 3) / 8, (2 + 4 / 3) / 8])


def test_eq19_proxy_loss_removes_the_training_trend():
    # A subnet 10% behind the max subnet early (losses ~2) and late (losses ~0.5) gets one proxy loss.
    loss = np.array([2.2, 0.55])
    max_loss = np.array([2.0, 0.5])
    p = proxy_loss(loss, max_loss, final_max_loss=0.5)
    np.testing.assert_allclose(p, [0.55, 0.55])
    # The printed Eq. 19 (times L_max^t / L_max^T) would make the early record look 16x worse.
    printed = max_loss / 0.5 * loss
    assert printed[0] / printed[1] == pytest.approx(16.0)


def test_eq20_prior_favours_low_loss_records_and_sums_to_one():
    """Pins the intent of Eq. 20: a good (low normalised loss) subnet gets MORE prior mass.

    As printed, Eq. 20 sums the proxy losses themselves, which would give the
    bad subnet's width choices the larger share.
    """
    space = small_space()
    band = Budget("toy", 56.0, 0.0)
    good, bad = Structure((16, 24, 16), 32), Structure((8, 24, 24), 24)
    rows = []
    for step in range(1, 11):  # the same number of records each; losses relative to the max subnet differ
        max_loss = 2.0 / step
        rows.append((good, 1.05 * max_loss, max_loss, step))
        rows.append((bad, 1.60 * max_loss, max_loss, step))
    records = LossRecords.from_rows(rows)
    marg = prior_marginals(records, space, toy_cost, band)
    for p in marg.probs:
        assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert marg.probs[0][1] > 0.8   # dim "a" = 16 (good) vs 8 (bad)
    assert marg.probs[3][1] > 0.8   # resolution 32 (good) vs 24 (bad)
    plain = prior_marginals(records, space, toy_cost, band, quality=False)  # Eq. 16: equal counts
    np.testing.assert_allclose(plain.probs[0], [0.5, 0.5])
    # The printed Eq. 20 (weights = proxy losses) would favour the bad subnet.
    p = proxy_loss(records.loss, records.max_loss, records.final_max_loss)
    printed_share_of_good = p[0::2].sum() / p.sum()
    assert printed_share_of_good < 0.5 < marg.probs[0][1]
    # Weights decrease with the normalised loss, are scale-free, and equal for equal losses.
    w = record_weights(np.array([1.0, 1.2, 1.5]))
    assert w[0] > w[1] > w[2] > 0
    np.testing.assert_allclose(record_weights(np.array([10.0, 12.0, 15.0])), w)
    np.testing.assert_allclose(record_weights(np.array([1.3, 1.3])), [1.0, 1.0])


def _snapshot(epoch, step, max_loss, entries, samples=None):
    snap = {"epoch": epoch, "step": step, "losses": {"max": max_loss, "medium": 0.1, "min": 0.2},
            "pools": [{"entries": [{"key": k, "m": m, "times_sampled": n} for k, m, n in entries]}]}
    if samples is not None:
        snap["samples"] = samples
    return snap


def test_records_fall_back_to_pool_entries_without_samples():
    a, b = "r24-8.16.16", "r32-16.24.16"
    snaps = [
        _snapshot(1, 10, 2.0, [(a, -2.2, 1)]),
        _snapshot(2, 20, 1.0, [(a, -2.2, 1), (b, -1.3, 2)]),  # a unchanged: no new measurement
        _snapshot(3, 30, 0.5, [(a, -0.6, 3), (b, -1.3, 2)]),  # a updated, b unchanged
    ]
    rec = records_from_snapshots(snaps)
    assert rec.source == "pool"
    rows = sorted((rec.keys[k], l, ml, s) for k, l, ml, s in zip(rec.key, rec.loss, rec.max_loss, rec.step))
    assert rows == [(a, 0.6, 0.5, 30), (a, 2.2, 2.0, 10), (b, 1.3, 1.0, 20)]
    assert rec.final_max_loss == 0.5
    # With `samples` in the snapshots those rows are used instead, keys re-indexed across snapshots.
    snaps[1]["samples"] = {"keys": [b, a], "step": [11, 12], "key": [0, 1], "loss": [1.5, 1.7], "max_loss": [1.4, 1.6]}
    snaps[2]["samples"] = {"keys": [a], "step": [21], "key": [0], "loss": [0.9], "max_loss": [0.8]}
    rec = records_from_snapshots(snaps)
    assert rec.source == "samples"
    rows = [(rec.keys[k], l, s) for k, l, s in zip(rec.key, rec.loss, rec.step)]
    assert rows == [(b, 1.5, 11), (a, 1.7, 12), (a, 0.9, 21)]
    assert rec.final_max_loss == pytest.approx(0.8)
    with pytest.raises(PssError):
        records_from_snapshots([_snapshot(1, 1, 1.0, [], samples={"keys": [a], "step": [1]})])
    assert len(records_from_snapshots([])) == 0


def test_prior_needs_fewer_trials_per_valid_sample_than_uniform_on_a_narrow_band(ctx, macs):
    """PSE-Net Fig. 4a: near the low end of the range uniform sampling rarely lands in a narrow band."""
    space = ctx.space
    c_min, c_max = (ctx.cost_model.cost("macs", s) for s in (space.min_structure, space.max_structure))
    band = Budget("macs", c_min + 0.03 * (c_max - c_min), 0.01 * (c_max - c_min))
    rng = np.random.default_rng(3)
    w, r = generate_structure_set(space, 20000, rng)
    inside = np.flatnonzero(band.contains_array(macs(w, r)))
    assert len(inside) >= 10
    rows = [(Structure(tuple(w[i]), int(r[i])), float(rng.uniform(1.0, 2.0)), 1.0, j) for j, i in enumerate(inside)]
    marg = prior_marginals(LossRecords.from_rows(rows), space, macs, band, pseudo_count=4,
                           base=Marginals.count(space, w[inside], r[inside]))
    prior = trials_per_valid_sample(marginals_draw(marg), band, macs, np.random.default_rng(4), valid=50)
    naive = trials_per_valid_sample(uniform_draw(space), band, macs, np.random.default_rng(5), valid=50)
    assert prior["valid"] == naive["valid"] == 50
    assert prior["trials_per_valid"] * 10 < naive["trials_per_valid"]
    # Counting stops exactly at the last valid draw.
    always = trials_per_valid_sample(uniform_draw(space), Budget("macs", c_max, c_max), macs, np.random.default_rng(6), valid=7)
    assert always == {"trials": 7, "valid": 7, "trials_per_valid": 1.0}
    never = trials_per_valid_sample(uniform_draw(space), Budget("macs", -10.0, 1.0), macs, np.random.default_rng(7),
                                    valid=5, max_trials=1000)
    assert never == {"trials": 1000, "valid": 0, "trials_per_valid": None}


def test_evolve_improves_a_fitness_and_respects_band_and_budget(ctx, macs):
    space = ctx.space
    c_min, c_max = (ctx.cost_model.cost("macs", s) for s in (space.min_structure, space.max_structure))
    band = Budget("macs", (c_min + c_max) / 2, 0.1 * (c_max - c_min))
    marg = Marginals.count(space, *generate_structure_set(space, 5000, np.random.default_rng(8)))
    sampler = marginals_draw(marg)

    def refill(n, exclude, rng):
        return draw_in_band(sampler, band, macs, n, rng, exclude=exclude)[0]

    def fitness(s):  # prefer high resolution and a wide last layer
        return s.resolution + s.widths[-1] / 10

    rng = np.random.default_rng(9)
    seeds = refill(16, set(), rng)
    result = evolve(seeds, lambda batch: [fitness(s) for s in batch], lambda s: band.contains(ctx.cost_model.macs(s)), refill, marg, rng,
                    population=16, parents=8, generations=6, max_evaluations=80)
    assert len(result.evaluated) == 80
    assert all(band.contains(ctx.cost_model.macs(s)) and space.contains(s) for s, _ in result.evaluated.values())
    assert result.history[-1]["parents_mean"] > result.history[0]["parents_mean"]
    assert result.offspring["mutation"] > 0 and result.offspring["crossover"] > 0


# ---------------------------------------------------------------------- search_run end to end
@pytest.fixture(scope="module")
def searched(trained_run, tmp_path_factory):
    """The shared tiny run searched twice: random over its own budgets, evolution over two given budgets."""
    root = tmp_path_factory.mktemp("search")
    run_json = json.loads((trained_run / "run.json").read_text())
    thetas = [b["value"] for b in run_json["budgets"]][1:3]
    out = {"run_json": run_json, "thetas": thetas}
    for method in ("random", "evolution"):
        run = root / method
        shutil.copytree(trained_run, run)
        calls = []
        kwargs = dict(evaluations_per_budget=4, top_k=2, images=32, device="cpu", progress=False,
                      on_progress=lambda d, t, m: calls.append((d, t)))
        if method == "evolution":
            kwargs.update(budgets=thetas, population=4, parents=2, generations=2)
        front = search_run(run, method, **kwargs)
        out[method] = {"run": run, "front": front, "calls": calls}
    return out


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_search_writes_a_valid_front(searched, method):
    jsonschema = pytest.importorskip("jsonschema")
    run, front = searched[method]["run"], searched[method]["front"]
    on_disk = json.loads((run / "calibration" / "front.json").read_text())
    assert on_disk == json.loads(json.dumps(front))
    schema = helpers.schema("front")
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(on_disk)]
    assert errors == []
    assert on_disk["method"] == method and on_disk["search"]["method"] == method
    expected = [b["value"] for b in searched["run_json"]["budgets"]] if method == "random" else searched["thetas"]
    assert [p["budget"]["value"] for p in on_disk["pools"]] == expected
    bn_stats = read_bn_stats(RunDir(run))
    space_dims = searched["run_json"]["space"]["dimensions"]
    for pool, stat in zip(on_disk["pools"], on_disk["search"]["budgets"]):
        b = pool["budget"]
        assert 1 <= len(pool["candidates"]) <= on_disk["top_k"] == 2
        accs = [c["accuracy"] for c in pool["candidates"]]
        assert accs == sorted(accs, reverse=True)
        assert pool["candidates"][pool["best"]]["accuracy"] == max(accs)  # Eq. 5
        for c in pool["candidates"]:
            assert abs(c["costs"][b["kind"]] - b["value"]) <= b["tolerance"]
            assert Structure.from_key(c["key"]).to_json() == c["structure"]
            assert all(w in d["choices"] for w, d in zip(c["structure"]["widths"], space_dims))
            assert c["key"] in bn_stats
        assert 1 <= stat["evaluations"] <= 4
        assert stat["trials_per_valid_sample"]["uniform"] >= 1
        if method == "evolution":
            assert stat["trials_per_valid_sample"]["prior"] >= 1
            assert stat["history"][0]["generation"] == 0
    for ref in on_disk["references"].values():
        assert ref["key"] in bn_stats
    calls = searched[method]["calls"]
    assert calls and calls[-1][0] == len(calls) and all(t >= d for d, t in calls)
    if method == "evolution":
        assert on_disk["search"]["records"]["source"] in ("samples", "pool")
        assert on_disk["search"]["settings"]["population"] == 4


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_export_works_on_a_searched_run(searched, method, tmp_path):
    from pss.cli import main

    run, front = searched[method]["run"], searched[method]["front"]
    pool = front["pools"][-1]
    out = tmp_path / "export"
    assert main(["export", str(run), "--budget", repr(pool["budget"]["value"]), "--nearest-pool", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["key"] == pool["candidates"][pool["best"]]["key"]
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4


def test_records_of_a_real_run_with_and_without_samples(trained_run):
    from pss.io.run import RunDir

    run = RunDir(trained_run)
    snaps = [run.read_snapshot(p) for p in run.snapshot_paths()]
    rec = records_from_snapshots(snaps)
    assert len(rec) > 0 and rec.source == ("samples" if any("samples" in s for s in snaps) else "pool")
    stripped = records_from_snapshots([{k: v for k, v in s.items() if k != "samples"} for s in snaps])
    assert stripped.source == "pool" and len(stripped) > 0
    pool_keys = {e["key"] for s in snaps for p in s["pools"] for e in p["entries"]}
    assert set(stripped.keys) == pool_keys
    assert np.isfinite(stripped.loss).all() and (stripped.max_loss > 0).all()


def test_search_rejects_bad_input(trained_run, tmp_path):
    with pytest.raises(PssError, match="unknown search method"):
        search_run(trained_run, "grid", progress=False)
    with pytest.raises(PssError, match="outside this space's range"):
        search_run(trained_run, "random", budgets=[1.0], progress=False, device="cpu")
    with pytest.raises(PssError, match="need a tolerance"):
        search_run(trained_run, "random", budgets=[1e5], constraint="params", progress=False, device="cpu")


def test_uniform_width_sampler_draws_uniform_members_of_s():
    """`--method uniform`: every draw is StructureSpace.uniform_structure(w, r) for some w (US-Net's subnets)."""
    from pss.problem.models import build_spec
    from pss.problem.space import Structure, StructureSpace
    from pss.sampling.marginals import uniform_width_draw

    spec = build_spec("mobilenet_v2", num_classes=10, in_channels=3, width_mult=0.5, stem="cifar")
    space = StructureSpace(spec.dim_names, spec.dim_max, (24, 28, 32), lower_bound=0.75, divisor=8)
    widths, res = uniform_width_draw(space)(500, np.random.default_rng(0))
    assert set(res.tolist()) == {24, 28, 32}
    grid = {space.uniform_structure(float(w), int(r)).key for w in np.linspace(0.75, 1.0, 2001) for r in (24, 28, 32)}
    keys = {Structure(tuple(w), int(r)).key for w, r in zip(widths, res)}
    assert keys <= grid and len(keys) > 10
    assert all(space.contains(Structure.from_key(k)) for k in keys)
