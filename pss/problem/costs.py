"""Resource consumption C(.) of a structure, analytic from the block spec.

Multiply-adds (the papers' "FLOPs": one multiply-add counts once) and
parameters. Both are polynomials in the channel counts and the spatial sizes,
so they are evaluated in microseconds for one structure and vectorised over
arrays of structures (building the Eq. 4 set G needs ~1e5 of them).

What is counted, so numbers match fvcore with its BatchNorm and pooling
handles off: every convolution and the classifier's matrix multiply. BN,
activations, pooling and residual additions cost no multiply-adds here.
A conv's channels are its dimensions' widths times the layer's multipliers
(``ConvSpec.cin_mult`` / ``cout_mult``), as the supernet slices them.
Parameters count conv weights, BN affine weights and biases, and the
classifier (running statistics are buffers, not parameters).

Latency (milliseconds, PSS-Net Sec. 4.2) is not analytic: it is predicted
from a measured lookup table (:class:`~pss.problem.latency_table.LatencyTable`).
A cost model built with ``latency=LatencyTable`` also answers cost kind
``"latency"`` and adds a ``"latency"`` entry to :meth:`CostModel.costs`;
without a table that kind is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..units import ANALYTIC_KINDS, LATENCY
from .latency_table import LatencyTable
from .space import Structure, StructureSpace
from .spec import IMAGE, ConvSpec, MaxPoolSpec, NetSpec, conv_output_size


@dataclass(frozen=True)
class ConvTerm:
    """One convolution's share of C(.): ``k2 * cin * cout * hw[r]`` multiply-adds (``k2 * cout * hw[r]`` if depthwise).

    ``cin``/``cout`` are dimension indices (``IMAGE`` for the image), their
    channels the dimension's width times ``cin_mult``/``cout_mult``; ``hw`` holds
    the output's H*W for each resolution of the space. Public so that a
    differentiable evaluation (the EAS generator's cost of soft gates) sums the
    same terms as :meth:`CostModel.macs`.
    """

    cin: int
    cout: int
    k2: int
    depthwise: bool
    hw: np.ndarray  # output H*W for each resolution of the space
    cin_mult: int = 1
    cout_mult: int = 1


class CostModel:
    """C(N_phi) for the structures of one (spec, space) pair."""

    def __init__(self, spec: NetSpec, space: StructureSpace, latency: LatencyTable | None = None) -> None:
        if len(space) != len(spec.dim_names):
            raise ValueError("space and spec disagree on the number of dimensions")
        self.spec = spec
        self.space = space
        self.latency = latency
        self._res_index = {r: i for i, r in enumerate(space.resolutions)}
        sizes = np.asarray(space.resolutions, dtype=np.int64)
        convs: list[ConvTerm] = []
        for b in spec.blocks:
            block_in = sizes.copy()
            for layer in b.body:
                if isinstance(layer, ConvSpec):
                    sizes = conv_output_size(sizes, layer.kernel, layer.stride, layer.padding)
                    convs.append(ConvTerm(layer.cin, layer.cout, layer.kernel**2, layer.depthwise, sizes * sizes,
                                       layer.cin_mult, layer.cout_mult))
                elif isinstance(layer, MaxPoolSpec):
                    sizes = conv_output_size(sizes, layer.kernel, layer.stride, layer.padding)
            if isinstance(b.shortcut, ConvSpec):
                sc = b.shortcut
                out = conv_output_size(block_in, sc.kernel, sc.stride, sc.padding)
                convs.append(ConvTerm(sc.cin, sc.cout, sc.kernel**2, False, out * out, sc.cin_mult, sc.cout_mult))
        self._convs = convs

    @property
    def conv_terms(self) -> tuple[ConvTerm, ...]:
        """Every convolution's term of the multiply-add polynomial; the classifier adds ``width[head_in] * num_classes``."""
        return tuple(self._convs)

    # ---------------------------------------------------------------- vectorised
    def _channels(self, widths: np.ndarray, ref: int, mult: int = 1) -> np.ndarray:
        if ref == IMAGE:
            return np.full(widths.shape[0], self.spec.in_channels, dtype=np.int64)
        return widths[:, ref] * mult

    def res_indices(self, resolutions: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.space.resolutions), resolutions)

    def macs_array(self, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
        """Multiply-adds of n structures: widths (n, L), resolutions (n,) -> (n,) int64."""
        widths = np.asarray(widths, dtype=np.int64)
        ri = self.res_indices(np.asarray(resolutions))
        total = np.zeros(widths.shape[0], dtype=np.int64)
        for c in self._convs:
            cout = self._channels(widths, c.cout, c.cout_mult)
            per_pixel = c.k2 * cout if c.depthwise else c.k2 * self._channels(widths, c.cin, c.cin_mult) * cout
            total += per_pixel * c.hw[ri]
        total += widths[:, self.spec.head_in] * self.spec.num_classes
        return total

    def params_array(self, widths: np.ndarray, resolutions: np.ndarray | None = None) -> np.ndarray:
        """Parameters of n structures (independent of resolution)."""
        widths = np.asarray(widths, dtype=np.int64)
        total = np.zeros(widths.shape[0], dtype=np.int64)
        for c in self._convs:
            cout = self._channels(widths, c.cout, c.cout_mult)
            weights = c.k2 * cout if c.depthwise else c.k2 * self._channels(widths, c.cin, c.cin_mult) * cout
            total += weights + 2 * cout
        head = widths[:, self.spec.head_in]
        total += head * self.spec.num_classes + self.spec.num_classes
        return total

    @property
    def kinds(self) -> tuple[str, ...]:
        """Cost kinds this model answers: macs, params, and latency when a table is attached."""
        return ANALYTIC_KINDS + ((LATENCY,) if self.latency is not None else ())

    def _unknown(self, kind: str) -> ValueError:
        if kind == LATENCY:
            return ValueError(
                "unknown cost kind 'latency' for a cost model without a latency lookup table; "
                "build one with `pss lut build` and set config latency_lut"
            )
        return ValueError(f"unknown cost kind {kind!r}; choose one of {self.kinds}")

    def latency_array(self, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
        """Predicted latencies (ms) of n structures from the attached lookup table."""
        if self.latency is None:
            raise self._unknown(LATENCY)
        return self.latency.latency_array(widths, resolutions)

    def cost_array(self, kind: str, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
        if kind == "macs":
            return self.macs_array(widths, resolutions)
        if kind == "params":
            return self.params_array(widths, resolutions)
        if kind == LATENCY and self.latency is not None:
            return self.latency_array(widths, resolutions)
        raise self._unknown(kind)

    # ---------------------------------------------------------------- one structure
    def macs(self, s: Structure) -> int:
        # Plain Python on ints: ~20x faster than the numpy path for one structure.
        w, ri, cin_img = s.widths, self._res_index[s.resolution], self.spec.in_channels
        total = 0
        for c in self._convs:
            cout = w[c.cout] * c.cout_mult
            per_pixel = c.k2 * cout if c.depthwise else c.k2 * (cin_img if c.cin == IMAGE else w[c.cin] * c.cin_mult) * cout
            total += per_pixel * int(c.hw[ri])
        return total + w[self.spec.head_in] * self.spec.num_classes

    def params(self, s: Structure) -> int:
        w, cin_img = s.widths, self.spec.in_channels
        total = 0
        for c in self._convs:
            cout = w[c.cout] * c.cout_mult
            total += (c.k2 * cout if c.depthwise else c.k2 * (cin_img if c.cin == IMAGE else w[c.cin] * c.cin_mult) * cout) + 2 * cout
        return total + (w[self.spec.head_in] + 1) * self.spec.num_classes

    def latency_ms(self, s: Structure) -> float:
        """Predicted latency (ms) of one structure from the attached lookup table."""
        if self.latency is None:
            raise self._unknown(LATENCY)
        return self.latency.predict(s)

    def cost(self, kind: str, s: Structure) -> float:
        if kind == "macs":
            return float(self.macs(s))
        if kind == "params":
            return float(self.params(s))
        if kind == LATENCY and self.latency is not None:
            return float(self.latency.predict(s))
        raise self._unknown(kind)

    def costs(self, s: Structure) -> dict[str, float]:
        """All cost kinds of one structure (what pools and snapshots record).

        ``latency`` (ms) is present only with a lookup table attached. It is not
        rounded, so it equals :meth:`cost` and ``cost_array`` exactly (pool
        membership checks compare it with the budget band).
        """
        out = {"macs": self.macs(s), "params": self.params(s)}
        if self.latency is not None:
            out[LATENCY] = float(self.latency.predict(s))
        return out
