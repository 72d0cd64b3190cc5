"""`pss calibrate`: per pool, calibrate the top-k entries by m and keep the most accurate (Alg. 1 lines 11-17).

With ``calib_rescore`` (``--rescore``) the top-k are chosen by a fresh metric instead: every pool entry's
-CE re-measured with the final weights on one fixed set of training images. The paper's m is a moving
average of the losses observed *when an entry was sampled*, so an entry last sampled early in training
keeps an early, stale value; the fresh metric compares all entries under the same weights and images.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..errors import PssError
from ..evaluate.selection import CalibratedSubnet
from ..evaluate.statistics import rank_correlation
from ..io.files import ensure_writable
from ..io.run import RunDir, open_run
from ..nn.device import resolve_device
from ..sampling.pools import PoolEntry
from .evaluation import SubnetEvaluator, open_evaluator, write_calibrated_front
from .loaded import load_trained
from .progress import Progress, ProgressFn

#: Offset of the seed that picks the rescoring images from the run's seed (not the calibration images).
RESCORE_SEED_OFFSET = 4099


def calibrate_run(
    run_dir: str | Path | RunDir,
    top_k: int | None = None,
    images: int | None = None,
    device: str = "auto",
    progress: bool = True,
    on_progress: ProgressFn | None = None,
    rescore: bool | None = None,
) -> dict:
    """Calibrate each pool's top-k entries and pick each pool's best; returns the front it writes.

    Writes ``calibration/front.json`` and ``calibration/bn_stats.pt``. The min
    and max subnets are calibrated too: they are candidates of every budget they
    fit. ``rescore`` (default: the run's ``calib_rescore``) ranks the entries by
    :func:`fresh_metrics` instead of the stored m. ``on_progress(done, total,
    message)``, when given, is called after each subnet (the dashboard's progress bar).
    """
    run = run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    ensure_writable(run.front_file.parent)  # before the work, not after it
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    top_k = trained.cfg.calib_top_k if top_k is None else int(top_k)
    if top_k < 1:
        raise PssError("--top-k must be at least 1")
    rescore = trained.cfg.calib_rescore if rescore is None else bool(rescore)
    evaluator = open_evaluator(trained, images, dev)
    pools = trained.pools
    entries = sum(len(p) for p in pools)
    ranked: list[list[PoolEntry]] = [p.top(top_k) for p in pools]
    selection: dict[str, Any] = {"metric": "m"}
    fresh: dict[str, float] = {}
    jobs = sum(len(r) for r in ranked)
    with Progress(jobs + 2 + (entries if rescore else 0), "calibrating", bar=progress, on_progress=on_progress) as bar:
        if rescore:
            fresh = fresh_metrics(evaluator, trained.cfg.rescore_images, trained.cfg.batch_size, bar)
            ranked = [sorted(p.entries, key=lambda e: -fresh[e.structure.key])[:top_k] for p in pools]
            selection = {"metric": "fresh", "images": min(trained.cfg.rescore_images, evaluator.data.num_train),
                         "rank_correlation": [rank_correlation([e.m for e in p.entries], [fresh[e.structure.key] for e in p.entries])
                                              for p in pools]}
        per_pool: list[list[CalibratedSubnet]] = [[] for _ in pools]
        space = trained.problem.space
        # every pool's top-k and the two references together: they share the work of their common prefixes
        evaluator.evaluate_many([e.structure for top in ranked for e in top] + [space.max_structure, space.min_structure])
        for t, top in enumerate(ranked):
            for entry in top:
                result = evaluator(entry.structure, entry.m)
                if rescore:
                    result = dataclasses.replace(result, fresh_m=fresh[entry.structure.key])
                per_pool[t].append(result)
                bar.tick(f"pool {t + 1}/{len(pools)}: accuracy {result.accuracy:.3f}")
        return write_calibrated_front(trained, evaluator, trained.cfg.constraint, top_k, [p.budget for p in pools], per_pool, bar,
                                      selection=selection)


def fresh_metrics(evaluator: SubnetEvaluator, images: int, batch_size: int, progress: Progress) -> dict[str, float]:
    """structure key -> -CE of every pool entry with the final weights, on the same ``images`` training images.

    The images are un-augmented, drawn once with a fixed seed and kept in memory, in batches of the
    training batch size so each batch's BN statistics are like those training saw.
    """
    trained = evaluator.trained
    generator = torch.Generator().manual_seed(trained.cfg.seed + RESCORE_SEED_OFFSET)
    batches = list(evaluator.data.calibration_batches(images, min(batch_size, images), generator, evaluator.device))
    out: dict[str, float] = {}
    for pool in trained.pools:
        for entry in pool.entries:
            key = entry.structure.key
            if key not in out:
                out[key] = evaluator.calibrator.negative_loss(entry.structure, batches)
            progress.tick(f"fresh metric {out[key]:.3f}")
    return out
