"""MobileNetV2 (Sandler et al. 2018) as a PSS supernet spec.

Two width rules (config ``width_rule``):

* ``free``: searchable widths are the stem, each stage's output (all blocks of
  a stage are tied by their residual additions), each block's expansion width
  and the last 1x1 conv.
* ``official``: the space of the PSS-Net reference implementation
  (chenbong/PSS-Net ``models/mobilenet_v2.py``, ``utils/comm.py``): only the
  stem and the seven stage widths are searched; each block's expansion is
  ``make_divisible(6 x its realised input width)``, which is exactly 6 x that
  width (the width is a multiple of the divisor or a multiple of 8, so 6 x it
  is a multiple of the divisors 4, 8, 16 of the paper's Table 9), so the spec
  ties it with ``cin_mult``/``cout_mult`` 6 instead of giving it a dimension;
  the 1280-channel tail is fixed (a dimension with one choice).
"""

from __future__ import annotations

from ..space import make_divisible
from ..spec import IMAGE, BlockSpec, ConvSpec, NetSpec, rebuild_options

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# expansion t, output channels c, repeats n, first stride s (ImageNet layout).
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def _free_expansion(cin: int, hidden: int, cout: int, stride: int) -> tuple[ConvSpec, ...]:
    """Expand, depthwise, project with the expansion as its own dimension ``hidden``."""
    return (
        ConvSpec(cin, hidden, 1, act="relu6"),
        ConvSpec(hidden, hidden, 3, stride, depthwise=True, act="relu6"),
        ConvSpec(hidden, cout, 1, act=None),
    )


def _tied_expansion(cin: int, t: int, cout: int, stride: int) -> tuple[ConvSpec, ...]:
    """Expand, depthwise, project with t x the realised input width inside (the reference's rule)."""
    return (
        ConvSpec(cin, cin, 1, act="relu6", cout_mult=t),
        ConvSpec(cin, cin, 3, stride, depthwise=True, act="relu6", cin_mult=t, cout_mult=t),
        ConvSpec(cin, cout, 1, act=None, cin_mult=t),
    )


def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, stem: str = "imagenet",
                 width_rule: str = "free", dropout: float | None = None) -> NetSpec:
    """MobileNetV2 with a 224-px or 32-px stem.

    The CIFAR variant (``stem="cifar"``) uses stride 1 in the stem and the
    second stage, so 32-px inputs end at 4x4, and scales the last conv with
    ``width_mult`` (torchvision keeps 1280 for multipliers below 1, which would
    dominate a compact CPU model). ``dropout`` (None: 0.2 for the ImageNet
    stem as torchvision, 0 for CIFAR) is the classifier's.
    """
    cifar = stem == "cifar"
    official = width_rule == "official"
    names, maxes = ["stem"], [make_divisible(STEM_CHANNELS * width_mult, 8)]
    blocks = [BlockSpec((ConvSpec(IMAGE, 0, 3, 1 if cifar else 2, act="relu6"),))]
    stage = 0
    for si, (t, c, n, s) in enumerate(INVERTED_RESIDUAL_SETTING, start=1):
        if cifar and si == 2:
            s = 1
        stage_in = stage
        names.append(f"s{si}")
        maxes.append(make_divisible(c * width_mult, 8))
        stage = len(names) - 1
        for bi in range(n):
            cin = stage_in if bi == 0 else stage
            stride = s if bi == 0 else 1
            if t == 1:
                body = (ConvSpec(cin, cin, 3, stride, depthwise=True, act="relu6"), ConvSpec(cin, stage, 1, act=None))
            elif official:
                body = _tied_expansion(cin, t, stage, stride)
            else:
                names.append(f"s{si}.b{bi + 1}.expand")
                maxes.append(maxes[cin] * t)
                body = _free_expansion(cin, len(names) - 1, stage, stride)
            blocks.append(BlockSpec(body, "identity" if cin == stage else None))
    last = make_divisible(LAST_CHANNELS * (width_mult if cifar else max(1.0, width_mult)), 8)
    names.append("last")
    maxes.append(last)
    blocks.append(BlockSpec((ConvSpec(stage, len(names) - 1, 1, act="relu6"),)))
    family_dropout = 0.0 if cifar else 0.2
    rate = family_dropout if dropout is None else float(dropout)
    return NetSpec(
        family="mobilenet_v2", dim_names=tuple(names), dim_max=tuple(maxes), blocks=tuple(blocks),
        head_in=len(names) - 1, num_classes=num_classes, in_channels=in_channels, dropout=rate,
        builder=dict(model="mobilenet_v2", num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem,
                     **rebuild_options(rate, family_dropout, width_rule)),
        fixed_dims=(len(names) - 1,) if official else (),
        width_rule=width_rule,
    )
