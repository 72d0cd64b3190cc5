"""pssviz.load and pssviz.analysis: run directory -> tidy tables, and the tables derived from them."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers
import pssviz
from pssviz import analysis
from pssviz import load as load_mod

REPO = helpers.REPO_ROOT
SAMPLE = helpers.SAMPLE_RUN
EPOCHS, POOLS, ENTRIES = 5, 4, 6


@pytest.fixture(scope="module")
def gen_run(tmp_path_factory, make_run_module) -> Path:
    return make_run_module.make_run(tmp_path_factory.mktemp("gen") / "run", epochs=EPOCHS, pools=POOLS, entries=ENTRIES, seed=3, front=True)


@pytest.fixture
def gen_copy(gen_run, tmp_path) -> Path:
    return Path(shutil.copytree(gen_run, tmp_path / "copy"))


def test_tables_match_the_snapshots(gen_run):
    data = pssviz.load_run(gen_run)
    assert data.problems == []
    assert list(data.epochs["epoch"]) == list(range(1, EPOCHS + 1))
    assert len(data.pools) == EPOCHS * POOLS
    assert len(data.budgets) == POOLS and len(data.dimensions) > 0
    for path in sorted((gen_run / "snapshots").glob("epoch_*.json")):
        snap = json.loads(path.read_text())
        e = data.entries[data.entries["epoch"] == snap["epoch"]]
        assert len(e) == sum(p["size"] for p in snap["pools"])
        for pool in snap["pools"]:
            rows = e[e["pool"] == pool["index"]].sort_values("rank")
            assert list(rows["key"]) == [x["key"] for x in pool["entries"]]
            assert np.allclose(rows["q"], pool["q"])
            assert list(rows["cost"]) == [x["costs"]["macs"] for x in pool["entries"]]
            row = data.pools[(data.pools["epoch"] == snap["epoch"]) & (data.pools["pool"] == pool["index"])].iloc[0]
            assert row["best_m"] == max(x["m"] for x in pool["entries"])
            assert row["pushes"] == pool["pushes"] and row["p"] == pool["p"]
            assert row["cost_min"] <= row["cost_mean"] <= row["cost_max"]
    assert set(load_mod.ENTRY_COLUMNS) <= set(data.entries.columns)
    assert data.entries["epoch"].dtype == np.int64 and data.entries["m"].dtype == np.float64


def test_front_and_references(gen_run):
    data = pssviz.load_run(gen_run)
    front = json.loads((gen_run / "calibration" / "front.json").read_text())
    assert data.front_epoch == front["epoch"] == EPOCHS
    assert len(data.front) == sum(len(p["candidates"]) for p in front["pools"])
    assert data.front.groupby("pool")["is_best"].sum().eq(1).all()
    assert set(data.references["name"]) == {"max", "min"}
    assert data.status == "calibrated" and data.front_is_current
    assert not data.has_checkpoint


def test_corrupt_empty_and_foreign_snapshots_are_skipped_and_reported(gen_copy):
    snaps = gen_copy / "snapshots"
    (snaps / "epoch_0002.json").write_text('{"schema_version": 1, "kind": "pss-snap')  # half-written
    (snaps / "epoch_0003.json").write_text("")
    doc = json.loads((snaps / "epoch_0004.json").read_text())
    doc["schema_version"] = 99
    (snaps / "epoch_0004.json").write_text(json.dumps(doc))
    data = pssviz.load_run(gen_copy)
    assert list(data.epochs["epoch"]) == [1, 5]
    text = "\n".join(data.problems)
    assert "epoch_0002.json" in text and "not valid JSON" in text
    assert "epoch_0003.json" in text and "empty" in text
    assert "epoch_0004.json" in text and "schema version 99" in text


def test_snapshot_missing_a_field_is_skipped(gen_copy):
    doc = json.loads((gen_copy / "snapshots" / "epoch_0001.json").read_text())
    del doc["pools"][0]["entries"][0]["costs"]
    (gen_copy / "snapshots" / "epoch_0001.json").write_text(json.dumps(doc))
    data = pssviz.load_run(gen_copy)
    assert len(data.epochs) == EPOCHS - 1
    assert any("epoch_0001.json" in p and "missing" in p for p in data.problems)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "run.json").unlink(), "no run.json"),
        (lambda run: (run / "run.json").write_text("{oops"), "not valid JSON"),
        (lambda run: (run / "run.json").write_text(json.dumps({"schema_version": 2, "kind": "pss-run"})), "schema version 2"),
        (lambda run: (run / "run.json").write_text(json.dumps({"schema_version": 1, "kind": "pss-run"})), "lacks a required field"),
    ],
)
def test_a_broken_run_file_is_one_clear_error(gen_copy, damage, message):
    damage(gen_copy)
    with pytest.raises(pssviz.RunLoadError, match=message) as info:
        pssviz.load_run(gen_copy)
    assert "\n" not in str(info.value)


def test_missing_directory_and_file_instead_of_directory(tmp_path):
    with pytest.raises(pssviz.RunLoadError, match="does not exist"):
        pssviz.load_run(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(pssviz.RunLoadError, match="is a file"):
        pssviz.load_run(tmp_path / "f")


def test_corrupt_front_is_ignored_with_a_note(gen_copy):
    (gen_copy / "calibration" / "front.json").write_text("{")
    data = pssviz.load_run(gen_copy)
    assert data.front is None
    assert any("front.json" in p and "pss calibrate" in p for p in data.problems)


def test_empty_run_and_status(gen_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(gen_copy / "run.json", empty / "run.json")
    data = pssviz.load_run(empty)
    assert data.status == "empty" and len(data.epochs) == 0 and len(data.entries) == 0
    assert analysis.width_matrix(data).empty and analysis.pool_table(data).empty

    # a run with epochs left whose newest snapshot is fresh is "training"; an old one "stopped"
    shutil.rmtree(gen_copy / "calibration")
    run = json.loads((gen_copy / "run.json").read_text())
    run["config"]["epochs"] = EPOCHS + 10
    (gen_copy / "run.json").write_text(json.dumps(run))
    assert pssviz.load_run(gen_copy).status == "training"
    old = time.time() - 2 * load_mod.LIVE_SECONDS
    for f in (gen_copy / "snapshots").iterdir():
        os.utime(f, (old, old))
    assert pssviz.load_run(gen_copy).status == "stopped"


def test_signature_and_cache_reread_only_new_snapshots(gen_copy, monkeypatch):
    newest = gen_copy / "snapshots" / f"epoch_{EPOCHS:04d}.json"
    held = newest.read_bytes()
    newest.unlink()
    sig = pssviz.run_signature(gen_copy)
    cache = pssviz.SnapshotCache()
    assert len(pssviz.load_run(gen_copy, cache=cache).epochs) == EPOCHS - 1

    parsed = []
    real = load_mod._snapshot_rows
    monkeypatch.setattr(load_mod, "_snapshot_rows", lambda data, c: parsed.append(data["epoch"]) or real(data, c))
    newest.write_bytes(held)  # a live run lands one more epoch
    assert pssviz.run_signature(gen_copy) != sig
    data = pssviz.load_run(gen_copy, cache=cache)
    assert len(data.epochs) == EPOCHS
    assert parsed == [EPOCHS], "only the new snapshot is parsed"


def test_find_runs(gen_run, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(gen_run, root / "a")
    shutil.copytree(gen_run, root / "group" / "b")
    shutil.copytree(gen_run, root / ".hidden" / "c")
    (root / "not-a-run").mkdir()
    found = {p.relative_to(root).as_posix() for p in pssviz.find_runs(root)}
    assert found == {"a", "group/b"}
    assert pssviz.find_runs(root / "a") == [root / "a"]
    assert pssviz.find_runs(tmp_path / "missing") == []


def test_widths_of_parses_keys():
    w = pssviz.widths_of(["r24-8.16.24", "r32-16.16.32"])
    assert w.tolist() == [[8, 16, 24], [16, 16, 32]]
    dims = pd.DataFrame({"o_max": [16, 16, 32]})
    assert pssviz.width_ratios(["r24-8.16.24"], dims).tolist() == [[0.5, 1.0, 0.75]]


# ---------------------------------------------------------------------------- analysis
def test_best_within_budget_is_eq5_over_the_front():
    front = pd.DataFrame({
        "key": ["a", "b", "c", "d"], "cost": [10.0, 20.0, 30.0, 25.0], "accuracy": [0.5, 0.7, 0.9, 0.7],
    })
    assert analysis.best_within_budget(front, 9) is None
    assert analysis.best_within_budget(front, 10)["key"] == "a"
    assert analysis.best_within_budget(front, 26)["key"] == "b"  # tie at 0.7: the cheaper one
    assert analysis.best_within_budget(front, 1e9)["key"] == "c"
    assert analysis.best_within_budget(None, 10) is None


def test_budget_range_spans_the_min_to_the_max_subnet(gen_run):
    data = pssviz.load_run(gen_run)
    lo, hi = analysis.budget_range(data)
    refs = data.references.set_index("name")["cost"]
    assert (lo, hi) == (refs["min"], refs["max"])
    assert lo <= data.front["cost"].min()
    chosen = analysis.subnet_for_budget(data, lo)
    assert chosen is not None and chosen["cost"] <= lo
    assert analysis.subnet_for_budget(data, lo - 1) is None


def test_pool_table_joins_accuracy_only_for_the_calibrated_epoch(gen_run):
    data = pssviz.load_run(gen_run)
    last = analysis.pool_table(data)
    assert last["accuracy"].notna().sum() == len(data.front)
    assert last["is_best"].sum() == POOLS
    earlier = analysis.pool_table(data, epoch=EPOCHS - 1)
    assert earlier["accuracy"].isna().all()
    one = analysis.pool_table(data, pool=1)
    assert set(one["pool"]) == {1} and list(one["rank"]) == list(range(len(one)))


def test_width_profiles_and_uniform_reference(gen_run):
    data = pssviz.load_run(gen_run)
    best = analysis.best_entries(data)
    assert list(best["pool"]) == list(range(POOLS)) and (best["rank"] == 0).all()
    prof = analysis.width_profiles(data, pools=[0, POOLS - 1])
    assert set(prof["series"]) == {"best", "uniform"}
    layers = len(data.dimensions)
    assert len(prof) == 2 * 2 * layers
    assert prof["ratio"].between(0, 1).all()
    for pool in (0, POOLS - 1):
        b = prof[(prof["pool"] == pool) & (prof["series"] == "best")]
        u = prof[(prof["pool"] == pool) & (prof["series"] == "uniform")]
        assert b["width"].tolist() == pssviz.widths_of([best.loc[best["pool"] == pool, "key"].iloc[0]])[0].tolist()
        # the uniform reference is uniform: one multiplier, rounded per layer
        ref = analysis.uniform_reference(data, float(b["cost"].iloc[0]), int(b["resolution"].iloc[0]))
        assert abs(ref["cost"] - b["cost"].iloc[0]) / b["cost"].iloc[0] < 0.2
        assert u["resolution"].iloc[0] == b["resolution"].iloc[0]
    matrix = analysis.width_matrix(data)
    assert matrix.shape == (POOLS, layers) and list(matrix.columns) == list(data.dimensions["name"])


def test_uniform_reference_is_the_nearest_uniform_subnet(gen_run):
    data = pssviz.load_run(gen_run)
    problem = analysis.run_problem(data)
    target = problem.cost_model.cost("macs", problem.space.uniform_structure(0.9, problem.space.resolutions[-1]))
    ref = analysis.uniform_reference(data, target)
    assert ref["cost"] == target
    assert problem.space.contains(__import__("pss.problem.space", fromlist=["Structure"]).Structure.from_key(ref["key"]))


def test_the_bundled_sample_run_loads_cleanly():
    data = pssviz.load_run(SAMPLE)
    assert data.problems == []
    assert data.status == "calibrated"
    assert len(data.epochs) == data.epochs_planned
    q = data.entries.groupby(["epoch", "pool"])["q"].sum()
    assert np.allclose(q, 1.0)
    assert (data.entries["cost"] >= data.entries["pool"].map(data.budgets.set_index("pool")["lo"]) - 1e-6).all()
    assert (data.entries["cost"] <= data.entries["pool"].map(data.budgets.set_index("pool")["hi"]) + 1e-6).all()


def test_copied_snapshots_do_not_duplicate_epochs(gen_copy):
    snaps = gen_copy / "snapshots"
    shutil.copy(snaps / "epoch_0002.json", snaps / "epoch_0002 (1).json")  # a file manager's copy: ignored
    shutil.copy(snaps / "epoch_0003.json", snaps / "epoch_00009.json")  # claims epoch 3 again
    data = pssviz.load_run(gen_copy)
    assert list(data.epochs["epoch"]) == list(range(1, EPOCHS + 1))
    assert len(data.pools) == EPOCHS * POOLS
    assert any("second snapshot of epoch 3" in p for p in data.problems)
