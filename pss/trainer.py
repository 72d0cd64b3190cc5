"""Supernet training (PSS-Net Alg. 1-2 and the baselines) with per-epoch snapshots and checkpoints.

``config.strategy`` picks which subnets a batch trains (:mod:`pss.strategies`):
``pss`` (the default: Alg. 1-3), ``uniform`` (US-Net), ``mutual``
(MutualNet), ``random`` (BigNAS/OFA) or ``pse`` (PSE-Net parallel subnets).

Serial strategies run Alg. 2 (sandwich rule + inplace distillation) per batch:

1. the max subnet with cross-entropy on the labels;
2. every other subnet of the plan by KL to the detached max output (for
   ``pss``: one medium chosen by prioritized sampling, Alg. 3, for a budget
   drawn uniformly from Theta, then the min subnet);

then one optimizer step. Each backward runs right after its forward, so only
one subnet's activations are alive at a time. The parallel strategy (``pse``)
runs one forward/backward of the max network whose batch chunks belong to
different subnets (:meth:`pss.supernet.Supernet.forward_parallel`), each chunk
trained by cross-entropy on its labels.

Every subnet's cross-entropy on its images comes from its training forward:
for ``pss`` the medium's m = -CE updates its pool (Alg. 3 lines 8-17), and for
every strategy each non-max subnet's CE, with the max subnet's CE of the same
step, is logged in the snapshot's ``samples`` (the training-loss prior of
PSE-Net Eq. 17-19).
"""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import __version__
from .calibration import BNCalibrator, evaluate_accuracy
from .config import TrainConfig
from .context import SupernetContext, resolve_device
from .data import DataBundle, DataConfig, load_data
from .errors import PssError
from .pools import SubnetPool
from .runs import SCHEMA_VERSION, RunDir, atomic_torch_save, atomic_write_bytes, atomic_write_json, check_checkpoint_version, load_tensors, utc_timestamp
from .sampling import (
    StructureDistributionSampler,
    pool_temperature,
    prioritized_probs,
    space_sampling_probability,
    training_progress,
)
from .space import Structure
from .strategies import Strategy, Subnet, make_strategy
from .supernet import Supernet, chunk_sizes


def data_config(cfg: TrainConfig) -> DataConfig:
    """The data part of a training config."""
    names = {f.name for f in dataclasses.fields(DataConfig)}
    values = {k: v for k, v in cfg.to_json().items() if k in names}
    classes = values.get("imagenet_classes")
    if isinstance(classes, str) and classes.isdigit():
        values["imagenet_classes"] = int(classes)
    return DataConfig(**values)


def cosine_lr(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warm-up to ``base_lr``, then cosine annealing to 0 (per iteration)."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, t)))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only (not BN affine, not biases)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Inplace distillation: KL(teacher || student), batch mean (Alg. 2 line 9)."""
    return F.kl_div(F.log_softmax(student_logits.float(), dim=1), teacher_probs, reduction="batchmean")


@dataclass
class StepResult:
    """What one training step did: the subnets (max first) and, per subnet, its losses."""

    subnets: list[Subnet]
    losses: list[float]  # the loss each subnet was trained with (CE for max; KL, or CE for pse)
    ce: list[float]  # cross-entropy on the labels of the images it saw

    def _mean(self, role: str) -> float | None:
        values = [v for s, v in zip(self.subnets, self.losses) if s.role == role]
        return sum(values) / len(values) if values else None

    @property
    def loss_max(self) -> float:
        return self.losses[0]

    @property
    def loss_medium(self) -> float | None:
        """Mean training loss over the medium subnets (None when there were none)."""
        return self._mean("medium")

    @property
    def loss_min(self) -> float | None:
        return self._mean("min")

    @property
    def _first_medium(self) -> int | None:
        return next((i for i, s in enumerate(self.subnets) if s.role == "medium"), None)

    @property
    def medium(self) -> Structure | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].structure

    @property
    def metric(self) -> float | None:
        """PSS-Net's m = -batch_loss of the (first) medium subnet."""
        i = self._first_medium
        return None if i is None else -self.ce[i]

    @property
    def pool_index(self) -> int | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].pool

    @property
    def source(self) -> str | None:
        i = self._first_medium
        return None if i is None else self.subnets[i].source


class SampleLog:
    """The epoch's trained non-max subnets and their losses, columnar (snapshot field ``samples``).

    One row per (step, subnet): the 1-based optimizer step, the index of the
    subnet's structure key in ``keys``, its cross-entropy on the images it
    trained on, and the max subnet's cross-entropy at that step (PSE-Net Eq.
    17-19 rescale a loss by the max subnet's).
    """

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.step: list[int] = []
        self.key: list[int] = []
        self.loss: list[float] = []
        self.max_loss: list[float] = []

    def add(self, step: int, result: StepResult) -> None:
        for s, ce in zip(result.subnets, result.ce):
            if s.role == "max":
                continue
            k = s.structure.key
            if k not in self._index:
                self._index[k] = len(self.keys)
                self.keys.append(k)
            self.step.append(int(step))
            self.key.append(self._index[k])
            self.loss.append(float(ce))
            self.max_loss.append(float(result.ce[0]))

    def __len__(self) -> int:
        return len(self.step)

    def to_json(self) -> dict[str, list]:
        return {"keys": list(self.keys), "step": list(self.step), "key": list(self.key), "loss": list(self.loss), "max_loss": list(self.max_loss)}


class PssTrainer:
    """Trains one supernet with ``cfg.strategy`` and writes its run directory."""

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, data: DataBundle, resume: bool = False) -> None:
        self.cfg = cfg
        self.run = RunDir(run_dir)
        self.data = data
        self.device = resolve_device(cfg.device)
        self.ctx = SupernetContext.build(cfg, data.num_classes, data.in_channels)
        self.space, self.costs, self.budgets = self.ctx.space, self.ctx.cost_model, self.ctx.budgets
        self.max_structure = self.space.max_structure
        self.min_structure = self.space.min_structure

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.model = Supernet(self.ctx.spec).to(self.device)
        if cfg.channels_last:  # NHWC is 15-50% faster for these convs on CPU (oneDNN) and GPU
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            param_groups(self.model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

        self.sampler = StructureDistributionSampler(
            self.space,
            self.ctx.cost_array_fns(),  # kind -> C(.): every budget judged by its own kind (PSS-Net_M)
            self.budgets,
            self.rng,
            set_size=cfg.structure_set_size,
            max_trials=cfg.max_trials,
        )
        empty = [b.label for b, n in zip(self.budgets, self.sampler.bucket_sizes) if n == 0]
        if empty:
            raise PssError(
                f"no structure in S meets budget(s) {', '.join(empty)}; use fewer budgets (budget_count) "
                "or a wider tolerance, or a larger structure_set_size"
            )
        self.strategy: Strategy = make_strategy(
            cfg.strategy,
            self.space,
            cfg.num_subnets,
            sampler=self.sampler,
            costs=self.costs.costs,
            pool_size=cfg.pool_size,
            p_end=cfg.p_end,
            eta_end=cfg.eta_end,
            metric_lambda=cfg.metric_lambda,
        )
        self.samples = SampleLog()
        self.batches_per_epoch = data.len_train_batches(cfg.batch_size)
        if self.batches_per_epoch < 1:
            raise PssError(f"batch_size {cfg.batch_size} exceeds the {data.num_train} training images; lower batch_size")
        self.total_steps = self.batches_per_epoch * cfg.epochs
        self.warmup_steps = int(round(cfg.warmup_epochs * self.batches_per_epoch))
        if self.strategy.parallel and cfg.batch_size < 2 * cfg.num_subnets:
            raise PssError(
                f"strategy {cfg.strategy} splits each batch into num_subnets={cfg.num_subnets} chunks of at least 2 images; "
                f"raise batch_size (now {cfg.batch_size}) to at least {2 * cfg.num_subnets}"
            )
        self.step = 0
        self.start_epoch = 0
        if resume:
            self._load_checkpoint()

    @property
    def pools(self) -> list[SubnetPool]:
        """Pi: the subnet pools (empty unless the strategy is pss)."""
        return self.strategy.pools

    # ------------------------------------------------------------------ run files
    def write_run_file(self) -> None:
        spec = self.ctx.spec
        atomic_write_json(
            self.run.run_file,
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "pss-run",
                "pss_version": __version__,
                "created": utc_timestamp(),
                "config": self.cfg.to_json(),
                "dataset": self.data.describe(),
                "model": {**spec.builder, "family": spec.family},
                "space": {**self.space.to_json(), "dimension_names": list(spec.dim_names)},
                "constraint": self.cfg.constraint,
                "budgets": [b.to_json() for b in self.budgets],
                "reference_subnets": {
                    "max": {"structure": self.max_structure.to_json(), "costs": self.costs.costs(self.max_structure)},
                    "min": {"structure": self.min_structure.to_json(), "costs": self.costs.costs(self.min_structure)},
                },
                "structure_set": {"size": self.cfg.structure_set_size, "bucket_sizes": self.sampler.bucket_sizes},
                "batches_per_epoch": self.batches_per_epoch,
                "device": str(self.device),
            },
        )

    # ------------------------------------------------------------------ one batch
    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype) if self.use_amp else nullcontext()

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def train_step(self, x: torch.Tensor, y: torch.Tensor, progress: float) -> StepResult:
        """One batch: the strategy's subnets (Alg. 1 lines 4-8 and Alg. 2 for pss), then one optimizer step."""
        cfg = self.cfg
        for g in self.optimizer.param_groups:
            g["lr"] = cosine_lr(self.step, self.total_steps, self.warmup_steps, cfg.lr)
        self.optimizer.zero_grad(set_to_none=True)

        subnets = self.strategy.plan(self.rng, progress)
        if self.strategy.parallel:
            losses, ces = self._parallel_forward_backward(x, y, subnets)
        else:
            losses, ces = self._serial_forward_backward(x, y, subnets)
        values = torch.stack([*losses, *ces]).tolist()  # one device sync
        result = StepResult(subnets, values[: len(subnets)], values[len(subnets):])
        if not all(math.isfinite(v) for v in values):
            raise PssError(
                f"training diverged at step {self.step} (a loss is not finite); lower lr (now {cfg.lr}) "
                "and start over with --force, or --resume from the last good epoch"
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.strategy.observe(subnets, result.ce)
        self.samples.add(self.step, result)
        return result

    def _serial_forward_backward(self, x: torch.Tensor, y: torch.Tensor, subnets: list[Subnet]) -> tuple[list, list]:
        """Alg. 2: one forward/backward per subnet on the whole batch; max first, by CE, the rest by KL (or CE)."""
        losses, ces = [], []
        teacher = None
        for s in subnets:
            with self._autocast():
                out = self.model(x, s.structure)
                if s.role == "max" or not self.strategy.distill:
                    loss = ce = F.cross_entropy(out.float(), y)
                else:
                    loss = distillation_loss(out, teacher)
                    ce = F.cross_entropy(out.detach().float(), y)  # m = -batch_loss, same forward
            self._backward(loss)
            if s.role == "max" and self.strategy.distill:
                teacher = F.softmax(out.detach().float(), dim=1)
            losses.append(loss.detach())
            ces.append(ce.detach())
            del out, loss
        return losses, ces

    def _parallel_forward_backward(self, x: torch.Tensor, y: torch.Tensor, subnets: list[Subnet]) -> tuple[list, list]:
        """PSE-Net: one forward/backward of the max network, batch chunk i trained by subnet i (CE each)."""
        sizes = chunk_sizes(x.shape[0], len(subnets))
        with self._autocast():
            out = self.model.forward_parallel(x, [s.structure for s in subnets], sizes)
            ces = [F.cross_entropy(o.float(), t) for o, t in zip(out.split(sizes), y.split(sizes))]
        self._backward(torch.stack(ces).sum())
        ces = [c.detach() for c in ces]
        return ces, ces

    # ------------------------------------------------------------------ epochs
    def fit(self) -> None:
        cfg = self.cfg
        self.run.path.mkdir(parents=True, exist_ok=True)
        if self.start_epoch == 0:
            self.write_run_file()
            if getattr(cfg, "latency_lut", None):  # the run keeps its own LUT: later commands need no outside file
                from .context import RUN_LUT_FILE

                src = Path(cfg.latency_lut).expanduser()
                if src.is_file() and src.resolve() != (self.run.path / RUN_LUT_FILE).resolve():
                    atomic_write_bytes(self.run.path / RUN_LUT_FILE, src.read_bytes())
        for epoch in range(self.start_epoch, cfg.epochs):
            stats = self.train_epoch(epoch)
            stats["val_acc"] = self.evaluate_references()
            self.write_snapshot(epoch + 1, stats)
            self.save_checkpoint(epoch + 1)
            self._print_epoch(epoch + 1, stats)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        self.model.train()
        for pool in self.pools:
            pool.counters = type(pool.counters)()
        self.samples = SampleLog()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sums = {"max": 0.0, "medium": 0.0, "min": 0.0}
        counts = dict.fromkeys(sums, 0)
        n = 0
        t0 = time.perf_counter()
        bar = _progress(self.batches_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
        for b, (x, y) in enumerate(self.data.train_batches(cfg.batch_size, gen, self.device)):
            progress = training_progress(epoch, b, self.batches_per_epoch, cfg.epochs)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            r = self.train_step(x, y, progress)
            for name, value in (("max", r.loss_max), ("medium", r.loss_medium), ("min", r.loss_min)):
                if value is not None:
                    sums[name] += value
                    counts[name] += 1
            n += 1
            if bar is not None:
                full = sum(p.is_full for p in self.pools)
                pools = f" pools full {full}/{len(self.pools)}" if self.pools else ""
                bar.set_postfix_str(f"loss {r.loss_max:.3f}{pools}", refresh=False)
                bar.update(1)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        return {
            # medium/min are null for a strategy that trains none (pse has no min; n = 2 has no medium)
            "losses": {k: (v / counts[k] if counts[k] else None) for k, v in sums.items()},
            "samples": self.samples.to_json(),
            "seconds": seconds,
            "images_per_second": n * cfg.batch_size / max(seconds, 1e-9),
            "progress_end": training_progress(epoch + 1, 0, self.batches_per_epoch, cfg.epochs),
        }

    def evaluate_references(self) -> dict[str, float]:
        """Validation accuracy of the max and min subnets after a quick BN re-estimate.

        With ``eval_calib_images = 0`` the supernet's own (stale, shared)
        running statistics are used instead.
        """
        cfg = self.cfg
        out = {}
        calibrator = BNCalibrator(self.model) if cfg.eval_calib_images > 0 else None
        for name, s in (("max", self.max_structure), ("min", self.min_structure)):
            val = self.data.val_batches(cfg.eval_batch_size, self.device)
            if calibrator is None:
                out[name] = evaluate_accuracy(self.model, s, val)
            else:
                gen = torch.Generator().manual_seed(cfg.seed + 17)
                calibrator.calibrate(s, self.data.calibration_batches(cfg.eval_calib_images, cfg.eval_batch_size, gen, self.device))
                out[name] = calibrator.accuracy(s, val)
        self.model.train()
        return out

    # ------------------------------------------------------------------ snapshot
    def pool_snapshot(self, t: int, pool: SubnetPool, progress: float) -> dict[str, Any]:
        p = space_sampling_probability(self.cfg.p_end, progress, pool.is_full)
        eta = pool_temperature(self.cfg.eta_end, progress, pool.is_full)
        return {
            "index": t,
            "budget": pool.budget.to_json(),
            "capacity": pool.capacity,
            "size": len(pool),
            "full": pool.is_full,
            "p": p,
            "eta": eta,
            "q": prioritized_probs(pool.metrics(), eta).tolist(),
            **pool.counters.to_json(),
            "entries": [e.to_json() for e in pool.entries],
        }

    def write_snapshot(self, epoch: int, stats: dict[str, Any]) -> None:
        progress = stats["progress_end"]
        atomic_write_json(
            self.run.snapshot_path(epoch),
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "pss-snapshot",
                "epoch": epoch,
                "epochs": self.cfg.epochs,
                "step": self.step,
                "lr": self.optimizer.param_groups[0]["lr"],
                "progress": progress,
                "p_schedule": self.cfg.p_end ** progress,
                "eta_schedule": self.cfg.eta_end ** progress,
                "losses": stats["losses"],
                "val_acc": stats["val_acc"],
                "seconds": stats["seconds"],
                "images_per_second": stats["images_per_second"],
                "sampler_fallbacks": self.sampler.fallbacks,
                "pools": [self.pool_snapshot(t, p, progress) for t, p in enumerate(self.pools)],
                **({"samples": stats["samples"]} if "samples" in stats else {}),
            },
        )

    def _print_epoch(self, epoch: int, stats: dict[str, Any]) -> None:
        if not self.cfg.progress:
            return
        full = sum(p.is_full for p in self.pools)
        pools = f"pools full {full}/{len(self.pools)} " if self.pools else ""
        print(
            f"epoch {epoch}/{self.cfg.epochs} ({self.cfg.strategy}): loss max {stats['losses']['max']:.3f} "
            f"val acc max {stats['val_acc']['max']:.3f} min {stats['val_acc']['min']:.3f} "
            f"{pools}({stats['images_per_second']:.0f} img/s)",
            file=sys.stderr,
        )

    # ------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, epoch: int) -> None:
        import json

        state = {
            "schema_version": SCHEMA_VERSION,
            "epoch": epoch,
            "step": self.step,
            "strategy": self.cfg.strategy,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pools": json.dumps([p.to_json() for p in self.pools]),
            "sampler_fallbacks": self.sampler.fallbacks,
            "rng": {
                "numpy": json.dumps(self.rng.bit_generator.state),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        atomic_torch_save(state, self.run.checkpoint)

    def _load_checkpoint(self) -> None:
        import json

        state = load_tensors(self.run.checkpoint, "checkpoint")
        check_checkpoint_version(state, self.run.checkpoint)
        if state.get("packed"):
            raise PssError(
                f"the checkpoint of {self.run.path} was packed with `pss pack` ({state['packed']} weights, no optimizer state) "
                "and cannot be resumed; view, calibrate or export it, or train a new run"
            )
        strategy = state.get("strategy", "pss")
        if strategy != self.cfg.strategy:
            raise PssError(f"the checkpoint of {self.run.path} was trained with strategy {strategy!r}, its config says {self.cfg.strategy!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.strategy.pools = [SubnetPool.from_json(p) for p in json.loads(state["pools"])]
        self.sampler.fallbacks = int(state.get("sampler_fallbacks", 0))
        self.rng.bit_generator.state = json.loads(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])
        self.start_epoch = int(state["epoch"])


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


# ---------------------------------------------------------------------- entry point
def train(
    cfg: TrainConfig, out: str | Path, resume: bool = False, force: bool = False
) -> RunDir:
    """Validate everything, then train into ``out``; see ``pss train --help``."""
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
    for key in ("npz_path", "imagenet_root", "data_root"):
        value = getattr(cfg, key)
        if value:  # later commands (calibrate, export) may run from another directory
            setattr(cfg, key, str(Path(value).expanduser().resolve()))
    data = load_data(data_config(cfg))  # fails before anything is written
    trainer = PssTrainer(cfg, run.path, data, resume=resume)
    if resume and trainer.start_epoch >= cfg.epochs:
        raise PssError(f"run {run.path} already finished its {cfg.epochs} epochs; pass --epochs N with N > {cfg.epochs} to train further")
    if force and existing:
        for child in run.path.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    if resume:
        run_json = run.read_run()
        run_json["config"]["epochs"] = cfg.epochs
        atomic_write_json(run.run_file, run_json)
    trainer.fit()
    return run
