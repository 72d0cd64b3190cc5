"""Optimisation pieces of supernet training (Alg. 1-2): the LR schedule, weight-decay groups, the distillation loss."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def cosine_lr(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warm-up to ``base_lr``, then cosine annealing to 0 (per iteration)."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(1.0, t)))


def param_groups(model: nn.Module, weight_decay: float, depthwise_weight_decay: bool = True) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only (not BN affine, not biases).

    ``depthwise_weight_decay=False`` also exempts depthwise convolution weights, as the reference
    implementation does (as do common MobileNet recipes): a depthwise filter has only k*k weights
    per channel, little to overfit with, and decay pulls each channel's whole filter towards zero.
    """
    depthwise = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels}
    decay, no_decay = [], []
    for p in model.parameters():
        exempt = p.dim() <= 1 or (not depthwise_weight_decay and id(p) in depthwise)
        (no_decay if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Inplace distillation: KL(teacher || student), batch mean (Alg. 2 line 9)."""
    return F.kl_div(F.log_softmax(student_logits.float(), dim=1), teacher_probs, reduction="batchmean")
