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

BatchFn = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def bn_channels(spec: NetSpec, structure: Structure) -> dict[str, int]:
    """Channels each BN layer uses under ``structure``, keyed by module path."""
    return {f"{path}.bn": int(structure.widths[conv.cout]) for _, path, conv in spec.convs()}


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
    def accuracy(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Top-1 accuracy with the statistics of the last :meth:`calibrate` call."""
        return evaluate_accuracy(self.model, structure, batches)

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
    t0 = time.perf_counter()
    stats = calibrator.calibrate(structure, calib_batches())
    acc = calibrator.accuracy(structure, val_batches())
    return CalibratedSubnet(structure, m, acc, costs, time.perf_counter() - t0), stats
