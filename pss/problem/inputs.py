"""The input rule, as data: how a dataset's images become a subnet's input (torch-free).

A subnet of resolution r was trained, calibrated and tested on the dataset's images normalised at their
native size and then resized to r x r. :mod:`pss.inputs` applies this rule with torch; the export card
(:mod:`pss.io.card`) writes it down for a deployer who has no pss. Both read these constants, so what
the card says is what the code did.
"""

from __future__ import annotations

from typing import Any

MAX_PIXEL_VALUE = 255.0
"""Pixel values are divided by this before ``(x - mean) / std``: mean and std are on the [0, 1] scale."""

ORDER = ("normalise", "resize")
"""Normalise first (at the native resolution), then resize (skipped when the images already have the subnet's
resolution); resizing an image's 0-255 pixels first and rounding them gives other values."""

RESIZE_MODE = "bilinear"
ALIGN_CORNERS = False
ANTIALIAS = False
"""No antialiasing: what ``torch.nn.functional.interpolate`` does by default, and what every subnet saw.

Image libraries antialias when they shrink (PIL, torchvision's ``Resize`` on tensors since 0.17), which
blurs the image and changes the subnet's predictions."""


def interpolate_arguments() -> dict[str, Any]:
    """The keyword arguments of ``torch.nn.functional.interpolate`` that resize a batch (besides ``size``)."""
    return {"mode": RESIZE_MODE, "align_corners": ALIGN_CORNERS, "antialias": ANTIALIAS}
