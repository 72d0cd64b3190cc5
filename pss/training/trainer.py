"""Supernet training (PSS-Net Alg. 1-2 and the baselines): one batch, one epoch, the training state.

``config.strategy`` picks which subnets a batch trains (:mod:`pss.sampling.strategies`):
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
different subnets (:meth:`pss.nn.supernet.Supernet.forward_parallel`), each
chunk trained by cross-entropy on its labels.

Every subnet's cross-entropy on its images comes from its training forward:
for ``pss`` the medium's m = -CE updates its pool (Alg. 3 lines 8-17), and for
every strategy each non-max subnet's CE, with the max subnet's CE of the same
step, is logged in :class:`~pss.training.records.SampleLog` (the training-loss
prior of PSE-Net Eq. 17-19).

With ``superclass_dropout`` > 0 (EAS Sec. 3.1, :mod:`.superclass_dropout`) every
strategy's loss sees masked logits: one mask per sample per step, drawn from a
generator seeded by the trainer's ``rng`` (so runs reproduce and resume exactly),
shared by all subnets of the step. The max subnet's (and PSE-Net's chunks')
cross-entropy and the students' inplace distillation both run over the kept
logits: the teacher's probabilities are the softmax of the max subnet's masked
logits, so teacher and student are distributions over the same classes of each
sample. The recorded CE of every subnet (PSS-Net's m, the sample log) stays the
plain cross-entropy over all classes, so pools rank subnets by what they are
evaluated on, whatever the drop rate. Rate 0 runs exactly the plain step.

The trainer writes no files: :meth:`Trainer.state_dict` and
:meth:`Trainer.load_state_dict` give and take the whole training state, and
the train workflow (:mod:`pss.workflows.train`) writes the run directory.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..data import DataBundle
from ..errors import PssError, one_line
from ..evaluate.calibration import BNCalibrator, count_correct
from ..nn.device import resolve_device
from ..nn.supernet import Supernet, chunk_sizes
from ..problem.latency_table import LatencyTable
from ..problem.problem import Problem
from ..problem.superclasses import SuperclassMap, resolve_superclasses
from ..sampling.marginals import StructureDistributionSampler
from ..sampling.pools import PoolCounters, SubnetPool
from ..sampling.prioritized import training_progress
from ..sampling.strategies import Strategy, Subnet, make_strategy
from .distributed import Dist
from .records import EpochStats, SampleLog, StepResult
from .schedules import cosine_lr, distillation_loss, param_groups
from .superclass_dropout import masked_logits, superclass_dropout_mask


class Trainer:
    """Trains one supernet on ``data`` with ``cfg.strategy``; holds the whole training state."""

    def __init__(self, cfg: TrainConfig, problem: Problem, data: DataBundle, device: torch.device | str | None = None,
                 dist: Dist = Dist()) -> None:
        self.cfg = cfg
        self.problem = problem
        self.data = data
        self.dist = dist
        if device is not None:
            self.device = torch.device(device)
        else:
            self.device = dist.device(cfg.device) if dist.active else resolve_device(cfg.device)
        if cfg.batch_size % dist.world or cfg.batch_size // dist.world < 2:
            raise PssError(f"batch_size {cfg.batch_size} does not split into {dist.world} processes of at least 2 images; "
                           f"use a multiple of {dist.world} (the global batch, shared by the processes)")
        self.space, self.costs, self.budgets = problem.space, problem.cost_model, problem.budgets
        self.max_structure = self.space.max_structure
        self.min_structure = self.space.min_structure

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.model = Supernet(problem.spec).to(self.device)
        if cfg.channels_last:  # NHWC is 15-50% faster for these convs on CPU (oneDNN) and GPU
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            param_groups(self.model, cfg.weight_decay, cfg.depthwise_weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
        )
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)

        self.sampler = StructureDistributionSampler(
            self.space,
            problem.cost_array_fns(),  # kind -> C(.): every budget judged by its own kind (PSS-Net_M)
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
            kind_draw=cfg.kind_draw,
        )
        self.samples = SampleLog()
        # EAS superclasses: resolved now, so a bad map fails before any training
        self.superclass_map: SuperclassMap | None = None
        if cfg.superclasses is not None:
            self.superclass_map = resolve_superclasses(cfg.superclasses, data.name, data.class_names)
        self._class_superclass = (None if self.superclass_map is None else
                                  torch.tensor(self.superclass_map.class_superclass, dtype=torch.long, device=self.device))
        self.batches_per_epoch = data.len_train_batches(cfg.batch_size)
        if self.batches_per_epoch < 1:
            raise PssError(f"batch_size {cfg.batch_size} exceeds the {data.num_train} training images; lower batch_size")
        self.total_steps = self.batches_per_epoch * cfg.epochs
        self.warmup_steps = int(round(cfg.warmup_epochs * self.batches_per_epoch))
        if self.strategy.parallel and cfg.batch_size // dist.world < 2 * cfg.num_subnets:
            raise PssError(
                f"strategy {cfg.strategy} splits each batch into num_subnets={cfg.num_subnets} chunks of at least 2 images; "
                f"raise batch_size (now {cfg.batch_size}) to at least {2 * cfg.num_subnets * dist.world}"
            )
        self.step = 0
        self.epoch = 0  # epochs finished

    @classmethod
    def build(cls, cfg: TrainConfig, data: DataBundle, latency: LatencyTable | None = None, device=None,
              dist: Dist = Dist()) -> "Trainer":
        """A trainer for ``cfg`` on ``data``: the problem (spec, S, C, Theta) is built from both."""
        return cls(cfg, Problem.build(cfg, data.num_classes, data.in_channels, latency), data, device, dist)

    @property
    def pools(self) -> list[SubnetPool]:
        """Pi: the subnet pools (empty unless the strategy is pss)."""
        return self.strategy.pools

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
        keep = self._superclass_keep(y)
        if self.strategy.parallel:
            losses, ces = self._parallel_forward_backward(x, y, subnets, keep)
        else:
            losses, ces = self._serial_forward_backward(x, y, subnets, keep)
        values = self.dist.mean(torch.stack([*losses, *ces]).tolist())  # one device sync; the mean over processes
        result = StepResult(subnets, values[: len(subnets)], values[len(subnets):])
        if not all(math.isfinite(v) for v in values):
            raise PssError(
                f"training diverged in epoch {self.epoch + 1}, step {self.step + 1} (a loss is not finite); the checkpoint "
                f"of the last good epoch ({self.epoch}) is kept: continue it with a lower lr (now {cfg.lr}) by "
                f"`pss train RUN --resume --set lr={cfg.lr / 10:g}`, or start over with --force"
            )
        self.dist.average_gradients(list(self.model.parameters()))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.strategy.observe(subnets, result.ce)
        self.samples.add(self.step, result)
        return result

    def _superclass_keep(self, y: torch.Tensor) -> torch.Tensor | None:
        """This step's superclass dropout mask (EAS Eq. 1-2) for labels ``y``; None without dropout.

        The draws come from a generator seeded by one draw of :attr:`rng` (saved in the checkpoint, the same
        on every rank), so a run reproduces and resumes exactly; with rate 0 nothing is drawn.
        """
        if self._class_superclass is None or self.cfg.superclass_dropout <= 0:
            return None
        gen = torch.Generator().manual_seed(int(self.rng.integers(0, 2**63 - 1)))
        return superclass_dropout_mask(y, self._class_superclass, self.cfg.superclass_dropout, gen, self.dist.shard)

    def _serial_forward_backward(self, x: torch.Tensor, y: torch.Tensor, subnets: list[Subnet],
                                 keep: torch.Tensor | None = None) -> tuple[list, list]:
        """Alg. 2: one forward/backward per subnet on the whole batch; max first, by CE, the rest by KL (or CE).

        With a superclass dropout mask ``keep`` every loss runs over the kept logits (the teacher's too); the
        returned CE of each subnet is the plain one over all classes.
        """
        losses, ces = [], []
        teacher = None
        for s in subnets:
            with self._autocast():
                out = self.model(x, s.structure)
                logits = out.float() if keep is None else masked_logits(out.float(), keep)
                if s.role == "max" or not self.strategy.distill:
                    loss = F.cross_entropy(logits, y)
                    ce = loss if keep is None else F.cross_entropy(out.detach().float(), y)
                else:
                    loss = distillation_loss(logits, teacher)
                    ce = F.cross_entropy(out.detach().float(), y)  # m = -batch_loss, same forward
            self._backward(loss)
            if s.role == "max" and self.strategy.distill:
                teacher = F.softmax(logits.detach(), dim=1)  # over the kept logits: dropped classes get 0
            losses.append(loss.detach())
            ces.append(ce.detach())
            del out, logits, loss
        return losses, ces

    def _parallel_forward_backward(self, x: torch.Tensor, y: torch.Tensor, subnets: list[Subnet],
                                   keep: torch.Tensor | None = None) -> tuple[list, list]:
        """PSE-Net: one forward/backward of the max network, batch chunk i trained by subnet i (CE each).

        A superclass dropout mask ``keep`` is per sample, so it splits with the batch: each chunk's loss runs
        over its own samples' kept logits; the returned CEs are the plain ones over all classes.
        """
        sizes = chunk_sizes(x.shape[0], len(subnets))
        with self._autocast():
            out = self.model.forward_parallel(x, [s.structure for s in subnets], sizes)
            logits = out.float() if keep is None else masked_logits(out.float(), keep)
            losses = [F.cross_entropy(o, t) for o, t in zip(logits.split(sizes), y.split(sizes))]
            ces = losses if keep is None else [F.cross_entropy(o.float(), t) for o, t in zip(out.detach().split(sizes), y.split(sizes))]
        self._backward(torch.stack(losses).sum())
        losses = [c.detach() for c in losses]
        return losses, (losses if keep is None else [c.detach() for c in ces])

    # ------------------------------------------------------------------ epochs
    def train_epoch(self, epoch: int) -> EpochStats:
        """Epoch ``epoch`` (0-based) over the training split; pool counters and the sample log start afresh."""
        cfg = self.cfg
        self.model.train()
        for pool in self.pools:
            pool.counters = PoolCounters()
        self.samples = SampleLog()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        sums = {"max": 0.0, "medium": 0.0, "min": 0.0}
        counts = dict.fromkeys(sums, 0)
        n = 0
        t0 = time.perf_counter()
        bar = tqdm(total=self.batches_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False,
                   dynamic_ncols=True, disable=not (cfg.progress and self.dist.is_main))
        for b, (x, y) in enumerate(self.data.train_batches(cfg.batch_size, gen, self.device, shard=self.dist.shard)):
            progress = training_progress(epoch, b, self.batches_per_epoch, cfg.epochs)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            r = self.train_step(x, y, progress)
            for name, value in (("max", r.loss_max), ("medium", r.loss_medium), ("min", r.loss_min)):
                if value is not None:
                    sums[name] += value
                    counts[name] += 1
            n += 1
            full = sum(p.is_full for p in self.pools)
            pools = f" pools full {full}/{len(self.pools)}" if self.pools else ""
            bar.set_postfix_str(f"loss {r.loss_max:.3f}{pools}", refresh=False)
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - t0
        self.epoch = epoch + 1
        return EpochStats(
            epoch=epoch + 1,
            # medium/min are None for a strategy that trains none (pse has no min; n = 2 has no medium)
            losses={k: (v / counts[k] if counts[k] else None) for k, v in sums.items()},
            samples=self.samples,
            seconds=seconds,
            images_per_second=n * cfg.batch_size / max(seconds, 1e-9),
            progress_end=training_progress(epoch + 1, 0, self.batches_per_epoch, cfg.epochs),
        )

    def evaluate_references(self) -> dict[str, float]:
        """Validation accuracy of the max and min subnets after a quick BN re-estimate.

        With ``eval_calib_images = 0`` the supernet's own (stale, shared)
        running statistics are used instead.
        """
        cfg, shard = self.cfg, self.dist.shard
        out = {}
        calibrator = BNCalibrator(self.model) if cfg.eval_calib_images > 0 else None
        for name, s in (("max", self.max_structure), ("min", self.min_structure)):
            val = self.data.val_batches(cfg.eval_batch_size, self.device, shard=shard)
            model = self.model
            if calibrator is not None:
                gen = torch.Generator().manual_seed(cfg.seed + 17)
                batches = self.data.calibration_batches(cfg.eval_calib_images, cfg.eval_batch_size, gen, self.device, shard=shard)
                calibrator.calibrate(s, batches)
                for mean, var, seen in calibrator.statistics():  # each process saw its part of the images
                    self.dist.average_tensors([mean, var], seen)
                model = calibrator.model
            correct, total = self.dist.sum(count_correct(model, s, val))
            out[name] = correct / max(1.0, total)
        self.model.train()
        return out

    def epoch_line(self, stats: EpochStats) -> str:
        """The one-line summary printed after each epoch."""
        full = sum(p.is_full for p in self.pools)
        pools = f"pools full {full}/{len(self.pools)} " if self.pools else ""
        return (
            f"epoch {stats.epoch}/{self.cfg.epochs} ({self.cfg.strategy}): loss max {stats.losses['max']:.3f} "
            f"val acc max {stats.val_acc['max']:.3f} min {stats.val_acc['min']:.3f} "
            f"{pools}({stats.images_per_second:.0f} img/s)"
        )

    # ------------------------------------------------------------------ training state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit-identically (what the checkpoint holds)."""
        return {
            "epoch": self.epoch,
            "step": self.step,
            "strategy": self.cfg.strategy,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pools": list(self.pools),
            "sampler_fallbacks": self.sampler.fallbacks,
            "rng": {
                "numpy": self.rng.bit_generator.state,
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the checkpoint") -> None:
        """Continue from :meth:`state_dict` (as read back by :func:`pss.io.checkpoint.read_checkpoint`)."""
        if state.get("packed"):
            raise PssError(
                f"{source} was packed with `pss pack` ({state['packed']} weights, no optimizer state) "
                "and cannot be resumed; view, calibrate or export it, or train a new run"
            )
        strategy = state.get("strategy", "pss")
        if strategy != self.cfg.strategy:
            raise PssError(f"{source} was trained with strategy {strategy!r}, its config says {self.cfg.strategy!r}")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise PssError(f"{source} does not match this run's model and config ({one_line(exc)}); "
                           "resume it with the config it was trained with, or start a new run") from None
        self.strategy.pools = list(state["pools"])
        self.sampler.fallbacks = int(state.get("sampler_fallbacks", 0))
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
