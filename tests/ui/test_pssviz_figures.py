"""pssviz.figures: the plotly builders draw what the tables say, one trace per pool.

No training here. Three sources of runs:

* ``tiny``: a hand-written run directory (run.json + 3 snapshots + front.json,
  as in docs/run-format.md) with chosen numbers, so every check can compare
  against known values (an empty pool at epoch 1, best candidates that are not
  in pool order when sorted by params, ...);
* ``generated``: ``tests/make_run.py`` (real structures, costs and Alg. 3
  bookkeeping, synthetic metrics), skipped when that script is absent;
* the real sample run in ``sample_checkpoints/`` when it exists.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import helpers
from pssviz import analysis, figures
from pssviz.load import load_run

REPO = helpers.REPO_ROOT
SAMPLE_RUN = REPO / "sample_checkpoints" / "cifar10-subset-mbv1"

# ---------------------------------------------------------------------------- a hand-written run
DIMS = [("stem", 16, 16, [16]), ("b1", 24, 32, [24, 32]), ("b2", 48, 64, [48, 56, 64]), ("b3", 48, 64, [48, 56, 64])]
BUDGETS = [(1.0e6, 0.5e6), (2.0e6, 0.5e6), (3.0e6, 0.5e6)]  # theta, delta
CAPACITY = 4


def _budget(t: int) -> dict:
    theta, delta = BUDGETS[t]
    return {"kind": "macs", "value": theta, "tolerance": delta, "label": f"{theta / 1e6:g}M MACs"}


def _entry(t: int, rank: int, epoch: int) -> dict:
    """Entry ``rank`` of pool t: cost inside theta +- delta, m decreasing with rank."""
    theta, delta = BUDGETS[t]
    widths = [16, 24 + 8 * (rank % 2), 48 + 8 * ((rank + t) % 3), 48 + 8 * (rank % 3)]
    res = 24 + 4 * ((rank + t) % 3)
    return {
        "structure": {"widths": widths, "resolution": res},
        "key": f"r{res}-" + ".".join(map(str, widths)),  # distinct over all pools and ranks
        "m": -2.0 / epoch - 0.1 * rank - 0.01 * t,
        "times_sampled": 1 + (3 - rank) * epoch + t,
        "costs": {"macs": int(theta - 0.8 * delta + 0.4 * delta * rank), "params": 90_000 - 10_000 * t + 3_000 * rank},
    }


def _snapshot(epoch: int, epochs: int) -> dict:
    progress = epoch / epochs
    pools = []
    for t in range(len(BUDGETS)):
        n = 0 if (epoch == 1 and t == 2) else min(CAPACITY, 2 * epoch)  # pool 2 is empty after epoch 1
        full = n == CAPACITY
        p = eta = 0.01 ** progress if full else 1.0
        entries = [_entry(t, r, epoch) for r in range(n)]
        ms = np.array([e["m"] for e in entries])
        q = (np.exp(ms / eta) / np.exp(ms / eta).sum()).tolist() if n else []
        pools.append({
            "index": t, "budget": _budget(t), "capacity": CAPACITY, "size": n, "full": full, "p": p, "eta": eta, "q": q,
            "from_space": n + epoch, "from_pool": 3 * epoch if full else 0, "pushes": n, "evictions": epoch - 1,
            "updates": epoch + t, "mean_trials": 1.5 if n else None, "entries": entries,
        })
    return {
        "schema_version": 1, "kind": "pss-snapshot", "epoch": epoch, "epochs": epochs, "step": 10 * epoch,
        "lr": 0.1 * math.cos(progress), "progress": progress, "p_schedule": 0.01 ** progress, "eta_schedule": 0.01 ** progress,
        "losses": {"max": 2.0 / epoch, "medium": 0.1 / epoch, "min": 0.2 / epoch},
        "val_acc": {"max": 0.3 + 0.1 * epoch, "min": 0.2 + 0.1 * epoch},
        "seconds": 10.0, "images_per_second": 100.0, "sampler_fallbacks": 0, "pools": pools,
    }


def _front(epoch: int) -> dict:
    bests = [1, 0, 1]  # pool 0 and 2: the second candidate by m calibrates best
    pools = []
    for t in range(len(BUDGETS)):
        cands = []
        for r in range(2):
            e = _entry(t, r, epoch)
            cands.append({**e, "accuracy": 0.5 + 0.1 * t + 0.03 * (r == bests[t]), "calibration_seconds": 1.0})
        for c in cands:
            del c["times_sampled"]
        pools.append({"index": t, "budget": _budget(t), "candidates": cands, "best": bests[t]})
    ref = lambda widths, res, macs, params, acc: {  # noqa: E731
        "structure": {"widths": widths, "resolution": res}, "key": f"r{res}-" + ".".join(map(str, widths)), "m": None,
        "accuracy": acc, "costs": {"macs": macs, "params": params}, "calibration_seconds": 1.0}
    return {
        "schema_version": 1, "kind": "pss-front", "pss_version": "0.1.0", "epoch": epoch, "constraint": "macs", "top_k": 2,
        "calibration_images": 64, "validation_images": 64, "pools": pools,
        "references": {"max": ref([16, 32, 64, 64], 32, 3_600_000, 80_000, 0.82),
                       "min": ref([16, 24, 48, 48], 24, 400_000, 40_000, 0.41)},
    }


def write_tiny_run(path: Path, epochs: int = 3, planned: int = 5, front: bool = True) -> Path:
    """A run directory as pss writes it (docs/run-format.md), with hand-picked numbers."""
    (path / "snapshots").mkdir(parents=True)
    run = {
        "schema_version": 1, "kind": "pss-run", "pss_version": "0.1.0", "created": "2026-01-01T00:00:00+00:00",
        "config": {"model": "mobilenet_v1", "width_mult": 0.5, "stem": "cifar", "epochs": planned, "pool_size": CAPACITY},
        "dataset": {"name": "npz", "num_classes": 10, "in_channels": 3},
        "space": {"lower_bound": 0.75, "divisor": 8, "resolutions": [24, 28, 32],
                  "dimensions": [{"name": n, "o_min": lo, "o_max": hi, "choices": ch} for n, lo, hi, ch in DIMS],
                  "dimension_names": [d[0] for d in DIMS]},
        "constraint": "macs", "budgets": [_budget(t) for t in range(len(BUDGETS))],
    }
    (path / "run.json").write_text(json.dumps(run))
    for e in range(1, epochs + 1):
        (path / "snapshots" / f"epoch_{e:04d}.json").write_text(json.dumps(_snapshot(e, planned)))
    if front:
        (path / "calibration").mkdir()
        (path / "calibration" / "front.json").write_text(json.dumps(_front(epochs)))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data = load_run(write_tiny_run(tmp_path_factory.mktemp("figs") / "tiny"))
    assert not data.problems, data.problems
    return data


@pytest.fixture(scope="module")
def generated(tmp_path_factory, make_run_module):
    path = make_run_module.make_run(tmp_path_factory.mktemp("figs") / "generated", epochs=6, pools=5, entries=8, preset="smoke", front=True)
    return load_run(path)


# ---------------------------------------------------------------------------- helpers
def annotations_text(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def is_no_data(fig: go.Figure) -> bool:
    return any(t and t.startswith(figures.NO_DATA) for t in annotations_text(fig)) and len(fig.data) == 0


def by_name(fig: go.Figure, name: str):
    hits = [tr for tr in fig.data if tr.name == name]
    assert len(hits) == 1, f"expected one trace {name!r}, got {[tr.name for tr in fig.data]}"
    return hits[0]


def all_figures(data) -> dict[str, go.Figure]:
    """Every builder on one run, as the app calls them."""
    epoch = data.last_epoch
    at = analysis.entries_at(data, epoch)
    mid = len(data.budgets) // 2
    out = {
        "curves": figures.training_curves_figure(data.epochs),
        "entries": figures.pool_entries_figure(at, data.budgets, epoch=epoch, cost_label="MACs"),
        "counters": figures.pool_counters_figure(data.pools, epoch),
        "evolution": figures.pool_evolution_figure(data.pools, cost_label="MACs"),
        "probabilities": figures.sampling_probability_figure(data.pools, data.epochs),
        "probabilities_log": figures.sampling_probability_figure(data.pools, data.epochs, log=True),
        "distribution": figures.pool_distribution_figure(at, mid, data.budgets["label"].iloc[mid]),
        "heatmap": figures.width_heatmap_figure(analysis.width_matrix(data, epoch)),
        "animation": figures.pool_entries_animation(data.entries, data.budgets, max_frames=5),
        "front": figures.front_figure(data.front, data.references, budgets=data.budgets,
                                      highlight_key=None if data.front is None else data.front["key"].iloc[0]),
    }
    return out


# ---------------------------------------------------------------------------- colours
def test_pool_colors_are_distinct_stable_and_shared_by_figures(tiny):
    colors = figures.pool_colors(3)
    assert len(colors) == 3 and len(set(colors)) == 3
    assert figures.pool_colors(3) == colors and figures.pool_colors(0) == []
    assert len(set(figures.pool_colors(20))) == 20 and len(set(figures.pool_colors(12, "qualitative"))) == 12
    at = analysis.entries_at(tiny)
    entries = figures.pool_entries_figure(at, tiny.budgets)
    assert [tr.marker.color for tr in entries.data] == colors
    evolution = figures.pool_evolution_figure(tiny.pools)
    legend = [tr for tr in evolution.data if tr.showlegend]
    assert [tr.line.color for tr in legend] == colors
    dist = figures.pool_distribution_figure(at, 1)
    assert dist.data[0].marker.color == colors[1]


# ---------------------------------------------------------------------------- pool entries
def test_entries_figure_one_trace_per_pool_and_budget_bands(tiny):
    at = analysis.entries_at(tiny, 3)
    fig = figures.pool_entries_figure(at, tiny.budgets, epoch=3, cost_label="MACs")
    assert [tr.name for tr in fig.data] == list(tiny.budgets["label"])
    for t, tr in enumerate(fig.data):
        rows = at[at["pool"] == t].sort_values("rank")
        np.testing.assert_allclose(tr.x, rows["cost"])
        np.testing.assert_allclose(tr.y, rows["m"])
        assert list(tr.text) == list(rows["key"])  # the hover names the subnet key
        assert "%{text}" in tr.hovertemplate
        sizes = np.asarray(tr.marker.size)
        assert np.all(np.diff(sizes[np.argsort(rows["times_sampled"].to_numpy())]) >= 0)  # bigger = sampled more
    shapes = fig.layout.shapes
    assert len(shapes) == len(tiny.budgets)
    for s, (theta, delta) in zip(shapes, BUDGETS):
        assert s.x0 == pytest.approx(theta - delta) and s.x1 == pytest.approx(theta + delta)
        assert s.yref == "paper" and s.opacity < 0.5
    assert fig.layout.xaxis.tickformat == "~s"
    assert "epoch 3" in fig.layout.title.text and fig.layout.template.layout.paper_bgcolor == "white"


def test_entries_figure_cuts_a_multi_epoch_table_and_keeps_empty_pools(tiny):
    fig = figures.pool_entries_figure(tiny.entries, tiny.budgets, epoch=1)
    assert len(fig.data) == 3 and len(fig.data[2].x) == 0  # pool 2 was empty after epoch 1: empty trace, same index
    assert len(fig.data[0].x) == 2 and "epoch 1" in fig.layout.title.text
    newest = figures.pool_entries_figure(tiny.entries, tiny.budgets)
    assert "epoch 3" in newest.layout.title.text and len(newest.data[0].x) == CAPACITY


def test_animation_frames_slider_and_fixed_axes(tiny):
    fig = figures.pool_entries_animation(tiny.entries, tiny.budgets, max_frames=2)
    names = [f.name for f in fig.frames]
    assert names == ["1", "3"]  # evenly spaced, first and last kept
    assert len(fig.layout.sliders[0].steps) == 2 and fig.layout.updatemenus[0].buttons[0].method == "animate"
    assert fig.layout.xaxis.autorange is False and fig.layout.yaxis.autorange is False
    lo, hi = fig.layout.xaxis.range
    assert lo <= min(t - d for t, d in BUDGETS) and hi >= max(t + d for t, d in BUDGETS)
    y0, y1 = fig.layout.yaxis.range
    assert y0 <= tiny.entries["m"].min() and y1 >= tiny.entries["m"].max()
    assert all(len(f.data) == len(tiny.budgets) for f in fig.frames)
    last = tiny.entries[(tiny.entries["epoch"] == 3) & (tiny.entries["pool"] == 1)]
    np.testing.assert_allclose(fig.frames[-1].data[1].y, last["m"])
    assert len(figures.pool_entries_animation(tiny.entries, tiny.budgets, max_frames=60).frames) == 3


# ---------------------------------------------------------------------------- sampling
def test_samples_in_one_epoch_are_the_difference_of_the_snapshots_counters(tiny):
    now = analysis.sampled_in_epoch(tiny, 3)
    before = analysis.entries_at(tiny, 2).set_index(["pool", "key"])["times_sampled"]
    for _, e in now.iterrows():
        held = (e["pool"], e["key"]) in before.index
        expected = e["times_sampled"] - before[(e["pool"], e["key"])] if held else e["times_sampled"]
        assert e["sampled_in_epoch"] == expected
    assert (now["sampled_in_epoch"] < now["times_sampled"]).any(), "entries held since epoch 2 count only epoch 3"
    first = analysis.sampled_in_epoch(tiny, 1)
    assert (first["sampled_in_epoch"] == first["times_sampled"]).all()
    fig = figures.pool_distribution_figure(now, 1, "2M MACs")
    rows = now[now["pool"] == 1].sort_values("rank")
    np.testing.assert_allclose(fig.data[1].y, rows["sampled_in_epoch"] / rows["sampled_in_epoch"].sum())
    assert fig.data[1].name == "share of samples in this epoch"


def test_distribution_q_bars_and_sampled_share(tiny):
    at = analysis.entries_at(tiny, 3)
    fig = figures.pool_distribution_figure(at, 1, "2M MACs")
    assert len(fig.data) == 2 and fig.layout.barmode == "group"
    rows = at[at["pool"] == 1].sort_values("rank")
    q_bar, share_bar = fig.data
    assert list(q_bar.x) == list(range(1, len(rows) + 1))
    np.testing.assert_allclose(q_bar.y, rows["q"])
    assert sum(share_bar.y) == pytest.approx(1.0)
    np.testing.assert_allclose(share_bar.y, rows["times_sampled"] / rows["times_sampled"].sum())
    assert list(q_bar.text) == list(rows["key"])
    assert "2M MACs" in fig.layout.title.text
    assert is_no_data(figures.pool_distribution_figure(analysis.entries_at(tiny, 1), 2))  # empty pool


def test_sampling_probability_one_line_when_every_pool_shares_the_schedule(tiny):
    fig = figures.sampling_probability_figure(tiny.pools, tiny.epochs)
    assert not [tr for tr in fig.data if tr.legendgroup and tr.legendgroup.startswith("pool")], "no line per pool"
    sched = [tr for tr in fig.data if tr.legendgroup == "schedule"]
    assert len(sched) == 2 and sched[0].name.startswith(f"all {len(tiny.budgets)} pools once full")
    np.testing.assert_allclose(sched[0].y, tiny.epochs["p_schedule"])
    filling = [tr for tr in fig.data if tr.legendgroup == "filling"]
    not_full = tiny.pools[~tiny.pools["full"].astype(bool)]
    assert len(filling) == 2 and list(filling[0].x) == sorted(not_full["epoch"].unique()) and set(filling[0].y) == {1.0}
    log = figures.sampling_probability_figure(tiny.pools, tiny.epochs, log=True)
    assert list(log.layout.yaxis.ticktext)[-3:] == ["0.01", "0.1", "1"], "log ticks at the decades, plain numbers"


def test_sampling_probability_per_pool_and_schedules(tiny):
    pools = tiny.pools.copy()
    last = (pools["pool"] == 2) & (pools["epoch"] == pools["epoch"].max())
    pools.loc[last, ["p", "eta"]] = 0.5  # pool 2 on its own schedule: one line per pool again
    fig = figures.sampling_probability_figure(pools, tiny.epochs)
    pool_traces = [tr for tr in fig.data if tr.legendgroup and tr.legendgroup.startswith("pool")]
    assert len(pool_traces) == 2 * len(tiny.budgets)  # p and eta per pool
    p0 = [tr for tr in pool_traces if tr.legendgroup == "pool0" and tr.yaxis == "y"][0]
    np.testing.assert_allclose(p0.y, pools[pools["pool"] == 0].sort_values("epoch")["p"])
    sched = [tr for tr in fig.data if tr.legendgroup == "schedule"]
    assert len(sched) == 2 and all(tr.line.color == "black" and tr.line.dash == "dash" for tr in sched)
    np.testing.assert_allclose(sched[1].y, tiny.epochs["eta_schedule"])
    assert tuple(fig.layout.yaxis.range) == (0, 1.05) and fig.layout.yaxis2.range == (0, 1.05)
    log = figures.sampling_probability_figure(pools, tiny.epochs, log=True)
    assert log.layout.yaxis.type == "log" and log.layout.yaxis2.type == "log"


def test_pool_counters_at_one_epoch(tiny):
    fig = figures.pool_counters_figure(tiny.pools, 2)
    assert [tr.name.split()[0] for tr in fig.data] == ["sampled", "sampled", "pushed", "evicted", "m"]
    at = tiny.pools[tiny.pools["epoch"] == 2].sort_values("pool")
    assert list(fig.data[0].x) == list(at["label"])
    for tr, col in zip(fig.data, ("from_space", "from_pool", "pushes", "evictions", "updates")):
        assert list(tr.y) == list(at[col])
    assert is_no_data(figures.pool_counters_figure(tiny.pools, 99))
    # as the trainer counts: every draw from S is pushed and every draw from the pool updates m -> shown once each
    same = tiny.pools.assign(pushes=tiny.pools["from_space"], updates=tiny.pools["from_pool"])
    merged = figures.pool_counters_figure(same, 2)
    assert [tr.name for tr in merged.data] == ["sampled from S (Eq. 4), pushed", "sampled from π (Eq. 6), m updated", "evicted"]
    assert [list(tr.y) for tr in merged.data] == [list(at[c]) for c in ("from_space", "from_pool", "evictions")]


def test_pool_evolution_three_rows_one_legend_entry_per_pool(tiny):
    fig = figures.pool_evolution_figure(tiny.pools, cost_label="MACs")
    legend = [tr.name for tr in fig.data if tr.showlegend]
    assert legend == list(tiny.budgets["label"])
    assert {tr.yaxis for tr in fig.data} == {"y", "y2", "y3"}
    p1 = tiny.pools[tiny.pools["pool"] == 1].sort_values("epoch")
    row1 = [tr for tr in fig.data if tr.legendgroup == "pool1" and tr.yaxis == "y"]
    np.testing.assert_allclose(row1[0].y, p1["pushes"])
    assert row1[1].line.dash == "dash"
    np.testing.assert_allclose(row1[1].y, p1["evictions"])
    theta = [tr for tr in fig.data if tr.legendgroup == "pool1" and tr.yaxis == "y3" and tr.line.dash == "dot"]
    assert len(theta) == 1 and set(theta[0].y) == {BUDGETS[1][0]}
    band = [tr for tr in fig.data if tr.legendgroup == "pool2" and tr.fill == "toself"][0]
    assert len(band.x) == 2 * 2  # pool 2 has entries in epochs 2 and 3 only (NaN cost at epoch 1 left out)
    assert fig.layout.yaxis3.tickformat == "~s"


def test_training_curves(tiny):
    fig = figures.training_curves_figure(tiny.epochs)
    assert len(fig.data) == 6 and fig.layout.yaxis.type == "log"
    acc = [tr for tr in fig.data if tr.yaxis == "y2"]
    np.testing.assert_allclose(acc[0].y, 100 * tiny.epochs["val_acc_max"])  # percent
    np.testing.assert_allclose([tr for tr in fig.data if tr.yaxis == "y3"][0].y, tiny.epochs["lr"])


# ---------------------------------------------------------------------------- widths
def test_width_heatmap_z_is_the_matrix(tiny):
    matrix = analysis.width_matrix(tiny)
    fig = figures.width_heatmap_figure(matrix)
    hm = fig.data[0]
    np.testing.assert_allclose(np.asarray(hm.z, dtype=float), matrix.to_numpy(dtype=float))
    assert list(hm.y) == list(matrix.index) and list(hm.x) == list(matrix.columns)  # first row (cheapest) drawn lowest
    assert hm.zmax == 1.0 and hm.zmin == min(0.5, float(matrix.to_numpy().min()))
    assert hm.texttemplate  # small matrix: values written in the cells
    assert figures.width_heatmap_figure(matrix, text=False).data[0].texttemplate is None


def test_width_profile_best_and_uniform(tiny):
    prof = analysis.width_profiles(tiny, reference=False)
    # the uniform twin by hand: every layer at 0.75 (the tiny run.json is not rebuildable into a cost model)
    uni = prof.assign(series="uniform", ratio=0.75, width=(prof["o_max"] * 0.75).round().astype(int))
    fig = figures.width_profile_figure(pd.concat([prof, uni], ignore_index=True))
    assert len(fig.data) == 2 * len(tiny.budgets)
    colors = figures.pool_colors(len(tiny.budgets))
    for t in range(len(tiny.budgets)):
        best, uniform = [tr for tr in fig.data if tr.legendgroup == f"pool{t}"]
        rows = prof[prof["pool"] == t].sort_values("layer")
        r = int(rows["resolution"].iloc[0])
        assert best.name == f"{tiny.budgets['label'][t]} best, {r} px" and best.line.dash == "solid"
        assert uniform.name == f"uniform ×0.75, {r} px" and uniform.line.dash == "dash"
        assert best.line.color == uniform.line.color == colors[t]
        np.testing.assert_allclose(best.y, rows["ratio"])
        assert list(best.x) == [d[0] for d in DIMS]
    assert list(fig.layout.xaxis.categoryarray) == [d[0] for d in DIMS]
    assert fig.layout.yaxis.range[1] == 1.05 and fig.layout.yaxis.range[0] <= 0.5
    table = analysis.channels_table(pd.concat([prof, uni], ignore_index=True))
    assert list(table.columns[:5]) == ["pool", "budget θ", "subnet", "r (px)", "cost"]
    assert list(table.columns[5:]) == [d[0] for d in DIMS] and len(table) == 2 * len(tiny.budgets) + 1
    for t in range(len(tiny.budgets)):
        rows = prof[prof["pool"] == t].sort_values("layer")
        best = table[(table["pool"] == t + 1) & (table["subnet"] == "best")].iloc[0]
        assert [best[d[0]] for d in DIMS] == list(rows["width"]) and best["r (px)"] == rows["resolution"].iloc[0]
    assert [table.iloc[-1][d[0]] for d in DIMS] == list(prof.drop_duplicates("layer").sort_values("layer")["o_max"])


# ---------------------------------------------------------------------------- the front
@pytest.mark.parametrize("x", ["cost", "macs", "params"])
def test_front_pareto_line_dominated_bests_references_and_highlight(tiny, x):
    front, refs = tiny.front, tiny.references
    key = front[~front["is_best"]]["key"].iloc[0]
    fig = figures.front_figure(front, refs, x=x, highlight_key=key, budgets=tiny.budgets)
    table = analysis.subnet_table(front, refs, x)
    pareto = table[table["pareto"]].sort_values(x)
    line = by_name(fig, "Pareto front")
    np.testing.assert_allclose(line.x, pareto[x])
    np.testing.assert_allclose(line.y, 100 * pareto["accuracy"])
    assert list(line.text) == list(pareto["key"]) and line.line.shape == "hv"
    assert np.all(np.diff(np.asarray(line.y)) > 0)  # a Pareto front only rises with cost
    # every point off the line is beaten by a cheaper-or-equal, more accurate one
    for _, row in table[~table["pareto"]].iterrows():
        win = table[table["key"] == row["dominated_by"]].iloc[0]
        assert win[x] <= row[x] and win["accuracy"] >= row["accuracy"]
    beaten = front[front["is_best"] & ~front["key"].isin(pareto["key"])]
    if len(beaten):
        dom = by_name(fig, "pool best, dominated")
        assert set(dom.text) == set(beaten["key"]) and dom.marker.symbol == "circle-open"
    mx, mn = by_name(fig, "max φ"), by_name(fig, "min φ")
    assert mx.marker.symbol == "star" and mn.marker.symbol == "diamond"
    assert mx.y[0] == pytest.approx(82.0) and mx.x[0] == refs.set_index("name").loc["max", x]
    sel = by_name(fig, "selected")
    row = front[front["key"] == key].iloc[0]
    assert sel.x[0] == pytest.approx(row[x]) and sel.y[0] == pytest.approx(100 * row["accuracy"])
    assert len(fig.layout.shapes) == (len(tiny.budgets) if x in ("cost", "macs") else 0)  # bands only in budget units
    assert fig.layout.xaxis.title.text == {"cost": "MACs", "macs": "MACs", "params": "parameters"}[x]


def test_front_sorted_by_params_is_not_pool_order(tiny):
    best = tiny.front[tiny.front["is_best"]]
    assert list(best.sort_values("params")["pool"]) != list(best["pool"])  # so the sorting test above can fail


def test_front_others_uniform_and_no_highlight(tiny):
    other = tiny.front.assign(accuracy=tiny.front["accuracy"] - 0.1)
    uniform = pd.DataFrame({"cost": [3.0e6, 1.0e6], "accuracy": [0.7, 0.4]})
    fig = figures.front_figure(tiny.front, tiny.references, others={"baseline": (other, tiny.references)}, uniform=uniform)
    base = by_name(fig, "baseline (Pareto)")
    o_table = analysis.subnet_table(other, tiny.references, "cost")
    np.testing.assert_allclose(base.y, 100 * o_table[o_table["pareto"]].sort_values("cost")["accuracy"])
    assert base.line.dash == "dash"
    uni = by_name(fig, "uniform-width")
    assert list(uni.x) == [1.0e6, 3.0e6] and uni.line.dash == "dash"
    assert not [tr for tr in fig.data if tr.name == "selected"]
    missing = figures.front_figure(tiny.front, tiny.references, highlight_key="no-such-key")
    assert "selected" not in [tr.name for tr in missing.data]
    refs_only = figures.front_figure(None, tiny.references, highlight_key=tiny.references["key"].iloc[0])
    assert {tr.name for tr in refs_only.data} == {"Pareto front", "max φ", "min φ", "selected"}  # the references alone
    with pytest.raises(ValueError, match="latency"):
        figures.front_figure(tiny.front, tiny.references, x="latency")


# ---------------------------------------------------------------------------- empty input, JSON
def test_empty_inputs_say_no_data_yet(tiny):
    e = tiny.entries.iloc[0:0]
    p = tiny.pools.iloc[0:0]
    ep = tiny.epochs.iloc[0:0]
    empties = [
        figures.pool_evolution_figure(p),
        figures.pool_entries_figure(e, tiny.budgets),
        figures.pool_entries_animation(e, tiny.budgets),
        figures.sampling_probability_figure(p, ep),
        figures.pool_distribution_figure(e, 0),
        figures.width_profile_figure(analysis.width_profiles(tiny, epoch=99, reference=False)),
        figures.width_heatmap_figure(pd.DataFrame()),
        figures.front_figure(None, None),
        figures.front_figure(tiny.front.iloc[0:0], tiny.references.iloc[0:0]),
        figures.training_curves_figure(ep),
        figures.pool_counters_figure(p, 1),
    ]
    for fig in empties:
        assert is_no_data(fig), annotations_text(fig)
        fig.to_json()


def test_every_figure_serialises(tiny):
    for name, fig in all_figures(tiny).items():
        assert isinstance(fig, go.Figure), name
        assert fig.layout.title.text, name
        json.loads(fig.to_json())


def test_generated_run(generated):
    """tests/make_run.py: real structures and costs; width profiles with their real uniform twins."""
    figs = all_figures(generated)
    assert len(figs["entries"].data) == len(generated.budgets) == len(figs["entries"].layout.shapes)
    assert len(figs["animation"].frames) == 5
    prof = analysis.width_profiles(generated, pools=[0, len(generated.budgets) - 1])
    fig = figures.width_profile_figure(prof)
    assert len(fig.data) == 4 and sum(tr.name.startswith("uniform ×") for tr in fig.data) == 2
    line = by_name(figs["front"], "Pareto front")
    table = analysis.front_subnets(generated)
    np.testing.assert_allclose(line.x, table[table["pareto"]].sort_values("cost")["cost"])
    for f in figs.values():
        f.to_json()


def test_sample_run():
    """The bundled (committed) sample run: every figure builds and serialises."""
    data = load_run(SAMPLE_RUN)
    assert data.last_epoch == data.epochs_planned, "the bundled sample run is complete"
    figs = all_figures(data)
    assert len(figs["entries"].data) == len(data.budgets)
    assert [tr.name for tr in figs["evolution"].data if tr.showlegend] == list(data.budgets["label"])
    at = analysis.entries_at(data)
    for t in data.budgets["pool"]:
        q = at[at["pool"] == t]["q"]
        assert q.sum() == pytest.approx(1.0, abs=1e-3) or not len(q)
    prof = analysis.width_profiles(data, pools=[0])
    assert len(figures.width_profile_figure(prof).data) == 2
    for f in figs.values():
        f.to_json()


# ---------------------------------------------------------------------------- several runs
def test_smoothing_is_an_exponential_moving_average():
    v = np.array([1.0, np.nan, 3.0, 5.0])
    np.testing.assert_allclose(figures.smooth(v, 0.0), v, equal_nan=True)
    np.testing.assert_allclose(figures.smooth(v, 0.5), [1.0, np.nan, 2.0, 3.5], equal_nan=True)
    with pytest.raises(ValueError):
        figures.smooth(v, 1.0)


def test_runs_curves_overlay_one_colour_per_run(tiny, generated):
    fig = figures.runs_curves_figure({"a": tiny.epochs, "b": generated.epochs}, smoothing=0.5)
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    assert [tr.name for tr in lines if tr.showlegend] == ["a", "b"]
    assert len(lines) == 2 * len(figures.RUN_CURVES)
    first = [tr for tr in lines if tr.name == "a"][0]
    np.testing.assert_allclose(first.y, figures.smooth(100 * tiny.epochs.sort_values("epoch")["val_acc_max"].to_numpy(float), 0.5))
    raw = [tr for tr in fig.data if tr.mode == "markers"]
    assert len(raw) == len(lines), "raw points stay beside each smoothed line"
    assert len([tr for tr in figures.runs_curves_figure({"a": tiny.epochs}).data if tr.mode == "markers"]) == 0


def test_config_differences_lists_only_differing_keys(tiny, generated):
    diff = analysis.config_differences({"a": tiny, "b": generated, "a again": tiny})
    a, b = tiny.run["config"], generated.run["config"]
    expected = sorted(k for k in set(a) | set(b) if a.get(k, "—") != b.get(k, "—"))
    assert sorted(diff.index) == expected and list(diff.columns) == ["a", "b", "a again"]
    assert (diff["a"] == diff["a again"]).all()
    assert not len(analysis.config_differences({"a": tiny, "a again": tiny}))
