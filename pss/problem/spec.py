"""The block specification: the single source of truth for a network family.

A :class:`NetSpec` lists the searchable width dimensions and the layers, each
layer naming the *dimension* its input and output channels come from. From one
spec we build

* the slimmable supernet (:class:`pss.nn.supernet.Supernet`),
* the analytic cost models (:class:`pss.problem.costs.CostModel`), and
* the dense exported model (:class:`pss.nn.supernet.DenseNet`),

so the three cannot drift apart. Residual additions force the channels on both
sides to be equal, so the model files give such layers the *same* dimension;
block-internal widths (e.g. a MobileNetV2 expansion) get a dimension of their own,
or, when a rule ties them to another width, a multiple of that dimension
(``ConvSpec.cin_mult`` / ``cout_mult``: the reference MobileNetV2's expansion is
6 x its block's realised input width). A tied width is no dimension of S, so
every draw, mutation or crossover of a structure's widths stays in S.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..config import WIDTH_RULES

IMAGE = -1
"""Channel reference for the input image (its channel count is fixed)."""


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size after a conv or pool layer (works on numpy arrays of sizes too)."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ConvSpec:
    """Conv2d (no bias) + BatchNorm2d + optional activation.

    ``cin``/``cout`` are dimension indices (``IMAGE`` for the image); the
    layer has ``cin_mult`` / ``cout_mult`` times the dimension's realised
    width (1 for a free width). A depthwise conv keeps its channel count, so
    ``cout == cin`` and ``cout_mult == cin_mult``.
    """

    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    depthwise: bool = False
    act: str | None = "relu"
    cin_mult: int = 1
    cout_mult: int = 1

    @property
    def padding(self) -> int:
        return self.kernel // 2

    def out_channels(self, widths: Sequence[int]) -> int:
        """Output channels under a structure's ``widths``: ``cout_mult * widths[cout]``."""
        return int(widths[self.cout]) * self.cout_mult


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
        return self._first.cin

    @property
    def cout(self) -> int:
        return self._last.cout

    @property
    def _first(self) -> ConvSpec:
        return next(l for l in self.body if isinstance(l, ConvSpec))

    @property
    def _last(self) -> ConvSpec:
        return [l for l in self.body if isinstance(l, ConvSpec)][-1]

    @property
    def reads_whole_dimension(self) -> bool:
        """The block's input is a dimension's width itself (the first conv's ``cin_mult`` is 1)."""
        return self._first.cin_mult == 1

    @property
    def keeps_channels(self) -> bool:
        """Input and output channels are equal for every structure (what an identity shortcut needs)."""
        return (self._first.cin, self._first.cin_mult) == (self._last.cout, self._last.cout_mult)


@dataclass(frozen=True)
class NetSpec:
    """A whole network: dimensions, blocks, classifier, and how to rebuild it.

    ``fixed_dims`` are dimensions every subnet keeps at their maximum (the
    reference MobileNetV2's 1280-channel tail); ``width_rule`` names how the
    structure space realises widths (:meth:`pss.problem.space.StructureSpace.for_spec`).
    """

    family: str
    dim_names: tuple[str, ...]
    dim_max: tuple[int, ...]
    blocks: tuple[BlockSpec, ...]
    head_in: int
    num_classes: int
    in_channels: int = 3
    dropout: float = 0.0
    builder: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    fixed_dims: tuple[int, ...] = ()
    width_rule: str = "free"

    def __post_init__(self) -> None:
        n = len(self.dim_names)
        if len(self.dim_max) != n:
            raise ValueError("dim_names and dim_max differ in length")
        if any(not 0 <= d < n for d in self.fixed_dims):
            raise ValueError(f"fixed_dims {self.fixed_dims} refer to a missing dimension")
        if self.width_rule not in WIDTH_RULES:
            raise ValueError(f"unknown width rule {self.width_rule!r}; choose one of {', '.join(WIDTH_RULES)}")
        for b in self.blocks:
            for layer in b.body:
                if isinstance(layer, ConvSpec):
                    if layer.cout < 0 or layer.cout >= n or layer.cin >= n:
                        raise ValueError(f"layer {layer} refers to a missing dimension")
                    if layer.cin_mult < 1 or layer.cout_mult < 1:
                        raise ValueError(f"layer {layer} needs channel multipliers of at least 1")
                    if layer.depthwise and (layer.cin, layer.cin_mult) != (layer.cout, layer.cout_mult):
                        raise ValueError(f"depthwise layer {layer} must keep its channels")
            if any(isinstance(l, ConvSpec) for l in b.body) and not b.reads_whole_dimension:
                raise ValueError("a block's first conv must read a whole dimension (cin_mult 1): block variants are keyed by it")
            if b.shortcut == "identity" and not b.keeps_channels:
                raise ValueError("an identity shortcut needs the same channels on both sides")

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

    def channels(self, ref: int, widths, mult: int = 1) -> int:
        """Channels of dimension ``ref`` (``mult`` times its width) under ``widths``; the image's for ``IMAGE``."""
        return self.in_channels if ref == IMAGE else int(widths[ref]) * mult

    def conv_channels(self, conv: ConvSpec, widths) -> tuple[int, int]:
        """(input, output) channels of ``conv`` under a structure's ``widths``."""
        return self.channels(conv.cin, widths, conv.cin_mult), conv.out_channels(widths)


def rebuild_options(dropout: float, family_dropout: float, width_rule: str = "free") -> dict[str, Any]:
    """The ``build_spec`` keys beyond model, classes, channels, width and stem that rebuild a spec.

    Only the options that differ from the family's defaults are named, so the
    ``model`` block of a run (or a LUT) written before these options existed
    equals the one a default spec writes today.
    """
    out: dict[str, Any] = {}
    if dropout != family_dropout:
        out["dropout"] = float(dropout)
    if width_rule != "free":
        out["width_rule"] = width_rule
    return out
