"""Superclass dropout (EAS Sec. 3.1, Eq. 1-2): per sample, drop the logits of random non-target superclasses.

EAS trains the supernet so that its subnets stay good when a deployment keeps only one superclass's
outputs. The logits z = W^T x of a sample are multiplied by a binary mask (Eq. 1, z~ = m ⊙ z); the
mask is organised in groups, one per superclass, and a superclass's group is all ones or all zeros
(Eq. 2): for each sample, every *non-target* superclass is dropped independently with probability
``rate`` (a Bernoulli draw), the target's superclass never. The softmax then runs over the logits
that remain, so the sample is classified against its own superclass and a random subset of the others.
Rate 0 is plain training; rate 1 trains each sample against its own superclass only.

Two pure functions: :func:`superclass_dropout_mask` (which logits stay) and :func:`masked_logits`
(the logits the loss sees). The trainer (:mod:`pss.training.trainer`) applies them to every strategy's loss.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.base import Shard, shard_rows

MASKED_LOGIT = -30_000.0
"""The value a dropped logit takes (instead of -inf).

Finite in float16 (largest 65504), bfloat16 and float32, so ``z - max(z)`` inside a softmax cannot
overflow for logits of magnitude below 35,000, and ``exp(-30000 - ...)`` is exactly 0 in every float
type: the softmax gives a dropped class probability 0, as if its logit were absent. Unlike -inf it
keeps the distillation loss finite: KL sums ``p_teacher * (log p_teacher - log p_student)`` with
``0 * log 0 = 0`` but ``0 * (-inf)`` = NaN, whereas ``0 * (-30000 - lse)`` = 0."""


def superclass_dropout_mask(targets: Tensor, class_superclass: Sequence[int] | Tensor, rate: float,
                            generator: torch.Generator, shard: Shard = (0, 1)) -> Tensor:
    """Which logits each sample keeps under superclass dropout (EAS Eq. 1-2): bool ``(batch, num_classes)``, True = keep.

    ``targets`` are the samples' class labels, ``class_superclass[c]`` the superclass index of class ``c``
    (:attr:`pss.problem.superclasses.SuperclassMap.class_superclass`). Per sample, each superclass
    other than its target's is dropped, all its classes together, independently with probability
    ``rate``; the target's superclass is always kept. ``rate`` 0 keeps every logit and draws nothing
    from ``generator`` (so training with rate 0 is plain training, bit for bit).

    The uniforms are drawn on ``generator``'s device, one per (sample, superclass) in row order, then
    moved to ``targets``' device, so the mask depends only on the generator's state. With ``shard=(rank,
    world)`` the targets are this rank's rows of a global batch of ``world * len(targets)``: the draws
    are made for the whole global batch and this rank takes its rows, so a distributed run drops what
    one process would (as the augmentation does, :mod:`pss.data`).
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"superclass dropout rate must be in [0, 1], got {rate!r}")
    groups = torch.as_tensor(class_superclass, dtype=torch.long, device=targets.device)
    batch, num_classes = targets.shape[0], groups.numel()
    if rate == 0:
        return torch.ones(batch, num_classes, dtype=torch.bool, device=targets.device)
    num_superclasses = int(groups.max()) + 1
    world = shard[1]
    draws = torch.rand((batch * world, num_superclasses), generator=generator, device=generator.device)
    keep = draws[shard_rows(batch * world, shard)].to(targets.device) >= rate  # P(drop) = P(u < rate) = rate
    keep[torch.arange(batch, device=targets.device), groups[targets]] = True  # the target's superclass is never dropped
    return keep[:, groups]  # each class follows its superclass (Eq. 2)


def masked_logits(logits: Tensor, keep: Tensor) -> Tensor:
    """The logits with the dropped ones set to :data:`MASKED_LOGIT` (EAS Eq. 1: the mask applied to the outputs).

    A softmax over the result runs over the kept logits only: dropped classes get probability exactly 0
    and (through ``torch.where``) no gradient. ``keep`` is :func:`superclass_dropout_mask`'s mask, of
    ``logits``' shape.
    """
    if keep.shape != logits.shape:
        raise ValueError(f"mask of shape {tuple(keep.shape)} for logits of shape {tuple(logits.shape)}")
    return torch.where(keep, logits, torch.full((), MASKED_LOGIT, dtype=logits.dtype, device=logits.device))
