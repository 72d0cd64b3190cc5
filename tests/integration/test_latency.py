"""Latency lookup tables (pss.latency, pss.problem.latency_table, pss.io.lut) and latency as a training constraint.

Timings on shared CI machines are noise, so nothing here asserts a latency
value beyond "positive and finite"; the tests pin the table's bookkeeping
(round trip, validation, additivity, interpolation, vectorisation) and its
wiring into costs, budgets, Eq. 4 sampling, config and context. Tables are
measured with 1-2 repeats on a tiny ResNet-20 to stay fast.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import helpers
from pss.config import TrainConfig
from pss.errors import PssError
from pss.io.lut import load_lut, resolve_lut_path, write_lut
from pss.latency.build import build_lut, build_lut_from_config
from pss.latency.check import check_html, check_lut
from pss.problem.budgets import Budget, make_budgets
from pss.problem.costs import CostModel
from pss.problem.latency_table import LUT_KIND, LatencyTable, lut_layout
from pss.problem.models import build_spec
from pss.problem.problem import Problem, spec_and_space
from pss.problem.space import Structure, StructureSpace
from pss.sampling.marginals import StructureDistributionSampler
from pss.units import format_cost, parse_quantity

FAST = dict(warmup=1, repeats=2, passes=1, overhead_structures=3)


def _pair(model="resnet20", width=0.5, resolutions=(24, 32), lower_bound=0.5, divisor=8):
    spec = build_spec(model, 10, width_mult=width, stem="cifar")
    return spec, StructureSpace(spec.dim_names, spec.dim_max, resolutions, lower_bound=lower_bound, divisor=divisor)


@pytest.fixture(scope="module")
def small():
    """(spec, space, lut dict) of ResNet-20 x0.5 on 24/32 px (lower bound 0.5), every variant measured."""
    spec, space = _pair()
    return spec, space, build_lut(spec, space, **FAST)


@pytest.fixture(scope="module")
def gridded():
    """A wider space (lower bound 0.25, divisor 4) measured on a thinned grid: interpolation."""
    spec, space = _pair(lower_bound=0.25, divisor=4)
    return spec, space, build_lut(spec, space, max_variants_per_block=16, fit_overhead=False, warmup=1, repeats=1, passes=1)


def _monotone(lut: dict) -> dict:
    """A copy of ``lut`` whose entries grow with widths and input size (measured 2-call timings are noise)."""
    out = json.loads(json.dumps(lut))
    for b in out["blocks"]:
        table = np.zeros([len(b["sizes"])] + [len(g) for g in b["grid"]])
        for si, size in enumerate(b["sizes"]):
            for gi in itertools.product(*[range(len(g)) for g in b["grid"]]):
                table[(si, *gi)] = 1e-3 * (1 + size / 64) * (1 + sum(b["grid"][j][g] for j, g in enumerate(gi)))
        b["latency_ms"] = table.tolist()
    # The measured overhead term belongs to the measured entries; with synthetic entries it could
    # even make tiny predictions negative (a noisy fit gave -0.77 ms once). Synthetic table: no overhead.
    out["overhead_ms"] = 0.0
    return out


def _structures(space, n, seed):
    rng = np.random.default_rng(seed)
    return [space.min_structure, space.max_structure] + [space.sample_uniform(rng) for _ in range(n)]


# ---------------------------------------------------------------------- the file
def test_lut_has_the_documented_shape(small):
    spec, space, lut = small
    assert lut["schema_version"] == 1 and lut["kind"] == LUT_KIND and lut["unit"] == "ms"
    assert lut["model"] == {**spec.builder, "family": spec.family}
    assert lut["space"]["resolutions"] == [24, 32] and lut["space"]["dimension_names"] == list(spec.dim_names)
    assert lut["batch_size"] == 1 and lut["device"]["type"] == "cpu" and lut["device"]["threads"] == 1
    assert lut["device"]["torch"] and lut["device"]["channels_last"] is True
    names = [b["name"] for b in lut["blocks"]]
    assert names == [f"blocks.{i}" for i in range(len(spec.blocks))] + ["head"]
    for b in lut["blocks"]:
        table = np.asarray(b["latency_ms"])
        assert table.shape == (len(b["sizes"]), *[len(g) for g in b["grid"]])
        assert np.all(np.isfinite(table)) and np.all(table > 0), b["name"]
        assert b["exact"] and len(b["input_size"]) == len(space.resolutions)
        assert [g for g in b["grid"]] == [list(space.dimensions[d].choices) for d in b["dims"]]
    assert math.isfinite(lut["overhead_ms"]) and len(lut["overhead_fit"]["residuals_ms"]) == 3
    json.dumps(lut, allow_nan=False)


def test_round_trip_and_version_check(small, tmp_path):
    spec, space, lut = small
    path = write_lut(tmp_path / "lut.json", lut)
    table = load_lut(path, spec, space)
    assert table.data == json.loads(json.dumps(lut))
    for s in _structures(space, 10, 1):
        assert table.predict(s) == pytest.approx(LatencyTable(lut).predict(s), rel=1e-9, abs=1e-9)

    bad = dict(lut, schema_version=2)
    (tmp_path / "v2.json").write_text(json.dumps(bad))
    with pytest.raises(PssError, match="schema version 2") as exc:
        load_lut(tmp_path / "v2.json")
    assert "\n" not in str(exc.value)
    (tmp_path / "kind.json").write_text(json.dumps(dict(lut, kind="pss-run")))
    with pytest.raises(PssError, match="kind"):
        load_lut(tmp_path / "kind.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(PssError, match="not valid JSON"):
        load_lut(tmp_path / "broken.json")
    with pytest.raises(PssError, match="missing"):
        load_lut(tmp_path / "absent.json")


def test_a_lut_for_another_model_or_space_is_refused_in_one_line(small, tmp_path):
    spec, space, lut = small
    path = write_lut(tmp_path / "lut.json", lut)
    other_spec, other_space = _pair(width=1.0)
    with pytest.raises(PssError, match="another model") as exc:
        load_lut(path, other_spec, other_space)
    assert "\n" not in str(exc.value) and "width_mult" in str(exc.value) and "pss lut build" in str(exc.value)
    mb_spec, mb_space = _pair(model="mobilenet_v1", width=0.25)
    with pytest.raises(PssError, match="another model"):
        load_lut(path, mb_spec, mb_space)
    _, res_space = _pair(resolutions=(32,))
    with pytest.raises(PssError, match="structure space .*resolutions") as exc:
        load_lut(path, spec, res_space)
    assert "\n" not in str(exc.value)
    _, lb_space = _pair(lower_bound=0.75)
    with pytest.raises(PssError, match="structure space"):
        load_lut(path, spec, lb_space)


# ---------------------------------------------------------------------- prediction
def test_prediction_is_the_sum_of_the_block_entries(small):
    spec, space, lut = small
    s = space.min_structure
    ri = space.resolutions.index(s.resolution)
    by_hand = lut["overhead_ms"]
    for b in lut["blocks"]:
        si = b["sizes"].index(b["input_size"][ri])
        entry = b["latency_ms"][si]
        for d, grid in zip(b["dims"], b["grid"]):
            entry = entry[grid.index(s.widths[d])]
        by_hand += entry
    assert LatencyTable(lut).predict(s) == pytest.approx(by_hand, rel=1e-12)
    parts = LatencyTable(lut).block_latencies(s)
    assert set(parts) == {b["name"] for b in lut["blocks"]} | {"overhead"}
    assert sum(parts.values()) == pytest.approx(by_hand, rel=1e-12)


def test_a_block_entry_depends_only_on_its_own_variant_key(small):
    spec, space, lut = small
    table = LatencyTable(lut)
    layout = lut_layout(spec, space)
    s = space.max_structure
    for blk in layout[:-1]:
        free = [d for d in range(len(space)) if d not in blk.dims and len(space.dimensions[d].choices) > 1]
        if not free:
            continue
        widths = list(s.widths)
        widths[free[0]] = space.dimensions[free[0]].choices[0]
        other = Structure(tuple(widths), s.resolution)
        assert table.block_latencies(other)[blk.name] == table.block_latencies(s)[blk.name]


@pytest.mark.parametrize("which", ["small", "gridded"])
def test_latency_array_equals_predict_latency(which, request):
    spec, space, lut = request.getfixturevalue(which)
    rng = np.random.default_rng(3)
    widths, res = space.sample_uniform_arrays(300, rng)
    widths = np.vstack([widths, [space.min_structure.widths, space.max_structure.widths]])
    res = np.concatenate([res, [space.min_structure.resolution, space.max_structure.resolution]])
    vec = LatencyTable(lut).latency_array(widths, res)
    one = [LatencyTable(lut).predict(Structure(tuple(w), int(r))) for w, r in zip(widths, res)]
    assert vec.shape == (len(res),) and vec.dtype == np.float64
    np.testing.assert_allclose(vec, one, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(vec)) and np.all(vec > 0)


def test_grid_interpolation_is_multilinear(gridded):
    """Entries set to a multilinear function of the widths: interpolation must reproduce it off the grid."""
    spec, space, lut = gridded
    assert any(not b["exact"] for b in lut["blocks"]), "the fixture should thin some grid"
    synthetic = json.loads(json.dumps(lut))
    coef = {}
    for k, b in enumerate(synthetic["blocks"]):
        rng = np.random.default_rng(k)
        a, c = rng.uniform(0.1, 1.0), rng.uniform(1e-3, 1e-2, len(b["dims"]))
        table = np.zeros([len(b["sizes"])] + [len(g) for g in b["grid"]])
        for si in range(len(b["sizes"])):
            for gi in itertools.product(*[range(len(g)) for g in b["grid"]]):
                ws = [b["grid"][j][g] for j, g in enumerate(gi)]
                table[(si, *gi)] = a * (si + 1) + float(np.dot(c, ws)) + 1e-5 * float(np.prod(ws))
        b["latency_ms"] = table.tolist()
        coef[b["name"]] = (a, c)
    table = LatencyTable(synthetic)
    for s in _structures(space, 30, 7):
        ri = space.resolutions.index(s.resolution)
        want = synthetic["overhead_ms"]
        for b in synthetic["blocks"]:
            a, c = coef[b["name"]]
            si = b["sizes"].index(b["input_size"][ri])
            ws = [s.widths[d] for d in b["dims"]]
            want += a * (si + 1) + float(np.dot(c, ws)) + 1e-5 * float(np.prod(ws))
        assert table.predict(s) == pytest.approx(want, rel=1e-10)


# ---------------------------------------------------------------------- cost model, budgets, Eq. 4
def test_cost_model_latency_equals_predict_latency(small):
    spec, space, lut = small
    table = LatencyTable(lut)
    costs = CostModel(spec, space, latency=table)
    assert costs.kinds == ("macs", "params", "latency")
    ss = _structures(space, 20, 2)
    for s in ss:
        assert costs.cost("latency", s) == table.predict(s)
        c = costs.costs(s)
        assert set(c) == {"macs", "params", "latency"} and c["latency"] == costs.cost("latency", s)
        assert c["macs"] == costs.macs(s)
    widths = np.array([s.widths for s in ss])
    res = np.array([s.resolution for s in ss])
    np.testing.assert_allclose(costs.cost_array("latency", widths, res), [table.predict(s) for s in ss], rtol=1e-12)
    plain = CostModel(spec, space)
    assert set(plain.costs(ss[0])) == {"macs", "params"}
    with pytest.raises(ValueError, match="latency lookup table"):
        plain.cost("latency", ss[0])


def test_latency_budgets_give_non_empty_eq4_buckets(small):
    spec, space, lut = small
    lut = _monotone(lut)
    costs = CostModel(spec, space, latency=LatencyTable(lut))
    c_min, c_max = costs.cost("latency", space.min_structure), costs.cost("latency", space.max_structure)
    assert c_max > c_min > 0
    budgets = make_budgets("latency", c_min, c_max, count=3)
    for b in budgets:
        assert b.label.endswith(" ms") and b.label == format_cost(b.value, "latency")
    rng = np.random.default_rng(0)
    sampler = StructureDistributionSampler(
        space, lambda w, r: costs.cost_array("latency", w, r), budgets, rng, set_size=4000, max_trials=200
    )
    assert all(n > 0 for n in sampler.bucket_sizes), sampler.bucket_sizes
    for t, b in enumerate(budgets):
        s, trials = sampler.sample(t, rng)
        assert trials >= 1 and b.contains(costs.cost("latency", s))


def test_latency_units_format_and_parse():
    assert Budget("latency", 3.2123, 0.5).label == "3.21 ms"
    assert Budget("macs", 5352078.4, 1.0).label == "5.352M MACs"
    assert parse_quantity("3.2ms") == 3.2 and parse_quantity("0.75 ms") == 0.75
    assert parse_quantity("30M") == 30e6
    with pytest.raises(PssError, match="malformed budget"):
        parse_quantity("3.2 sec")


# ---------------------------------------------------------------------- check (Fig. 3)
def test_check_lut_returns_n_rows_and_finite_errors(small):
    spec, space, lut = small
    result = check_lut(lut, spec, space, n=6, seed=1, warmup=1, repeats=2, passes=1)
    assert len(result.rows) == 6 and len({r["key"] for r in result.rows}) == 6
    for r in result.rows:
        assert r["measured_ms"] > 0 and math.isfinite(r["measured_ms"])
        assert r["predicted_ms"] == pytest.approx(LatencyTable(lut).predict(Structure.from_key(r["key"])))
    for v in (result.rmse_ms, result.mean_rel_error, result.median_rel_error, result.max_rel_error, result.baseline_mean_rel_error):
        assert math.isfinite(v) and v >= 0
    assert 0 <= result.within_5pct <= 1
    assert result.protocol["n"] == 6 and result.batch_size == 1
    doc = result.to_json()
    json.dumps(doc, allow_nan=False)
    assert doc["kind"] == "pss-latency-lut-check" and len(doc["rows"]) == 6
    assert "RMSE" in result.summary()

    from pssviz.latency import lut_check_figure

    fig = lut_check_figure(result)
    assert len(fig.data) == 3 and "RMSE" in fig.layout.title.text
    assert len(fig.data[2].x) == 6
    assert len(lut_check_figure(doc).data) == 3  # the JSON form too
    assert len(lut_check_figure({"rows": []}).layout.annotations) == 1

    # `pss lut check --html`: a self-contained page, one point per structure, red outside the 5% band
    page = check_html(result)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "plotly" not in page.lower()
    assert page.count("<circle") == 6
    outside = sum(abs(r["rel_error"]) > 0.05 for r in result.rows)
    assert page.count('fill="#d62728"') == outside
    assert all(r["key"] in page for r in result.rows)


def test_check_lut_refuses_a_mismatched_lut(small):
    spec, space, lut = small
    other_spec, other_space = _pair(width=1.0)
    with pytest.raises(PssError, match="another model"):
        check_lut(lut, other_spec, other_space, n=2, repeats=1, passes=1)


# ---------------------------------------------------------------------- config and context
def test_config_latency_constraint_needs_a_lut():
    with pytest.raises(PssError, match="latency_lut") as exc:
        TrainConfig.from_mapping({"constraint": "latency"})
    assert "\n" not in str(exc.value)
    with pytest.raises(PssError, match="constraint must be"):
        TrainConfig.from_mapping({"constraint": "seconds"})
    cfg = TrainConfig.from_mapping({"constraint": "latency", "latency_lut": "lut.json"})
    assert cfg.latency_lut == "lut.json" and cfg.to_json()["latency_lut"] == "lut.json"
    assert TrainConfig().latency_lut is None
    assert TrainConfig.from_mapping({"latency_lut": "null"}).latency_lut is None


def _tiny_cfg(**extra) -> TrainConfig:
    return TrainConfig.from_mapping({
        "model": "resnet20", "width_mult": 0.5, "stem": "cifar", "resolution_min": 24, "resolution_max": 32,
        "resolution_step": 8, "lower_bound": 0.5, "budget_count": 3, **extra,
    })


def _problem(cfg: TrainConfig, run_dir=None) -> Problem:
    """Problem.build with the LUT a config names, read the way a run reads it (pss.io.lut)."""
    latency = load_lut(resolve_lut_path(cfg.latency_lut, run_dir)) if cfg.latency_lut else None
    return Problem.build(cfg, 10, 3, latency=latency)


def test_context_loads_and_checks_the_lut(small, tmp_path):
    spec, space, lut = small
    lut = _monotone(lut)
    path = write_lut(tmp_path / "lut.json", lut)
    ctx = _problem(_tiny_cfg(constraint="latency", latency_lut=str(path)))
    assert ctx.space.to_json() == space.to_json()
    assert ctx.cost_model.latency is not None
    assert [b.kind for b in ctx.budgets] == ["latency"] * 3
    lo, hi = ctx.cost_model.cost("latency", space.min_structure), ctx.cost_model.cost("latency", space.max_structure)
    assert all(lo < b.value < hi for b in ctx.budgets)
    assert "latency" in ctx.cost_model.costs(space.max_structure)
    # a LUT alongside a MACs constraint: budgets stay MACs, costs gain latency
    macs_ctx = _problem(_tiny_cfg(latency_lut=str(path)))
    assert macs_ctx.budgets[0].kind == "macs" and "latency" in macs_ctx.cost_model.costs(space.min_structure)
    # a LUT built for another model
    with pytest.raises(PssError, match="another model"):
        _problem(_tiny_cfg(constraint="latency", latency_lut=str(path), width_mult=1.0))
    # the LUT found inside a run directory when the configured path is gone
    run = tmp_path / "run"
    run.mkdir()
    write_lut(run / "latency_lut.json", lut)
    moved = _tiny_cfg(constraint="latency", latency_lut=str(tmp_path / "gone.json"))
    assert _problem(moved, run_dir=run).cost_model.latency is not None
    with pytest.raises(PssError, match="missing"):
        _problem(moved)


def test_build_lut_from_config_uses_the_configs_space():
    cfg = _tiny_cfg()
    lut = build_lut_from_config(cfg, 10, 3, device="cpu", batch_size=2, fit_overhead=False, warmup=0, repeats=1, passes=1)
    spec, space = spec_and_space(cfg, 10, 3)
    LatencyTable(lut).check_matches(spec, space)
    assert lut["batch_size"] == 2 and lut["overhead_ms"] == 0.0 and lut["overhead_fit"] is None
    with pytest.raises(PssError, match="statistic"):
        build_lut_from_config(cfg, 10, 3, statistic="mean")


@pytest.mark.slow
def test_latency_budgets_end_to_end_via_the_cli(tmp_path, capsys):
    """`pss lut build` -> `pss train --set constraint=latency` -> the run keeps its own LUT -> calibrate/export in ms."""
    from helpers import TRAIN_SMALL
    from pss.cli import main

    lut = tmp_path / "luts" / "smoke.json"
    # minimum of 3 passes x 5 calls: stable enough that the max subnet times slower than the min even on a busy machine
    assert main(["lut", "build", "smoke", "--out", str(lut), "--repeats", "5", "--warmup", "2", "--quiet"]) == 0
    run = tmp_path / "run"
    assert main(["train", "smoke", "--out", str(run), "--quiet", "--set", "constraint=latency",
                 "--set", f"latency_lut={lut}", "--set", "budget_count=2", *TRAIN_SMALL]) == 0
    assert (run / "latency_lut.json").read_bytes() == lut.read_bytes()
    lut.unlink()  # later commands use the run's own copy
    assert main(["calibrate", str(run), "--quiet", "--images", "64", "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    assert " ms" in out
    front = json.loads((run / "calibration" / "front.json").read_text())
    theta = front["pools"][0]["budget"]["value"]
    assert main(["export", str(run), "--budget", f"{theta}ms", "--out", str(tmp_path / "subnet")]) == 0
    card = json.loads((tmp_path / "subnet" / "card.json").read_text())
    assert card["costs"]["latency"] > 0 and card["constraint"] == "latency"
    assert main(["lut", "check", str(run / "latency_lut.json"), "-n", "3", "--quiet", "--json", str(tmp_path / "check.json")]) == 0
    check = json.loads((tmp_path / "check.json").read_text())
    assert len(check["rows"]) == 3
    assert main(["lut", "check", str(tmp_path / "missing.json")]) == 2

    # the dashboard draws the front in milliseconds and its slider picks by latency
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["PSS_RUNS"] = str(run)
    try:
        at = AppTest.from_file(str(helpers.APP), default_timeout=120)
        at.run()
        at.radio(key="page").set_value("Front & Export").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        slider = at.select_slider(key="budget_latency")
        assert all(o.endswith(" ms") for o in slider.options)  # human units: "3.21 ms"
        slider.set_value(slider.options[-1]).run()
        assert not at.exception and any("Predicted latency" in c.value for c in at.caption)
    finally:
        del os.environ["PSS_RUNS"]


def test_a_noisy_lut_that_inverts_min_and_max_says_so():
    from pss.problem.budgets import make_budgets

    with pytest.raises(PssError, match="no slower than the min subnet .* rebuild it with more --repeats"):
        make_budgets("latency", 6.20, 6.15, count=2)
