"""The run's tensor files: ``checkpoint.pt`` (the training state) and ``calibration/bn_stats.pt``.

A checkpoint holds the trainer's state (:meth:`pss.training.trainer.Trainer.state_dict`)
with the pools and the numpy RNG state encoded as JSON strings, so the file
loads with ``torch.load(weights_only=True)``: nothing in it is unpickled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..errors import PssError
from ..sampling.pools import SubnetPool
from .files import SCHEMA_VERSION
from .generator import GENERATOR_WEIGHTS, generator_dir
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


#: ``bn_stats.pt`` layout: one flat float tensor per structure plus a JSON index of its
#: buffers. A tensor per buffer (the first layout, still read) cost ~300 bytes of archive
#: overhead each, as much as the data itself for a compact supernet's thin layers.
BN_STATS_LAYOUT = "flat-1"


def write_bn_stats(run: RunDir, stats: dict[str, dict[str, torch.Tensor]]) -> None:
    """Calibrated BN statistics, keyed by structure key (what export slices into a subnet).

    Stored as one flat tensor per structure (values and dtype unchanged, so reading
    gives back bit-identical buffers) with the names and shapes in a JSON string.
    """
    names: list[list[str]] = []  # each distinct list of buffer names once (all structures share one)
    flat, shapes = {}, {}
    for key, buffers in stats.items():
        if list(buffers) not in names:
            names.append(list(buffers))
        shapes[key] = [names.index(list(buffers)), [list(t.shape) for t in buffers.values()]]
        flat[key] = (torch.cat([t.detach().reshape(-1).cpu() for t in buffers.values()])
                     if buffers else torch.zeros(0))
    index = json.dumps({"names": names, "shapes": shapes}, separators=(",", ":"))
    save_tensors({"layout": BN_STATS_LAYOUT, "index": index, "stats": flat}, run.bn_stats_file)


def read_bn_stats(run: RunDir) -> dict[str, dict[str, torch.Tensor]]:
    """``{structure key: {buffer name: tensor}}`` from either layout of ``bn_stats.pt``."""
    doc = load_tensors(run.bn_stats_file, "calibrated BN statistics")
    if not (isinstance(doc, dict) and doc.get("layout") == BN_STATS_LAYOUT):
        return doc  # the first layout: already {key: {name: tensor}}
    try:
        index = json.loads(doc["index"])
        stats = {}
        for key, (names_id, shapes) in index["shapes"].items():
            parts = torch.split(doc["stats"][key], [math.prod(shape) for shape in shapes]) if shapes else []
            names = index["names"][names_id]
            if len(names) != len(shapes) or len(parts) != len(shapes):
                raise ValueError(f"structure {key} has {len(shapes)} shapes for {len(names)} buffers")
            stats[key] = {name: part.reshape(shape) for name, shape, part in zip(names, shapes, parts)}
        return stats
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise PssError(f"calibrated BN statistics {run.bn_stats_file} are damaged ({exc.__class__.__name__}: {exc}); "
                       "run pss calibrate again") from None


def write_generator_weights(run_path: str | Path, state: dict[str, torch.Tensor], seed: int = 0) -> None:
    """The architecture generator's state dict (of generator seed ``seed``), beside its description (pss.io.generator)."""
    folder = generator_dir(run_path, seed)
    folder.mkdir(exist_ok=True)
    save_tensors({k: v.detach().cpu() for k, v in state.items()}, folder / GENERATOR_WEIGHTS)


def read_generator_weights(run_path: str | Path, seed: int = 0) -> dict[str, torch.Tensor]:
    path = generator_dir(run_path, seed) / GENERATOR_WEIGHTS
    if not path.is_file():
        again = f" --seed {seed}" if seed else ""
        raise PssError(f"run {run_path} has no architecture generator weights{' for seed ' + str(seed) if seed else ''}; "
                       f"train them with `pss generate {run_path} --train{again}`")
    state = load_tensors(path, "generator weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PssError(f"generator weights {path} do not hold a state dict; train the generator again with --train")
    return state
