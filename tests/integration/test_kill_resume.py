"""A run killed at random moments (SIGKILL: no clean-up) and resumed ends bit-identical to one never interrupted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import helpers

pytestmark = pytest.mark.slow

KILLS = 4  # random kill points per test run
EPOCHS = 6
SETTINGS = [*helpers.TRAIN_SMALL, "--set", f"epochs={EPOCHS}", "--set", "train_limit=384", "--set", "batch_size=32"]
TIMING = ("seconds", "images_per_second", "created")


def _pss(args: list, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pss.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _strip(doc):
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in TIMING}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def _finished(run: Path) -> bool:
    """A kill can land after the last epoch's writes, while the process exits: the run is then complete."""
    ckpt = run / "checkpoint.pt"
    if not ckpt.is_file():
        return False
    try:
        return torch.load(ckpt, weights_only=True)["epoch"] >= EPOCHS
    except Exception:  # a checkpoint cut mid-write is not a finished run
        return False


def _continue(run: Path) -> list:
    """What a user does after a crash: resume when a checkpoint exists, else start over."""
    if (run / "checkpoint.pt").is_file():
        return ["train", "smoke", "--out", run, "--resume", "--quiet"]
    return ["train", "smoke", "--out", run, "--force", "--quiet", *SETTINGS]


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, child_env):
    straight = tmp_path / "straight"
    p = _pss(["train", "smoke", "--out", straight, "--quiet", *SETTINGS], child_env)
    assert p.wait(timeout=600) == 0, p.stderr.read()

    stamps = sorted(p.stat().st_mtime for p in (straight / "snapshots").glob("epoch_*.json"))
    epoch_seconds = float(np.median(np.diff(stamps)))

    killed = tmp_path / "killed"
    rng = np.random.default_rng(int(time.time()))  # new kill points every run; printed on failure
    outcomes = []
    for _ in range(KILLS):
        done = len(list((killed / "snapshots").glob("epoch_*.json"))) if killed.exists() else 0
        p = _pss(_continue(killed) if killed.exists() else ["train", "smoke", "--out", killed, "--quiet", *SETTINGS], child_env)
        # wait for one more epoch of this process, then kill somewhere inside the next one (or in its writes)
        while p.poll() is None and len(list((killed / "snapshots").glob("epoch_*.json"))) <= done:
            time.sleep(0.05)
        delay = float(rng.uniform(0.0, epoch_seconds))
        time.sleep(delay)
        if p.poll() is not None:
            outcomes.append(("finished before the kill", delay))
            break
        p.kill()  # SIGKILL: no handler runs, a write may be cut anywhere
        p.wait(timeout=60)
        outcomes.append((len(list((killed / "snapshots").glob("epoch_*.json"))), round(delay, 2)))
    print(f"kill points (epochs written when killed, seconds into the epoch after): {outcomes}")
    if not _finished(killed):
        p = _pss(_continue(killed), child_env)
        assert p.wait(timeout=600) == 0, f"kill points {outcomes}: {p.stderr.read()}"

    assert not list(killed.rglob("*.tmp")), "a temp file of a cut write survived the resume"
    for name in ("run.json", *(f"snapshots/epoch_{e:04d}.json" for e in range(1, EPOCHS + 1))):
        a, b = (json.loads((d / name).read_text()) for d in (straight, killed))
        if name == "run.json":
            a, b = a["config"], b["config"]
        assert _strip(a) == _strip(b), f"{name} differs after kill points {outcomes}"
    ca, cb = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (straight, killed))
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"]), f"weights differ after {outcomes}"
    assert ca["pools"] == cb["pools"] and ca["rng"]["numpy"] == cb["rng"]["numpy"] and ca["step"] == cb["step"]
    assert torch.equal(ca["rng"]["torch"], cb["rng"]["torch"])
    opt_a, opt_b = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["momentum_buffer"], opt_b[i]["momentum_buffer"]) for i in opt_a)
