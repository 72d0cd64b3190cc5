"""MobileNetV1 (Howard et al. 2017) as a PSS supernet spec.

Every depthwise-separable block has one searchable width (its pointwise
output); the depthwise conv keeps its input's channels. 14 dimensions in all,
as in the PSS-Net reference (stem + 13 blocks).
"""

from __future__ import annotations

from ..space import make_divisible
from ..spec import IMAGE, BlockSpec, ConvSpec, NetSpec, rebuild_options

STEM_CHANNELS = 32
# (pointwise output channels, depthwise stride) per block, ImageNet layout.
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, stem: str = "imagenet",
                 dropout: float | None = None) -> NetSpec:
    """MobileNetV1 with a 224-px (``stem="imagenet"``: stride 2) or 32-px (``"cifar"``: stride 1) stem; no dropout unless given."""
    names, maxes = ["stem"], [make_divisible(STEM_CHANNELS * width_mult, 8)]
    blocks = [BlockSpec((ConvSpec(IMAGE, 0, 3, 2 if stem == "imagenet" else 1),))]
    for i, (c, s) in enumerate(BLOCKS, start=1):
        prev = len(names) - 1
        names.append(f"b{i}")
        maxes.append(make_divisible(c * width_mult, 8))
        blocks.append(BlockSpec((
            ConvSpec(prev, prev, 3, s, depthwise=True),
            ConvSpec(prev, len(names) - 1, 1, 1),
        )))
    rate = 0.0 if dropout is None else float(dropout)
    return NetSpec(
        family="mobilenet_v1", dim_names=tuple(names), dim_max=tuple(maxes), blocks=tuple(blocks),
        head_in=len(names) - 1, num_classes=num_classes, in_channels=in_channels, dropout=rate,
        builder=dict(model="mobilenet_v1", num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem,
                     **rebuild_options(rate, 0.0)),
    )
