"""A trained run opened once: its files, config, problem, supernet and checkpoint, passed down to every workflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..errors import PssError, one_line
from ..io.checkpoint import read_checkpoint
from ..io.run import RunDir, open_run
from ..nn.supernet import Supernet
from ..problem.problem import Problem
from ..sampling.pools import SubnetPool


@dataclass
class TrainedRun:
    """What a run directory holds once read: run.json, the config and problem, the supernet with its weights."""

    run: RunDir
    run_json: dict[str, Any]
    cfg: TrainConfig
    problem: Problem
    supernet: Supernet
    checkpoint: dict[str, Any]

    @property
    def epoch(self) -> int:
        """The epoch the checkpoint's weights are from."""
        return int(self.checkpoint["epoch"])

    @property
    def pools(self) -> list[SubnetPool]:
        return self.checkpoint["pools"]

    @property
    def path(self) -> Path:
        return self.run.path


def load_trained(run: RunDir | str | Path, device: torch.device | str = "cpu") -> TrainedRun:
    """Open a run with its checkpoint: the supernet carries the checkpoint's weights, in eval mode, on ``device``."""
    run = run if isinstance(run, RunDir) else open_run(run)
    run_json = run.read_run()
    cfg, problem = run.read_problem(run_json)
    if not run.checkpoint.is_file():
        if run.snapshot_paths():
            raise PssError(
                f"run {run.path} has snapshots but no checkpoint.pt (a generated or trimmed run?); "
                "without weights it can be viewed but not calibrated or exported"
            )
        raise PssError(f"run {run.path} has no checkpoint.pt yet; wait for its first epoch to finish")
    state = read_checkpoint(run.checkpoint)
    model = Supernet(problem.spec)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise PssError(f"checkpoint of {run.path} does not match its run.json: {one_line(exc)}") from None
    return TrainedRun(run, run_json, cfg, problem, model.to(device).eval(), state)
