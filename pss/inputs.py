"""The input pipeline: the one way a dataset's images become a subnet's input (torch).

:func:`subnet_input` is the pipeline: :func:`normalise` (pixel values / 255, then ``(x - mean) / std`` per
channel) at the images' native size, then :func:`resize` to the subnet's resolution (bilinear,
``align_corners=False``, no antialiasing; :mod:`pss.problem.inputs` holds the rule as data). Everything that
feeds a subnet goes through it or its two halves: the datasets' batches are :func:`normalise`\\ d (training,
validation, test and calibration images alike), and the supernet's forward, BN calibration, the
per-superclass evaluation and the export's self-check :func:`resize`. So the test accuracy a study reports,
the figures on an export's card and the exported model fed by :func:`subnet_input` count the same images
correct; the card records the same rule for a deployer without pss.

This module sits below both ``pss.nn`` and ``pss.data``, which may not import each other, so that both
apply the very same functions.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .problem.inputs import MAX_PIXEL_VALUE, interpolate_arguments


def normalise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(images / 255 - mean) / std`` per channel, as float32: the first half of :func:`subnet_input`.

    ``images`` are pixel values on the 0-255 scale, uint8 or float (e.g. after an augmentation), laid
    out ``(..., C, H, W)`` (one image or a batch); ``mean`` and ``std`` (one value per channel) are on the
    [0, 1] scale, as a dataset's statistics are. The input is never modified.
    """
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return (images.float() / MAX_PIXEL_VALUE - m) / s


def resize(batch: Tensor, resolution: int) -> Tensor:
    """A batch (N, C, H, W) at ``resolution`` x ``resolution``: the second half of :func:`subnet_input`.

    Bilinear, ``align_corners=False``, no antialiasing (:func:`pss.problem.inputs.interpolate_arguments`);
    a batch already at that size comes back as it is.
    """
    if batch.shape[-1] == resolution and batch.shape[-2] == resolution:
        return batch
    return F.interpolate(batch, size=(resolution, resolution), **interpolate_arguments())


def subnet_input(images: Tensor, mean: Sequence[float], std: Sequence[float], resolution: int) -> Tensor:
    """A subnet's input from a dataset's images: :func:`normalise`, then :func:`resize` (in that order).

    ``images``: (N, C, H, W) pixel values (uint8 or float on the 0-255 scale) at any size, usually the
    dataset's native one; ``mean``/``std``: the dataset's (a run's ``run.json`` ``dataset``, an export
    card's ``input``); ``resolution``: the subnet's. Returns float32 (N, C, resolution, resolution).
    Normalising first matters: resizing the pixels first (and rounding them back to an image) gives other
    values than the subnet was trained and tested on.
    """
    return resize(normalise(images, mean, std), resolution)
