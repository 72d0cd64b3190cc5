"""tests/make_run.py writes a synthetic run that is a valid run directory.

The generated run (real config, structures, costs and budgets; made-up losses
and accuracies) is what the dashboard speed benchmark and some tests use in
place of a long training run, so it must satisfy the same schemas and the same
cross-field promises as a real one (compare tests/integration/test_schema.py).
"""

from __future__ import annotations

import json
import math

import pytest

jsonschema = pytest.importorskip("jsonschema")
from jsonschema import Draft202012Validator  # noqa: E402

import helpers
from pss.cli import main  # noqa: E402
from pss.io.run import RunDir  # noqa: E402
from pss.problem.space import Structure  # noqa: E402

REPO = helpers.REPO_ROOT
EPOCHS, POOLS, ENTRIES, TOP_K = 6, 4, 8, 3


load_schema = helpers.schema


def errors(name: str, doc: dict) -> list[str]:
    validator = Draft202012Validator(load_schema(name))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def generated(make_run_module, tmp_path_factory) -> dict:
    run = make_run_module.make_run(tmp_path_factory.mktemp("gen") / "run", epochs=EPOCHS, pools=POOLS, entries=ENTRIES,
                                   seed=3, front=True, top_k=TOP_K)
    paths = sorted((run / "snapshots").glob("epoch_*.json"))
    return {
        "dir": run,
        "run": json.loads((run / "run.json").read_text()),
        "snapshot_paths": paths,
        "snapshots": [json.loads(p.read_text()) for p in paths],
        "front": json.loads((run / "calibration" / "front.json").read_text()),
    }


def test_files_validate_against_the_schemas(generated):
    assert errors("run", generated["run"]) == []
    assert len(generated["snapshots"]) == EPOCHS
    for snap in generated["snapshots"]:
        assert errors("snapshot", snap) == []
    assert errors("front", generated["front"]) == []


def test_layout_and_run_file(generated, make_run_module):
    run, meta = generated["dir"], generated["run"]
    assert [p.name for p in generated["snapshot_paths"]] == [f"epoch_{e:04d}.json" for e in range(1, EPOCHS + 1)]
    assert [s["epoch"] for s in generated["snapshots"]] == list(range(1, EPOCHS + 1))
    # Viewable, never exportable: no weights and no calibrated BN statistics.
    assert not (run / "checkpoint.pt").exists()
    assert not (run / "calibration" / "bn_stats.pt").exists()
    assert not list(run.rglob(".*.tmp")), "atomic writes leave no temp files"
    assert meta["generated"] == make_run_module.GENERATED
    cfg = meta["config"]
    assert (cfg["budget_count"], cfg["budget_step"], cfg["pool_size"], cfg["epochs"], cfg["seed"]) == (POOLS, None, ENTRIES, EPOCHS, 3)
    assert meta["dataset"]["num_classes"] == 10 and meta["dataset"]["in_channels"] == 3
    assert meta["dataset"]["native_resolution"] == 32 and meta["device"] == "cpu"
    assert len(meta["budgets"]) == POOLS == len(meta["structure_set"]["bucket_sizes"])
    assert all(n > 0 for n in meta["structure_set"]["bucket_sizes"])
    # Only the top level is open; the generator adds nothing else the schema does not name.
    assert set(meta) - set(load_schema("run")["properties"]) == {"generated"}
    for snap in generated["snapshots"]:
        assert set(snap) <= set(load_schema("snapshot")["properties"])
    assert set(generated["front"]) <= set(load_schema("front")["properties"])


def test_structures_and_costs_are_real(generated):
    meta = generated["run"]
    cfg, ctx = RunDir(generated["dir"]).read_problem(meta)  # the same problem pss rebuilds from run.json
    assert [b.to_json() for b in ctx.budgets] == meta["budgets"]
    for name, s in (("max", ctx.space.max_structure), ("min", ctx.space.min_structure)):
        assert meta["reference_subnets"][name] == {"structure": s.to_json(), "costs": ctx.cost_model.costs(s)}
    kind = meta["constraint"]
    for snap in generated["snapshots"]:
        assert len(snap["pools"]) == POOLS
        for t, pool in enumerate(snap["pools"]):
            b = pool["budget"]
            assert pool["index"] == t and b == meta["budgets"][t]
            assert pool["size"] == len(pool["entries"]) == len(pool["q"]) <= pool["capacity"] == ENTRIES
            assert pool["full"] == (pool["size"] >= pool["capacity"])
            keys = [e["key"] for e in pool["entries"]]
            assert len(set(keys)) == len(keys)
            for e in pool["entries"]:
                s = Structure.from_json(e["structure"])
                assert ctx.space.contains(s) and e["key"] == s.key
                assert e["costs"] == ctx.cost_model.costs(s)
                assert abs(e["costs"][kind] - b["value"]) <= b["tolerance"]
                assert e["times_sampled"] >= 1


def test_pool_sampling_state(generated):
    meta = generated["run"]
    cfg = meta["config"]
    batches = meta["batches_per_epoch"]
    for snap in generated["snapshots"]:
        assert snap["step"] == snap["epoch"] * batches
        assert math.isclose(snap["progress"], snap["epoch"] / EPOCHS)
        assert math.isclose(snap["p_schedule"], cfg["p_end"] ** snap["progress"])
        drawn = 0
        for pool in snap["pools"]:
            ms = [e["m"] for e in pool["entries"]]
            assert ms == sorted(ms, reverse=True), "entries sorted by m, best first"
            if pool["q"]:
                assert math.isclose(sum(pool["q"]), 1.0, rel_tol=1e-9)
                assert pool["q"] == sorted(pool["q"], reverse=True)
            if pool["full"]:
                assert math.isclose(pool["p"], snap["p_schedule"]) and math.isclose(pool["eta"], snap["eta_schedule"])
            else:
                assert pool["p"] == 1.0 and pool["eta"] == 1.0
            assert pool["from_space"] + pool["from_pool"] == pool["pushes"] + pool["updates"]
            assert pool["evictions"] <= pool["pushes"]
            assert (pool["mean_trials"] is None) == (pool["from_space"] == 0)
            drawn += pool["from_space"] + pool["from_pool"]
        assert drawn == batches, "one medium subnet per batch"


def test_dynamics_are_plausible(generated):
    snaps = generated["snapshots"]
    first, last = snaps[0], snaps[-1]
    assert last["losses"]["max"] < first["losses"]["max"]
    assert last["val_acc"]["max"] > first["val_acc"]["max"] and last["val_acc"]["min"] > first["val_acc"]["min"]
    assert last["lr"] < first["lr"]
    best_first = [p["entries"][0]["m"] for p in first["pools"]]
    best_last = [p["entries"][0]["m"] for p in last["pools"]]
    assert sum(best_last) > sum(best_first), "m (negative loss) improves"
    times = [sum(e["times_sampled"] for p in s["pools"] for e in p["entries"]) for s in snaps]
    assert times[-1] > times[0]


def test_front_matches_the_last_snapshot(generated):
    front, last, meta = generated["front"], generated["snapshots"][-1], generated["run"]
    assert front["epoch"] == EPOCHS and front["top_k"] == TOP_K and front["constraint"] == meta["constraint"]
    for t, (fp, sp) in enumerate(zip(front["pools"], last["pools"])):
        assert fp["index"] == t and fp["budget"] == meta["budgets"][t]
        cands = fp["candidates"]
        assert [c["key"] for c in cands] == [e["key"] for e in sp["entries"][:TOP_K]]
        assert [c["m"] for c in cands] == [e["m"] for e in sp["entries"][:TOP_K]]
        assert [c["costs"] for c in cands] == [e["costs"] for e in sp["entries"][:TOP_K]]
        accs = [c["accuracy"] for c in cands]
        assert fp["best"] == accs.index(max(accs))
    refs = front["references"]
    assert refs["max"]["m"] is None and refs["min"]["m"] is None
    assert refs["max"]["structure"] == meta["reference_subnets"]["max"]["structure"]
    assert refs["min"]["structure"] == meta["reference_subnets"]["min"]["structure"]
    assert refs["max"]["accuracy"] > refs["min"]["accuracy"]


def test_pss_info_reads_it(generated, capsys):
    assert main(["info", str(generated["dir"])]) == 0
    out = capsys.readouterr().out
    assert "synthetic-bench" in out and f"{EPOCHS}/{EPOCHS} epochs" in out
    assert main(["info", str(generated["dir"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["calibrated"] and summary["finished"] and len(summary["pools"]) == POOLS


def test_export_refuses_it_cleanly(generated, tmp_path, capsys):
    budget = generated["run"]["budgets"][1]["value"]
    code = main(["export", str(generated["dir"]), "--budget", repr(budget), "--out", str(tmp_path / "export")])
    err = capsys.readouterr().err
    assert code == 2 and "checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "export").exists()


def test_deterministic_and_seeded(make_run_module, generated, tmp_path):
    small = dict(epochs=2, pools=3, entries=4, front=False)
    a = make_run_module.make_run(tmp_path / "a", seed=1, **small)
    b = make_run_module.make_run(tmp_path / "b", seed=1, **small)
    c = make_run_module.make_run(tmp_path / "c", seed=2, **small)
    assert not (a / "calibration").exists()
    for name in ("epoch_0001.json", "epoch_0002.json"):
        assert (a / "snapshots" / name).read_bytes() == (b / "snapshots" / name).read_bytes()
    assert (a / "snapshots" / "epoch_0002.json").read_bytes() != (c / "snapshots" / "epoch_0002.json").read_bytes()
    ra, rb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    ra.pop("created"), rb.pop("created")
    assert ra == rb


def test_refuses_a_non_empty_directory(make_run_module, generated):
    from pss.errors import PssError

    with pytest.raises(PssError):
        make_run_module.make_run(generated["dir"], epochs=1, pools=2, entries=2)
