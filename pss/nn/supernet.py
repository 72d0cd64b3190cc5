"""Supernet and dense subnet, both built from one :class:`~pss.problem.spec.NetSpec`.

Both use the same module tree and parameter names, so exporting a subnet is a
matter of slicing every supernet tensor to the dense model's shape
(:func:`slice_state_dict`). A layer's channels are its dimension's width times
the layer's multiplier (``ConvSpec.cout_mult``, 6 for a tied MobileNetV2
expansion), in the supernet's slicing and in the dense model alike.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..inputs import resize
from ..problem.space import Structure
from ..problem.spec import BlockSpec, ConvSpec, NetSpec
from .ops import ConvBNAct, SlimConvBNAct, SlimLinear, make_act, make_pool


resize_batch = resize
"""The input pipeline's resize (:func:`pss.inputs.resize`), under the name earlier code and notebooks import."""


class _Block(nn.Module):
    def __init__(self, spec: BlockSpec, body: list[nn.Module], shortcut: nn.Module | str | None, act: str | None) -> None:
        super().__init__()
        self.body = nn.ModuleList(body)
        self.identity = shortcut == "identity"
        self.shortcut = shortcut if isinstance(shortcut, nn.Module) else None
        self.act = make_act(act)


class DenseBlock(_Block):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        elif self.identity:
            out = out + x
        return self.act(out)


class SlimBlock(_Block):
    def __init__(self, spec: BlockSpec, *args) -> None:
        super().__init__(spec, *args)
        # (output dimension, multiplier) of every layer (None for pools), fixed by the spec.
        self._douts = [(l.cout, l.cout_mult) if isinstance(l, ConvSpec) else None for l in spec.body]
        sc = spec.shortcut
        self._sc_dout = (sc.cout, sc.cout_mult) if isinstance(sc, ConvSpec) else None

    def forward(self, x: torch.Tensor, widths: Sequence[int]) -> torch.Tensor:
        out = x
        for layer, d in zip(self.body, self._douts):
            out = layer(out) if d is None else layer(out, widths[d[0]] * d[1])
        if self.shortcut is not None:
            d = self._sc_dout
            out = out + self.shortcut(x, widths[d[0]] * d[1])
        elif self.identity:
            out = out + x
        return self.act(out)

    def forward_parallel(self, x: torch.Tensor, sizes: Sequence[int], chunk_widths: Sequence[Sequence[int]]) -> torch.Tensor:
        """:meth:`forward` for chunk i of the batch with ``chunk_widths[i]``, all at full width.

        Every conv output is masked per chunk, and both sides of a residual
        addition use the same dimension, so sums and pools keep the zeros.
        """
        out = x
        for layer, d in zip(self.body, self._douts):
            out = layer(out) if d is None else layer.forward_parallel(out, sizes, [w[d[0]] * d[1] for w in chunk_widths])
        if self.shortcut is not None:
            d = self._sc_dout
            out = out + self.shortcut.forward_parallel(x, sizes, [w[d[0]] * d[1] for w in chunk_widths])
        elif self.identity:
            out = out + x
        return self.act(out)


    def forward_masked(self, x: torch.Tensor, masks: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """:meth:`forward` at full width with every layer's output channels multiplied by its dimension's mask.

        ``masks[d]`` has one value per channel of dimension d (``o_max``), or is
        None (all kept); a layer with ``cout_mult`` m uses it repeated m times per
        channel (its channels are width * m). Both sides of a residual sum share
        the dimension, so masked channels stay 0 through sums and pools.
        """
        out = x
        for layer, d in zip(self.body, self._douts):
            out = layer(out) if d is None else layer.forward_masked(out, _layer_mask(masks[d[0]], d[1]))
        if self.shortcut is not None:
            d = self._sc_dout
            out = out + self.shortcut.forward_masked(x, _layer_mask(masks[d[0]], d[1]))
        elif self.identity:
            out = out + x
        return self.act(out)


def _layer_mask(mask: torch.Tensor | None, mult: int) -> torch.Tensor | None:
    return mask if mask is None or mult == 1 else mask.repeat_interleave(mult)


class Supernet(nn.Module):
    """The slimmable supernet N_{phi_max, W}; ``forward(x, structure)`` runs any subnet."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.spec = spec
        dmax = spec.dim_max
        blocks = build_blocks(spec, dmax, SlimConvBNAct, SlimBlock)
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.classifier = SlimLinear(dmax[spec.head_in], spec.num_classes)
        self.max_widths = tuple(dmax)
        _init_weights(self)

    def forward(self, x: torch.Tensor, structure: Structure | None = None) -> torch.Tensor:
        if structure is None:
            widths = self.max_widths
        else:
            widths = structure.widths
            x = resize(x, structure.resolution)
        for block in self.blocks:
            x = block(x, widths)
        return self.head(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the last block's output: global average pool, dropout, classifier (sliced to x's channels)."""
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))

    def forward_masked(self, x: torch.Tensor, masks: Sequence[torch.Tensor | None], resolution: int | None = None) -> torch.Tensor:
        """Logits of the subnet that channel masks select, differentiable in the masks (EAS single-path gates).

        ``masks[d]``: one value per channel of dimension d (None keeps them all).
        For 0/1 masks with the kept channels first, the result equals
        ``self(x, structure)`` in training mode for the structure whose widths
        are the masks' sums: each layer's BN uses the batch's statistics (what
        calibration would estimate for that subnet), running statistics are not
        touched, and dropout follows the module's mode. The masks multiply the
        activations, so their gradients say how the loss changes as a channel
        group is switched on or off (Single-Path NAS's encoding).
        """
        if len(masks) != len(self.max_widths):
            raise ValueError(f"{len(masks)} masks for {len(self.max_widths)} dimensions")
        if resolution is not None:
            x = resize(x, resolution)
        for block in self.blocks:
            x = block.forward_masked(x, masks)
        return self.head(x)

    def forward_parallel(self, x: torch.Tensor, structures: Sequence[Structure], sizes: Sequence[int] | None = None) -> torch.Tensor:
        """PSE-Net parallel subnets (Sec. 3.2, Eq. 8-14): chunk i of ``x`` through ``structures[i]``.

        The batch is split along its first dimension into ``len(structures)``
        chunks (``sizes``, default :func:`chunk_sizes`), and the max network
        runs once on all of it; after every conv + BN + activation, each
        chunk's channels beyond its structure's width are zeroed (Eq. 13-14)
        and each chunk's BN uses its own batch statistics. Row block i of the
        result therefore equals ``self(x_i, structures[i])`` in training mode,
        and its gradients equal that forward's. BN running statistics are not
        updated. All structures must share one resolution (one forward has one
        input size).
        """
        if not structures:
            raise ValueError("forward_parallel needs at least one structure")
        resolutions = {s.resolution for s in structures}
        if len(resolutions) != 1:
            raise ValueError(f"parallel subnets share one input resolution, got {sorted(resolutions)}")
        sizes = list(chunk_sizes(x.shape[0], len(structures)) if sizes is None else sizes)
        if len(sizes) != len(structures) or sum(sizes) != x.shape[0] or min(sizes) < 1:
            raise ValueError(f"chunk sizes {sizes} do not split a batch of {x.shape[0]} into {len(structures)} chunks")
        x = resize(x, structures[0].resolution)
        widths = [s.widths for s in structures]
        for block in self.blocks:
            x = block.forward_parallel(x, sizes, widths)
        return self.head(x)


def chunk_sizes(batch: int, n: int) -> list[int]:
    """Eq. 8: split a batch of ``batch`` rows into ``n`` chunks, the first ``batch % n`` one row larger."""
    if n < 1 or batch < n:
        raise ValueError(f"cannot split a batch of {batch} into {n} non-empty chunks")
    base, extra = divmod(batch, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


class DenseHead(nn.Module):
    """Global average pool, flatten, dropout, classifier: the tail of every network of a spec."""

    def __init__(self, spec: NetSpec, width: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


class DenseNet(DenseHead):
    """A standalone model with the channels of one structure (what export writes).

    It expects inputs already at ``structure.resolution``.
    """

    def __init__(self, spec: NetSpec, structure: Structure) -> None:
        super().__init__(spec, structure.widths[spec.head_in])
        self.blocks = nn.Sequential(*build_blocks(spec, structure.widths, ConvBNAct, DenseBlock))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.blocks(x))


def build_blocks(spec: NetSpec, widths, conv_cls, block_cls) -> list[nn.Module]:
    """Modules for every block of ``spec`` with channels ``widths`` (max widths for the supernet)."""
    blocks = []
    for b in spec.blocks:
        body = [conv_cls(l, *spec.conv_channels(l, widths)) if isinstance(l, ConvSpec) else make_pool(l) for l in b.body]
        sc = b.shortcut
        if isinstance(sc, ConvSpec):
            sc = conv_cls(sc, *spec.conv_channels(sc, widths))
        blocks.append(block_cls(b, body, sc, b.act))
    return blocks


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


CLASSIFIER_KEYS = ("classifier.weight", "classifier.bias")
"""The classifier's tensors (the same names in :class:`Supernet` and :class:`DenseNet`): one row per class."""


def spec_for_classes(spec: NetSpec, classes: Sequence[int] | None) -> NetSpec:
    """``spec`` with a classifier of ``len(classes)`` outputs (output j is class ``classes[j]``); ``spec`` for None.

    ``classes`` must be distinct class indices of ``spec`` in ascending order (a superclass's classes).
    """
    if classes is None:
        return spec
    classes = tuple(int(c) for c in classes)
    if not classes or any(b <= a for a, b in zip(classes, classes[1:])) or classes[0] < 0 or classes[-1] >= spec.num_classes:
        raise ValueError(f"classes must be distinct class indices in 0..{spec.num_classes - 1}, ascending; got {list(classes)}")
    return dataclasses.replace(spec, num_classes=len(classes))


def slice_state_dict(
    supernet_state: Mapping[str, torch.Tensor],
    dense: nn.Module,
    bn_stats: Mapping[str, torch.Tensor] | None = None,
    classes: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Cut every supernet tensor down to the dense model's shape: W_i[1:o_i].

    ``bn_stats`` (calibrated running mean/var keyed like the state dict)
    replace the supernet's stale running statistics. ``classes`` keeps only
    those rows of the classifier, in that order (row j of the result is row
    ``classes[j]`` of the supernet's), for a dense model built with
    :func:`spec_for_classes`.
    """
    rows = None if classes is None else torch.as_tensor([int(c) for c in classes], dtype=torch.long)
    out = {}
    for key, target in dense.state_dict().items():
        src = bn_stats[key] if bn_stats is not None and key in bn_stats else supernet_state[key]
        if src.dim() == 0:
            out[key] = src.clone()
            continue
        if rows is not None and key in CLASSIFIER_KEYS:
            src = src.index_select(0, rows.to(src.device))
        index = tuple(slice(0, n) for n in target.shape)
        out[key] = src[index].detach().clone().contiguous()
    return out


def extract_subnet(supernet: Supernet, structure: Structure, bn_stats: Mapping[str, torch.Tensor] | None = None,
                   classes: Sequence[int] | None = None) -> DenseNet:
    """A dense copy of ``supernet``'s slice for ``structure`` with physically smaller weights.

    With ``classes`` (ascending class indices, e.g. a superclass's) the classifier keeps only their rows:
    the model has ``len(classes)`` outputs and its output j is the supernet's logit of class ``classes[j]``.
    """
    dense = DenseNet(spec_for_classes(supernet.spec, classes), structure)
    dense.load_state_dict(slice_state_dict(supernet.state_dict(), dense, bn_stats, classes))
    return dense.eval()
