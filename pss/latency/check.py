"""Checking a latency lookup table (PSS-Net Fig. 3): random structures timed end to end vs the table's predictions."""

from __future__ import annotations

import dataclasses
import math
from html import escape
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..problem.latency_table import LUT_SCHEMA_VERSION, LatencyTable
from ..problem.space import Structure, StructureSpace
from ..problem.spec import NetSpec
from .timing import ProgressFn, StructureSamples, TimingProtocol, check_statistic, combine, distinct_structures, measure_structures


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
    return distinct_structures(space, n, np.random.default_rng(seed))


def compare_with_lut(lut: dict[str, Any] | LatencyTable, samples: StructureSamples, statistic: str = "min", seed: int | None = None) -> LutCheck:
    """Predicted vs measured (by ``statistic``) for measured whole models: the numbers of Fig. 3."""
    check_statistic(statistic)
    table = lut if isinstance(lut, LatencyTable) else LatencyTable(lut)
    rows = []
    for st, r in zip(samples.structures, samples.runs):
        m = combine(r, statistic)
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
    statistic: str | None = None,
    structures: Sequence[Structure] | None = None,
    progress: ProgressFn | None = None,
    **protocol: Any,
) -> LutCheck:
    """Time ``n`` structures end to end (dense :class:`~pss.nn.supernet.DenseNet`) and compare with the LUT.

    Structures come from :func:`sample_check_structures` (``seed``; the LUT's
    overhead fit uses its own seed, so they are not the structures the
    overhead was fitted on) unless ``structures`` is given. The timing
    protocol and the statistic are the LUT's own (:meth:`TimingProtocol.of_lut`),
    so both sides are measured the same way; keywords naming a
    :class:`TimingProtocol` field (``repeats=2``) override it.
    """
    table = lut if isinstance(lut, LatencyTable) else LatencyTable(lut)
    table.check_matches(spec, space)
    statistic = check_statistic(statistic or table.data.get("protocol", {}).get("statistic", "min"))
    timing = TimingProtocol.of_lut(table.data).with_options(dict(protocol))
    structures = list(structures) if structures is not None else sample_check_structures(space, n, seed)
    for st in structures:
        space.validate(st)
    return compare_with_lut(table, measure_structures(spec, structures, timing, progress), statistic, seed=seed)


def check_html(result: LutCheck, band: float = 0.05) -> str:
    """A self-contained HTML page with the Fig. 3 scatter as inline SVG (no plotting library needed).

    Predicted latency on x, measured on y, the y = x line and the +/-``band``
    region; points outside the band are red. Hovering a point shows its
    structure key and relative error. (``pssviz.latency.lut_check_figure``
    draws the same as an interactive plotly figure for notebooks.)
    """
    size, margin = 520, 60
    rows = result.rows
    pred = np.asarray([r["predicted_ms"] for r in rows], dtype=float) if rows else np.zeros(0)
    meas = np.asarray([r["measured_ms"] for r in rows], dtype=float) if rows else np.zeros(0)
    lo = float(min(pred.min(), meas.min())) if rows else 0.0
    hi = float(max(pred.max(), meas.max())) if rows else 1.0
    pad = 0.04 * ((hi - lo) or hi or 1.0)
    lo, hi = max(0.0, lo - pad), hi + pad

    def x(v: float) -> float:
        return margin + (v - lo) / (hi - lo) * (size - 2 * margin)

    def y(v: float) -> float:
        return size - margin - (v - lo) / (hi - lo) * (size - 2 * margin)

    band_poly = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in ((lo, lo * (1 + band)), (hi, hi * (1 + band)), (hi, hi * (1 - band)), (lo, lo * (1 - band))))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" font-family="sans-serif" font-size="12">',
        f'<clipPath id="plot"><rect x="{margin}" y="{margin}" width="{size - 2 * margin}" height="{size - 2 * margin}"/></clipPath>',
        f'<rect x="{margin}" y="{margin}" width="{size - 2 * margin}" height="{size - 2 * margin}" fill="none" stroke="#999"/>',
        f'<polygon points="{band_poly}" fill="rgba(31,119,180,0.12)" clip-path="url(#plot)"/>',
        f'<line x1="{x(lo):.1f}" y1="{y(lo):.1f}" x2="{x(hi):.1f}" y2="{y(hi):.1f}" stroke="#555" stroke-dasharray="5,4"/>',
    ]
    for tick in np.linspace(lo, hi, 5):
        parts.append(f'<text x="{x(tick):.1f}" y="{size - margin + 16}" text-anchor="middle">{tick:.3g}</text>')
        parts.append(f'<text x="{margin - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3g}</text>')
    parts.append(f'<text x="{size / 2}" y="{size - 18}" text-anchor="middle">predicted latency from the LUT (ms)</text>')
    parts.append(f'<text x="16" y="{size / 2}" text-anchor="middle" transform="rotate(-90 16 {size / 2})">measured latency (ms)</text>')
    for r, p, m in zip(rows, pred, meas):
        colour = "#1f77b4" if abs(r["rel_error"]) <= band else "#d62728"
        parts.append(f'<circle cx="{x(p):.1f}" cy="{y(m):.1f}" r="3.5" fill="{colour}" fill-opacity="0.75">'
                     f'<title>{escape(r["key"])}: error {100 * r["rel_error"]:+.2f}%</title></circle>')
    parts.append("</svg>")
    title = (f"Latency LUT: predicted vs measured ({result.model.get('model', '?')} x{result.model.get('width_mult', '?')}, "
             f"{result.device.get('type', '?')}, batch {result.batch_size})")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}</title></head><body>\n"
            f"<h3>{escape(title)}</h3>\n<p>{escape(result.summary())}</p>\n" + "\n".join(parts) + "\n</body></html>\n")
