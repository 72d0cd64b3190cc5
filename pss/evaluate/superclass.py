"""Per-superclass accuracy (EAS Sec. 4): accuracy among one superclass's classes on its own images.

A deployment for one superclass keeps only that superclass's outputs: an image of the superclass is
classified by the argmax over the superclass's logits, and only the superclass's images count. The
superclass map is :class:`pss.problem.superclasses.SuperclassMap`; a split's images of a superclass
come from :func:`pss.data.subset_of_classes` and :meth:`pss.data.DataBundle.subset_batches`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from ..problem.space import Structure


def restricted_correct(logits: torch.Tensor, targets: torch.Tensor, classes: Sequence[int] | torch.Tensor) -> tuple[int, int]:
    """(correct, total) of a batch among ``classes`` only.

    Only rows whose target is one of ``classes`` count (``total``); a row is correct when the argmax of
    its logits restricted to ``classes`` (``logits[:, classes]``) is its target. Ties go to the first of
    ``classes`` in the order given (``torch.argmax``).
    """
    cls = torch.as_tensor(classes, dtype=torch.long, device=logits.device).flatten()
    if cls.numel() == 0:
        return 0, 0
    targets = targets.to(logits.device)
    rows = torch.isin(targets, cls)
    total = int(rows.sum())
    if total == 0:
        return 0, 0
    predicted = cls[logits[rows][:, cls].argmax(dim=1)]
    return int((predicted == targets[rows]).sum()), total


def count_restricted_correct(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                             classes: Sequence[int]) -> tuple[int, int]:
    """(correct, images) of ``structure`` on ``batches`` among ``classes`` (:func:`restricted_correct`), in eval mode.

    Feed it one superclass's images (``data.subset_batches(split, subset_of_classes(data, split, classes), ...)``)
    to spend no forward on the others; images of other classes in ``batches`` are not counted either way.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            c, t = restricted_correct(model(x, structure), y, classes)
            correct += c
            total += t
    model.train(was_training)
    return correct, total
