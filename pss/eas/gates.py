"""Single-path gate encoding of a structure (EAS Sec. 3.2, "Single-path architecture encoding", Eq. 5-10).

EAS encodes a sub-network as binary gates that select subsets of the
supernet's weights. Our space S has per-dimension widths (divisor-sized steps
between o_min and o_max) and an input resolution, so the encoding is:

* **width of dimension d** with choices ``c_0 < c_1 < ... < c_K`` (``c_K = o_max``):
  K *nested* gates ``g_1..g_K``. Gate j switches on the channel group
  ``[c_{j-1}, c_j)`` -- but only if every earlier gate is on, so the width is
  ``c_0 + sum_j (g_1 * ... * g_j) * (c_j - c_{j-1})`` and channel ``ch`` is kept
  with the product of the gates up to its group (channels below ``c_0`` always).
  Nesting makes every gate vector decode to a member of S (the leading ones
  count), as Single-Path NAS nests its kernel and expansion gates.
* **resolution** with choices ``r_0 < ... < r_M``: M nested gates the same way;
  the subnet runs at ``r_j`` with weight ``h_1 * ... * h_j * (1 - h_{j+1})``
  (one-hot for hard gates). EAS gates depth instead (Eq. 5-6); our space has no
  depth dimension, and the resolution is its third axis.

Gates are sampled from Bernoulli(alpha) (Eq. 7) through a Gumbel-sigmoid
relaxation (Eq. 9, the binary case of Gumbel-softmax): hard 0/1 values in the
forward pass and the soft values' gradient backward, the straight-through
estimator (Eq. 10). Every function here works on hard and soft gates alike, so
for hard gates the masks select exactly the structure's channels and
:func:`soft_cost` equals the cost model's C(structure).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from ..problem.costs import CostModel
from ..problem.space import Structure, StructureSpace
from ..problem.spec import IMAGE


@dataclass(frozen=True)
class GateLayout:
    """Where each dimension's gates sit in one flat gate vector; the resolution's gates come last.

    ``dims`` lists the searchable dimensions (more than one choice) in order;
    ``offsets[i]`` is the first gate of ``dims[i]``; a dimension with K+1
    choices has K gates. Fixed dimensions have no gates and stay at o_max.
    """

    choices: tuple[tuple[int, ...], ...]  # every dimension's channel choices (fixed ones: one)
    resolutions: tuple[int, ...]
    dims: tuple[int, ...]
    offsets: tuple[int, ...]
    res_offset: int
    size: int

    @classmethod
    def of(cls, space: StructureSpace) -> "GateLayout":
        choices = tuple(tuple(d.choices) for d in space.dimensions)
        dims, offsets, n = [], [], 0
        for i, c in enumerate(choices):
            if len(c) > 1:
                dims.append(i)
                offsets.append(n)
                n += len(c) - 1
        return cls(choices, tuple(space.resolutions), tuple(dims), tuple(offsets), n, n + len(space.resolutions) - 1)

    def gates_of(self, dim: int) -> int:
        return len(self.choices[dim]) - 1

    @property
    def max_gates(self) -> int:
        """The most gates of any one step (a dimension or the resolution): the width of the generator's heads."""
        return max([self.gates_of(d) for d in self.dims] + [len(self.resolutions) - 1, 1])

    @property
    def steps(self) -> int:
        """Decision steps of the generator's LSTM: one per searchable dimension, one for the resolution."""
        return len(self.dims) + 1


def encode(layout: GateLayout, structure: Structure) -> torch.Tensor:
    """The hard gate vector of a structure in S: gate j of a dimension is on iff its width reaches c_j."""
    gates = torch.zeros(layout.size)
    for d, off in zip(layout.dims, layout.offsets):
        c = layout.choices[d]
        level = c.index(structure.widths[d])
        gates[off:off + level] = 1.0
    level = layout.resolutions.index(structure.resolution)
    gates[layout.res_offset:layout.res_offset + level] = 1.0
    return gates


def decode(layout: GateLayout, gates: torch.Tensor | np.ndarray) -> Structure:
    """The structure hard gates select: per dimension and for the resolution, the count of leading ones."""
    g = np.asarray(gates.detach().cpu() if isinstance(gates, torch.Tensor) else gates) > 0.5
    widths = [c[-1] for c in layout.choices]
    for d, off in zip(layout.dims, layout.offsets):
        widths[d] = layout.choices[d][_leading_ones(g[off:off + layout.gates_of(d)])]
    res = layout.resolutions[_leading_ones(g[layout.res_offset:layout.size])]
    return Structure(tuple(widths), res)


def decode_arrays(layout: GateLayout, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode` of n gate vectors at once: (widths (n, L) int64, resolutions (n,) int64)."""
    bits = np.asarray(bits) > 0.5
    n = bits.shape[0]
    widths = np.tile(np.array([c[-1] for c in layout.choices], dtype=np.int64), (n, 1))
    for d, off in zip(layout.dims, layout.offsets):
        level = np.cumprod(bits[:, off:off + layout.gates_of(d)], axis=1).sum(axis=1)
        widths[:, d] = np.asarray(layout.choices[d], dtype=np.int64)[level]
    level = np.cumprod(bits[:, layout.res_offset:layout.size], axis=1).sum(axis=1)
    return widths, np.asarray(layout.resolutions, dtype=np.int64)[level]


def _leading_ones(bits: np.ndarray) -> int:
    off = np.flatnonzero(~bits)
    return int(off[0]) if off.size else int(bits.size)


def cumulative_gates(gates: torch.Tensor) -> torch.Tensor:
    """Eq. 5's nesting: ``g_1 * ... * g_j`` for every j along the last axis (differentiable in every gate)."""
    return torch.cumprod(gates, dim=-1)


def channel_masks(layout: GateLayout, gates: torch.Tensor) -> list[torch.Tensor | None]:
    """Per dimension, one mask value per channel (o_max), from one gate vector: what ``Supernet.forward_masked`` takes.

    Channels below c_0 are always kept (1); channels of group j get the
    product of gates 1..j. Fixed dimensions get None (all kept).
    """
    masks: list[torch.Tensor | None] = [None] * len(layout.choices)
    for d, off in zip(layout.dims, layout.offsets):
        c = layout.choices[d]
        keep = cumulative_gates(gates[off:off + len(c) - 1])
        sizes = torch.tensor(np.diff(c), device=gates.device)
        masks[d] = torch.cat([torch.ones(c[0], dtype=gates.dtype, device=gates.device), keep.repeat_interleave(sizes)])
    return masks


def soft_widths(layout: GateLayout, gates: torch.Tensor) -> list[torch.Tensor]:
    """Every dimension's width as a (differentiable) function of the gates: the sum of its channel mask.

    ``gates`` may carry leading batch axes (..., size); each width has those axes.
    """
    out = []
    lead = gates.shape[:-1]
    for d, c in enumerate(layout.choices):
        if len(c) == 1:
            out.append(torch.full(lead, float(c[0]), dtype=gates.dtype, device=gates.device))
            continue
        off = layout.offsets[layout.dims.index(d)]
        keep = cumulative_gates(gates[..., off:off + len(c) - 1])
        steps = torch.tensor(np.diff(c), dtype=gates.dtype, device=gates.device)
        out.append(c[0] + (keep * steps).sum(-1))
    return out


def resolution_weights(layout: GateLayout, gates: torch.Tensor) -> torch.Tensor:
    """Weight of each resolution, ``h_1..h_j (1 - h_{j+1})``: one-hot for hard gates, summing to 1 always."""
    h = gates[..., layout.res_offset:layout.size]
    reach = torch.cat([torch.ones_like(h[..., :1]), cumulative_gates(h)], dim=-1)  # reach[j] = h_1..h_j
    stop = torch.cat([1 - h, torch.ones_like(h[..., :1])], dim=-1)  # 1 - h_{j+1}; the last level has no next gate
    return reach * stop


def soft_cost(cost_model: CostModel, layout: GateLayout, gates: torch.Tensor, kind: str = "macs") -> torch.Tensor:
    """C(gates): the cost model's polynomial (:attr:`CostModel.conv_terms`) evaluated on :func:`soft_widths`.

    The computational constraint of EAS Eq. 3 needs the cost as a function of
    the gates. Multiply-adds are a sum over convolutions of
    ``k2 * cin * cout * H*W(r)`` plus the classifier; with widths and resolution
    weights from the gates the same sum is differentiable, and for hard gates
    it is exactly ``cost_model.cost(kind, decode(gates))`` (pinned by a test).
    Parameters likewise (no resolution). Latency comes from a measured table,
    not a polynomial, so it is refused.
    """
    if kind not in ("macs", "params"):
        raise ValueError(f"the generator needs a cost it can differentiate (macs or params), not {kind!r}")
    widths = soft_widths(layout, gates)
    spec = cost_model.spec

    def channels(ref: int, mult: int) -> torch.Tensor | float:
        return float(spec.in_channels) if ref == IMAGE else widths[ref] * mult

    res_w = resolution_weights(layout, gates) if kind == "macs" else None
    total = 0.0
    for t in cost_model.conv_terms:
        cout = channels(t.cout, t.cout_mult)
        per = t.k2 * cout if t.depthwise else t.k2 * channels(t.cin, t.cin_mult) * cout
        if kind == "macs":
            hw = torch.as_tensor(t.hw, dtype=gates.dtype, device=gates.device)
            total = total + per * (res_w * hw).sum(-1)
        else:
            total = total + per + 2 * cout
    head = widths[spec.head_in] * spec.num_classes
    return total + head + (spec.num_classes if kind == "params" else 0)


def gumbel_sigmoid(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 9-10: a hard 0/1 sample of Bernoulli(sigmoid(logits)), with the relaxed sample's gradient (STE).

    ``soft = sigmoid((logits + log u - log(1 - u)) / tau)`` with ``u ~ U(0, 1)``
    (the difference of two Gumbel variables is logistic); the forward value is
    ``soft > 0.5`` -- which is 1 with probability exactly sigmoid(logits), for
    any tau -- and the backward pass uses d soft / d logits.
    """
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach())  # exactly hard in value (x - x == 0), d soft backward


def sample_structures(layout: GateLayout, probs: torch.Tensor, n: int, generator: torch.Generator | None = None) -> list[Structure]:
    """n structures drawn from the gate probabilities of one scenario (Eq. 7: each gate ~ Bernoulli(alpha))."""
    draws = torch.rand((n, probs.shape[-1]), generator=generator) < probs.detach().cpu()[None, :]
    return [decode(layout, d.numpy()) for d in draws]


def most_likely(layout: GateLayout, probs: torch.Tensor) -> Structure:
    """The structure of the gates rounded at 1/2 (each gate its more likely value)."""
    return decode(layout, (probs.detach().cpu() > 0.5).numpy())


def gate_probability_profile(layout: GateLayout, probs: torch.Tensor) -> list[float]:
    """Expected width / o_max per dimension under independent gates (for plots): sum_j P(g_1..g_j) * step_j."""
    widths = []
    p = probs.detach().cpu()
    for d, c in enumerate(layout.choices):
        if len(c) == 1:
            widths.append(1.0)
            continue
        off = layout.offsets[layout.dims.index(d)]
        reach = torch.cumprod(p[off:off + len(c) - 1], 0)
        widths.append(float((c[0] + (reach * torch.tensor(np.diff(c), dtype=p.dtype)).sum()) / c[-1]))
    return widths

