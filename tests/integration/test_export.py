"""`pss.export`: the exported subnet is the calibrated supernet slice, standalone.

Uses the session's ``trained_run`` (a real `pss train` + `pss calibrate`).
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import helpers

import pss
from pss.errors import PssError
from pss.io.checkpoint import read_bn_stats
from pss.io.run import open_run
from pss.nn.supernet import resize_batch
from pss.problem.space import Structure
from pss.units import format_quantity, parse_quantity
from pss.workflows.export import export_subnet
from pss.workflows.info import run_summary
from pss.workflows.loaded import load_trained

CARD_KEYS = {"structure", "macs", "params", "accuracy", "source", "calibration_images", "input", "class_names"}


def _count_nothing(inputs, outputs):
    return collections.Counter()


def fvcore_macs(model, x) -> int:
    """fvcore MACs with BN and adaptive pooling not counted (see tests/unit/test_costs.py for why
    the handles are replaced rather than set to None)."""
    from fvcore.nn import FlopCountAnalysis

    fa = FlopCountAnalysis(model, x)
    fa.set_op_handle("aten::batch_norm", _count_nothing, "aten::adaptive_avg_pool2d", _count_nothing)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    return int(fa.total())


def calibrated_pools(run: Path) -> list[dict]:
    pools = [p for p in run_summary(run)["pools"] if "calibrated" in p]
    assert pools, "the trained run has no calibrated pool"
    return pools


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """Export the middle calibrated pool's best subnet once for this module (``--nearest-pool``)."""
    pools = calibrated_pools(trained_run)
    pool = pools[len(pools) // 2]
    out = tmp_path_factory.mktemp("export") / "subnet"
    card = export_subnet(trained_run, pool["budget"]["value"], out, nearest_pool=True)
    return {"out": out, "card": card, "pool": pool, "structure": Structure.from_json(card["structure"])}


@pytest.fixture(scope="module")
def reference(trained_run, exported):
    """The calibrated supernet: checkpoint weights + that structure's calibrated BN statistics."""
    run = open_run(trained_run)
    trained = load_trained(run)
    ctx, model = trained.problem, trained.supernet
    s = exported["structure"]
    stats = read_bn_stats(run)[s.key]
    with torch.no_grad():
        for key, value in stats.items():
            buf = model.get_buffer(key)
            assert value.shape[0] <= buf.shape[0]
            buf[: value.shape[0]].copy_(value)
    model.eval()
    r_max = ctx.space.resolutions[-1]
    x = torch.randn(7, ctx.spec.in_channels, r_max, r_max, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x, s)
    return {"model": model, "ctx": ctx, "x": x, "logits": logits, "stats": stats}


def test_export_writes_files_and_card(trained_run, exported):
    out, card, pool, s = exported["out"], exported["card"], exported["pool"], exported["structure"]
    assert {p.name for p in out.iterdir()} == {"model.pt2", "model.onnx", "state_dict.pt", "card.json"}
    on_disk = json.loads((out / "card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    missing = CARD_KEYS - set(on_disk)
    assert not missing, f"card.json lacks {missing}"

    front = json.loads((trained_run / "calibration" / "front.json").read_text())
    fpool = front["pools"][pool["index"]]
    best = fpool["candidates"][fpool["best"]]
    assert on_disk["structure"] == best["structure"] and on_disk["key"] == best["key"] == s.key
    assert on_disk["key"] == pool["calibrated"]["key"]
    assert on_disk["accuracy"] == best["accuracy"] and 0.0 <= on_disk["accuracy"] <= 1.0
    assert on_disk["macs"] == best["costs"]["macs"] and on_disk["params"] == best["costs"]["params"]
    assert on_disk["budget"]["value"] == pool["budget"]["value"]
    assert on_disk["selection"] == {"rule": "nearest_pool", "budget": pool["budget"]["value"], "kind": "macs"}
    assert on_disk["validation"]["images"] == front["validation_images"] == 128
    assert on_disk["test"]["images"] == front["test_images"] == 128 and on_disk["test_split"].startswith("held-out 10%")
    assert on_disk["test"]["ci95"][0] <= on_disk["test"]["accuracy"] <= on_disk["test"]["ci95"][1]

    run_json = json.loads((trained_run / "run.json").read_text())
    assert Path(on_disk["source"]["run"]) == trained_run.resolve()
    assert on_disk["source"]["epoch"] == front["epoch"] == 1
    assert on_disk["source"]["pool_index"] == pool["index"]
    assert on_disk["calibration_images"] == front["calibration_images"] == 128

    ds = run_json["dataset"]
    inp = on_disk["input"]
    assert inp["resolution"] == s.resolution
    assert inp["shape"][1:] == [ds["in_channels"], s.resolution, s.resolution]
    assert inp["channel_order"] == "RGB"
    assert inp["mean"] == ds["mean"] and inp["std"] == ds["std"]
    assert len(inp["mean"]) == len(inp["std"]) == ds["in_channels"] == 3
    if s.resolution == ds["native_resolution"]:  # a deployer reads how to reach r: exactly resize_batch's rule
        assert inp["resize"].startswith("none")
    else:
        assert "bilinear" in inp["resize"] and "align_corners=False" in inp["resize"] and f"{s.resolution}x{s.resolution}" in inp["resize"]
    assert on_disk["class_names"] == ds["class_names"] and len(on_disk["class_names"]) == ds["num_classes"]
    # the library's own check ran and found the slice exact
    assert on_disk["check"]["max_abs_diff_vs_supernet"] < 1e-4


def test_load_subnet_equals_calibrated_supernet_slice(exported, reference):
    s = exported["structure"]
    dense = pss.load_subnet(exported["out"])
    assert not dense.training
    with torch.no_grad():
        got = dense(resize_batch(reference["x"], s.resolution))
    torch.testing.assert_close(got, reference["logits"], rtol=0, atol=1e-4)


def test_stale_bn_statistics_would_differ(exported, reference, trained_run):
    """Sanity: the comparison above depends on the calibrated statistics."""
    stale = load_trained(open_run(trained_run)).supernet
    with torch.no_grad():
        out = stale.eval()(reference["x"], exported["structure"])
    assert (out - reference["logits"]).abs().max() > 1e-3


@pytest.mark.parametrize("batch", [1, 7])
def test_program_equals_slice_with_dynamic_batch(exported, reference, batch):
    s = exported["structure"]
    program = torch.export.load(str(exported["out"] / "model.pt2")).module()
    x = resize_batch(reference["x"][:batch], s.resolution)
    with torch.no_grad():
        got = program(x)
    assert got.shape == (batch, reference["ctx"].spec.num_classes)
    torch.testing.assert_close(got, reference["logits"][:batch], rtol=0, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_equals_slice_with_dynamic_batch(exported, reference, batch):
    """model.onnx in onnxruntime gives the calibrated supernet slice's logits (<= 1e-4), at any batch size."""
    import onnxruntime as ort

    card = exported["card"]
    assert card["files"]["onnx"] == "model.onnx" and card["onnx"] == {"opset": 18, "input": "images", "output": "logits",
                                                                       "dynamic_batch": True}
    session = ort.InferenceSession(str(exported["out"] / "model.onnx"), providers=["CPUExecutionProvider"])
    x = resize_batch(reference["x"][:batch], exported["structure"].resolution).contiguous()
    (got,) = session.run(["logits"], {"images": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), reference["logits"][:batch], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_program_runs_in_python_without_pss(exported, reference, tmp_path, child_env):
    s = exported["structure"]
    x = resize_batch(reference["x"][:3], s.resolution).contiguous()
    torch.save(x, tmp_path / "x.pt")
    code = textwrap.dedent(
        """
        import sys

        class NoPss:
            # make `pss` unimportable, even though the venv has it installed
            def find_spec(self, name, path=None, target=None):
                if name == "pss" or name.startswith("pss."):
                    raise ImportError("pss must not be needed to run an exported model")
                return None

        sys.meta_path.insert(0, NoPss())
        import torch

        program = torch.export.load(sys.argv[1]).module()
        x = torch.load("x.pt", weights_only=True)
        with torch.no_grad():
            y = program(x)
        torch.save(y, "y.pt")
        loaded = sorted(m for m in sys.modules if m == "pss" or m.startswith("pss."))
        assert not loaded, loaded
        print("ran", tuple(y.shape))
        """
    )
    env = dict(child_env)
    env["PYTHONPATH"] = ""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(exported["out"] / "model.pt2")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ran (3, 10)" in proc.stdout
    y = torch.load(tmp_path / "y.pt", weights_only=True)
    torch.testing.assert_close(y, reference["logits"][:3], rtol=0, atol=1e-4)


def test_program_macs_match_the_card(exported):
    card, pool, s = exported["card"], exported["pool"], exported["structure"]
    program = torch.export.load(str(exported["out"] / "model.pt2")).module()
    macs = fvcore_macs(program, torch.zeros(1, 3, s.resolution, s.resolution))
    assert macs == card["macs"]
    budget = pool["budget"]
    assert budget["kind"] == "macs"
    assert abs(macs - budget["value"]) <= budget["tolerance"], (
        f"{macs} MACs outside {budget['value']} +/- {budget['tolerance']}"
    )


def test_state_dict_is_sliced_and_weights_only(trained_run, exported, reference):
    state = torch.load(exported["out"] / "state_dict.pt", weights_only=True)
    supernet = reference["model"].state_dict()
    assert state and set(state) <= set(supernet)
    strictly_smaller = 0
    for key, t in state.items():
        ref = supernet[key]
        assert t.dim() == ref.dim(), key
        assert all(a <= b for a, b in zip(t.shape, ref.shape)), f"{key}: {tuple(t.shape)} vs {tuple(ref.shape)}"
        strictly_smaller += t.numel() < ref.numel()
        # W_i[1:o_i]: the exported tensor is the leading slice of the supernet's
        if t.dim() and not key.endswith(("running_mean", "running_var")):
            index = tuple(slice(0, n) for n in t.shape)
            assert torch.equal(t, ref[index].to(t.dtype)), f"{key} is not the leading slice"
    assert strictly_smaller > 0
    # BN statistics are the calibrated ones, not the supernet's stale ones
    for key, value in reference["stats"].items():
        assert torch.equal(state[key], value), key
    total = sum(t.numel() for k, t in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert total == exported["card"]["params"]


def test_budget_out_of_range_states_the_range(trained_run, tmp_path):
    """--nearest-pool keeps the old, pool-based meaning and its range check."""
    pools = calibrated_pools(trained_run)
    lo = pools[0]["budget"]["value"] - pools[0]["budget"]["tolerance"]
    hi = pools[-1]["budget"]["value"] + pools[-1]["budget"]["tolerance"]
    for value in (hi * 10, lo / 10):
        out = tmp_path / f"out_{int(value)}"
        with pytest.raises(PssError) as err:
            export_subnet(trained_run, value, out, nearest_pool=True)
        msg = str(err.value)
        assert format_quantity(lo) in msg and format_quantity(hi) in msg, msg
        assert "\n" not in msg
        assert not out.exists()


def test_budget_below_every_subnet_names_the_cheapest(trained_run, tmp_path):
    """A ceiling under C(min): a one-line error naming the cheapest calibrated subnet (the min subnet) and its cost."""
    front = json.loads((trained_run / "calibration" / "front.json").read_text())
    cheapest = front["references"]["min"]
    out = tmp_path / "never"
    with pytest.raises(PssError) as err:
        export_subnet(trained_run, cheapest["costs"]["macs"] - 1, out)
    msg = str(err.value)
    assert cheapest["key"] in msg and format_quantity(cheapest["costs"]["macs"]) in msg and "\n" not in msg
    assert not out.exists()
    # far above C(max) is fine: a ceiling, the most accurate subnet of all
    card = export_subnet(trained_run, front["references"]["max"]["costs"]["macs"] * 10, tmp_path / "top", check=False)
    every = [c for p in front["pools"] for c in p["candidates"]] + list(front["references"].values())
    assert card["accuracy"] == max(c["accuracy"] for c in every) and card["dominated_by"] is None


def test_budget_at_range_edge_is_accepted_and_nearest_pool_wins(trained_run, tmp_path):
    pools = calibrated_pools(trained_run)
    first = pools[0]
    value = first["budget"]["value"] - first["budget"]["tolerance"] * 0.99
    card = export_subnet(trained_run, value, tmp_path / "edge", check=False, nearest_pool=True)
    assert card["source"]["pool_index"] == first["index"]
    assert card["key"] == first["calibrated"]["key"]


def test_malformed_budget(trained_run, tmp_path):
    for bad in ("12 apples", "", "M", "-5M", "5 MB"):
        with pytest.raises(PssError, match="malformed budget"):
            export_subnet(trained_run, bad, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_export_refuses_an_out_path_that_is_a_file(trained_run, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    value = calibrated_pools(trained_run)[0]["budget"]["value"]
    with pytest.raises(PssError, match="not a directory"):
        export_subnet(trained_run, value, f)
    assert f.read_text() == "x"


def test_export_refuses_a_directory_with_other_files(trained_run, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    value = calibrated_pools(trained_run)[0]["budget"]["value"]
    with pytest.raises(PssError, match="other files"):
        export_subnet(trained_run, value, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "text,value",
    [("30M", 3e7), ("1.2G", 1.2e9), ("450K", 4.5e5), ("450k", 4.5e5), ("4500", 4500.0), (" 2.5m ", 2.5e6), ("1e3K", 1e6), ("2T", 2e12)],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == pytest.approx(value, rel=1e-12)


def test_parse_quantity_exact_examples():
    assert parse_quantity("30M") == 3e7
    assert parse_quantity("1.2G") == 1.2e9


def test_format_quantity_round_trips_through_parse():
    for v in (512.0, 4.5e5, 3e7, 1.2e9):
        assert parse_quantity(format_quantity(v)) == pytest.approx(v, rel=1e-3)


def test_the_readme_snippet_runs_as_written(trained_run, tmp_path, child_env):
    """README's "Using an exported subnet", executed unchanged next to a real export and an image."""

    text = (helpers.REPO_ROOT / "README.md").read_text()
    section = text[text.index("### Using an exported subnet"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    pools = calibrated_pools(trained_run)
    export_subnet(trained_run, pools[len(pools) // 2]["budget"]["value"], tmp_path / "runs" / "smoke-5M")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "my_image.png")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].split(None, 1)[1] == lines[1].split(None, 1)[1], lines  # both runtimes agree
