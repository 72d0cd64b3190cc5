"""`pss calibrate`: per pool, calibrate the top-k entries by m and keep the most accurate (Alg. 1 lines 11-17)."""

from __future__ import annotations

from pathlib import Path

from ..errors import PssError
from ..evaluate.selection import CalibratedSubnet
from ..io.files import ensure_writable
from ..io.run import RunDir, open_run
from ..nn.device import resolve_device
from .evaluation import open_evaluator, write_calibrated_front
from .loaded import load_trained
from .progress import Progress, ProgressFn


def calibrate_run(
    run_dir: str | Path | RunDir,
    top_k: int | None = None,
    images: int | None = None,
    device: str = "auto",
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> dict:
    """Calibrate each pool's top-k entries and pick each pool's best; returns the front it writes.

    Writes ``calibration/front.json`` and ``calibration/bn_stats.pt``. The min
    and max subnets are calibrated too, as references for plots.
    ``on_progress(done, total, message)``, when given, is called after each
    subnet (the dashboard's progress bar).
    """
    run = run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    ensure_writable(run.front_file.parent)  # before the work, not after it
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    top_k = trained.cfg.calib_top_k if top_k is None else int(top_k)
    if top_k < 1:
        raise PssError("--top-k must be at least 1")
    evaluator = open_evaluator(trained, images, dev)
    pools = trained.pools
    jobs = [(t, e) for t, p in enumerate(pools) for e in p.top(top_k)]
    per_pool: list[list[CalibratedSubnet]] = [[] for _ in pools]
    with Progress(len(jobs) + 2, "calibrating", bar=progress, on_progress=on_progress) as bar:
        for t, entry in jobs:
            result = evaluator(entry.structure, entry.m)
            per_pool[t].append(result)
            bar.tick(f"pool {t + 1}/{len(pools)}: accuracy {result.accuracy:.3f}")
        return write_calibrated_front(trained, evaluator, trained.cfg.constraint, top_k, [p.budget for p in pools], per_pool, bar)
