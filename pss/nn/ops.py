"""How a layer is sliced: slimmable ops and their dense counterparts.

A subnet uses the first ``o_i`` channels of every weight, ``W_i[1:o_i]``
(PSS-Net Sec. 3.1), as views of the supernet's tensors: nothing is copied, so
gradients of every subnet land in the shared weights. Ops take the channel
count to produce as an argument and know nothing of pools or sampling.

Parallel subnets (PSE-Net Sec. 3.2, Eq. 8-14): ``forward_parallel`` runs
several subnets at once on disjoint chunks of one batch. The layer computes
all its channels for every row, then each chunk keeps only its subnet's
channels: channels beyond a chunk's width are zeroed (the batch x channel
mask M^i of Eq. 13-14), so the next layer sees exactly the zero-padded input
of Eq. 9 and the chunk's output equals its subnet's own sliced forward.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..problem.spec import ConvSpec, MaxPoolSpec


def make_act(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class SlimConv2d(nn.Conv2d):
    """Conv2d whose input channels follow the input and output channels are given."""

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:  # type: ignore[override]
        cin = x.shape[1]
        if self.groups > 1:  # depthwise: one filter per input channel
            weight = self.weight[:cin]
            groups = cin
        else:
            weight = self.weight[:out_channels, :cin]
            groups = 1
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, groups)


class SlimBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the first C channels; running statistics are updated in place.

    Subclassing keeps ``reset_running_stats`` and ``momentum=None`` (exact
    cumulative averaging) working as in plain PyTorch, which BN calibration uses.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.track_running_stats else None,
            self.running_var[:c] if self.track_running_stats else None,
            self.weight[:c],
            self.bias[:c],
            use_batch_stats,
            factor,
            self.eps,
        )

    def forward_parallel(self, x: torch.Tensor, sizes: Sequence[int], channels: Sequence[int]) -> torch.Tensor:
        """Per-chunk BatchNorm with channel masks (PSE-Net Eq. 13-14 for BN).

        Rows ``[sum(sizes[:i]), sum(sizes[:i+1]))`` form chunk i; each chunk is
        normalised with its own batch statistics (per channel, so a channel's
        statistics only ever involve that chunk's rows) and its channels
        ``>= channels[i]`` come out as exactly 0: the mask is folded into the
        affine parameters (gamma * M, beta * M), which also keeps the gradient
        of masked channels at 0. Running statistics are not accumulated
        (PSE-Net: they are ill-defined across parallel subnets; calibrate after
        training).
        """
        c = x.shape[1]
        index = torch.arange(c, device=x.device)
        outs = []
        for chunk, width in zip(torch.split(x, list(sizes)), channels):
            if width >= c:
                weight, bias = self.weight, self.bias
            else:
                mask = (index < width).to(self.weight.dtype)
                weight, bias = self.weight * mask, self.bias * mask
            outs.append(F.batch_norm(chunk, None, None, weight, bias, True, 0.0, self.eps))
        return torch.cat(outs) if len(outs) > 1 else outs[0]


class SlimLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)


class ConvBNAct(nn.Module):
    """Dense conv + BN + activation with the channels of one structure."""

    def __init__(self, spec: ConvSpec, cin: int, cout: int) -> None:
        super().__init__()
        groups = cin if spec.depthwise else 1
        self.conv = nn.Conv2d(cin, cout, spec.kernel, spec.stride, spec.padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = make_act(spec.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SlimConvBNAct(nn.Module):
    """Slimmable conv + BN + activation; same parameter names as :class:`ConvBNAct`."""

    def __init__(self, spec: ConvSpec, cin_max: int, cout_max: int) -> None:
        super().__init__()
        groups = cin_max if spec.depthwise else 1
        self.conv = SlimConv2d(cin_max, cout_max, spec.kernel, spec.stride, spec.padding, groups=groups, bias=False)
        self.bn = SlimBatchNorm2d(cout_max)
        self.act = make_act(spec.act)

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return self.act(self.bn(self.conv(x, out_channels)))

    def forward_parallel(self, x: torch.Tensor, sizes: Sequence[int], channels: Sequence[int]) -> torch.Tensor:
        """Chunk i of the batch through this layer with ``channels[i]`` output channels.

        ``x`` holds every channel of the max network (zeros beyond each
        chunk's input width), so the full-width convolution gives each chunk
        exactly its sliced convolution on the kept channels (Eq. 10); the
        per-chunk BN zeroes the rest (Eq. 14), and every activation maps 0 to 0.
        """
        y = self.conv(x, self.conv.out_channels)
        return self.act(self.bn.forward_parallel(y, sizes, channels))


    def forward_masked(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Every output channel, BN on this batch's statistics, times ``mask`` (one value per channel, or None).

        With a 0/1 mask whose ones come first and zeros in ``x``'s channels beyond
        the previous layer's width, the kept channels equal :meth:`forward` in
        training mode at ``mask.sum()`` channels, and the rest are 0; a mask that
        carries gradients (EAS gates) receives them through the product. Running
        statistics are neither used nor updated.
        """
        y = self.conv(x, self.conv.out_channels)
        y = self.act(F.batch_norm(y, None, None, self.bn.weight, self.bn.bias, True, 0.0, self.bn.eps))
        return y if mask is None else y * mask.view(1, -1, 1, 1)


def make_pool(spec: MaxPoolSpec) -> nn.Module:
    return nn.MaxPool2d(spec.kernel, spec.stride, spec.padding)
