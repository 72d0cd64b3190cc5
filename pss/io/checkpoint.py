"""The run's tensor files: ``checkpoint.pt`` (the training state) and ``calibration/bn_stats.pt``.

A checkpoint holds the trainer's state (:meth:`pss.training.trainer.Trainer.state_dict`)
with the pools and the numpy RNG state encoded as JSON strings, so the file
loads with ``torch.load(weights_only=True)``: nothing in it is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import PssError
from ..sampling.pools import SubnetPool
from .files import SCHEMA_VERSION
from .run import RunDir
from .tensors import load_tensors, save_tensors


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save a trainer state (pools as :class:`SubnetPool` objects, rng["numpy"] as a dict) atomically."""
    doc = {"schema_version": SCHEMA_VERSION, **state}
    doc["pools"] = json.dumps([p.to_json() for p in state["pools"]])
    doc["rng"] = {**state["rng"], "numpy": json.dumps(state["rng"]["numpy"])}
    save_tensors(doc, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint with its pools as :class:`SubnetPool` objects and rng["numpy"] as a dict."""
    state = load_tensors(path, "checkpoint")
    version = state.get("schema_version") if isinstance(state, dict) else None
    if version != SCHEMA_VERSION:
        raise PssError(f"checkpoint {path} has schema version {version!r}; this pss reads version {SCHEMA_VERSION}")
    try:
        state["pools"] = [SubnetPool.from_json(p) for p in json.loads(state["pools"])]
        if isinstance(state.get("rng", {}).get("numpy"), str):
            state["rng"]["numpy"] = json.loads(state["rng"]["numpy"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PssError(f"checkpoint {path} is damaged ({exc.__class__.__name__}: {exc}); resume from a copy or train again") from None
    return state


def write_bn_stats(run: RunDir, stats: dict[str, dict[str, torch.Tensor]]) -> None:
    """Calibrated BN statistics, keyed by structure key (what export slices into a subnet)."""
    save_tensors(stats, run.bn_stats_file)


def read_bn_stats(run: RunDir) -> dict[str, dict[str, torch.Tensor]]:
    return load_tensors(run.bn_stats_file, "calibrated BN statistics")
