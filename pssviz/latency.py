"""Plotly figure of a latency-LUT check (PSS-Net Fig. 3): predicted vs measured latency.

``lut_check_figure(result)`` takes a :class:`pss.latency.check.LutCheck` (or its
``to_json()`` dict, e.g. read back from a file) and draws one point per
structure, the y = x line and a +/-5% band around it, with RMSE and relative
errors in the title. No Streamlit here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

TEMPLATE = "plotly_white"
BAND = 0.05  # the +/-5% band of the LUT accuracy target
__all__ = ["lut_check_figure"]


def _as_dict(result: Any) -> dict:
    return result.to_json() if hasattr(result, "to_json") else dict(result)


def lut_check_figure(result: Any, band: float = BAND, title: str | None = None) -> go.Figure:
    """Predicted (x) vs measured (y) whole-model latency of every checked structure, in ms.

    Points on the dashed y = x line are predicted exactly; the shaded band is
    measured within +/-``band`` of predicted. Hover shows each structure's key
    and relative error. An empty result gives an empty figure with a note.
    """
    d = _as_dict(result)
    rows = d.get("rows") or []
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, height=520, width=620, margin=dict(l=60, r=20, t=90, b=60))
    if not rows:
        fig.add_annotation(text="no structures checked", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig
    pred = np.asarray([r["predicted_ms"] for r in rows], dtype=float)
    meas = np.asarray([r["measured_ms"] for r in rows], dtype=float)
    rel = (pred - meas) / meas
    lo = float(min(pred.min(), meas.min()))
    hi = float(max(pred.max(), meas.max()))
    pad = 0.04 * (hi - lo if hi > lo else hi or 1.0)
    lo, hi = max(0.0, lo - pad), hi + pad
    xs = np.array([lo, hi])
    # +/-band: measured in [predicted (1 - band), predicted (1 + band)]
    fig.add_trace(go.Scatter(
        x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([xs * (1 + band), (xs * (1 - band))[::-1]]),
        mode="lines", fill="toself", fillcolor="rgba(31, 119, 180, 0.12)", line=dict(width=0), hoverinfo="skip",
        name=f"±{100 * band:g}%",
    ))
    fig.add_trace(go.Scatter(x=xs, y=xs, mode="lines", line=dict(color="#555555", dash="dash", width=1.2), hoverinfo="skip", name="y = x"))
    inside = np.abs(rel) <= band
    fig.add_trace(go.Scatter(
        x=pred, y=meas, mode="markers", name="structures",
        marker=dict(size=6, color=np.where(inside, "#1f77b4", "#d62728"), opacity=0.75, line=dict(width=0)),
        text=[r["key"] for r in rows], customdata=100 * rel,
        hovertemplate="%{text}<br>predicted %{x:.4f} ms<br>measured %{y:.4f} ms<br>error %{customdata:+.2f}%<extra></extra>",
    ))
    dev = d.get("device") or {}
    model = d.get("model") or {}
    what = f"{model.get('model', '?')} x{model.get('width_mult', '?')}" if model else ""
    head = title or f"Latency LUT: predicted vs measured ({what}, {dev.get('type', '?')}, batch {d.get('batch_size', '?')})"
    stats = (
        f"n = {len(rows)}, RMSE {d.get('rmse_ms', float('nan')):.4f} ms, relative error mean "
        f"{100 * d.get('mean_rel_error', float('nan')):.2f}% / median {100 * d.get('median_rel_error', float('nan')):.2f}%, "
        f"{100 * float(np.mean(inside)):.0f}% within ±{100 * band:g}%"
    )
    fig.update_layout(
        title=dict(text=f"{head}<br><sup>{stats}</sup>", x=0.02, xanchor="left"),
        legend=dict(orientation="h", y=-0.14, x=0.5, xanchor="center"),
    )
    fig.update_xaxes(title_text="predicted latency from the LUT (ms)", range=[lo, hi])
    fig.update_yaxes(title_text="measured latency (ms)", range=[lo, hi], scaleanchor="x", scaleratio=1)
    return fig
