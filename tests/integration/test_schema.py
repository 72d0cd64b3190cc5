"""The on-disk run format matches docs/schema/*.schema.json (and so docs/run-format.md).

One real run (2 tiny epochs of the smoke preset), calibrated and exported, is
validated file by file. The schemas must also name every top-level key the
code writes, so adding a field without documenting it fails here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch

jsonschema = pytest.importorskip("jsonschema")
from jsonschema import Draft202012Validator  # noqa: E402

import helpers
from pss.cli import main  # noqa: E402
from pss.config import TrainConfig  # noqa: E402
from pss.io.checkpoint import read_bn_stats  # noqa: E402
from pss.io.run import RunDir  # noqa: E402
from pss.problem.space import Structure  # noqa: E402

REPO = helpers.REPO_ROOT
NPZ = REPO.parent / "shared" / "data" / "cifar10-train-subset.npz"
SCHEMAS = ("run", "snapshot", "front", "card")
KINDS = {"run": "pss-run", "snapshot": "pss-snapshot", "front": "pss-front", "card": "pss-subnet-card"}

SMALL = [
    "--set", "epochs=2",
    "--set", "train_limit=256",
    "--set", "val_limit=128",
    "--set", "structure_set_size=5000",
    "--set", "eval_calib_images=64",
    "--set", f"npz_path={NPZ}",
]


load_schema = helpers.schema


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def errors(name: str, doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> dict:
    """A trained, calibrated and exported run; name -> list of JSON documents (+ paths)."""
    root = tmp_path_factory.mktemp("schema")
    run, export = root / "run", root / "export"
    assert main(["train", "smoke", "--out", str(run), "--quiet", *SMALL]) == 0
    assert main(["calibrate", str(run), "--quiet", "--images", "128", "--top-k", "2"]) == 0
    front = json.loads((run / "calibration" / "front.json").read_text())
    pools = [p for p in front["pools"] if p["best"] is not None]
    assert pools, "calibration left every pool empty"
    budget = pools[len(pools) // 2]["budget"]["value"]  # a middle budget
    assert main(["export", str(run), "--budget", repr(budget), "--out", str(export)]) == 0
    snapshots = sorted((run / "snapshots").glob("epoch_*.json"))
    return {
        "run_dir": run,
        "export_dir": export,
        "run": [json.loads((run / "run.json").read_text())],
        "snapshot": [json.loads(p.read_text()) for p in snapshots],
        "snapshot_paths": snapshots,
        "front": [front],
        "card": [json.loads((export / "card.json").read_text())],
    }


# ---------------------------------------------------------------------- the schemas themselves
@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert props["schema_version"]["const"] == 1
    assert props["kind"]["const"] == KINDS[name]
    assert schema["additionalProperties"] is True, "top level stays open for additive fields"
    assert set(schema["required"]) <= set(props)


def _walk_properties(node, defs, where="#"):
    """Yield (location, property schema) for every entry of every `properties` in ``node``.

    Combinator branches (oneOf...) only restate properties declared elsewhere, so they are skipped.
    """
    if isinstance(node, dict):
        for key, sub in node.get("properties", {}).items():
            yield f"{where}/properties/{key}", sub
        for key, sub in node.items():
            if key not in ("$defs", "oneOf", "anyOf", "allOf", "not"):
                yield from _walk_properties(sub, defs, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _walk_properties(sub, defs, f"{where}/{i}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_field_is_described(name):
    schema = load_schema(name)
    defs = schema.get("$defs", {})
    missing = []
    for node in [schema, *defs.values()]:
        for where, prop in _walk_properties(node, defs):
            target = prop
            if "description" not in prop and "$ref" in prop:
                target = defs[prop["$ref"].split("/")[-1]]
            if not target.get("description"):
                missing.append(where)
    assert not missing, f"{name}: properties without a description: {missing}"


def test_shared_definitions_agree_across_schemas():
    seen: dict[str, tuple[str, dict]] = {}
    for name in SCHEMAS:
        for key, value in load_schema(name).get("$defs", {}).items():
            if key in seen:
                assert value == seen[key][1], f"$defs/{key} differs between {seen[key][0]} and {name}"
            else:
                seen[key] = (name, value)


#: keys added in pss 0.2: a run.json written before lacks them (TrainConfig.from_stored reads it as trained)
KEYS_SINCE_0_2 = {"dropout", "width_rule", "kind_draw", "depthwise_weight_decay", "test_split", "test_fraction",
                  "imagenet_augmentation", "test_limit", "calib_rescore", "rescore_images"}
#: keys added with EAS superclasses: a run.json written before lacks them (their defaults are how it was trained)
KEYS_SINCE_SUPERCLASSES = {"superclasses", "superclass_dropout"}


def test_config_schema_lists_every_train_config_key():
    config = load_schema("run")["properties"]["config"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(config["properties"]) == fields
    assert set(config["required"]) == fields - KEYS_SINCE_0_2 - KEYS_SINCE_SUPERCLASSES


# ---------------------------------------------------------------------- real files validate
@pytest.mark.parametrize("name", SCHEMAS)
def test_real_files_validate(run_files, name):
    docs = run_files[name]
    assert docs
    for doc in docs:
        assert errors(name, doc) == []


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_names_every_top_level_key_written(run_files, name):
    props = set(load_schema(name)["properties"])
    for doc in run_files[name]:
        undocumented = set(doc) - props
        assert not undocumented, f"{name}: keys written but not in the schema: {sorted(undocumented)}"


def test_snapshot_file_names_match_epochs(run_files):
    epochs = [s["epoch"] for s in run_files["snapshot"]]
    assert epochs == [1, 2]
    assert [p.name for p in run_files["snapshot_paths"]] == [f"epoch_{e:04d}.json" for e in epochs]


def test_cross_field_invariants(run_files):
    """What the schemas cannot express but docs/run-format.md promises."""
    run = run_files["run"][0]
    dims = run["space"]["dimensions"]
    resolutions = run["space"]["resolutions"]
    budgets = run["budgets"]
    assert [d["name"] for d in dims] == run["space"]["dimension_names"]
    assert [b["value"] for b in budgets] == sorted(b["value"] for b in budgets)

    def check_structure(s: dict, key: str | None = None) -> None:
        assert len(s["widths"]) == len(dims)
        assert all(w in d["choices"] for w, d in zip(s["widths"], dims))
        assert s["resolution"] in resolutions
        if key is not None:
            assert key == Structure(tuple(s["widths"]), s["resolution"]).key
            assert Structure.from_key(key).to_json() == s

    for name in ("max", "min"):
        check_structure(run["reference_subnets"][name]["structure"])
    for snap in run_files["snapshot"]:
        assert len(snap["pools"]) == len(budgets)
        for t, pool in enumerate(snap["pools"]):
            assert pool["index"] == t and pool["budget"] == budgets[t]
            assert pool["size"] == len(pool["entries"]) == len(pool["q"]) <= pool["capacity"]
            assert pool["full"] == (pool["size"] >= pool["capacity"])
            if pool["q"]:
                assert math.isclose(sum(pool["q"]), 1.0, rel_tol=1e-9)
            ms = [e["m"] for e in pool["entries"]]
            assert ms == sorted(ms, reverse=True)
            for e in pool["entries"]:
                check_structure(e["structure"], e["key"])
                b = pool["budget"]
                assert abs(e["costs"][b["kind"]] - b["value"]) <= b["tolerance"]
    front = run_files["front"][0]
    bn_stats = read_bn_stats(RunDir(run_files["run_dir"]))
    for t, pool in enumerate(front["pools"]):
        assert pool["index"] == t and pool["budget"] == budgets[t]
        assert len(pool["candidates"]) <= front["top_k"]
        assert (pool["best"] is None) == (not pool["candidates"])
        if pool["best"] is not None:
            assert 0 <= pool["best"] < len(pool["candidates"])
        for c in pool["candidates"]:
            check_structure(c["structure"], c["key"])
            assert c["key"] in bn_stats
    for ref in front["references"].values():
        assert ref["m"] is None and ref["key"] in bn_stats
    card = run_files["card"][0]
    check_structure(card["structure"], card["key"])
    assert card["macs"] == card["costs"]["macs"] and card["params"] == card["costs"]["params"]
    assert card["input"]["resolution"] == card["structure"]["resolution"]
    assert card["input"]["shape"][1:] == [run["dataset"]["in_channels"], card["structure"]["resolution"], card["structure"]["resolution"]]
    assert card["model"] == run["model"]
    if card["source"]["pool_index"] is not None:  # a pool's candidate: the card names that pool's budget
        assert card["budget"] == budgets[card["source"]["pool_index"]]
    else:  # the min or max subnet (candidates too, since budgets became ceilings): no pool, its reference named
        assert card["budget"] is None and card["source"]["reference"] in ("min", "max")
        assert card["key"] == Structure.from_json(run["reference_subnets"][card["source"]["reference"]]["structure"]).key
    assert card["costs"][card["selection"]["kind"]] <= card["selection"]["budget"], "the budget is a ceiling"


def test_torch_files_have_the_documented_shape(run_files):
    run_dir, export_dir = run_files["run_dir"], run_files["export_dir"]
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert {"schema_version", "epoch", "step", "model", "optimizer", "scaler", "pools", "sampler_fallbacks", "rng"} <= set(ckpt)
    assert ckpt["schema_version"] == 1 and ckpt["epoch"] == 2
    assert isinstance(ckpt["pools"], str) and isinstance(ckpt["rng"]["numpy"], str)
    pools = json.loads(ckpt["pools"])
    assert [set(p) for p in pools] == [{"budget", "capacity", "entries"}] * len(pools)
    assert json.loads(ckpt["rng"]["numpy"])["bit_generator"] == "PCG64"

    raw = torch.load(run_dir / "calibration" / "bn_stats.pt", weights_only=True)
    assert raw["layout"] == "flat-1" and isinstance(raw["index"], str)
    index = json.loads(raw["index"])
    assert set(index["shapes"]) == set(raw["stats"])
    for key, (names_id, shapes) in index["shapes"].items():
        assert len(index["names"][names_id]) == len(shapes)
        assert raw["stats"][key].dtype == torch.float32 and raw["stats"][key].dim() == 1
        assert raw["stats"][key].numel() == sum(math.prod(s) for s in shapes)
    bn_stats = read_bn_stats(RunDir(run_dir))
    key, stats = next(iter(bn_stats.items()))
    structure = Structure.from_key(key)
    assert stats and all(k.endswith((".running_mean", ".running_var")) for k in stats)
    assert stats["blocks.0.body.0.bn.running_mean"].shape == (structure.widths[0],)  # sliced, not full width

    card = run_files["card"][0]
    state = torch.load(export_dir / card["files"]["state_dict"], weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    program = torch.export.load(str(export_dir / card["files"]["program"])).module()
    c, r = card["input"]["shape"][1], card["input"]["resolution"]
    assert program(torch.zeros(3, c, r, r)).shape == (3, len(card["class_names"]))


# ---------------------------------------------------------------------- tampered files fail
def _tamper_cases(run_files):
    run = run_files["run"][0]
    snap = run_files["snapshot"][-1]
    front = run_files["front"][0]
    card = run_files["card"][0]

    def edit(doc, fn):
        doc = copy.deepcopy(doc)
        fn(doc)
        return doc

    def first_entry(s):
        return next(p for p in s["pools"] if p["entries"])["entries"][0]

    def first_candidate(f):
        return next(p for p in f["pools"] if p["candidates"])["candidates"][0]

    return [
        ("run", "widths as strings", edit(run, lambda d: d["reference_subnets"]["max"]["structure"].update(
            widths=[str(w) for w in d["reference_subnets"]["max"]["structure"]["widths"]]))),
        ("run", "missing budgets", edit(run, lambda d: d.pop("budgets"))),
        ("run", "other schema_version", edit(run, lambda d: d.update(schema_version=2))),
        ("run", "wrong kind", edit(run, lambda d: d.update(kind="pss-snapshot"))),
        ("run", "unknown config key", edit(run, lambda d: d["config"].update(temperature=1.0))),
        ("run", "budget_count and budget_step both set", edit(run, lambda d: d["config"].update(budget_count=4, budget_step=1e6))),
        ("run", "float channel choice", edit(run, lambda d: d["space"]["dimensions"][0]["choices"].append(7.5))),
        ("snapshot", "widths as strings", edit(snap, lambda d: first_entry(d)["structure"].update(
            widths=[str(w) for w in first_entry(d)["structure"]["widths"]]))),
        ("snapshot", "missing pool capacity", edit(snap, lambda d: d["pools"][0].pop("capacity"))),
        ("snapshot", "p above 1", edit(snap, lambda d: d["pools"][0].update(p=1.5))),
        ("snapshot", "malformed key", edit(snap, lambda d: first_entry(d).update(key="0.75x"))),
        ("snapshot", "budget without tolerance", edit(snap, lambda d: d["pools"][0]["budget"].pop("tolerance"))),
        ("front", "missing best", edit(front, lambda d: d["pools"][0].pop("best"))),
        ("front", "accuracy in percent", edit(front, lambda d: first_candidate(d).update(accuracy=87.5))),
        ("front", "resolution as string", edit(front, lambda d: first_candidate(d)["structure"].update(resolution="32"))),
        ("card", "missing input", edit(card, lambda d: d.pop("input"))),
        ("card", "widths as strings", edit(card, lambda d: d["structure"].update(widths=[str(w) for w in d["structure"]["widths"]]))),
        ("card", "float multiplier structure", edit(card, lambda d: d.update(structure={"width_mult": 0.75, "resolution": 28}))),
        ("card", "wrong program file", edit(card, lambda d: d["files"].update(program="model.pt"))),
    ]


def test_tampered_files_fail_validation(run_files):
    passed = [(name, why) for name, why, doc in _tamper_cases(run_files) if not errors(name, doc)]
    assert not passed, f"tampered documents that still validate: {passed}"


def test_unknown_top_level_fields_are_allowed(run_files):
    for name in SCHEMAS:
        doc = dict(run_files[name][0], added_in_a_later_version={"x": 1})
        assert errors(name, doc) == []
