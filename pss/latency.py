"""Latency lookup tables (PSS-Net Sec. 4.2, Fig. 3): C(phi) as measured latency.

Measuring every subnet of S is intractable, so, as in the paper, the latency of
a structure is *predicted* as the sum of the measured latencies of the blocks
it is made of. The block spec (:class:`pss.spec.NetSpec`) is the single
source of truth: every ``spec.blocks[i]`` is one LUT block, the stem included
(block 0), plus a ``head`` entry (global average pool, flatten, dropout,
classifier: the tail of :class:`pss.supernet.DenseNet`).

Variant key of a block
    A block's latency depends only on the widths of the dimensions its convs
    read or write (its input width, its own inner/output widths) and on its
    input size (which the network resolution r fixes). So each block is timed
    as a function of *its own* variant key, ``(input size, w_d for d in
    block.dims)``, never of the whole structure: that is what makes the table
    additive, and keeps it small (1,731 variants for cifar10-mbv1, input
    sizes that several resolutions share measured once, instead of the
    ~2e11 structures of S).

Grids and interpolation
    When a block has more than ``max_variants_per_block`` variants (ImageNet
    MobileNetV2: up to 26,598 for one block), each of its width axes is thinned
    to an evenly spaced subset of that dimension's ``choices`` (both ends
    kept), shrinking the largest axis first, and widths between grid points
    are interpolated multilinearly (bilinear for a two-width block).
    Input sizes are always exact (one per resolution of S). ``exact: true`` in
    a block entry means its grid is all of the choices: no interpolation.

Overhead term
    Blocks are timed in isolation, so whatever a whole-model call does that
    no block call does is in no entry: the Python call of ``DenseNet.forward``
    and its ``nn.Sequential``, and at larger batches the cache misses between
    blocks that a block timed on its own, its weights and input hot, never
    sees. So ``build_lut`` also times a few whole models (phi_min, phi_max and
    random structures drawn with a seed of its own, never the ones
    ``check_lut`` uses), in the same passes as the blocks, and stores the
    median of (measured - sum of entries) as ``overhead_ms``, a constant added
    to every prediction. On the project's CPU (cifar10-mbv1, 1 thread) it is
    ~0.17 ms of ~3 ms at batch 1 and ~2.2 ms of 11-25 ms at batch 32, and it
    cuts the mean relative error from 6.7% to 3.0% (batch 1) and from 16.6%
    to 3.5% (batch 32); a fitted scale on top of it gained < 0.5 points, so
    there is none. ``fit_overhead=False`` stores 0.

Timing protocol (LUT entries and whole-model checks alike)
    Dense modules built exactly as :class:`pss.supernet.DenseNet` builds them
    (``_build_blocks`` with :class:`~pss.ops.ConvBNAct` and
    :class:`~pss.supernet.DenseBlock`), eval mode, ``torch.no_grad``,
    channels-last weights and input when ``channels_last`` (the trainer's
    default), random input of ``batch_size`` images. ``warmup`` calls, then
    ``repeats`` timed calls (wall clock, ``time.perf_counter``;
    ``torch.cuda.synchronize`` after each on a GPU). This is done in
    ``passes`` passes over all variants (alternating order), so a burst of
    load on a shared machine spoils one pass, not the entry, and the passes'
    calls become one number by ``statistic``: ``"min"`` (default: the fastest
    call), ``"min-median"`` (the least loaded pass's median) or ``"median"``
    (the median of the per-pass medians). The default is the minimum, not the
    median, because on a machine shared with other jobs the median tracks the
    load, not the model: on the project's 2-core CPU, with two other jobs
    running, median-based tables mispredicted whole models by ~47% (table and
    check measured under different load), min-based ones by ~3% (see
    bench/lut_check.py). On a quiet machine the two differ by a
    few percent. On the CPU ``threads`` (default 1) intra-op threads are used
    and recorded. Latencies are in milliseconds throughout.

How ``pss lut build`` / ``pss lut check`` will call this::

    cfg = load_config(CONFIG_OR_PRESET, overrides)            # the run's model and space
    lut = build_lut_from_config(cfg, num_classes, in_channels,
                                device="cpu", batch_size=1, progress=print_progress)
    write_lut(OUT_JSON, lut)                                   # atomic, schema_version 1

    table = load_lut(LUT_JSON, spec, space)                    # PssError (one line) on mismatch
    result = check_lut(table, spec, space, n=200, seed=0, progress=...)
    print(result.summary()); write result.to_json() next to it
    pssviz.latency.lut_check_figure(result).write_html(HTML)   # Fig. 3

``spec, space = spec_and_space(cfg, num_classes, in_channels)`` (from
:mod:`pss.context`) gives the pair ``check_lut`` needs. Training with
``constraint: latency`` and ``latency_lut: PATH`` makes
:class:`pss.context.SupernetContext` load the table and attach it to the
:class:`pss.costs.CostModel`, so budgets, Eq. 4 and pools use predicted
milliseconds.

This module imports neither plotly nor streamlit.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .costs import conv_output_size
from .errors import PssError
from .ops import ConvBNAct
from .space import Structure, StructureSpace
from .spec import IMAGE, ConvSpec, MaxPoolSpec, NetSpec

LUT_KIND = "pss-latency-lut"
LUT_SCHEMA_VERSION = 1
HEAD = "head"
DEFAULT_MAX_VARIANTS = 1024

ProgressFn = Callable[[int, int, str], None]
"""progress(done, total, what): called while measuring."""


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


def _grid_axes(space: StructureSpace, blk: LutBlock, max_variants: int) -> list[list[int]]:
    """Width grid per dimension of a block: all choices, or evenly thinned ones (ends kept)."""
    choices = [list(space.dimensions[d].choices) for d in blk.dims]
    counts = [len(c) for c in choices]
    budget = max(1, max_variants // max(1, len(blk.sizes)))
    while math.prod(counts) > budget:
        j = int(np.argmax(counts))
        if counts[j] <= 2:
            break
        counts[j] -= 1
    axes = []
    for c, g in zip(choices, counts):
        if g >= len(c):
            axes.append(c)
        else:
            idx = sorted(set(int(round(v)) for v in np.linspace(0, len(c) - 1, g)))
            axes.append([c[k] for k in idx])
    return axes


def model_json(spec: NetSpec) -> dict[str, Any]:
    """The "model" block of run.json: how to rebuild ``spec``."""
    return {**spec.builder, "family": spec.family}


def space_json(spec: NetSpec, space: StructureSpace) -> dict[str, Any]:
    """The "space" block of run.json."""
    return {**space.to_json(), "dimension_names": list(spec.dim_names)}


# ---------------------------------------------------------------------- modules
class _Head(nn.Module):
    """The tail of :meth:`pss.supernet.DenseNet.forward`: pool, flatten, dropout, classifier."""

    def __init__(self, spec: NetSpec, width: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(width, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


def _variant_module(spec: NetSpec, blk: LutBlock, widths: Sequence[int]) -> tuple[nn.Module, int]:
    """(dense module of one block variant, its input channels)."""
    from .supernet import DenseBlock, _build_blocks

    if blk.index < 0:
        w = int(widths[spec.head_in])
        return _Head(spec, w), w
    one = dataclasses.replace(spec, blocks=(spec.blocks[blk.index],))
    module = _build_blocks(one, widths, ConvBNAct, DenseBlock)[0]
    return module, spec.channels(spec.blocks[blk.index].cin, widths)


class _Timer:
    """The timing protocol shared by LUT entries and whole-model checks."""

    def __init__(self, device: str, batch_size: int, warmup: int, repeats: int, channels_last: bool, threads: int | None) -> None:
        if batch_size < 1:
            raise PssError(f"batch_size must be at least 1, got {batch_size}")
        if repeats < 1 or warmup < 0:
            raise PssError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise PssError(f"device {device!r} requested but CUDA is not available here; use device=cpu")
        if self.device.type not in ("cpu", "cuda"):
            raise PssError(f"latency tables are measured on 'cpu' or 'cuda', got {device!r}")
        self.batch_size, self.warmup, self.repeats = int(batch_size), int(warmup), int(repeats)
        self.channels_last = bool(channels_last)
        self.threads = threads
        self._saved_threads: int | None = None

    def __enter__(self) -> "_Timer":
        if self.threads is not None and self.device.type == "cpu":
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(int(self.threads))
        return self

    def __exit__(self, *exc) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def prepare(self, module: nn.Module, channels: int, size: int) -> tuple[nn.Module, torch.Tensor]:
        module = module.to(self.device).eval()
        x = torch.randn(self.batch_size, channels, size, size, device=self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return module, x

    def time(self, module: nn.Module, x: torch.Tensor) -> list[float]:
        """``repeats`` latencies of ``module(x)`` in milliseconds, after ``warmup`` calls."""
        cuda = self.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        times = []
        with torch.no_grad():
            for _ in range(self.warmup):
                module(x)
            sync()
            for _ in range(self.repeats):
                t0 = time.perf_counter()
                module(x)
                sync()
                times.append(1e3 * (time.perf_counter() - t0))
        return times

    def describe(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        else:
            name = _cpu_name()
        return {
            "type": self.device.type,
            "name": name,
            "torch": torch.__version__,
            "threads": int(self.threads) if self.threads is not None and self.device.type == "cpu" else torch.get_num_threads(),
            "channels_last": self.channels_last,
            "dtype": "float32",
        }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


STATISTICS = {
    "min": "minimum over all timed calls",
    "min-median": "minimum of the per-pass medians",
    "median": "median of the per-pass medians",
}


def _combine(runs: list[list[float]], statistic: str) -> float:
    """One latency from ``passes`` lists of timed calls (ms), by ``statistic`` (see STATISTICS)."""
    if statistic == "median":
        return float(statistics.median(statistics.median(r) for r in runs))
    if statistic == "min-median":
        return float(min(statistics.median(r) for r in runs))
    if statistic == "min":
        return float(min(min(r) for r in runs))
    raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")


# ---------------------------------------------------------------------- build
@dataclass
class LutSamples:
    """Every timed call behind a LUT, before a statistic turns them into entries.

    ``runs[(k, si, gi)]`` holds, for term k at input-size index si and width
    grid indices gi, one list of timed calls (ms) per pass; ``fit_runs[i]``
    the same for the whole model of ``fit[i]``. :func:`lut_from_samples`
    makes the LUT; the bench uses it to compare statistics on one measurement.
    """

    layout: list[LutBlock]
    axes: list[list[list[int]]]
    runs: dict
    fit: list[Structure]
    fit_runs: list[list[list[float]]]
    device: dict[str, Any]
    batch_size: int
    protocol: dict[str, Any]


def measure_lut_samples(
    spec: NetSpec,
    space: StructureSpace,
    device: str = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 30,
    passes: int = 3,
    threads: int | None = 1,
    channels_last: bool = True,
    max_variants_per_block: int = DEFAULT_MAX_VARIANTS,
    fit_overhead: bool = True,
    overhead_structures: int = 12,
    seed: int = 12345,
    progress: ProgressFn | None = None,
) -> LutSamples:
    """Time every block variant (and the overhead-fit whole models) of (spec, space); see :func:`build_lut`."""
    if passes < 1:
        raise PssError(f"passes must be at least 1, got {passes}")
    layout = lut_layout(spec, space)
    axes = [_grid_axes(space, blk, max_variants_per_block) for blk in layout]
    # (term k, size index, grid index tuple) for every variant to measure
    jobs = [
        (k, si, gi)
        for k, blk in enumerate(layout)
        for si in range(len(blk.sizes))
        for gi in itertools.product(*[range(len(a)) for a in axes[k]])
    ]
    fit = _overhead_structures(space, int(overhead_structures), seed) if fit_overhead and overhead_structures > 0 else []
    total = passes * (len(jobs) + len(fit))
    done = 0
    runs: dict[tuple, list[list[float]]] = {job: [] for job in jobs}
    fit_runs: list[list[list[float]]] = [[] for _ in fit]
    base = list(spec.dim_max)
    torch.manual_seed(seed)
    with _Timer(device, batch_size, warmup, repeats, channels_last, threads) as timer:
        for p in range(passes):
            # Alternate the order so slow drift (load, clocks) does not favour one end of the table.
            for job in jobs if p % 2 == 0 else jobs[::-1]:
                k, si, gi = job
                blk = layout[k]
                widths = list(base)
                for d, axis, g in zip(blk.dims, axes[k], gi):
                    widths[d] = axis[g]
                module, cin = _variant_module(spec, blk, widths)
                module, x = timer.prepare(module, cin, blk.sizes[si])
                runs[job].append(timer.time(module, x))
                done += 1
                if progress is not None and (done % 25 == 0 or done == total):
                    progress(done, total, f"pass {p + 1}/{passes}: {blk.name}")
            # The whole models for the overhead fit, in the same pass (same conditions).
            for i, st in enumerate(fit):
                fit_runs[i].append(_time_structure(spec, st, timer))
                done += 1
                if progress is not None and (done % 25 == 0 or done == total):
                    progress(done, total, f"pass {p + 1}/{passes}: whole models (overhead)")
        device_info = timer.describe()
    protocol = {
        "warmup": int(warmup), "repeats": int(repeats), "passes": int(passes),
        "max_variants_per_block": int(max_variants_per_block), "seed": int(seed),
    }
    return LutSamples(layout, axes, runs, fit, fit_runs, device_info, int(batch_size), protocol)


def lut_from_samples(spec: NetSpec, space: StructureSpace, samples: LutSamples, statistic: str = "min") -> dict[str, Any]:
    """The LUT dict from measured samples, entries and overhead by ``statistic`` (:data:`STATISTICS`)."""
    if statistic not in STATISTICS:
        raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    layout, axes = samples.layout, samples.axes
    blocks_json = []
    for k, blk in enumerate(layout):
        table = np.zeros([len(blk.sizes)] + [len(a) for a in axes[k]], dtype=np.float64)
        for si in range(len(blk.sizes)):
            for gi in itertools.product(*[range(len(a)) for a in axes[k]]):
                table[(si, *gi)] = _combine(samples.runs[(k, si, gi)], statistic)
        blocks_json.append({
            "name": blk.name,
            "dims": list(blk.dims),
            "dim_names": [spec.dim_names[d] for d in blk.dims],
            "sizes": list(blk.sizes),
            "input_size": [blk.size_of[r] for r in space.resolutions],
            "grid": [list(a) for a in axes[k]],
            "exact": all(len(a) == len(space.dimensions[d].choices) for a, d in zip(axes[k], blk.dims)),
            "latency_ms": np.round(table, 6).tolist(),
        })
    lut: dict[str, Any] = {
        "schema_version": LUT_SCHEMA_VERSION,
        "kind": LUT_KIND,
        "pss_version": _pss_version(),
        "created": _timestamp(),
        "unit": "ms",
        "model": model_json(spec),
        "space": space_json(spec, space),
        "device": dict(samples.device),
        "batch_size": samples.batch_size,
        "protocol": {**samples.protocol, "statistic": statistic, "statistic_rule": STATISTICS[statistic]},
        "variants": len(samples.runs),
        "overhead_ms": 0.0,
        "overhead_fit": None,
        "blocks": blocks_json,
    }
    if samples.fit:
        table = LatencyTable(lut)
        measured = [_combine(r, statistic) for r in samples.fit_runs]
        residuals = [m - table.predict(st) for st, m in zip(samples.fit, measured)]
        lut["overhead_ms"] = round(float(statistics.median(residuals)), 6)
        lut["overhead_fit"] = {
            "structures": [st.key for st in samples.fit],
            "measured_ms": [round(m, 6) for m in measured],
            "residuals_ms": [round(r, 6) for r in residuals],
            "rule": "median of (measured whole model - sum of block entries) over these structures",
        }
    return lut


def build_lut(
    spec: NetSpec,
    space: StructureSpace,
    device: str = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 30,
    passes: int = 3,
    threads: int | None = 1,
    channels_last: bool = True,
    statistic: str = "min",
    max_variants_per_block: int = DEFAULT_MAX_VARIANTS,
    fit_overhead: bool = True,
    overhead_structures: int = 12,
    seed: int = 12345,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Measure every block variant of (spec, space) and return the LUT as a JSON-able dict.

    See the module docstring for what is measured and how. The result's
    ``blocks[k]["latency_ms"]`` is a nested list indexed
    ``[size index][grid index of dims[0]][grid index of dims[1]]...``;
    ``input_size[i]`` is the block's input size at ``space.resolutions[i]``.
    ``statistic`` (:data:`STATISTICS`) turns the timed calls into one number;
    ``progress(done, total, what)`` is called every 25 measurements.
    """
    if statistic not in STATISTICS:
        raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    samples = measure_lut_samples(
        spec, space, device=device, batch_size=batch_size, warmup=warmup, repeats=repeats, passes=passes,
        threads=threads, channels_last=channels_last, max_variants_per_block=max_variants_per_block,
        fit_overhead=fit_overhead, overhead_structures=overhead_structures, seed=seed, progress=progress,
    )
    return lut_from_samples(spec, space, samples, statistic)


def _overhead_structures(space: StructureSpace, n: int, seed: int) -> list[Structure]:
    """phi_min, phi_max and random structures spread over the cost range (Eq. 4's set G), ``n`` in all."""
    from .sampling import generate_structure_set

    rng = np.random.default_rng(seed)
    out = {space.min_structure.key: space.min_structure, space.max_structure.key: space.max_structure}
    widths, res = generate_structure_set(space, max(4 * n, 100), rng)
    for w, r in zip(widths, res):
        if len(out) >= n:
            break
        s = Structure(tuple(w), int(r))
        out.setdefault(s.key, s)
    return list(out.values())[:n]


def _time_structure(spec: NetSpec, s: Structure, timer: _Timer) -> list[float]:
    """Timed calls (ms) of the whole dense model of ``s`` (:class:`pss.supernet.DenseNet`)."""
    from .supernet import DenseNet

    torch.manual_seed(0)
    model, x = timer.prepare(DenseNet(spec, s), spec.in_channels, s.resolution)
    return timer.time(model, x)


def build_lut_from_config(cfg, num_classes: int, in_channels: int, device: str = "cpu", batch_size: int = 1, **kwargs: Any) -> dict[str, Any]:
    """:func:`build_lut` for the model and structure space a :class:`~pss.config.TrainConfig` describes.

    ``cfg.channels_last`` is used unless ``channels_last`` is passed. Other
    keyword arguments go to :func:`build_lut`.
    """
    from .context import spec_and_space

    spec, space = spec_and_space(cfg, num_classes, in_channels)
    kwargs.setdefault("channels_last", bool(cfg.channels_last))
    return build_lut(spec, space, device=device, batch_size=batch_size, **kwargs)


def write_lut(path: str | Path, lut: dict[str, Any]) -> Path:
    """Write a LUT atomically (the run directory's writer: temp file + rename)."""
    from .runs import atomic_write_json

    if isinstance(lut, LatencyTable):
        lut = lut.data
    path = Path(path)
    atomic_write_json(path, lut)
    return path


def _pss_version() -> str:
    from . import __version__

    return __version__


def _timestamp() -> str:
    from .runs import utc_timestamp

    return utc_timestamp()


# ---------------------------------------------------------------------- the compiled table
class LatencyTable:
    """A LUT compiled for fast prediction; ``.data`` is the JSON dict.

    ``predict(s)`` is plain Python (a few microseconds for a MobileNet);
    ``latency_array(widths, resolutions)`` is the numpy version for n
    structures, like :meth:`pss.costs.CostModel.cost_array`.
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
            raise PssError(f"malformed latency LUT: {str(exc).splitlines()[0][:160]}") from None
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


_COMPILED: dict[int, tuple[dict, LatencyTable]] = {}


def as_table(lut: dict[str, Any] | LatencyTable) -> LatencyTable:
    """A :class:`LatencyTable` for a LUT dict (compiled once per dict object) or the table itself."""
    if isinstance(lut, LatencyTable):
        return lut
    hit = _COMPILED.get(id(lut))
    if hit is not None and hit[0] is lut:
        return hit[1]
    table = LatencyTable(lut)
    if len(_COMPILED) > 16:
        _COMPILED.clear()
    _COMPILED[id(lut)] = (lut, table)
    return table


def predict_latency(lut: dict[str, Any] | LatencyTable, structure: Structure) -> float:
    """Predicted latency of ``structure`` in milliseconds: overhead + sum of its block entries."""
    return as_table(lut).predict(structure)


def latency_array(lut: dict[str, Any] | LatencyTable, widths: np.ndarray, resolutions: np.ndarray) -> np.ndarray:
    """Vectorised :func:`predict_latency`: widths (n, L), resolutions (n,) -> (n,) ms."""
    return as_table(lut).latency_array(widths, resolutions)


# ---------------------------------------------------------------------- load and validate
def check_lut_matches(data: dict[str, Any], spec: NetSpec, space: StructureSpace, source: str = "latency LUT") -> None:
    want_model = model_json(spec)
    have_model = data.get("model")
    if have_model != want_model:
        diff = _dict_diff(have_model or {}, want_model)
        raise PssError(f"{source} was built for another model ({diff}); rebuild it for this config with `pss lut build`")
    have, want = data.get("space") or {}, space_json(spec, space)
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


def read_lut(path: str | Path) -> dict[str, Any]:
    """The LUT JSON at ``path`` after checking its kind and schema version (one-line PssError)."""
    from .runs import read_json

    data = read_json(Path(path).expanduser(), "latency LUT")
    if data.get("kind") != LUT_KIND:
        raise PssError(f"latency LUT {path} has kind {data.get('kind')!r}, not {LUT_KIND!r}; build one with `pss lut build`")
    return data


def load_lut(path: str | Path, spec: NetSpec | None = None, space: StructureSpace | None = None) -> LatencyTable:
    """Read, validate and compile a LUT; with ``spec`` and ``space`` also check it was built for them."""
    data = read_lut(path)
    table = LatencyTable(data)
    if spec is not None and space is not None:
        check_lut_matches(data, spec, space, f"latency LUT {path}")
    return table


# ---------------------------------------------------------------------- check (Fig. 3)
@dataclass
class LutCheck:
    """Predicted vs measured whole-model latency of random structures (PSS-Net Fig. 3).

    ``rows``: one dict per structure, ``{"key", "predicted_ms", "measured_ms",
    "rel_error" ((predicted - measured) / measured), "spread" (max - min of the
    structure's per-pass medians / measured: the measurement noise)}``.
    ``baseline_mean_rel_error`` is the mean relative error of the best
    *constant* prediction (the median measured latency): when the structures'
    latencies are nearly equal (per-call overhead dominates small models at
    batch 1) a small relative error alone says little, so compare the two and
    look at ``pearson_r``.
    """

    rows: list[dict[str, Any]]
    rmse_ms: float
    mean_rel_error: float
    median_rel_error: float
    max_rel_error: float
    within_5pct: float  # fraction of structures with |rel error| <= 5%
    mean_abs_error_ms: float
    bias_ms: float  # mean(measured - predicted)
    pearson_r: float
    baseline_mean_rel_error: float
    measured_min_ms: float
    measured_max_ms: float
    noise_rel: float  # median of the rows' "spread"
    overhead_ms: float
    device: dict[str, Any]
    batch_size: int
    model: dict[str, Any]
    protocol: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def predicted(self) -> np.ndarray:
        return np.asarray([r["predicted_ms"] for r in self.rows], dtype=np.float64)

    @property
    def measured(self) -> np.ndarray:
        return np.asarray([r["measured_ms"] for r in self.rows], dtype=np.float64)

    def summary(self) -> str:
        """One paragraph with every figure, for the CLI and the bench."""
        return (
            f"{len(self.rows)} structures on {self.device.get('name', '?')} ({self.device.get('type', '?')}, batch "
            f"{self.batch_size}, {self.device.get('threads', '?')} thread(s), statistic {self.protocol.get('statistic', '?')}): "
            f"measured {self.measured_min_ms:.3f}..{self.measured_max_ms:.3f} ms; RMSE {self.rmse_ms:.4f} ms; "
            f"relative error mean {100 * self.mean_rel_error:.2f}%, median {100 * self.median_rel_error:.2f}%, "
            f"max {100 * self.max_rel_error:.2f}%; {100 * self.within_5pct:.0f}% within 5%; bias {self.bias_ms:+.4f} ms; "
            f"r = {self.pearson_r:.3f}; constant-prediction baseline {100 * self.baseline_mean_rel_error:.2f}%; "
            f"measurement spread between passes (median) {100 * self.noise_rel:.2f}%; overhead term {self.overhead_ms:.4f} ms"
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (NaN, e.g. r of a single row, becomes null)."""
        d = dataclasses.asdict(self)
        d = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
        return {"schema_version": LUT_SCHEMA_VERSION, "kind": "pss-latency-lut-check", **d}


def sample_check_structures(space: StructureSpace, n: int, seed: int = 0) -> list[Structure]:
    """``n`` distinct structures drawn like Eq. 4's set G (half uniform, half spread over the cost range)."""
    from .sampling import generate_structure_set

    rng = np.random.default_rng(seed)
    picked: dict[str, Structure] = {}
    size = max(4 * n, 200)
    for _ in range(20):
        widths, res = generate_structure_set(space, size, rng)
        for w, r in zip(widths, res):
            st = Structure(tuple(w), int(r))
            picked.setdefault(st.key, st)
            if len(picked) >= n:
                return list(picked.values())
    return list(picked.values())  # a tiny space: every structure it has


@dataclass
class StructureSamples:
    """Timed calls of whole models: ``runs[i]`` holds one list (ms) per pass for ``structures[i]``."""

    structures: list[Structure]
    runs: list[list[list[float]]]
    device: dict[str, Any]
    batch_size: int
    protocol: dict[str, Any]
    seconds: float


def measure_structures(
    spec: NetSpec,
    structures: Sequence[Structure],
    device: str = "cpu",
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 30,
    passes: int = 3,
    threads: int | None = 1,
    channels_last: bool = True,
    progress: ProgressFn | None = None,
) -> StructureSamples:
    """Time the dense model (:class:`~pss.supernet.DenseNet`) of each structure, the LUT's protocol.

    The passes run over all structures in turn (alternating order), as for the table.
    """
    structures = list(structures)
    if not structures:
        raise PssError("need at least one structure to time")
    t0 = time.perf_counter()
    runs: list[list[list[float]]] = [[] for _ in structures]
    total, done = passes * len(structures), 0
    with _Timer(device, batch_size, warmup, repeats, channels_last, threads) as timer:
        for p in range(passes):
            order = range(len(structures)) if p % 2 == 0 else range(len(structures) - 1, -1, -1)
            for i in order:
                runs[i].append(_time_structure(spec, structures[i], timer))
                done += 1
                if progress is not None and (done % 10 == 0 or done == total):
                    progress(done, total, f"pass {p + 1}/{passes}: whole models")
        device_info = timer.describe()
    protocol = {"warmup": int(warmup), "repeats": int(repeats), "passes": int(passes)}
    return StructureSamples(structures, runs, device_info, int(batch_size), protocol, time.perf_counter() - t0)


def compare_with_lut(lut: dict[str, Any] | LatencyTable, samples: StructureSamples, statistic: str = "min", seed: int | None = None) -> LutCheck:
    """Predicted vs measured (by ``statistic``) for measured whole models: the numbers of Fig. 3."""
    if statistic not in STATISTICS:
        raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    table = as_table(lut)
    rows = []
    for st, r in zip(samples.structures, samples.runs):
        m = _combine(r, statistic)
        pm = [statistics.median(x) for x in r]
        pred = table.predict(st)
        rows.append({
            "key": st.key,
            "predicted_ms": pred,
            "measured_ms": m,
            "rel_error": (pred - m) / m,
            "spread": (max(pm) - min(pm)) / m,
        })
    pred = np.asarray([r["predicted_ms"] for r in rows])
    meas = np.asarray([r["measured_ms"] for r in rows])
    rel = np.abs(pred - meas) / meas
    const = float(np.median(meas))
    r_value = float(np.corrcoef(pred, meas)[0, 1]) if len(rows) > 1 and pred.std() > 0 and meas.std() > 0 else float("nan")
    return LutCheck(
        rows=rows,
        rmse_ms=float(np.sqrt(np.mean((pred - meas) ** 2))),
        mean_rel_error=float(rel.mean()),
        median_rel_error=float(np.median(rel)),
        max_rel_error=float(rel.max()),
        within_5pct=float(np.mean(rel <= 0.05)),
        mean_abs_error_ms=float(np.mean(np.abs(pred - meas))),
        bias_ms=float(np.mean(meas - pred)),
        pearson_r=r_value,
        baseline_mean_rel_error=float(np.mean(np.abs(const - meas) / meas)),
        measured_min_ms=float(meas.min()),
        measured_max_ms=float(meas.max()),
        noise_rel=float(np.median([r["spread"] for r in rows])),
        overhead_ms=table.overhead_ms,
        device=dict(samples.device),
        batch_size=samples.batch_size,
        model=dict(table.model),
        protocol={**samples.protocol, "statistic": statistic, "seed": seed, "n": len(rows)},
        seconds=samples.seconds,
    )


def check_lut(
    lut: dict[str, Any] | LatencyTable,
    spec: NetSpec,
    space: StructureSpace,
    n: int = 200,
    seed: int = 0,
    device: str | None = None,
    batch_size: int | None = None,
    warmup: int | None = None,
    repeats: int | None = None,
    passes: int | None = None,
    threads: int | None = None,
    channels_last: bool | None = None,
    statistic: str | None = None,
    structures: Sequence[Structure] | None = None,
    progress: ProgressFn | None = None,
) -> LutCheck:
    """Time ``n`` structures end to end (dense :class:`~pss.supernet.DenseNet`) and compare with the LUT.

    Structures come from :func:`sample_check_structures` (``seed``; the LUT's
    overhead fit uses its own seed, so they are not the structures the
    overhead was fitted on) unless ``structures`` is given. Device, batch
    size, threads, channels-last, statistic and the timing protocol default
    to the LUT's own, so both sides are measured the same way.
    """
    table = as_table(lut)
    table.check_matches(spec, space)
    data, proto, dev = table.data, table.data.get("protocol", {}), table.device
    statistic = statistic or proto.get("statistic", "min")
    if statistic not in STATISTICS:
        raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    structures = list(structures) if structures is not None else sample_check_structures(space, n, seed)
    for st in structures:
        space.validate(st)
    samples = measure_structures(
        spec,
        structures,
        device=device or dev.get("type", "cpu"),
        batch_size=int(batch_size or data["batch_size"]),
        warmup=int(proto.get("warmup", 10) if warmup is None else warmup),
        repeats=int(proto.get("repeats", 30) if repeats is None else repeats),
        passes=int(proto.get("passes", 3) if passes is None else passes),
        threads=dev.get("threads", 1) if threads is None else threads,
        channels_last=bool(dev.get("channels_last", True) if channels_last is None else channels_last),
        progress=progress,
    )
    return compare_with_lut(table, samples, statistic, seed=seed)
