"""ResNets (He et al. 2016) as PSS supernet specs.

Basic-block CIFAR ResNets (depth 6n+2: 20, 56, ...) and the bottleneck
ResNet-50. Each stage's output width is one dimension (tied by the residual
additions; the first stage shares the stem's when its shortcut is an
identity); the widths inside each block are free dimensions.
"""

from __future__ import annotations

from ..space import make_divisible
from ..spec import IMAGE, BlockSpec, ConvSpec, MaxPoolSpec, NetSpec, rebuild_options

# CIFAR basic-block ResNet: (width, first stride) per stage; n blocks each.
BASIC_STAGES: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (64, 2))
BASIC_STEM = 16
# ResNet-50: (bottleneck width, blocks, first stride); output = 4 x width.
BOTTLENECK_STAGES: tuple[tuple[int, int, int], ...] = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
BOTTLENECK_STEM = 64
EXPANSION = 4


def _stem(stem: str) -> BlockSpec:
    if stem == "imagenet":
        return BlockSpec((ConvSpec(IMAGE, 0, 7, 2), MaxPoolSpec(3, 2, 1)))
    return BlockSpec((ConvSpec(IMAGE, 0, 3, 1),))


def _basic(depth: int, num_classes: int, in_channels: int, width_mult: float, stem: str, dropout: float | None) -> NetSpec:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    names, maxes = ["stem"], [make_divisible(BASIC_STEM * width_mult, 8)]
    blocks = [_stem(stem)]
    prev = 0
    for si, (c, s) in enumerate(BASIC_STAGES, start=1):
        width = make_divisible(c * width_mult, 8)
        if s == 1 and width == maxes[prev]:
            stage = prev  # identity shortcut ties the stage to the stem
            names[prev] = f"{names[prev]}+s{si}"
        else:
            names.append(f"s{si}")
            maxes.append(width)
            stage = len(names) - 1
        for bi in range(n):
            cin = prev if bi == 0 else stage
            stride = s if bi == 0 else 1
            names.append(f"s{si}.b{bi + 1}.mid")
            maxes.append(width)
            mid = len(names) - 1
            body = (ConvSpec(cin, mid, 3, stride), ConvSpec(mid, stage, 3, 1, act=None))
            shortcut = "identity" if cin == stage else ConvSpec(cin, stage, 1, stride, act=None)
            blocks.append(BlockSpec(body, shortcut, act="relu"))
        prev = stage
    return NetSpec(
        family=f"resnet{depth}", dim_names=tuple(names), dim_max=tuple(maxes), blocks=tuple(blocks),
        head_in=prev, num_classes=num_classes, in_channels=in_channels, dropout=_rate(dropout),
        builder=dict(model=f"resnet{depth}", num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem,
                     **rebuild_options(_rate(dropout), 0.0)),
    )


def _rate(dropout: float | None) -> float:
    """Classifier dropout: none unless given (the ResNets of He et al. have none)."""
    return 0.0 if dropout is None else float(dropout)


def resnet20(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, stem: str = "cifar", dropout: float | None = None) -> NetSpec:
    return _basic(20, num_classes, in_channels, width_mult, stem, dropout)


def resnet56(num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, stem: str = "cifar", dropout: float | None = None) -> NetSpec:
    return _basic(56, num_classes, in_channels, width_mult, stem, dropout)


def resnet50(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, stem: str = "imagenet",
             dropout: float | None = None) -> NetSpec:
    """Bottleneck ResNet-50 (stride on the 3x3 conv, as torchvision's v1.5)."""
    names, maxes = ["stem"], [make_divisible(BOTTLENECK_STEM * width_mult, 8)]
    blocks = [_stem(stem)]
    prev = 0
    for si, (c, n, s) in enumerate(BOTTLENECK_STAGES, start=1):
        width = make_divisible(c * width_mult, 8)
        names.append(f"s{si}")
        maxes.append(width * EXPANSION)
        stage = len(names) - 1
        for bi in range(n):
            cin = prev if bi == 0 else stage
            stride = s if bi == 0 else 1
            names += [f"s{si}.b{bi + 1}.mid1", f"s{si}.b{bi + 1}.mid2"]
            maxes += [width, width]
            m1, m2 = len(names) - 2, len(names) - 1
            body = (ConvSpec(cin, m1, 1), ConvSpec(m1, m2, 3, stride), ConvSpec(m2, stage, 1, act=None))
            shortcut = "identity" if cin == stage else ConvSpec(cin, stage, 1, stride, act=None)
            blocks.append(BlockSpec(body, shortcut, act="relu"))
        prev = stage
    return NetSpec(
        family="resnet50", dim_names=tuple(names), dim_max=tuple(maxes), blocks=tuple(blocks),
        head_in=prev, num_classes=num_classes, in_channels=in_channels, dropout=_rate(dropout),
        builder=dict(model="resnet50", num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem,
                     **rebuild_options(_rate(dropout), 0.0)),
    )
