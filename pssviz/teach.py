"""A toy subnet pool for teaching Eq. 3 and Eq. 6 (PSS-Net Sec. 3.3): tables and plotly figures.

The dashboard's *Sampling playground* and notebooks use these. Nothing here
recomputes the paper's formulas: q comes from
:func:`pss.sampling.prioritized.prioritized_probs` (Eq. 6), p and eta from
:func:`~pss.sampling.prioritized.space_sampling_probability` and
:func:`~pss.sampling.prioritized.pool_temperature` (Eq. 3), and the simulated
draws run the library's own Alg. 3 lines 1-7
(:func:`~pss.sampling.prioritized.prioritized_sample`) on a real
:class:`~pss.sampling.pools.SubnetPool` filled with the toy entries.
No Streamlit and no torch here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pss.config import SamplingConfig
from pss.problem.budgets import Budget
from pss.problem.space import Structure
from pss.sampling.pools import SubnetPool
from pss.sampling.prioritized import (
    pool_temperature,
    prioritized_probs,
    prioritized_sample,
    space_sampling_probability,
)

from .figures import SERIES_COLORS, TOP_LEGEND, _layout

__all__ = [
    "SPACE", "POOL", "DEFAULT_P_END", "DEFAULT_ETA_END", "toy_pool", "pool_probabilities", "effective_entries", "schedule_point", "schedule_table",
    "simulate_draws", "draw_counts", "q_figure", "draws_figure", "schedule_figure",
]

#: the ``source`` of a draw, as :func:`~pss.sampling.prioritized.prioritized_sample` names it
SPACE, POOL = "space", "pool"
#: a 10-class cross-entropy of 2.30 is chance; a toy pool's entries lie between good and poor
TOY_LOSS_RANGE = (0.6, 2.0)
P_COLOR, ETA_COLOR, POOL_COLOR, SPACE_COLOR = SERIES_COLORS[0], SERIES_COLORS[1], SERIES_COLORS[0], SERIES_COLORS[2]
START_ETA = 1.0  # eta at the start of training (Eq. 3 with progress 0)
#: p_end and eta_end of a run made with the defaults (0.01 each, the paper's Table 9 choice)
DEFAULT_P_END, DEFAULT_ETA_END = float(SamplingConfig.p_end), float(SamplingConfig.eta_end)


# ---------------------------------------------------------------------------- tables
def toy_pool(n: int = 10, seed: int = 0) -> pd.DataFrame:
    """``n`` pool entries phi_1..phi_n with metrics m = -(cross-entropy), best first (as a pool keeps them).

    Columns: ``entry`` ("φ1", ...), ``m`` (rounded to 3 decimals). The same
    ``seed`` gives the same pool.
    """
    if n < 1:
        raise ValueError(f"a pool holds at least one entry, got n={n}")
    rng = np.random.default_rng(seed)
    loss = np.sort(rng.uniform(*TOY_LOSS_RANGE, size=int(n)))
    return pd.DataFrame({"entry": [f"φ{j + 1}" for j in range(int(n))], "m": np.round(-loss, 3)})


def pool_probabilities(metrics, eta: float) -> np.ndarray:
    """q of Eq. 6 over the entries, in the order given: the library's :func:`prioritized_probs`."""
    return prioritized_probs(list(metrics), float(eta))


def effective_entries(q) -> float:
    """How many entries are really in play: 1 / sum(q_j^2) (M for a uniform q, 1 for a one-hot q)."""
    q = np.asarray(q, dtype=float)
    return float(1.0 / np.sum(q * q)) if q.size else 0.0


def schedule_point(p_end: float, eta_end: float, progress: float, pool_full: bool = True) -> tuple[float, float]:
    """(p, eta) of Eq. 3 at training ``progress`` (e-1)/E in [0, 1]: 1 and 1 while the pool is not full."""
    return (space_sampling_probability(p_end, progress, pool_full), pool_temperature(eta_end, progress, pool_full))


def schedule_table(p_end: float, eta_end: float, fills_at: float = 0.0, points: int = 101) -> pd.DataFrame:
    """p and eta over training progress 0..1 (``points`` even steps), the pool full from ``fills_at`` on.

    Columns: ``progress`` (fraction of training), ``pool_full``, ``p``, ``eta``. When the pool fills during
    training (0 < ``fills_at`` <= 1), that moment appears twice, not full and then full, so a line drawn
    through the rows jumps there as Eq. 3 does.
    """
    fills_at = float(fills_at)
    rows = [(float(x), bool(x >= fills_at)) for x in np.linspace(0.0, 1.0, int(points))]
    if 0.0 < fills_at <= 1.0:
        rows += [(fills_at, False), (fills_at, True)]
    rows = list(dict.fromkeys(sorted(rows)))
    values = [schedule_point(p_end, eta_end, x, full) for x, full in rows]
    return pd.DataFrame({"progress": [x for x, _ in rows], "pool_full": [f for _, f in rows],
                         "p": [v[0] for v in values], "eta": [v[1] for v in values]})


class _ToySpace:
    """Stands in for the Eq. 4 sampler: every draw from S is "a new subnet" (the toy has no structure space)."""

    NEW = Structure((0,), 0)

    def sample(self, t: int, rng: np.random.Generator) -> tuple[Structure, int]:
        return self.NEW, 1


def _entry_structure(j: int) -> Structure:
    return Structure((j + 1,), 32)


def simulate_draws(metrics, draws: int, p_end: float, eta_end: float, progress: float = 1.0,
                   pool_full: bool = True, seed: int = 0) -> pd.DataFrame:
    """``draws`` medium subnets chosen by the library's Alg. 3 lines 1-7 from a pool holding ``metrics``.

    The toy entries fill a real :class:`SubnetPool` (full, or with room for
    one more when ``pool_full`` is False) and each draw is one call of
    :func:`prioritized_sample` at training ``progress``. At progress 1 Eq. 3
    gives p = p_end and eta = eta_end exactly, so a hand-set (p, eta) is
    simulated as ``simulate_draws(m, n, p, eta)``.

    Columns: ``draw`` (0..draws-1), ``source`` (:data:`SPACE` or :data:`POOL`),
    ``entry`` (the index into ``metrics`` of a pool draw, -1 for a draw from S).
    """
    metrics = [float(v) for v in metrics]
    pool = SubnetPool(Budget("macs", 1.0, 1.0), capacity=len(metrics) + (0 if pool_full else 1))
    index = {}
    for j, m in enumerate(metrics):
        s = _entry_structure(j)
        pool.insert(s, m, {})
        index[s.key] = j
    rng = np.random.default_rng(seed)
    space = _ToySpace()
    sources, entries = [], []
    for _ in range(int(draws)):
        s, source, _trials = prioritized_sample(pool, space, 0, float(progress), float(p_end), float(eta_end), rng)
        sources.append(source)
        entries.append(index[s.key] if source == POOL else -1)
    return pd.DataFrame({"draw": np.arange(int(draws)), "source": sources, "entry": entries})


def draw_counts(draws: pd.DataFrame, n_entries: int) -> pd.DataFrame:
    """Draws per entry: one row per pool entry 0..n-1 (``entry``, ``drawn``), how many came from S aside.

    Returns a table with ``entry`` -1 first (the draws from S), then the pool entries in order.
    """
    counts = draws["entry"].value_counts()
    entries = [-1, *range(int(n_entries))]
    return pd.DataFrame({"entry": entries, "drawn": [int(counts.get(j, 0)) for j in entries]})


# ---------------------------------------------------------------------------- figures
def q_figure(pool: pd.DataFrame, eta: float, start_eta: float = START_ETA) -> go.Figure:
    """Eq. 6 over a toy pool: q at temperature ``eta`` (bars) against q at ``start_eta`` (black ticks).

    ``pool`` has ``entry`` and ``m`` columns (best first). The first trace is
    q at ``eta`` (named "q"); the y axis is fixed to 0..1 so a smaller eta is
    seen to sharpen q towards the best entry.
    """
    names, m = pool["entry"].astype(str).tolist(), pool["m"].to_numpy(float)
    q, q0 = pool_probabilities(m, eta), pool_probabilities(m, start_eta)
    custom = m.reshape(-1, 1) if len(m) else None
    hover = "<b>%{x}</b><br>m = %{customdata[0]:.3f}<br>%{fullData.name}: %{y:.1%}<extra></extra>"
    fig = go.Figure([
        dict(type="bar", x=names, y=q, name="q", meta="q", marker_color=POOL_COLOR, customdata=custom, hovertemplate=hover),
        dict(type="scatter", x=names, y=q0, mode="markers", name=f"q at η = {start_eta:g} (start of training)",
             meta="q_start", marker=dict(symbol="line-ew-open", size=36, color="#222", line=dict(width=2)),
             customdata=custom, hovertemplate=hover),
    ])
    if len(m):
        fig.add_hline(y=1.0 / len(m), line_dash="dot", line_color="#888",
                      annotation_text=f"uniform 1/M = {1.0 / len(m):.1%}", annotation_position="top right")
    fig.update_xaxes(title_text="pool entry (best m first)")
    fig.update_yaxes(title_text="sampling probability q", range=[0, 1.02], tickformat=".0%")
    title = f"Eq. 6: q = softmax(m / η) at η = {eta:g}"
    return _layout(fig, title, height=380, legend=TOP_LEGEND)


def draws_figure(pool: pd.DataFrame, draws: pd.DataFrame, p: float, eta: float) -> go.Figure:
    """Where simulated draws went: one bar for "new subnet from S", one per pool entry, expected counts as diamonds.

    Expected: draws x p from S and draws x (1 - p) x q_j from entry j (q of Eq. 6 at ``eta``).
    Traces: "drawn from S", "drawn from the pool π", "expected".
    """
    n, total = len(pool), len(draws)
    counts = draw_counts(draws, n)
    names = ["new from S", *pool["entry"].astype(str).tolist()]
    q = pool_probabilities(pool["m"].to_numpy(float), eta)
    expected = [total * p, *(total * (1.0 - p) * q)]
    hover = "<b>%{x}</b><br>%{fullData.name}: %{y}<extra></extra>"
    fig = go.Figure([
        dict(type="bar", x=names[:1], y=counts["drawn"].iloc[:1].tolist(), name="drawn from S", meta="space",
             marker_color=SPACE_COLOR, hovertemplate=hover),
        dict(type="bar", x=names[1:], y=counts["drawn"].iloc[1:].tolist(), name="drawn from the pool π", meta="pool",
             marker_color=POOL_COLOR, hovertemplate=hover),
        dict(type="scatter", x=names, y=expected, mode="markers", name="expected", meta="expected",
             marker=dict(symbol="diamond-open", size=11, color="#222", line=dict(width=2)),
             hovertemplate="<b>%{x}</b><br>expected: %{y:.1f}<extra></extra>"),
    ])
    fig.update_xaxes(title_text="where the medium subnet came from", categoryorder="array", categoryarray=names)
    fig.update_yaxes(title_text="draws", rangemode="tozero")
    title = f"{total} simulated draws (Alg. 3 lines 1-7) at p = {p:.2f}, η = {eta:g}"
    return _layout(fig, title, height=380, legend=TOP_LEGEND)


def schedule_figure(schedule: pd.DataFrame, progress: float | None = None, p: float | None = None,
                    eta: float | None = None) -> go.Figure:
    """p(progress) and eta(progress) of Eq. 3 (a :func:`schedule_table`), the playground's values marked.

    With ``progress``, the values ``p`` and ``eta`` are drawn as dots at that
    point of training (with a vertical line); without it, as dotted horizontal
    lines (hand-set values, to compare with the curves).
    Traces: "p", "η", then the dots ("now_p", "now_eta" in ``meta``).
    """
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("p: probability of drawing from S (Eq. 3)", "η: temperature of q (Eq. 6)"))
    x = 100 * schedule["progress"].to_numpy(float)
    marks = (("p", "p", P_COLOR, p), ("eta", "η", ETA_COLOR, eta))
    for col, (column, sym, color, value) in enumerate(marks, start=1):
        fig.add_trace(go.Scatter(x=x, y=schedule[column].to_numpy(float), mode="lines", name=sym, meta=column,
                                 line=dict(color=color, width=2.5),
                                 hovertemplate=f"%{{x:.0f}}% of training<br>{sym} = %{{y:.3f}}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(title_text=sym, range=[0, 1.05], row=1, col=col)
        fig.update_xaxes(title_text="training progress (e − 1)/E", ticksuffix="%", range=[0, 100], row=1, col=col)
        if value is None:
            continue
        if progress is None:
            fig.add_hline(y=float(value), line_dash="dot", line_color="#d62728", row=1, col=col,
                          annotation_text=f"your {sym} = {float(value):.2f}", annotation_position="top right")
        else:
            fig.add_vline(x=100 * float(progress), line_dash="dot", line_color="#444", row=1, col=col)
            fig.add_trace(go.Scatter(x=[100 * float(progress)], y=[float(value)], mode="markers", name=f"now: {sym}",
                                     meta=f"now_{column}", marker=dict(size=11, color="#d62728"),
                                     hovertemplate=f"now: {sym} = %{{y:.3f}}<extra></extra>"), row=1, col=col)
    return _layout(fig, "How training sets p and η (Eq. 3): 1 until the pool is full, then p_end^((e−1)/E)",
                   height=340, showlegend=False)
