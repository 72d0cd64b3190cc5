"""Latency as a cost (PSS-Net Sec. 4.2): the compiled lookup table and its layout.

A latency lookup table (LUT) predicts the latency of a structure as the sum of
measured latencies of the blocks it is made of, plus a constant overhead. This
module is the torch-free half: which additive terms a (spec, space) pair has
(:func:`lut_layout`), and the compiled table that answers C(phi) in
milliseconds for the cost model (:class:`LatencyTable`). Measuring a table is
:mod:`pss.latency`; its file is read and written by :mod:`pss.io.lut`.

Variant key of a block
    A block's latency depends only on the widths of the dimensions its convs
    read or write (its input width, its own inner/output widths) and on its
    input size (which the network resolution r fixes). So each block is timed
    as a function of *its own* variant key, ``(input size, w_d for d in
    block.dims)``, never of the whole structure: that is what makes the table
    additive, and keeps it small (1,731 variants for cifar10-mbv1 instead of
    the ~2e11 structures of S). Widths between the measured grid points of a
    thinned block are interpolated multilinearly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import PssError, one_line
from .space import Structure, StructureSpace
from .spec import IMAGE, ConvSpec, MaxPoolSpec, NetSpec, conv_output_size

LUT_KIND = "pss-latency-lut"
LUT_SCHEMA_VERSION = 1
HEAD = "head"


# ---------------------------------------------------------------------- layout
@dataclass(frozen=True)
class LutBlock:
    """One additive term of the table: a block of the spec, or the head."""

    name: str  # "blocks.<i>" or "head"
    index: int  # index into spec.blocks; -1 for the head
    dims: tuple[int, ...]  # dimensions whose widths the block's latency depends on
    sizes: tuple[int, ...]  # distinct input sizes over the resolutions of S (ascending)
    size_of: dict  # network resolution -> input size of this block

    def variant_count(self, space: StructureSpace) -> int:
        return len(self.sizes) * math.prod(len(space.dimensions[d].choices) for d in self.dims)


def block_dims(block) -> tuple[int, ...]:
    """Dimensions read or written by a block's convs (the image excluded), in first-use order."""
    dims: list[int] = []
    layers = list(block.body) + ([block.shortcut] if isinstance(block.shortcut, ConvSpec) else [])
    for layer in layers:
        if isinstance(layer, ConvSpec):
            for d in (layer.cin, layer.cout):
                if d != IMAGE and d not in dims:
                    dims.append(d)
    return tuple(dims)


def lut_layout(spec: NetSpec, space: StructureSpace) -> list[LutBlock]:
    """The LUT's additive terms for (spec, space): every block, then the head."""
    if len(space) != len(spec.dim_names):
        raise PssError(f"space has {len(space)} dimensions but the {spec.family} spec has {len(spec.dim_names)}")
    sizes = {r: r for r in space.resolutions}
    out = []
    for i, b in enumerate(spec.blocks):
        size_of = dict(sizes)
        out.append(LutBlock(f"blocks.{i}", i, block_dims(b), tuple(sorted(set(size_of.values()))), size_of))
        for layer in b.body:
            if isinstance(layer, (ConvSpec, MaxPoolSpec)):
                sizes = {r: conv_output_size(s, layer.kernel, layer.stride, layer.padding) for r, s in sizes.items()}
    out.append(LutBlock(HEAD, -1, (spec.head_in,), tuple(sorted(set(sizes.values()))), dict(sizes)))
    return out


def check_lut_matches(data: dict[str, Any], spec: NetSpec, space: StructureSpace, source: str = "latency LUT") -> None:
    want_model = spec.to_json()
    have_model = data.get("model")
    if have_model != want_model:
        diff = _dict_diff(have_model or {}, want_model)
        raise PssError(f"{source} was built for another model ({diff}); rebuild it for this config with `pss lut build`")
    have, want = data.get("space") or {}, space.to_json()
    for key in ("resolutions", "lower_bound", "divisor", "dimension_names"):
        if have.get(key) != want[key]:
            raise PssError(
                f"{source} was built for another structure space ({key} {have.get(key)!r} vs {want[key]!r} here); "
                "rebuild it for this config with `pss lut build`"
            )
    if have.get("dimensions") != want["dimensions"]:
        raise PssError(f"{source} was built for other channel choices than this structure space; rebuild it with `pss lut build`")
    names = [b.get("name") for b in data.get("blocks", [])]
    expected = [b.name for b in lut_layout(spec, space)]
    if names != expected:
        raise PssError(f"{source} has {len(names)} terms but the {spec.family} spec needs {len(expected)}; rebuild it with `pss lut build`")


def _dict_diff(have: dict, want: dict) -> str:
    keys = [k for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
    return ", ".join(f"{k} {have.get(k)!r} vs {want.get(k)!r} here" for k in keys[:3]) or "unknown difference"



# ---------------------------------------------------------------------- the compiled table
class LatencyTable:
    """A LUT compiled for fast prediction; ``.data`` is the JSON dict.

    ``predict(s)`` is plain Python (a few microseconds for a MobileNet);
    ``latency_array(widths, resolutions)`` is the numpy version for n
    structures, like :meth:`pss.problem.costs.CostModel.cost_array`.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        try:
            dims = data["space"]["dimensions"]
            self.resolutions = tuple(int(r) for r in data["space"]["resolutions"])
            self.overhead_ms = float(data.get("overhead_ms") or 0.0)
            self.batch_size = int(data["batch_size"])
            self._terms = []
            for b in data["blocks"]:
                table = np.asarray(b["latency_ms"], dtype=np.float64)
                grid = [np.asarray(a, dtype=np.int64) for a in b["grid"]]
                sizes = [int(v) for v in b["sizes"]]
                if table.shape != (len(sizes), *[len(a) for a in grid]) or len(grid) != len(b["dims"]):
                    raise ValueError(f"table of {b['name']} has shape {table.shape}")
                self._terms.append(_Term(b["name"], tuple(int(d) for d in b["dims"]), sizes, grid, table, dims))
        except (KeyError, TypeError, ValueError) as exc:
            raise PssError(f"malformed latency LUT: {one_line(exc)}") from None
        self._size_index = self._resolution_to_size_index()

    def _resolution_to_size_index(self) -> list[dict[int, int]]:
        """Per term: network resolution -> index into its ``sizes``."""
        out = []
        for term, b in zip(self._terms, self.data["blocks"]):
            per_res = b.get("input_size")
            if not isinstance(per_res, list) or len(per_res) != len(self.resolutions):
                raise PssError(f"malformed latency LUT: block {term.name} needs one input_size per resolution {list(self.resolutions)}")
            out.append({r: term.sizes.index(int(v)) for r, v in zip(self.resolutions, per_res)})
        return out

    # -------------------------------------------------------------- metadata
    @property
    def model(self) -> dict[str, Any]:
        return self.data["model"]

    @property
    def device(self) -> dict[str, Any]:
        return self.data.get("device", {})

    def to_json(self) -> dict[str, Any]:
        return self.data

    def check_matches(self, spec: NetSpec, space: StructureSpace, source: str = "latency LUT") -> None:
        """One-line PssError unless this table was built for exactly ``spec`` and ``space``."""
        check_lut_matches(self.data, spec, space, source)

    # -------------------------------------------------------------- prediction
    def predict(self, s: Structure) -> float:
        """Predicted latency (ms) of one structure: overhead + sum of its block entries."""
        w, r = s.widths, s.resolution
        total = self.overhead_ms
        for term, sizes in zip(self._terms, self._size_index):
            try:
                si = sizes[r]
            except KeyError:
                raise PssError(f"resolution {r} is not in the latency LUT (it has {list(self.resolutions)})") from None
            total += term.value(si, w)
        return total

    def block_latencies(self, s: Structure) -> dict[str, float]:
        """Each term's entry for ``s`` (name -> ms), plus "overhead"; sums to :meth:`predict`."""
        out = {t.name: t.value(sizes[s.resolution], s.widths) for t, sizes in zip(self._terms, self._size_index)}
        out["overhead"] = self.overhead_ms
        return out

    def latency_array(self, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
        """Predicted latencies (ms) of n structures: widths (n, L), resolutions (n,) -> (n,) float64."""
        widths = np.asarray(widths, dtype=np.int64)
        resolutions = np.asarray(resolutions, dtype=np.int64)
        n = widths.shape[0]
        total = np.full(n, self.overhead_ms, dtype=np.float64)
        res_list = np.asarray(self.resolutions, dtype=np.int64)
        ri = np.searchsorted(res_list, resolutions)
        if n and (np.any(ri >= len(res_list)) or np.any(res_list[np.minimum(ri, len(res_list) - 1)] != resolutions)):
            bad = sorted(set(resolutions.tolist()) - set(self.resolutions))
            raise PssError(f"resolution(s) {bad} are not in the latency LUT (it has {list(self.resolutions)})")
        for term, sizes in zip(self._terms, self._size_index):
            si = np.asarray([sizes[r] for r in self.resolutions], dtype=np.int64)[ri]
            total += term.values(si, widths)
        return total


class _Term:
    """One block's table with per-dimension interpolation weights precomputed for every choice."""

    def __init__(self, name: str, dims: tuple[int, ...], sizes: list[int], grid: list[np.ndarray], table: np.ndarray, space_dims) -> None:
        self.name, self.dims, self.sizes, self.grid, self.table = name, dims, sizes, grid, table
        self.nested = table.tolist()  # plain lists: indexing them is several times faster than numpy scalars
        # width -> ((grid index, weight), ...) with weights summing to 1; one pair when the width is on the grid
        self.weights: list[dict[int, tuple[tuple[int, float], ...]]] = []
        for d, axis in zip(dims, grid):
            choices = [int(c) for c in space_dims[d]["choices"]]
            self.weights.append({c: _bracket(axis, c) for c in set(choices) | set(axis.tolist())})
        # on-grid widths -> grid index (every choice of an exact block)
        self.index = [{w: ws[0][0] for w, ws in m.items() if len(ws) == 1 and ws[0][1] == 1.0} for m in self.weights]
        self.exact = all(len(ws) == 1 for m in self.weights for ws in m.values())

    def _weights_of(self, j: int, w: int) -> tuple[tuple[int, float], ...]:
        try:
            return self.weights[j][w]
        except KeyError:
            ws = _bracket(self.grid[j], w)
            self.weights[j][w] = ws
            return ws

    def value(self, si: int, widths: Sequence[int]) -> float:
        t = self.nested[si]
        try:  # every width on the grid: a plain lookup
            for d, index in zip(self.dims, self.index):
                t = t[index[widths[d]]]
            return float(t)
        except KeyError:
            pass
        per = [self._weights_of(j, widths[d]) for j, d in enumerate(self.dims)]
        total = 0.0
        for combo in itertools.product(*per):
            entry, wt = self.nested[si], 1.0
            for g, c in combo:
                entry = entry[g]
                wt *= c
            total += wt * entry
        return total

    def values(self, si: np.ndarray, widths: np.ndarray) -> np.ndarray:
        lo, hi, frac = [], [], []
        for j, d in enumerate(self.dims):
            axis = self.grid[j]
            w = widths[:, d]
            h = np.clip(np.searchsorted(axis, w, side="left"), 0, len(axis) - 1)
            l = np.clip(h - 1, 0, len(axis) - 1)
            exact = axis[h] == w
            l = np.where(exact, h, l)
            span = (axis[h] - axis[l]).astype(np.float64)
            f = np.where(span > 0, (w - axis[l]) / np.where(span > 0, span, 1.0), 0.0)
            f = np.clip(f, 0.0, 1.0)
            lo.append(l)
            hi.append(h)
            frac.append(f)
        out = np.zeros(len(si), dtype=np.float64)
        for corner in itertools.product((0, 1), repeat=len(self.dims)):
            idx = [si]
            wt = np.ones(len(si), dtype=np.float64)
            for j, c in enumerate(corner):
                idx.append(hi[j] if c else lo[j])
                wt = wt * (frac[j] if c else 1.0 - frac[j])
            out += wt * self.table[tuple(idx)]
        return out


def _bracket(axis: np.ndarray, w: int) -> tuple[tuple[int, float], ...]:
    """Grid indices and linear weights of width ``w`` on ``axis`` (clamped to the ends)."""
    axis_l = axis.tolist()
    if w in axis_l:
        return ((axis_l.index(w), 1.0),)
    if w <= axis_l[0]:
        return ((0, 1.0),)
    if w >= axis_l[-1]:
        return ((len(axis_l) - 1, 1.0),)
    h = int(np.searchsorted(axis, w))
    l = h - 1
    f = (w - axis_l[l]) / (axis_l[h] - axis_l[l])
    return ((l, 1.0 - f), (h, f))


