"""`pss pack`: shrink a finished run for sharing (fp16 weights, no optimizer state)."""

from __future__ import annotations

from pathlib import Path

from ..errors import PssError
from ..io.checkpoint import read_checkpoint, write_checkpoint
from ..io.run import open_run


def pack_checkpoint(run_dir: str | Path) -> tuple[int, int]:
    """Rewrite a run's checkpoint with float16 weights and without optimizer state; returns (bytes before, after).

    Floating-point tensors of the model are stored as float16 (loading casts
    them back into the float32 supernet); the optimizer and AMP scaler states
    are dropped and ``"packed": "float16"`` marks the file, so ``pss train
    --resume`` refuses it with a clear message. Viewing, calibrating and
    exporting work as before. Calibrate *after* packing so the front's
    accuracies are those of the shipped weights.
    """
    run = open_run(run_dir)
    if not run.checkpoint.is_file():
        raise PssError(f"run {run.path} has no checkpoint.pt to pack; wait for its first epoch to finish")
    before = run.checkpoint.stat().st_size
    state = read_checkpoint(run.checkpoint)
    if state.get("packed"):
        return before, before
    state.pop("schema_version", None)
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    state["optimizer"] = {}
    state["scaler"] = {}
    state["packed"] = "float16"
    write_checkpoint(run.checkpoint, state)
    return before, run.checkpoint.stat().st_size
