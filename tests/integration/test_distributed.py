"""`torchrun --nproc_per_node 2 -m pss train ...` on the CPU (gloo): one run directory, ranks in step, resumable.

What a 2-process run shares with a 1-process run of the same global batch, and what it cannot:
the data order, the subnets trained at every step and the evaluation images are the same; the losses
differ from the first step on, because each process normalises its half batch with its own BN batch
statistics (as DistributedDataParallel does), so the weights drift apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import helpers

pytestmark = pytest.mark.slow

SETTINGS = [*helpers.TRAIN_SMALL, "--set", "batch_size=32", "--set", "epochs=2"]


def _torchrun(args: list, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "pss", *map(str, args)]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def _keys(snapshot: dict) -> list[str]:
    s = snapshot["samples"]
    return [s["keys"][i] for i in s["key"]]


def test_two_processes_train_one_run(tmp_path, child_env, capsys):
    two, one = tmp_path / "two", tmp_path / "one"
    # first epoch, then a resume to the second: both under torchrun
    proc = _torchrun(["train", "smoke", "--out", two, "--quiet", *SETTINGS, "--set", "epochs=1"], child_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _torchrun(["train", "smoke", "--out", two, "--quiet", "--resume", "--epochs", "2"], child_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run written to") == 1, "only the first process speaks"
    assert "no longer agree" not in proc.stderr  # the per-epoch check of weights and pools on every rank

    run_json = json.loads((two / "run.json").read_text())
    assert run_json["processes"] == 2 and run_json["config"]["epochs"] == 2
    assert sorted(p.name for p in (two / "snapshots").iterdir()) == ["epoch_0001.json", "epoch_0002.json"]
    assert not list(two.rglob("*.tmp"))
    state = torch.load(two / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2

    code, out, err = helpers.run_cli(capsys, "train", "smoke", "--out", one, "--quiet", *SETTINGS)
    assert code == 0, err
    for e in (1, 2):
        a, b = (json.loads((d / "snapshots" / f"epoch_{e:04d}.json").read_text()) for d in (one, two))
        assert a["step"] == b["step"], "same global batch, same number of steps"
        assert _keys(a) == _keys(b), "the same subnets at every step"
    first_one = json.loads((one / "snapshots" / "epoch_0001.json").read_text())["samples"]["max_loss"][0]
    first_two = json.loads((two / "snapshots" / "epoch_0001.json").read_text())["samples"]["max_loss"][0]
    assert first_one == pytest.approx(first_two, abs=0.05) and first_one != first_two  # same images, per-rank BN

    # the run opens and calibrates like any other
    code, out, err = helpers.run_cli(capsys, "calibrate", two, "--quiet", "--images", "64", "--top-k", "1")
    assert code == 0, err


def test_a_batch_that_does_not_split_is_one_line(tmp_path, child_env):
    proc = _torchrun(["train", "smoke", "--out", tmp_path / "r", "--quiet", *helpers.TRAIN_SMALL, "--set", "batch_size=33"],
                     child_env, tmp_path)
    assert proc.returncode != 0
    # each process says it in one line; the rest of stderr is torchrun's own report of failed workers
    assert proc.stderr.count("pss train: error: batch_size 33 does not split into 2 processes") == 2
    assert str(helpers.REPO_ROOT / "pss") not in proc.stderr, "a traceback through pss code"
    assert not (tmp_path / "r").exists()
