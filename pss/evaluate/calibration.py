"""BN calibration (PSS-Net Alg. 1 lines 11-17): re-estimated statistics, then validation accuracy.

The running statistics a supernet accumulates during training mix every
subnet it trained, so they fit none of them. Before evaluating a subnet we
reset its BN statistics and re-estimate them on N training images with exact
(cumulative) averaging, on a *copy* of the supernet: the supernet's own
buffers are never touched. Choosing among the calibrated subnets is
:mod:`pss.evaluate.selection`.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Iterable

import torch
from torch import nn

from ..nn.ops import SlimBatchNorm2d
from ..problem.space import Structure
from ..problem.spec import NetSpec
from .selection import CalibratedSubnet
from .statistics import Accuracy

BatchFn = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def bn_channels(spec: NetSpec, structure: Structure) -> dict[str, int]:
    """Channels each BN layer uses under ``structure``, keyed by module path."""
    return {f"{path}.bn": int(conv.out_channels(structure.widths)) for _, path, conv in spec.convs()}


class BNCalibrator:
    """Re-estimates BN statistics for one structure at a time on a private copy of a supernet."""

    def __init__(self, supernet: nn.Module) -> None:
        self.model = copy.deepcopy(supernet)
        self.spec: NetSpec = supernet.spec
        self._bns = [(n, m) for n, m in self.model.named_modules() if isinstance(m, SlimBatchNorm2d)]
        for _, m in self._bns:
            m.momentum = None  # cumulative average: exact mean over the calibration batches

    @torch.no_grad()
    def calibrate(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Reset and re-estimate BN statistics; returns them sliced to the structure's channels."""
        for _, m in self._bns:
            m.reset_running_stats()
        self.model.train()
        seen = 0
        for x, _ in batches:
            self.model(x, structure)
            seen += x.shape[0]
        if seen == 0:
            raise ValueError("no calibration images")
        self.model.eval()
        return self.bn_state(structure)

    def bn_state(self, structure: Structure) -> dict[str, torch.Tensor]:
        channels = bn_channels(self.spec, structure)
        out = {}
        for name, m in self._bns:
            c = channels[name]
            out[f"{name}.running_mean"] = m.running_mean[:c].detach().cpu().clone()
            out[f"{name}.running_var"] = m.running_var[:c].detach().cpu().clone()
        return out

    @torch.no_grad()
    def load(self, stats: dict[str, torch.Tensor]) -> None:
        """Put statistics from :meth:`bn_state` back (the channels they cover), as if just calibrated."""
        for name, m in self._bns:
            mean, var = stats[f"{name}.running_mean"], stats[f"{name}.running_var"]
            m.running_mean[: mean.shape[0]] = mean.to(m.running_mean.device)
            m.running_var[: var.shape[0]] = var.to(m.running_var.device)

    @torch.no_grad()
    def accuracy(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Top-1 accuracy with the statistics of the last :meth:`calibrate` call."""
        return evaluate_accuracy(self.model, structure, batches)

    @torch.no_grad()
    def measure(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Accuracy:
        """Top-1 correct of how many images, with the statistics of the last :meth:`calibrate` or :meth:`load`."""
        return Accuracy(*count_correct(self.model, structure, batches))

    @torch.no_grad()
    def negative_loss(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """-CE of ``structure`` on ``batches`` with the current weights: the pool metric m of Alg. 3, measured now.

        In training mode (each batch's own BN statistics), as training observed m; image-weighted mean over
        the batches. Touches only this private copy's BN buffers, which :meth:`calibrate` resets anyway.
        """
        self.model.train()
        total, seen = 0.0, 0
        for x, y in batches:
            total += float(torch.nn.functional.cross_entropy(self.model(x, structure), y, reduction="sum"))
            seen += y.numel()
        self.model.eval()
        if seen == 0:
            raise ValueError("no images to measure the metric on")
        return -total / seen

    def statistics(self) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """(running mean, running var, batches averaged) of every BN layer after :meth:`calibrate`.

        Distributed evaluation averages these over the ranks, weighted by the batches each rank saw.
        """
        return [(m.running_mean, m.running_var, int(m.num_batches_tracked)) for _, m in self._bns]


@torch.no_grad()
def count_correct(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[int, int]:
    """(top-1 correct, images) of ``structure`` on ``batches``, in eval mode."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x, structure).argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return correct, total


def evaluate_accuracy(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    correct, total = count_correct(model, structure, batches)
    return correct / max(1, total)


def calibrate_and_evaluate(
    calibrator: BNCalibrator,
    structure: Structure,
    calib_batches: BatchFn,
    val_batches: BatchFn,
    costs: dict[str, float],
    m: float | None = None,
) -> tuple[CalibratedSubnet, dict[str, torch.Tensor]]:
    """Calibrate ``structure``'s BN statistics, then measure its validation accuracy; (result, statistics)."""
    t0 = time.perf_counter()
    stats = calibrator.calibrate(structure, calib_batches())
    val = calibrator.measure(structure, val_batches())
    return CalibratedSubnet(structure, m, val.value, costs, time.perf_counter() - t0, validation=val), stats
