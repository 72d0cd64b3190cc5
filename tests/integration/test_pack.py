"""`pss pack`: fp16 weights, no optimizer state; still calibrates and exports, refuses to resume."""

from __future__ import annotations

import pytest
import torch

from pss.cli import main


@pytest.mark.slow
def test_pack_shrinks_and_keeps_the_run_usable(run_copy, tmp_path, capsys):
    ckpt = run_copy / "checkpoint.pt"
    before = torch.load(ckpt, weights_only=True)
    size = ckpt.stat().st_size
    assert main(["pack", str(run_copy)]) == 0
    assert "packed" in capsys.readouterr().out
    after = torch.load(ckpt, weights_only=True)
    assert after["packed"] == "float16" and after["optimizer"] == {} and after["scaler"] == {}
    assert ckpt.stat().st_size < 0.5 * size
    for key, value in before["model"].items():
        packed = after["model"][key]
        if value.is_floating_point():
            assert packed.dtype == torch.float16
            assert torch.allclose(packed.float(), value, rtol=1e-3, atol=1e-4)
        else:
            assert torch.equal(packed, value)
    assert after["pools"] == before["pools"] and after["epoch"] == before["epoch"]

    assert main(["pack", str(run_copy)]) == 0  # idempotent
    assert "already packed" in capsys.readouterr().out

    assert main(["calibrate", str(run_copy), "--quiet", "--images", "64", "--top-k", "1"]) == 0
    out = tmp_path / "subnet"
    front = __import__("json").loads((run_copy / "calibration" / "front.json").read_text())
    theta = front["pools"][0]["budget"]["value"]
    assert main(["export", str(run_copy), "--budget", str(theta), "--out", str(out)]) == 0
    card = __import__("json").loads((out / "card.json").read_text())
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4
    loaded = torch.load(out / "state_dict.pt", weights_only=True)
    assert all(v.dtype != torch.float16 for v in loaded.values()), "exports are float32"


def test_packed_run_refuses_to_resume(run_copy, capsys, tree_state):
    assert main(["pack", str(run_copy)]) == 0
    state = tree_state(run_copy)
    assert main(["train", "smoke", "--out", str(run_copy), "--resume", "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "packed" in err and "cannot be resumed" in err and err.count("\n") == 1
    assert tree_state(run_copy) == state


def test_pack_errors_are_one_line(tmp_path, capsys):
    assert main(["pack", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
