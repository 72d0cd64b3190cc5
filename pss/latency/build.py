"""Building a latency lookup table (PSS-Net Sec. 4.2): time every block variant of a structure space.

Measuring every subnet of S is intractable, so, as in the paper, the latency of
a structure is *predicted* as the sum of the measured latencies of the blocks
it is made of (:class:`pss.problem.latency_table.LatencyTable`). The block
spec is the single source of truth: every ``spec.blocks[i]`` is one LUT block,
the stem included (block 0), plus a ``head`` entry (global average pool,
flatten, dropout, classifier: :class:`pss.nn.supernet.DenseHead`).

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
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..nn.ops import ConvBNAct
from ..nn.supernet import DenseBlock, DenseHead, build_blocks
from ..problem.latency_table import LUT_KIND, LUT_SCHEMA_VERSION, LatencyTable, LutBlock, lut_layout
from ..problem.problem import spec_and_space
from ..problem.space import Structure, StructureSpace
from ..problem.spec import NetSpec
from ..version import __version__, utc_timestamp
from .timing import STATISTICS, ProgressFn, Timer, TimingProtocol, check_statistic, combine, distinct_structures, time_structure

DEFAULT_MAX_VARIANTS = 1024


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


def _variant_module(spec: NetSpec, blk: LutBlock, widths: Sequence[int]) -> tuple[nn.Module, int]:
    """(dense module of one block variant, its input channels): built exactly as DenseNet builds it."""
    if blk.index < 0:
        w = int(widths[spec.head_in])
        return DenseHead(spec, w), w
    one = dataclasses.replace(spec, blocks=(spec.blocks[blk.index],))
    module = build_blocks(one, widths, ConvBNAct, DenseBlock)[0]
    return module, spec.channels(spec.blocks[blk.index].cin, widths)


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
    protocol: TimingProtocol = TimingProtocol(),
    max_variants_per_block: int = DEFAULT_MAX_VARIANTS,
    fit_overhead: bool = True,
    overhead_structures: int = 12,
    seed: int = 12345,
    progress: ProgressFn | None = None,
) -> LutSamples:
    """Time every block variant (and the overhead-fit whole models) of (spec, space); see :func:`build_lut`."""
    passes = protocol.passes
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
    with Timer(protocol) as timer:
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
                fit_runs[i].append(time_structure(spec, st, timer))
                done += 1
                if progress is not None and (done % 25 == 0 or done == total):
                    progress(done, total, f"pass {p + 1}/{passes}: whole models (overhead)")
        device_info = timer.describe()
    recorded = {**protocol.to_json(), "max_variants_per_block": int(max_variants_per_block), "seed": int(seed)}
    return LutSamples(layout, axes, runs, fit, fit_runs, device_info, protocol.batch_size, recorded)


def lut_from_samples(spec: NetSpec, space: StructureSpace, samples: LutSamples, statistic: str = "min") -> dict[str, Any]:
    """The LUT dict from measured samples, entries and overhead by ``statistic`` (:data:`STATISTICS`)."""
    check_statistic(statistic)
    layout, axes = samples.layout, samples.axes
    blocks_json = []
    for k, blk in enumerate(layout):
        table = np.zeros([len(blk.sizes)] + [len(a) for a in axes[k]], dtype=np.float64)
        for si in range(len(blk.sizes)):
            for gi in itertools.product(*[range(len(a)) for a in axes[k]]):
                table[(si, *gi)] = combine(samples.runs[(k, si, gi)], statistic)
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
        "pss_version": __version__,
        "created": utc_timestamp(),
        "unit": "ms",
        "model": spec.to_json(),
        "space": space.to_json(),
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
        measured = [combine(r, statistic) for r in samples.fit_runs]
        residuals = [m - table.predict(st) for st, m in zip(samples.fit, measured)]
        lut["overhead_ms"] = round(float(statistics.median(residuals)), 6)
        lut["overhead_fit"] = {
            "structures": [st.key for st in samples.fit],
            "measured_ms": [round(m, 6) for m in measured],
            "residuals_ms": [round(r, 6) for r in residuals],
            "rule": "median of (measured whole model - sum of block entries) over these structures",
        }
    return lut


def build_lut(spec: NetSpec, space: StructureSpace, statistic: str = "min", protocol: TimingProtocol | None = None,
              **options: Any) -> dict[str, Any]:
    """Measure every block variant of (spec, space) and return the LUT as a JSON-able dict.

    See the module docstring for what is measured and how. ``protocol``
    (default :class:`TimingProtocol`) says how; any of its fields may also be
    given as a keyword (``device="cuda", batch_size=32``). The other
    ``options`` go to :func:`measure_lut_samples` (``max_variants_per_block``,
    ``fit_overhead``, ``overhead_structures``, ``seed``, ``progress(done, total,
    what)``, called every 25 measurements). ``statistic`` (:data:`STATISTICS`)
    turns the timed calls into one number. The result's
    ``blocks[k]["latency_ms"]`` is a nested list indexed ``[size index][grid
    index of dims[0]][grid index of dims[1]]...``; ``input_size[i]`` is the
    block's input size at ``space.resolutions[i]``.
    """
    check_statistic(statistic)
    protocol = (protocol or TimingProtocol()).with_options(options)
    return lut_from_samples(spec, space, measure_lut_samples(spec, space, protocol, **options), statistic)


def _overhead_structures(space: StructureSpace, n: int, seed: int) -> list[Structure]:
    """phi_min, phi_max and random structures spread over the cost range (Eq. 4's set G), ``n`` in all."""
    first = (space.min_structure, space.max_structure)
    return distinct_structures(space, n, np.random.default_rng(seed), first=first, set_size=max(4 * n, 100), rounds=1)


def build_lut_from_config(cfg: TrainConfig, num_classes: int, in_channels: int, **options: Any) -> dict[str, Any]:
    """:func:`build_lut` for the model and structure space a :class:`~pss.config.TrainConfig` describes.

    ``cfg.channels_last`` is used unless ``channels_last`` is passed; the
    other keywords are :func:`build_lut`'s.
    """
    spec, space = spec_and_space(cfg, num_classes, in_channels)
    options.setdefault("channels_last", bool(cfg.channels_last))
    return build_lut(spec, space, **options)
