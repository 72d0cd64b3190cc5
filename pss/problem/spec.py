"""The block specification: the single source of truth for a network family.

A :class:`NetSpec` lists the searchable width dimensions and the layers, each
layer naming the *dimension* its input and output channels come from. From one
spec we build

* the slimmable supernet (:class:`pss.nn.supernet.Supernet`),
* the analytic cost models (:class:`pss.problem.costs.CostModel`), and
* the dense exported model (:class:`pss.nn.supernet.DenseNet`),

so the three cannot drift apart. Residual additions force the channels on both
sides to be equal, so the model files give such layers the *same* dimension;
block-internal widths (e.g. a MobileNetV2 expansion) get a dimension of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

IMAGE = -1
"""Channel reference for the input image (its channel count is fixed)."""


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size after a conv or pool layer (works on numpy arrays of sizes too)."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ConvSpec:
    """Conv2d (no bias) + BatchNorm2d + optional activation.

    ``cin``/``cout`` are dimension indices (``IMAGE`` for the image). A
    depthwise conv keeps its channel count, so ``cout == cin``.
    """

    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    depthwise: bool = False
    act: str | None = "relu"

    @property
    def padding(self) -> int:
        return self.kernel // 2


@dataclass(frozen=True)
class MaxPoolSpec:
    kernel: int = 3
    stride: int = 2
    padding: int = 1


Layer = Union[ConvSpec, MaxPoolSpec]


@dataclass(frozen=True)
class BlockSpec:
    """A sequence of layers with an optional residual shortcut.

    ``shortcut`` is ``None`` (plain), ``"identity"`` (input added to output:
    the block's input and output dimension must be the same) or a
    :class:`ConvSpec` projection. ``act`` is applied after the addition.
    """

    body: tuple[Layer, ...]
    shortcut: Union[None, str, ConvSpec] = None
    act: str | None = None

    @property
    def cin(self) -> int:
        return next(l.cin for l in self.body if isinstance(l, ConvSpec))

    @property
    def cout(self) -> int:
        return [l.cout for l in self.body if isinstance(l, ConvSpec)][-1]


@dataclass(frozen=True)
class NetSpec:
    """A whole network: dimensions, blocks, classifier, and how to rebuild it."""

    family: str
    dim_names: tuple[str, ...]
    dim_max: tuple[int, ...]
    blocks: tuple[BlockSpec, ...]
    head_in: int
    num_classes: int
    in_channels: int = 3
    dropout: float = 0.0
    builder: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.dim_names)
        if len(self.dim_max) != n:
            raise ValueError("dim_names and dim_max differ in length")
        for b in self.blocks:
            for layer in b.body:
                if isinstance(layer, ConvSpec):
                    if layer.cout < 0 or layer.cout >= n or layer.cin >= n:
                        raise ValueError(f"layer {layer} refers to a missing dimension")
                    if layer.depthwise and layer.cin != layer.cout:
                        raise ValueError(f"depthwise layer {layer} must keep its dimension")
            if b.shortcut == "identity" and b.cin != b.cout:
                raise ValueError("an identity shortcut needs the same dimension on both sides")

    def to_json(self) -> dict[str, Any]:
        """How to rebuild this spec (``build_spec(**d)``): run.json's and a card's ``model`` block."""
        return {**self.builder, "family": self.family}

    def convs(self):
        """(block index, path, ConvSpec) for every conv, in forward order."""
        for i, b in enumerate(self.blocks):
            for j, layer in enumerate(b.body):
                if isinstance(layer, ConvSpec):
                    yield i, f"blocks.{i}.body.{j}", layer
            if isinstance(b.shortcut, ConvSpec):
                yield i, f"blocks.{i}.shortcut", b.shortcut

    def channels(self, ref: int, widths) -> int:
        return self.in_channels if ref == IMAGE else int(widths[ref])
