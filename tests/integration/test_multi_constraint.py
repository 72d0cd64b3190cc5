"""Multi-constraint training (PSS-Net_M, ``extra_constraints``): pools of several cost kinds at once.

* config validation of ``extra_constraints`` (one-line errors),
* Theta per kind: primary kind first, each kind ascending, the tolerance rule,
* the Eq. 4 sampler with a kind -> cost function mapping: every structure in
  the band of its budget's own kind; pools check their own kind,
* the pss strategy's two-stage (kind, budget) draw,
* end to end: ``pss train smoke --set extra_constraints=params`` + ``pss calibrate``,
  schema-valid files, ``pss info`` with both kinds, export by a params budget,
  and ``pssviz.load_run`` costs in each pool's own band.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import helpers
from pss.cli import main
from pss.config import TrainConfig
from pss.errors import PssError
from pss.problem.budgets import Budget, make_budgets
from pss.problem.costs import CostModel
from pss.problem.models import build_spec
from pss.problem.problem import Problem
from pss.problem.space import StructureSpace, resolution_range
from pss.sampling.marginals import StructureDistributionSampler
from pss.sampling.pools import SubnetPool
from pss.sampling.strategies import PssStrategy
from pss.io.run import subnet_for_budget
from pss.workflows.export import export_subnet, pool_for_budget




# ---------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"extra_constraints": "params,params"}, "names a kind twice"),
        ({"extra_constraints": "macs"}, "repeats the primary constraint"),
        ({"extra_constraints": "params", "constraint": "params"}, "repeats the primary constraint"),
        ({"extra_constraints": "flops"}, "unknown kind 'flops'"),
        ({"extra_constraints": "latency"}, "needs latency_lut"),
        ({"extra_constraints": " , "}, "is empty"),
        ({"extra_constraints": "params", "budget_count": None, "budget_step": 1e5}, "use budget_count with extra_constraints"),
    ],
)
def test_config_rejects_bad_extra_constraints(overrides, fragment):
    with pytest.raises(PssError) as err:
        TrainConfig.from_mapping(overrides)
    msg = str(err.value)
    assert fragment in msg and msg.startswith("bad config:") and "\n" not in msg


def test_config_accepts_extra_constraints():
    assert TrainConfig().extra_constraints is None and TrainConfig().constraint_kinds() == ["macs"]
    cfg = TrainConfig.from_mapping({"extra_constraints": "params"})
    assert cfg.constraint_kinds() == ["macs", "params"]
    cfg = TrainConfig.from_mapping({"constraint": "params", "extra_constraints": " macs , latency ", "latency_lut": "x.json"})
    assert cfg.constraint_kinds() == ["params", "macs", "latency"]
    assert TrainConfig.from_mapping({"extra_constraints": "null"}).extra_constraints is None  # --set extra_constraints=null


# ---------------------------------------------------------------------- budgets
def _cfg(**kw) -> TrainConfig:
    base = dict(model="mobilenet_v2", width_mult=0.25, stem="cifar", structure_set_size=5000)
    return TrainConfig.from_mapping({**base, **kw})


def test_budgets_grouped_by_kind_and_ascending():
    ctx = Problem.build(_cfg(extra_constraints="params", budget_count=3, tolerance=1e5), 10, 3)
    assert [b.kind for b in ctx.budgets] == ["macs"] * 3 + ["params"] * 3
    assert ctx.kinds == ["macs", "params"]
    cm, space = ctx.cost_model, ctx.space
    for kind in ("macs", "params"):
        got = [b for b in ctx.budgets if b.kind == kind]
        values = [b.value for b in got]
        assert values == sorted(values) and len(set(values)) == 3
        lo, hi = cm.cost(kind, space.min_structure), cm.cost(kind, space.max_structure)
        assert lo < values[0] and values[-1] < hi
        # same budgets as a single-kind run of that kind (tolerance aside)
        alone = make_budgets(kind, lo, hi, count=3)
        assert values == [b.value for b in alone]
        if kind == "macs":  # the tolerance key is the primary kind's
            assert all(b.tolerance == 1e5 for b in got)
        else:  # extra kinds: half their step
            step = (hi - lo) / 4
            assert all(b.tolerance == pytest.approx(step / 2) for b in got)
    single = Problem.build(_cfg(budget_count=3, tolerance=1e5), 10, 3)
    assert single.budgets == ctx.budgets[:3] and single.kinds == ["macs"]


# ---------------------------------------------------------------------- sampler and pools
@pytest.fixture(scope="module")
def small():
    spec = build_spec("mobilenet_v2", 10, width_mult=0.5, stem="cifar")
    space = StructureSpace(spec.dim_names, spec.dim_max, resolution_range(24, 32, 4))
    cm = CostModel(spec, space)
    budgets = []
    for kind in ("macs", "params"):
        budgets += make_budgets(kind, cm.cost(kind, space.min_structure), cm.cost(kind, space.max_structure), count=3)
    return space, cm, budgets


def test_sampler_with_kind_mapping_keeps_each_budget_in_its_own_kind(small):
    space, cm, budgets = small
    rng = np.random.default_rng(5)
    sampler = StructureDistributionSampler(space, {"macs": cm.macs_array, "params": cm.params_array}, budgets, rng, set_size=20_000)
    assert sampler.kinds == ["macs", "params"] and all(n > 0 for n in sampler.bucket_sizes)
    for t, (b, bucket) in enumerate(zip(budgets, sampler.buckets)):
        costs = cm.cost_array(b.kind, sampler._widths[bucket.members], sampler._res[bucket.members])
        assert np.all(np.abs(costs - b.value) <= b.tolerance), t  # G^t judged by its own kind
        for _ in range(15):
            s, trials = sampler.sample(t, rng)
            assert b.contains(cm.cost(b.kind, s)), (t, b.kind)
            assert trials >= 1 or sampler.fallbacks
    # a params band is not a macs band: judged by macs, the params draws would mostly miss
    t = len(budgets) - 1
    misses = sum(not budgets[t].contains(cm.cost("macs", sampler.sample(t, rng)[0])) for _ in range(10))
    assert misses == 10
    with pytest.raises(ValueError, match="no cost function"):
        StructureDistributionSampler(space, {"macs": cm.macs_array}, budgets, rng, set_size=1000)


def test_single_function_api_unchanged(small):
    space, cm, budgets = small
    macs = budgets[:3]
    a = StructureDistributionSampler(space, cm.macs_array, macs, np.random.default_rng(1), set_size=5000)
    b = StructureDistributionSampler(space, {"macs": cm.macs_array}, macs, np.random.default_rng(1), set_size=5000)
    assert a.bucket_sizes == b.bucket_sizes and a.cost_array == cm.macs_array
    ra, rb = np.random.default_rng(2), np.random.default_rng(2)
    assert [a.sample(1, ra) for _ in range(5)] == [b.sample(1, rb) for _ in range(5)]


def test_pool_record_checks_its_own_kind(small):
    space, cm, budgets = small
    pool = SubnetPool(budgets[-1], capacity=4)  # a params budget
    s = space.max_structure
    costs = {"macs": budgets[0].value, "params": cm.params(s)}  # macs inside a macs band, params far above this one
    with pytest.raises(ValueError, match="outside pool budget"):
        pool.record(s, -1.0, costs, 0.9, check=True)
    assert len(pool) == 0
    inside = {"macs": 1.0, "params": budgets[-1].value}  # macs irrelevant to a params pool
    assert pool.record(s, -1.0, inside, 0.9, check=True) is None and len(pool) == 1
    assert pool.admits(inside) and not pool.admits(costs)


# ---------------------------------------------------------------------- (kind, budget) draw
def _strategy(space, kinds_counts):
    budgets = [Budget(kind, float(i + 1), 0.5) for kind, n in kinds_counts for i in range(n)]
    return PssStrategy(space, SimpleNamespace(budgets=budgets), 4, lambda s: {}, 0.01, 0.01, 0.9)


def test_draw_is_uniform_over_kinds_then_budgets(small):
    space = small[0]
    rng = np.random.default_rng(0)
    n = 40_000
    strat = _strategy(space, [("macs", 3), ("params", 1)])  # unequal counts show the two stages
    draws = np.bincount([strat.draw_pool(rng) for _ in range(n)], minlength=4) / n
    kinds = np.array([strat.pools[t].budget.kind for t in range(4)])
    assert draws[kinds == "params"].sum() == pytest.approx(0.5, abs=0.015)  # kind ~ U(kinds)
    np.testing.assert_allclose(draws[:3], [1 / 6] * 3, atol=0.012)  # budget ~ U(budgets of the kind)
    strat = _strategy(space, [("macs", 2), ("params", 2), ("latency", 2)])  # equal counts: uniform over all pools
    draws = np.bincount([strat.draw_pool(rng) for _ in range(n)], minlength=6) / n
    np.testing.assert_allclose(draws, [1 / 6] * 6, atol=0.012)
    # a single kind draws as before: one rng.integers call per batch
    strat = _strategy(space, [("macs", 4)])
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    assert [strat.draw_pool(r1) for _ in range(50)] == [int(r2.integers(4)) for _ in range(50)]


# ---------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def multi_run(small_run) -> Path:
    """A real PSS-Net_M run (macs and params pools), calibrated."""
    return small_run(calibrate=(64, 2), extra_constraints="params", budget_count=2, batch_size=16)


def _validate(name: str, doc: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    v = Draft202012Validator(helpers.schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def test_multi_run_files(multi_run):
    pytest.importorskip("jsonschema")
    run_json = json.loads((multi_run / "run.json").read_text())
    assert run_json["constraint"] == "macs" and run_json["config"]["extra_constraints"] == "params"
    assert [b["kind"] for b in run_json["budgets"]] == ["macs", "macs", "params", "params"]
    assert _validate("run", run_json) == []
    snaps = sorted((multi_run / "snapshots").glob("epoch_*.json"))
    assert snaps
    for path in snaps:
        snap = json.loads(path.read_text())
        assert _validate("snapshot", snap) == [], path.name
        for pool in snap["pools"]:  # every entry lies in the band of its pool's own kind
            b = Budget.from_json(pool["budget"])
            assert all(b.contains(e["costs"][b.kind]) for e in pool["entries"]), pool["index"]
    filled = {p["budget"]["kind"] for p in json.loads(snaps[-1].read_text())["pools"] if p["entries"]}
    assert filled == {"macs", "params"}, "both kinds were trained"
    front = json.loads((multi_run / "calibration" / "front.json").read_text())
    assert _validate("front", front) == []
    assert front["constraint"] == "macs" and [p["budget"]["kind"] for p in front["pools"]] == ["macs", "macs", "params", "params"]


def test_export_by_params_budget(multi_run, tmp_path):
    pytest.importorskip("jsonschema")
    front = json.loads((multi_run / "calibration" / "front.json").read_text())
    params_pools = [p for p in front["pools"] if p["budget"]["kind"] == "params" and p["best"] is not None]
    assert params_pools
    target = params_pools[0]
    value = target["budget"]["value"]
    card = export_subnet(multi_run, value, tmp_path / "params", kind="params", check=False)
    assert card["selection"] == {"rule": "ceiling", "budget": value, "kind": "params"} and card["params"] <= value
    assert card["key"] == subnet_for_budget(front, value, "params")[1]["key"]
    assert _validate("card", card) == []
    card = export_subnet(multi_run, value, tmp_path / "params-pool", kind="params", check=False, nearest_pool=True)
    assert card["budget"]["kind"] == "params" and card["source"]["pool_index"] == target["index"]
    assert card["key"] == target["candidates"][target["best"]]["key"]
    assert Budget.from_json(card["budget"]).contains(card["params"])
    assert _validate("card", card) == []
    # the default kind is the primary one; a params value is below every subnet's MACs
    macs_pool = pool_for_budget(front, front["pools"][0]["budget"]["value"])
    assert macs_pool["budget"]["kind"] == "macs"
    with pytest.raises(PssError, match="cheapest"):
        export_subnet(multi_run, value, tmp_path / "never")
    with pytest.raises(PssError, match="outside this run's range"):
        export_subnet(multi_run, value, tmp_path / "never", nearest_pool=True)
    with pytest.raises(PssError, match="no subnets with a latency cost"):
        export_subnet(multi_run, 1.0, tmp_path / "never", kind="latency")
    assert not (tmp_path / "never").exists()


def test_info_lists_both_kinds(multi_run, capsys):
    assert main(["info", str(multi_run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [p["budget"]["kind"] for p in summary["pools"]] == ["macs", "macs", "params", "params"]
    assert main(["info", str(multi_run)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    header = next(i for i, l in enumerate(out) if l.split()[:2] == ["pool", "budget"])
    rows = out[header + 1 : header + 5]
    assert [r.split()[0] for r in rows] == ["0", "1", "2", "3"]
    assert all(" macs " in r and "MACs" in r for r in rows[:2]) and all(" params " in r for r in rows[2:]), rows
    assert any(l.startswith("range macs") for l in out) and any(l.startswith("range params") for l in out)


def test_pssviz_costs_are_in_each_pools_own_kind(multi_run):
    from pssviz.load import load_run

    data = load_run(multi_run)
    assert data.problems == [] and data.kinds == ["macs", "params"]
    assert set(data.entries["kind"]) == {"macs", "params"} and set(data.pools["kind"]) == {"macs", "params"}
    band = data.budgets.set_index("pool")
    for row in data.entries.itertuples():
        assert row.kind == band.loc[row.pool, "kind"]
        assert band.loc[row.pool, "lo"] <= row.cost <= band.loc[row.pool, "hi"], row
        assert row.cost == (row.macs if row.kind == "macs" else row.params)
    filled = data.pools[data.pools["size"] > 0]
    assert (filled["cost_min"] >= filled["theta"] - filled["delta"]).all()
    assert (filled["cost_max"] <= filled["theta"] + filled["delta"]).all()


@pytest.mark.parametrize("page", ["Overview", "Pools", "Sampling", "Widths", "Front & Export"])
def test_app_pages_on_a_multi_constraint_run(multi_run, tmp_path, monkeypatch, page):
    pytest.importorskip("streamlit")
    import shutil

    from streamlit.testing.v1 import AppTest

    root = tmp_path / "runs"
    shutil.copytree(multi_run, root / "multi")
    monkeypatch.setenv("PSS_RUNS", str(root))
    at = AppTest.from_file(str(helpers.APP), default_timeout=120)
    at.run()
    at.radio(key="page").set_value(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if page != "Pools":
        return
    kind = at.radio(key="pools_kind")
    assert list(kind.options) == ["MACs", "parameters"]  # shown through COST_LABELS
    for value in ("params", "macs"):
        kind.set_value(value).run()
        assert not at.exception, [e.value for e in at.exception]
        options = at.selectbox(key=f"table_pool_{value}").options
        unit = "params" if value == "params" else "MACs"
        assert options[0] == "all pools" and all(o.startswith("pool ") and o.endswith(f"{unit})") for o in options[1:]), options
        kind = at.radio(key="pools_kind")
