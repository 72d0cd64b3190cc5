"""`pss train`: validate everything, then train a supernet into a run directory, epoch by epoch.

After every epoch the run directory gains a snapshot and a fresh checkpoint
(:mod:`pss.io`), so the dashboard can follow a run while it trains and an
interrupted run resumes exactly where its last epoch ended.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import TrainConfig
from ..data import load_data
from ..errors import PssError
from ..io.checkpoint import read_checkpoint, write_checkpoint
from ..io.files import atomic_write_bytes, ensure_writable
from ..io.lut import load_lut, resolve_lut_path
from ..io.run import RunDir, run_document, snapshot_document
from ..training.records import EpochStats
from ..training.distributed import Dist, from_environment
from ..training.trainer import Trainer


def load_checkpoint_into(trainer: Trainer, run: RunDir) -> None:
    """Load ``run``'s checkpoint into ``trainer`` (one-line errors for a missing, packed or foreign checkpoint)."""
    if not run.checkpoint.is_file():
        raise PssError(f"cannot resume: {run.path} has no checkpoint.pt yet; start over with --force")
    trainer.load_state_dict(read_checkpoint(run.checkpoint), f"the checkpoint of {run.path}")


def write_epoch(run: RunDir, trainer: Trainer, stats: EpochStats) -> None:
    """The snapshot of the epoch just finished, then the checkpoint (so a snapshot never outruns its weights' epoch)."""
    cfg = trainer.cfg
    run.write_snapshot(snapshot_document(
        epoch=stats.epoch, epochs=cfg.epochs, step=trainer.step, lr=trainer.optimizer.param_groups[0]["lr"],
        progress=stats.progress_end, p_end=cfg.p_end, eta_end=cfg.eta_end, losses=stats.losses, val_acc=stats.val_acc,
        seconds=stats.seconds, images_per_second=stats.images_per_second, sampler_fallbacks=trainer.sampler.fallbacks,
        pools=trainer.pools, samples=stats.samples.to_json(),
    ))
    write_checkpoint(run.checkpoint, trainer.state_dict())


def fit(trainer: Trainer, run_dir: str | Path | RunDir, resume_run: bool = False) -> RunDir:
    """Train ``trainer`` into ``run_dir`` up to ``cfg.epochs``: run.json first (new runs), then per epoch a snapshot and a checkpoint.

    With ``resume_run`` the trainer first continues from the run's checkpoint.
    """
    cfg, main = trainer.cfg, trainer.dist.is_main
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if resume_run:
        load_checkpoint_into(trainer, run)
    if main:
        run.path.mkdir(parents=True, exist_ok=True)
    if trainer.epoch == 0 and main:
        run.write_run(run_document(cfg, trainer.data.describe(), trainer.problem, trainer.sampler.bucket_sizes,
                                   trainer.batches_per_epoch, str(trainer.device), trainer.dist.world))
        if cfg.latency_lut:  # the run keeps its own LUT: later commands need no outside file
            src = Path(cfg.latency_lut).expanduser()
            if src.is_file() and src.resolve() != run.lut_file.resolve():
                atomic_write_bytes(run.lut_file, src.read_bytes())
    for epoch in range(trainer.epoch, cfg.epochs):
        stats = trainer.train_epoch(epoch)
        stats.val_acc = trainer.evaluate_references()
        trainer.dist.check_in_step(trainer.model, trainer.pools)  # every process holds the same state (and waits here)
        if main:  # one writer
            write_epoch(run, trainer, stats)
            if cfg.progress:
                print(trainer.epoch_line(stats), file=sys.stderr)
    return run


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, force: bool = False) -> RunDir:
    """Validate everything, then train into ``out``; see ``pss train --help``.

    Nothing is written before the config, the data, the LUT and the run
    directory have been checked. Started by ``torchrun``, every process trains
    its share of each batch and only the first writes (:mod:`pss.training.distributed`).
    """
    dist = from_environment(cfg.device)
    try:
        return _train(cfg, out, resume, force, dist)
    finally:
        dist.close()


def _train(cfg: TrainConfig, out: str | Path, resume: bool, force: bool, dist: Dist) -> RunDir:
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise PssError(f"{run.path} exists and is not a directory")
    existing = run.path.is_dir() and any(run.path.iterdir())
    if resume and force:
        raise PssError("--resume and --force exclude each other: resume continues a run, force starts it over")
    if resume:
        if not run.is_run():
            raise PssError(f"cannot resume: {run.path} is not a pss run directory (no run.json)")
        if not run.checkpoint.is_file():
            raise PssError(f"cannot resume: {run.path} has no checkpoint.pt yet; start over with --force")
    elif existing and not force:
        what = "a pss run" if run.is_run() else "not empty"
        raise PssError(f"{run.path} is {what}; pass --resume to continue it or --force to overwrite it")
    elif existing and not run.is_run():
        raise PssError(f"--force only replaces a pss run directory, and {run.path} holds other files (no run.json); "
                       "choose a new or empty --out")
    for key in ("npz_path", "imagenet_root", "data_root"):
        value = getattr(cfg, key)
        if value:  # later commands (calibrate, export) may run from another directory
            setattr(cfg, key, str(Path(value).expanduser().resolve()))
    data = load_data(cfg)  # fails before anything is written
    # resuming, the run's own copy of the LUT stands in for a moved or deleted original
    latency = load_lut(resolve_lut_path(cfg.latency_lut, run.path if resume else None)) if cfg.latency_lut else None
    trainer = Trainer.build(cfg, data, latency, dist=dist)
    if resume:
        load_checkpoint_into(trainer, run)
        if trainer.epoch >= cfg.epochs:
            raise PssError(f"run {run.path} already finished its {cfg.epochs} epochs; pass --epochs N with N > {cfg.epochs} to train further")
    problem = None
    if dist.is_main:  # the one writer prepares the directory; the others wait for its word
        try:
            _prepare(run, existing, force, resume, cfg)
        except PssError as exc:
            problem = str(exc)
    problem = dist.broadcast(problem)
    if problem is not None:
        raise PssError(problem)
    return fit(trainer, run)


def _prepare(run: RunDir, existing: bool, force: bool, resume: bool, cfg: TrainConfig) -> None:
    ensure_writable(run.path)
    if force and existing:  # only now that config, data, budgets and the disk are fine
        run.clear()
    elif resume:
        run.remove_temp_files()  # what an interrupted write left behind
    if resume:
        run_json = run.read_run()
        run_json["config"].update(epochs=cfg.epochs, lr=cfg.lr)  # what `--resume` may change
        run.write_run(run_json)

