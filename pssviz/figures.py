"""Plotly figures of a PSS run: functions of the tidy tables of :mod:`pssviz.load`.

Every builder takes DataFrames (the tables of :class:`~pssviz.load.RunData` or
the derived tables of :mod:`pssviz.analysis`) and returns a ``go.Figure``;
nothing here imports Streamlit, so the app and notebooks share them.

Conventions (symbols of the PSS-Net paper):

* one colour per pool index t (:func:`pool_colors`): cheap budgets dark
  purple, dear ones orange, the same in every figure;
* one trace per pool (or per series), never one per entry, so a 20-pool x
  50-entry epoch draws in milliseconds;
* costs are axis-formatted with SI prefixes (``5.36M``); accuracies are shown
  in % (the JSON files store fractions);
* empty input gives a figure with a "no data yet" annotation, never an error.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .analysis import subnet_table
from .style import SERIES_COLORS, SI

TEMPLATE = "plotly_white"
NO_DATA = "no data yet"
OTHER_RUN_COLORS = ("#555555", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
HIGHLIGHT = "#d62728"
TOP_LEGEND = dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right")
__all__ = [
    "pool_colors", "empty_figure", "pool_evolution_figure", "pool_entries_figure", "pool_entries_animation",
    "sampling_probability_figure", "pool_distribution_figure", "width_profile_figure", "width_heatmap_figure",
    "front_figure", "add_comparison", "samples_figure", "training_curves_figure", "pool_counters_figure",
]


# ---------------------------------------------------------------------------- helpers
@lru_cache(maxsize=64)
def _pool_colors(n: int, scheme: str) -> tuple[str, ...]:
    if n <= 0:
        return ()
    if scheme == "qualitative":
        palette = pc.qualitative.D3 if n <= 10 else pc.qualitative.Dark24
        return tuple(palette[i % len(palette)] for i in range(n))
    points = [0.0] if n == 1 else list(np.linspace(0.0, 0.85, n))  # Plasma beyond 0.85 is too pale on white
    return tuple(pc.sample_colorscale("Plasma", points))


def pool_colors(n: int, scheme: str = "sequential") -> list[str]:
    """One colour per pool index 0..n-1 (``"sequential"``: Plasma, ordered like the budgets; or ``"qualitative"``)."""
    return list(_pool_colors(int(n), scheme))


def _rgba(color: str, alpha: float) -> str:
    """``rgb(...)`` or ``#rrggbb`` -> ``rgba(r, g, b, alpha)``."""
    if color.startswith("#"):
        r, g, b = pc.hex_to_rgb(color)
    else:
        r, g, b = (float(v) for v in color[color.index("(") + 1 : color.index(")")].split(",")[:3])
    return f"rgba({r:g}, {g:g}, {b:g}, {alpha:g})"


def _empty(df: pd.DataFrame | None) -> bool:
    return df is None or len(df) == 0


@lru_cache(maxsize=1)
def _template() -> go.layout.Template:
    """The template as a built object: assigning it is half the cost of resolving its name each time."""
    return pio.templates[TEMPLATE]


def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    kw.setdefault("margin", dict(l=60, r=20, t=70, b=50))
    fig.update_layout(template=_template(), title=dict(text=title, x=0.01, xanchor="left"), **kw)
    return fig


def empty_figure(title: str = "", message: str = NO_DATA) -> go.Figure:
    """A blank figure that says ``message`` (default "no data yet") in its middle."""
    fig = go.Figure()
    _layout(fig, title, height=300, xaxis=dict(visible=False), yaxis=dict(visible=False))
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=16, color="#888"))
    return fig


def _n_pools(n_pools: int | None, *frames: pd.DataFrame | None) -> int:
    """Colour count: ``n_pools`` when given, else 1 + the largest pool index seen (so colours stay put)."""
    if n_pools is not None:
        return int(n_pools)
    n = 0
    for df in frames:
        if df is not None and len(df) and "pool" in df.columns:
            n = max(n, int(df["pool"].max()) + 1)
    return n


def _labels(*frames: pd.DataFrame | None) -> dict[int, str]:
    """pool index -> label from the first frame with pool/label columns (else "pool t")."""
    for df in frames:
        if df is not None and len(df) and {"pool", "label"} <= set(df.columns):
            first = df.drop_duplicates("pool")
            return {int(p): str(lab) for p, lab in zip(first["pool"], first["label"]) if pd.notna(lab)}
    return {}


def _label(labels: dict[int, str], t: int) -> str:
    return labels.get(int(t), f"pool {int(t)}")


def _scatter(**kw) -> dict:
    """A scatter trace as a plain dict: validated once, when the figure takes it (go.Scatter would be validated twice)."""
    return dict(type="scatter", **kw)


def _bar(**kw) -> dict:
    return dict(type="bar", **kw)


def _on(row: int) -> dict[str, str]:
    """Axis references of subplot ``row`` of a one-column make_subplots grid (faster than add_traces(rows=...))."""
    return {"xaxis": "x" if row == 1 else f"x{row}", "yaxis": "y" if row == 1 else f"y{row}"}


def _one_epoch(df: pd.DataFrame, epoch: int | None) -> tuple[pd.DataFrame, int | None]:
    """Rows of ``epoch`` (default: the newest present) of a table with an epoch column."""
    if "epoch" not in df.columns or not len(df):
        return df, epoch
    if epoch is None:
        epoch = int(df["epoch"].max())
    return df[df["epoch"] == int(epoch)], int(epoch)


def _budget_bands(budgets: pd.DataFrame | None, colors: list[str], labels: bool = True) -> dict:
    """Eq. 1's constraint C(phi) in [theta - delta, theta + delta]: one faint vertical band (a shape) per budget.

    Returns layout keyword arguments: ``shapes`` (the bands, nothing else) and
    ``annotations`` (a vertical "θ label" at the top of each band, when ``labels``).
    """
    if _empty(budgets):
        return {}
    shapes, notes = [], []
    for t, theta, delta, label in zip(budgets["pool"], budgets["theta"], budgets["delta"], budgets["label"]):
        color = colors[int(t)] if int(t) < len(colors) else "#888"
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=float(theta - delta), x1=float(theta + delta), y0=0, y1=1,
                           fillcolor=color, opacity=0.07 if int(t) % 2 else 0.14, line=dict(width=0), layer="below",
                           name=f"budget {label}"))  # alternating opacity: neighbouring bands touch (delta = step / 2)
        if labels:
            notes.append(dict(x=float(theta), y=1, xref="x", yref="paper", text=f"θ {label}", textangle=-90, yanchor="top",
                              showarrow=False, font=dict(size=9, color=color), name="budget label"))
    return {"shapes": shapes, "annotations": notes} if labels else {"shapes": shapes}


# ---------------------------------------------------------------------------- pools over time
def pool_evolution_figure(pools: pd.DataFrame, cost_label: str = "cost", n_pools: int | None = None) -> go.Figure:
    """How each pool pi^t evolved over the epochs (Alg. 3's pool manipulation).

    (a) entries pushed (solid) and evicted (dashed) per epoch; (b) the best and
    mean pool metric m = -loss (a moving average with lambda, Sec. 3.3) of the
    pool's entries, best solid, mean dashed; (c) the cost spread of the entries:
    a band cost_min..cost_max, the mean cost as a line and the budget theta^t
    dotted. Input: ``RunData.pools``. One legend entry per pool toggles all its lines.
    """
    title = "Pools over training"
    if _empty(pools):
        return empty_figure(title)
    colors = pool_colors(_n_pools(n_pools, pools))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, subplot_titles=(
        "(a) entries pushed (solid) / evicted (dashed) per epoch",
        "(b) pool metric m = −loss: best (solid), mean (dashed)",
        f"(c) cost of the entries: min–max band, mean; θ dotted ({cost_label})"))
    traces = []
    for t, g in pools.sort_values(["pool", "epoch"]).groupby("pool", sort=True):
        t = int(t)
        c, lab, grp = colors[t], str(g["label"].iloc[0]) if "label" in g else f"pool {t}", f"pool{t}"
        x = g["epoch"].to_numpy()
        head = f"<b>{lab}</b><br>epoch %{{x}}<br>"

        def line(row, y, dash="solid", width=1.6, legend=False, hover="", **kw):
            return _scatter(x=x, y=y, mode="lines", name=lab, legendgroup=grp, showlegend=legend, **_on(row),
                              line=dict(color=c, dash=dash, width=width), hovertemplate=head + hover + "<extra></extra>", **kw)

        traces += [line(1, g["pushes"].to_numpy(), legend=True, hover="pushed %{y}"),
                   line(1, g["evictions"].to_numpy(), "dash", hover="evicted %{y}"),
                   line(2, g["best_m"].to_numpy(), hover="best m %{y:.4f}"),
                   line(2, g["mean_m"].to_numpy(), "dash", hover="mean m %{y:.4f}")]
        band = g.dropna(subset=["cost_min", "cost_max"])
        if len(band):
            bx = band["epoch"].to_numpy()
            traces.append(_scatter(x=np.concatenate([bx, bx[::-1]]),
                                     y=np.concatenate([band["cost_max"].to_numpy(float), band["cost_min"].to_numpy(float)[::-1]]),
                                     fill="toself", fillcolor=_rgba(c, 0.15), line=dict(width=0), mode="lines",
                                     name=lab, legendgroup=grp, showlegend=False, hoverinfo="skip", **_on(3)))
        custom = np.column_stack([g["cost_min"].to_numpy(float), g["cost_max"].to_numpy(float)])
        traces += [line(3, g["cost_mean"].to_numpy(float), customdata=custom,
                        hover=f"mean %{{y:.4~s}} (%{{customdata[0]:.4~s}}–%{{customdata[1]:.4~s}}) {cost_label}"),
                   line(3, g["theta"].to_numpy(float), "dot", width=1.0, hover=f"θ %{{y:.4~s}} {cost_label}")]
    fig.add_traces(traces)
    fig.update_yaxes(title_text="entries / epoch", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="m (−loss)", row=2, col=1)
    fig.update_yaxes(title_text=cost_label, tickformat=SI, row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=3, col=1)
    return _layout(fig, title, height=820, hovermode="closest", legend=dict(title="pool (θ)", groupclick="togglegroup"))


def _one_schedule(pools: pd.DataFrame, epochs: pd.DataFrame) -> bool:
    """True when every pool follows the run's schedule: p = p_end^(e/E) and eta = eta_end^(e/E) once it is
    full, and 1 before (then one line, the schedule, says what eight coinciding lines would)."""
    if _empty(epochs) or pools["pool"].nunique() < 2:
        return False
    sched = epochs.set_index("epoch")[["p_schedule", "eta_schedule"]]
    at = pools.join(sched, on="epoch")
    if at[["p_schedule", "eta_schedule"]].isna().to_numpy().any():
        return False
    full = at["full"].astype(bool).to_numpy()
    for col, ref in (("p", "p_schedule"), ("eta", "eta_schedule")):
        expected = np.where(full, at[ref].to_numpy(float), 1.0)
        if not np.allclose(at[col].to_numpy(float), expected, rtol=1e-9, atol=1e-12):
            return False
    return True


def sampling_probability_figure(pools: pd.DataFrame, epochs: pd.DataFrame, log: bool = False, n_pools: int | None = None) -> go.Figure:
    """Where Alg. 3 drew its medium subnets from, per pool, over the epochs.

    Top: p, the probability of sampling from the structure space S (Eq. 3;
    1 - p from the pool pi^t); bottom: the temperature eta of Eq. 6. Both are
    1 while the pool is not full, then follow p_end^(e/E) and eta_end^(e/E):
    those schedules (``epochs.p_schedule`` / ``eta_schedule``) are drawn black
    dashed. When every pool follows them (1 until full, then the schedule), the
    schedule is the one line for all pools, and open markers at 1 name the pools
    still filling in each epoch. ``log=True``
    draws both y axes logarithmic, ticks at the decades.
    """
    title = "Sampling probability p (Eq. 3) and temperature η (Eq. 6)"
    if _empty(pools) and _empty(epochs):
        return empty_figure(title)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("p: probability of sampling from S (1 − p: from the pool)", "η: temperature of q (Eq. 6)"))
    traces = []
    shared = not _empty(pools) and _one_schedule(pools, epochs)
    if shared:
        # every pool is at 1 until full, then on the schedule: draw the schedule once (below) and mark, per
        # epoch, the pools that were not full yet (their p and eta were still 1)
        n = int(pools["pool"].nunique())
        filling = pools[~pools["full"].astype(bool)].sort_values(["epoch", "pool"])
        for row, sym in ((1, "p"), (2, "η")):
            if not len(filling):
                continue
            per_epoch = filling.groupby("epoch")["label" if "label" in filling else "pool"].apply(lambda v: ", ".join(map(str, v)))
            traces.append(_scatter(
                x=per_epoch.index.to_numpy(), y=np.ones(len(per_epoch)), mode="markers", name="pools not yet full (1)",
                legendgroup="filling", showlegend=row == 1, marker=dict(color=SERIES_COLORS[1], size=9, symbol="circle-open"),
                text=per_epoch.to_numpy(dtype=object), **_on(row),
                hovertemplate=f"epoch %{{x}}: {sym} = 1 while filling<br>%{{text}}<extra></extra>"))
    elif not _empty(pools):
        colors = pool_colors(_n_pools(n_pools, pools))
        for t, g in pools.sort_values(["pool", "epoch"]).groupby("pool", sort=True):
            t = int(t)
            lab = str(g["label"].iloc[0]) if "label" in g else f"pool {t}"
            x = g["epoch"].to_numpy()
            custom = np.column_stack([g["size"].to_numpy(), g["capacity"].to_numpy()])
            for row, col, sym in ((1, "p", "p"), (2, "eta", "η")):
                traces.append(_scatter(
                    x=x, y=g[col].to_numpy(float), mode="lines", name=lab, legendgroup=f"pool{t}", showlegend=row == 1,
                    line=dict(color=colors[t], width=1.6), customdata=custom, **_on(row),
                    hovertemplate=(f"<b>{lab}</b><br>epoch %{{x}}<br>{sym} = %{{y:.4f}}"
                                   "<br>|π| = %{customdata[0]} / M = %{customdata[1]}<extra></extra>")))
    if not _empty(epochs):
        x = epochs["epoch"].to_numpy()
        for row, col, name in ((1, "p_schedule", "schedule p_end^(e/E)"), (2, "eta_schedule", "schedule η_end^(e/E)")):
            if shared:
                name = f"all {n} pools once full: {name[9:]}"
            traces.append(_scatter(x=x, y=epochs[col].to_numpy(float), mode="lines", name=name, legendgroup="schedule",
                                     line=dict(color="black", dash="solid" if shared else "dash", width=2), **_on(row),
                                     hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{y:.4f}}<extra></extra>"))
    fig.add_traces(traces)
    values = [pools[c].to_numpy(float) for c in ("p", "eta") if not _empty(pools)]
    values += [epochs[c].to_numpy(float) for c in ("p_schedule", "eta_schedule") if not _empty(epochs)]
    positive = np.concatenate(values)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    floor = min(0.005, 0.8 * float(positive.min())) if positive.size else 0.005
    decades = [10.0 ** k for k in range(int(np.floor(np.log10(floor))), 1)]
    for row, sym in ((1, "p"), (2, "η")):
        if log:
            fig.update_yaxes(type="log", range=[np.log10(floor), np.log10(1.05)], title_text=f"{sym} (log)", row=row, col=1,
                             tickvals=decades, ticktext=[f"{v:g}" for v in decades])
        else:
            fig.update_yaxes(range=[0, 1.05], title_text=sym, row=row, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    return _layout(fig, title, height=620, hovermode="closest", legend=dict(groupclick="togglegroup"))


def pool_counters_figure(pools: pd.DataFrame, epoch: int, n_pools: int | None = None) -> go.Figure:
    """How Alg. 3 used each pool during one epoch: grouped bars per pool.

    from_space (medium subnets drawn from S with Eq. 4) vs from_pool (drawn
    from pi^t with Eq. 6), pushes (new structures inserted, Alg. 3 lines 9-13),
    evictions (the worst of M + 1 removed, possibly the newcomer itself) and
    updates (a sampled structure already held: its m averaged, lines 15-16).
    When pushes equal draws from S and updates equal draws from the pool in
    every pool (as the trainer does), each pair is one bar. Counters cover that epoch only. Bars are coloured by counter (not by pool);
    the x axis lists the pools, cheapest budget first.
    """
    title = f"What Alg. 3 did in each pool, epoch {epoch}"
    if _empty(pools):
        return empty_figure(title)
    at = pools[pools["epoch"] == int(epoch)].sort_values("pool")
    if not len(at):
        return empty_figure(title, f"{NO_DATA} for epoch {epoch}")
    x = [str(v) for v in at["label"]] if "label" in at else [f"pool {t}" for t in at["pool"]]
    custom = np.column_stack([at["size"].to_numpy(), at["capacity"].to_numpy(),
                              at["mean_trials"].to_numpy(float), at["p"].to_numpy(float)])
    series = (("from_space", "sampled from S (Eq. 4)"), ("from_pool", "sampled from π (Eq. 6)"),
              ("pushes", "pushed"), ("evictions", "evicted"), ("updates", "m updated"))
    if (at["pushes"] == at["from_space"]).all() and (at["updates"] == at["from_pool"]).all():
        # the trainer pushes every draw from S and updates m of every draw from the pool: two pairs of equal
        # counters by construction, shown once each
        series = (("from_space", "sampled from S (Eq. 4), pushed"), ("from_pool", "sampled from π (Eq. 6), m updated"),
                  ("evictions", "evicted"))
    traces = [_bar(x=x, y=at[col].to_numpy(), name=name, marker_color=SERIES_COLORS[i], customdata=custom,
                     hovertemplate=(f"<b>%{{x}}</b><br>{name}: %{{y}}<br>|π| = %{{customdata[0]}} / %{{customdata[1]}}"
                                    "<br>p = %{customdata[3]:.3f}, mean Eq. 4 trials %{customdata[2]:.1f}<extra></extra>"))
              for i, (col, name) in enumerate(series)]
    fig = go.Figure(traces)
    fig.update_xaxes(title_text="pool (budget θ)", type="category")
    fig.update_yaxes(title_text="count in this epoch")
    return _layout(fig, title, barmode="group", height=380, legend=TOP_LEGEND)


# ---------------------------------------------------------------------------- pool entries
def _entry_traces(at: pd.DataFrame, pool_ids, colors, labels, ts_max: float, cost_label: str, full: bool = True) -> list[dict]:
    """One marker trace (a dict) per pool id in ``pool_ids``; pools absent from ``at`` get empty traces.

    ``full=False`` keeps only what changes between animation frames (plotly
    merges frame data into the traces, so colours and hover templates stay).
    """
    groups = dict(tuple(at.groupby("pool", sort=True))) if len(at) else {}
    out = []
    for t in pool_ids:
        t = int(t)
        g = groups.get(t)
        lab = _label(labels, t)
        if g is None:
            x = y = size = keys = np.array([])
            custom = np.zeros((0, 4))
        else:
            ts = g["times_sampled"].to_numpy(float)
            x, y, keys = g["cost"].to_numpy(float), g["m"].to_numpy(float), g["key"].to_numpy(dtype=object)
            size = 6.0 + 16.0 * np.sqrt(ts / ts_max)
            custom = np.column_stack([g["rank"].to_numpy() + 1, ts, g["q"].to_numpy(float), g["resolution"].to_numpy()])
        if not full:
            out.append(dict(type="scatter", x=x, y=y, text=keys, customdata=custom, marker=dict(size=size)))
            continue
        out.append(dict(
            type="scatter", x=x, y=y, text=keys, customdata=custom, mode="markers", name=lab, legendgroup=f"pool{t}",
            marker=dict(color=colors[t] if t < len(colors) else "#888", size=size, opacity=0.8, line=dict(width=0.5, color="white")),
            hovertemplate=(f"<b>{lab}</b> #%{{customdata[0]}}<br>%{{text}}<br>cost %{{x:.4~s}} {cost_label}, r = %{{customdata[3]}}"
                           "<br>m = %{y:.4f}<br>q = %{customdata[2]:.3f}, sampled %{customdata[1]}×<extra></extra>"),
        ))
    return out


def _size_legend(ts_max: float) -> dict:
    """The key to the marker size of the pool-entry figures (an annotation below the legend)."""
    return dict(xref="paper", yref="paper", x=1.02, y=0.0, xanchor="left", yanchor="bottom", align="left", showarrow=False,
                font=dict(size=11), text=f"dot size: times sampled<br>· small: 0<br>● large: {int(ts_max)}×")


def pool_entries_figure(entries_at_epoch: pd.DataFrame, budgets: pd.DataFrame, epoch: int | None = None,
                        cost_label: str = "MACs") -> go.Figure:
    """Every entry of every pool pi^t at one epoch: cost C(phi) (x) against the pool metric m (y).

    One marker trace per pool (legend = budget label; an empty pool gets an
    empty trace, so trace i is always pool i), marker size ~ sqrt of times
    sampled; each budget theta^t of Eq. 1 is a faint band theta +- delta: an
    entry may only join the pool whose band holds its cost. ``entries_at_epoch``
    is ``analysis.entries_at(data, epoch)`` (a table with several epochs is cut
    to ``epoch``, default the newest).
    """
    at, epoch = (entries_at_epoch, epoch) if _empty(entries_at_epoch) else _one_epoch(entries_at_epoch, epoch)
    title = "Pool entries π<sup>t</sup>" + (f" at epoch {epoch}" if epoch is not None else "")
    if _empty(at):
        return empty_figure(title)
    n = _n_pools(None, budgets, at)
    colors, labels = pool_colors(n), _labels(budgets)
    ts_max = max(float(at["times_sampled"].max()), 1.0)
    pool_ids = sorted(set(at["pool"].unique()) | (set(budgets["pool"]) if not _empty(budgets) else set()))
    fig = go.Figure(_entry_traces(at, pool_ids, colors, labels, ts_max, cost_label))
    fig.update_layout(**_budget_bands(budgets, colors))
    fig.add_annotation(**_size_legend(ts_max))
    fig.update_xaxes(title_text=f"cost C(φ) ({cost_label})", tickformat=SI)
    fig.update_yaxes(title_text="m = −loss (moving average; higher is better)")
    return _layout(fig, title, height=520, hovermode="closest", legend=dict(title="pool (θ)"))


def pool_entries_animation(entries: pd.DataFrame, budgets: pd.DataFrame, max_frames: int = 60, cost_label: str = "MACs") -> go.Figure:
    """:func:`pool_entries_figure` over the epochs, as a plotly animation with a slider and a play button.

    At most ``max_frames`` epochs, evenly spaced and always including the last;
    axis ranges and the marker-size scale are fixed over all frames so that
    motion means change. For notebooks (the figure holds every frame's data).
    """
    title = "Pool entries π<sup>t</sup> over training"
    if _empty(entries):
        return empty_figure(title)
    all_epochs = np.sort(entries["epoch"].unique())
    pick = all_epochs[np.unique(np.linspace(0, len(all_epochs) - 1, max(1, int(max_frames))).round().astype(int))]
    sub = entries[entries["epoch"].isin(pick)]
    n = _n_pools(None, budgets, entries)
    colors, labels = pool_colors(n), _labels(budgets)
    pool_ids = sorted(set(entries["pool"].unique()) | (set(budgets["pool"]) if not _empty(budgets) else set()))
    ts_max = max(float(entries["times_sampled"].max()), 1.0)
    by_epoch = dict(tuple(sub.groupby("epoch", sort=True)))
    frames = [dict(name=str(int(e)), data=_entry_traces(by_epoch[e], pool_ids, colors, labels, ts_max, cost_label, full=False),
                   traces=list(range(len(pool_ids))))  # the slider shows the epoch (a frame title needs a full redraw)
              for e in pick]
    lo = [entries["cost"].min()] + ([(budgets["theta"] - budgets["delta"]).min()] if not _empty(budgets) else [])
    hi = [entries["cost"].max()] + ([(budgets["theta"] + budgets["delta"]).max()] if not _empty(budgets) else [])
    x0, x1 = float(min(lo)), float(max(hi))
    y0, y1 = float(entries["m"].min()), float(entries["m"].max())
    pad_x, pad_y = 0.03 * (x1 - x0 or 1.0), 0.05 * (y1 - y0 or 1.0)
    fig = go.Figure(data=_entry_traces(by_epoch[pick[0]], pool_ids, colors, labels, ts_max, cost_label), frames=frames)
    fig.add_annotation(**_size_legend(ts_max))
    step_args = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    fig.update_layout(
        **_budget_bands(budgets, colors),
        xaxis=dict(title_text=f"cost C(φ) ({cost_label})", tickformat=SI, range=[x0 - pad_x, x1 + pad_x], autorange=False),
        yaxis=dict(title_text="m = −loss (moving average)", range=[y0 - pad_y, y1 + pad_y], autorange=False),
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.14, xanchor="left", yanchor="top", showactive=False,
                          pad=dict(t=20),
                          buttons=[dict(label="▶ play", method="animate",
                                        args=[None, dict(frame=dict(duration=300, redraw=False), transition=dict(duration=150),
                                                         fromcurrent=True)]),
                                   dict(label="❚❚ pause", method="animate", args=[[None], step_args])])],
        sliders=[dict(active=0, x=0.2, len=0.8, y=-0.1, yanchor="top", currentvalue=dict(prefix="epoch ", xanchor="right"),
                      steps=[dict(label=str(int(e)), method="animate", args=[[str(int(e))], step_args]) for e in pick])],
    )
    return _layout(fig, title, height=600, hovermode="closest", legend=dict(title="pool (θ)"),
                   margin=dict(l=60, r=20, t=70, b=120))


def pool_distribution_figure(entries_at_epoch: pd.DataFrame, pool: int, label: str | None = None,
                             n_pools: int | None = None) -> go.Figure:
    """Inside one pool pi^t at one epoch: q of Eq. 6 next to how often each entry was really sampled.

    x = rank 1..M by m (best first); bars: q_j = softmax(m_j / eta) (Eq. 6),
    and the share of the pool's samples that went to entry j. With a
    ``sampled_in_epoch`` column (:func:`pssviz.analysis.sampled_in_epoch`) the
    share counts samples *in this epoch*, the same epoch q describes; without
    it, ``times_sampled`` since the entry entered the pool (then old entries and
    early, flat-q epochs weigh in). q is the distribution at the *end* of the
    epoch; during it q moved as m was updated, so the two agree only roughly.
    """
    lab = label or f"pool {pool}"
    title = f"{lab}: Eq. 6 probabilities q vs. share of samples"
    if _empty(entries_at_epoch):
        return empty_figure(title)
    at, epoch = _one_epoch(entries_at_epoch[entries_at_epoch["pool"] == int(pool)], None)
    if not len(at):
        return empty_figure(title)
    if label is None and "label" in at:
        lab = str(at["label"].iloc[0])
    at = at.sort_values("rank")
    color = pool_colors(max(_n_pools(n_pools, entries_at_epoch), int(pool) + 1))[int(pool)]
    in_epoch = "sampled_in_epoch" in at
    ts = at["sampled_in_epoch" if in_epoch else "times_sampled"].to_numpy(float)
    share = ts / ts.sum() if ts.sum() > 0 else np.zeros_like(ts)
    x = at["rank"].to_numpy() + 1
    keys, m = at["key"].to_numpy(dtype=object), at["m"].to_numpy(float)
    custom = np.column_stack([m, ts])
    when = " in this epoch" if in_epoch else " since it entered"
    hover = ("<b>#%{x}</b> %{text}<br>%{fullData.name}: %{y:.3f}<br>m = %{customdata[0]:.4f}, sampled %{customdata[1]}×"
             + when + "<extra></extra>")
    fig = go.Figure([
        _bar(x=x, y=at["q"].to_numpy(float), name="q (Eq. 6, end of epoch)", marker_color=color, text=keys,
               textposition="none", customdata=custom, hovertemplate=hover),
        _bar(x=x, y=share, name="share of samples in this epoch" if in_epoch else "share of times sampled (cumulative)",
             marker=dict(color=_rgba(color, 0.35), line=dict(color=color, width=1)),
               text=keys, textposition="none", customdata=custom, hovertemplate=hover),
    ])
    fig.update_xaxes(title_text="entry rank by m (1 = best)", dtick=1 if len(x) <= 30 else None)
    fig.update_yaxes(title_text="probability", rangemode="tozero")
    title = f"{lab}: Eq. 6 probabilities q vs. share of samples" + (f" (epoch {epoch})" if epoch is not None else "")
    return _layout(fig, title, barmode="group", height=380, legend=TOP_LEGEND)


# ---------------------------------------------------------------------------- widths
def _uniform_multiplier(g: pd.DataFrame) -> float:
    """The uniform reference's multiplier: the ``multiplier`` column if given, else sum(o_i) / sum(o_max)."""
    if "multiplier" in g and g["multiplier"].notna().any():
        return float(g["multiplier"].dropna().iloc[0])
    return float(g["width"].sum() / g["o_max"].sum())


def width_profile_figure(profiles: pd.DataFrame, n_pools: int | None = None) -> go.Figure:
    """Layer-wise width ratio o_i / o_max (Sec. 3.1) of each pool's best subnet, vs. the uniform-width net.

    Input: ``analysis.width_profiles``. Per pool: "best" solid with markers,
    "uniform" (every o_i = w * o_max rounded to the divisor, the USNet-style
    baseline of about the same cost) dashed in the same colour. A best profile
    that departs from its uniform twin is PSS finding non-uniform widths.
    """
    title = "Width profile o<sub>i</sub> / o<sub>max</sub> per layer"
    if _empty(profiles):
        return empty_figure(title)
    order = profiles.drop_duplicates("layer").sort_values("layer")["name"].astype(str).tolist()
    colors = pool_colors(_n_pools(n_pools, profiles))
    traces = []
    groups = profiles.groupby(["pool", "series"], sort=False)
    keys = sorted(groups.groups, key=lambda k: (int(k[0]), k[1] != "best", str(k[1])))  # each best before its uniform twin
    for t, series in keys:
        t, g = int(t), groups.get_group((t, series)).sort_values("layer")
        lab = str(g["label"].iloc[0]) if "label" in g and pd.notna(g["label"].iloc[0]) else f"pool {t}"
        best = series == "best"
        r = int(g["resolution"].iloc[0])
        name = f"{lab} best, {r} px" if best else f"uniform ×{_uniform_multiplier(g):.2f}, {r} px"
        custom = np.column_stack([g["width"].to_numpy(), g["o_max"].to_numpy(), g["cost"].to_numpy(float), g["resolution"].to_numpy()])
        traces.append(_scatter(
            x=g["name"].astype(str).to_numpy(dtype=object), y=g["ratio"].to_numpy(float), name=name, legendgroup=f"pool{t}",
            mode="lines+markers" if best else "lines",
            line=dict(color=colors[t] if 0 <= t < len(colors) else "#111", dash="solid" if best else "dash", width=2 if best else 1.4),
            marker=dict(size=6), customdata=custom,
            hovertemplate=(f"<b>{name}</b> ({lab})<br>layer %{{x}}: %{{customdata[0]}} / %{{customdata[1]}} = %{{y:.3f}}"
                           "<br>cost %{customdata[2]:.4~s}, r = %{customdata[3]}<extra></extra>")))
    fig = go.Figure(traces)
    low = min(0.5, float(profiles["ratio"].min()) - 0.03)
    fig.update_xaxes(title_text="layer (searchable width, input to output)", type="category",
                     categoryorder="array", categoryarray=order)
    fig.update_yaxes(title_text="o<sub>i</sub> / o<sub>max</sub>", range=[low, 1.05])
    return _layout(fig, title, height=440, hovermode="closest", legend=dict(groupclick="toggleitem"))


def width_heatmap_figure(matrix: pd.DataFrame, text: bool | None = None) -> go.Figure:
    """o_i / o_max of each pool's best subnet as a heatmap: pools (rows, cheapest at the bottom) x layers.

    Input: ``analysis.width_matrix``. Colour range [min(matrix, 0.5), 1];
    ``text`` writes the ratios into the cells (default: when there are at most 400 cells).
    """
    title = "Best subnet per pool: o<sub>i</sub> / o<sub>max</sub>"
    if matrix is None or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        return empty_figure(title)
    z = matrix.to_numpy(dtype=float)
    zmin = min(0.5, float(np.nanmin(z))) if np.isfinite(z).any() else 0.5
    show = z.size <= 400 if text is None else text
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in matrix.columns], y=[str(i) for i in matrix.index], zmin=zmin, zmax=1.0, colorscale="Viridis",
        colorbar=dict(title=dict(text="o<sub>i</sub>/o<sub>max</sub>", side="right")), xgap=1, ygap=1,
        texttemplate="%{z:.2f}" if show else None, textfont=dict(size=9),
        hovertemplate="<b>%{y}</b><br>layer %{x}: o/o_max = %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="layer", type="category")
    fig.update_yaxes(title_text="pool (budget θ)", type="category")  # y categories bottom-up: first row (cheapest) lowest
    return _layout(fig, title, height=max(260, 110 + 26 * z.shape[0]))


# ---------------------------------------------------------------------------- the front
_REF_SYMBOLS = {"max": "star", "min": "diamond"}


def _axis_title(x: str, x_label: str) -> str:
    return {"macs": "MACs", "params": "parameters"}.get(x, x_label)


def _test_text(rows: pd.DataFrame) -> np.ndarray:
    """Hover lines: test accuracy with its 95% interval and image count, or why there is none."""
    out = []
    for acc, lo, hi, n in zip(rows["test_acc"], rows["test_lo"], rows["test_hi"], rows["test_images"]):
        out.append("no test split" if not np.isfinite(acc) else
                   f"test {100 * acc:.1f}% (95% CI {100 * lo:.1f}–{100 * hi:.1f}%, {int(n):,} images)")
    return np.array(out, dtype=object)


def _front_traces(table: pd.DataFrame, x: str, colors: list[str], labels: dict[int, str], fmt: str) -> list[dict]:
    """The Pareto front (a step line: the best accuracy any budget B buys), the pools' best subnets that
    are dominated (open circles, saying by which subnet), the other calibrated candidates (faint) and,
    when the run has a test split, the Pareto subnets' test accuracy with 95% intervals."""
    t = table.assign(_color=[colors[int(p)] if 0 <= int(p) < len(colors) else "#111" for p in table["pool"]],
                     _lab=[_label(labels, p) if int(p) >= 0 else src for p, src in zip(table["pool"], table["source"])],
                     _test=_test_text(table), _by=[k or "" for k in table["dominated_by"]])
    cand = t[~t["is_reference"].astype(bool)]
    pareto = t[t["pareto"]].sort_values(x)
    out = []
    others = cand[~cand["pareto"] & ~cand["is_best"].astype(bool)]
    dominated_best = cand[~cand["pareto"] & cand["is_best"].astype(bool)]
    if len(others):
        out.append(_scatter(
            x=others[x].to_numpy(float), y=100 * others["accuracy"].to_numpy(float), name="other candidates", mode="markers",
            marker=dict(color=others["_color"].tolist(), size=7, opacity=0.4), text=others["key"].to_numpy(dtype=object),
            customdata=np.column_stack([others["_lab"].to_numpy(dtype=object), others["_by"].to_numpy(dtype=object)]),
            hovertemplate=f"<b>%{{customdata[0]}}</b> candidate<br>%{{text}}<br>{fmt}<br>dominated by %{{customdata[1]}}<extra></extra>"))
    if len(dominated_best):
        out.append(_scatter(
            x=dominated_best[x].to_numpy(float), y=100 * dominated_best["accuracy"].to_numpy(float), name="pool best, dominated",
            mode="markers", marker=dict(symbol="circle-open", color=dominated_best["_color"].tolist(), size=13, line=dict(width=2)),
            text=dominated_best["key"].to_numpy(dtype=object),
            customdata=np.column_stack([dominated_best["_lab"].to_numpy(dtype=object), dominated_best["_by"].to_numpy(dtype=object),
                                        dominated_best["_test"].to_numpy(dtype=object)]),
            hovertemplate=f"<b>%{{customdata[0]}}</b> best of its pool, <b>dominated</b><br>%{{text}}<br>{fmt}<br>%{{customdata[2]}}"
                          "<br>beaten by %{customdata[1]} (costs no more, more accurate)<extra></extra>"))
    if len(pareto):
        custom = np.column_stack([pareto["_lab"].to_numpy(dtype=object), pareto["_test"].to_numpy(dtype=object)])
        out.append(_scatter(
            x=pareto[x].to_numpy(float), y=100 * pareto["accuracy"].to_numpy(float), name="Pareto front", mode="lines+markers",
            line=dict(color="#333", width=2, shape="hv"),
            marker=dict(color=pareto["_color"].tolist(), size=13, line=dict(color="white", width=1)),
            text=pareto["key"].to_numpy(dtype=object), customdata=custom,
            hovertemplate=f"<b>%{{customdata[0]}}</b> on the Pareto front<br>%{{text}}<br>{fmt} (validation)<br>%{{customdata[1]}}<extra></extra>"))
        tested = pareto[np.isfinite(pareto["test_acc"].to_numpy(float))]
        if len(tested):
            acc = 100 * tested["test_acc"].to_numpy(float)
            out.append(_scatter(
                x=tested[x].to_numpy(float), y=acc, name="test accuracy (95% CI)", mode="markers",
                marker=dict(symbol="line-ew-open", size=14, color="#2ca02c", line=dict(width=2)),
                error_y=dict(type="data", array=100 * tested["test_hi"].to_numpy(float) - acc,
                             arrayminus=acc - 100 * tested["test_lo"].to_numpy(float), color="#2ca02c", thickness=1.5, width=4),
                text=tested["key"].to_numpy(dtype=object), customdata=tested["_test"].to_numpy(dtype=object),
                hovertemplate="<b>test split</b><br>%{text}<br>%{customdata}<extra></extra>"))
    return out


def _reference_traces(refs: pd.DataFrame, x: str, fmt: str, name: str = "", color: str = "#111") -> list[dict]:
    """phi^max (star) and phi^min (diamond), one trace each; open symbols for another run's (``name``)."""
    out = []
    for ref, xv, acc, key in zip(refs["name"].astype(str), refs[x], refs["accuracy"], refs["key"]):
        label = f"{name} {ref} φ".strip()
        out.append(_scatter(
            x=[float(xv)], y=[100 * float(acc)], mode="markers", name=label, legendgroup=name or None, showlegend=not name,
            marker=dict(symbol=_REF_SYMBOLS.get(ref, "circle") + ("-open" if name else ""), size=16 if not name else 12,
                        color=color, line=dict(color="white" if not name else color, width=1)),
            text=[key], hovertemplate=f"<b>{label}</b> (reference)<br>%{{text}}<br>{fmt}<extra></extra>"))
    return out


def front_figure(front: pd.DataFrame | None, references: pd.DataFrame | None, x: str = "cost",
                 others: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] | None = None, highlight_key: str | None = None,
                 budgets: pd.DataFrame | None = None, x_label: str = "MACs", uniform: pd.DataFrame | None = None) -> go.Figure:
    """Calibrated validation accuracy (%) against cost: the Pareto front of the calibrated subnets (Eq. 5).

    The non-dominated subnets (pools' candidates and the min/max references,
    :func:`pssviz.analysis.subnet_table`) are big markers on the step line
    "Pareto front": the most accurate subnet any budget B buys. A pool's best
    that some cheaper-or-equal subnet beats is an open circle "pool best,
    dominated" whose hover names the winner; other candidates are faint; with a
    test split, the Pareto subnets' test accuracy is drawn with its 95% interval.
    phi^max and phi^min are a star "max φ" and a diamond "min φ".
    ``others`` maps a run name to its (front, references), overlaid as a dashed
    line for a PSS-vs-baseline comparison; ``uniform`` (columns ``x`` or cost,
    and accuracy) is drawn as a dashed "uniform-width" line. ``highlight_key``
    circles that subnet ("selected"). ``x`` is "macs", "params" or "cost"; the
    budget bands theta +- delta are drawn when ``budgets`` is given and x is in
    the budgets' unit. Accuracies are fractions in the tables, % here.
    """
    axis = _axis_title(x, x_label)
    title = f"Calibrated accuracy vs. {axis}"
    parts = [front, references] + [f for pair in (others or {}).values() for f in pair]
    if all(_empty(p) for p in parts + [uniform]):
        return empty_figure(title)
    for df in parts:
        if not _empty(df) and (x not in df.columns or df[x].isna().all()):  # e.g. latency of a run without a LUT
            raise ValueError(f"front_figure: column {x!r} missing or empty (have {', '.join(map(str, df.columns))})")
    colors, labels = pool_colors(_n_pools(None, budgets, front)), _labels(budgets, front)
    fmt = f"{axis} %{{x:.4~s}}<br>accuracy %{{y:.2f}}%"
    traces = _front_traces(subnet_table(front, references, x), x, colors, labels, fmt) if not _empty(front) or not _empty(references) else []
    if not _empty(uniform):
        ux = x if x in uniform.columns else "cost"
        u = uniform.sort_values(ux)
        traces.append(_scatter(x=u[ux].to_numpy(float), y=100 * u["accuracy"].to_numpy(float), mode="lines+markers",
                               name="uniform-width", line=dict(color="#7f7f7f", dash="dash"), marker=dict(size=6),
                               hovertemplate=f"<b>uniform-width</b><br>{fmt}<extra></extra>"))
    for i, (name, (o_front, o_refs)) in enumerate((others or {}).items()):
        color = OTHER_RUN_COLORS[i % len(OTHER_RUN_COLORS)]
        if not _empty(o_front):
            o_table = subnet_table(o_front, o_refs, x)
            ob = o_table[o_table["pareto"]].sort_values(x)
            traces.append(_scatter(x=ob[x].to_numpy(float), y=100 * ob["accuracy"].to_numpy(float), mode="lines+markers",
                                   name=f"{name} (Pareto)", legendgroup=str(name), line=dict(color=color, dash="dash", shape="hv"),
                                   marker=dict(color=color, size=8, symbol="square"), text=ob["key"].to_numpy(dtype=object),
                                   hovertemplate=f"<b>{name}</b><br>%{{text}}<br>{fmt}<extra></extra>"))
        if not _empty(o_refs):
            traces += _reference_traces(o_refs, x, fmt, str(name), color)
    if not _empty(references):
        traces += _reference_traces(references, x, fmt)
    hit = _find_key(highlight_key, front, references, x)
    if hit is not None:
        traces.append(_scatter(x=[hit[0]], y=[hit[1]], mode="markers", name="selected", text=[highlight_key],
                               marker=dict(symbol="circle-open", size=26, color=HIGHLIGHT, line=dict(width=3, color=HIGHLIGHT)),
                               hovertemplate=f"<b>selected</b><br>%{{text}}<br>{fmt}<extra></extra>"))
    fig = go.Figure(traces)
    if not _empty(budgets) and x in ("cost", str(budgets["kind"].iloc[0])):
        fig.update_layout(**_budget_bands(budgets, colors, labels=False))
    fig.update_xaxes(title_text=axis, tickformat=SI)
    fig.update_yaxes(title_text="validation accuracy (%)", ticksuffix="%")
    # the legend below the plot: beside it, it would take half of a narrow column (the export page at 1024 px)
    return _layout(fig, title, height=560, hovermode="closest", margin=dict(l=60, r=20, t=70, b=130),
                   legend=dict(orientation="h", x=0, xanchor="left", y=-0.16, yanchor="top"))


def add_comparison(fig: go.Figure, comparison: pd.DataFrame, name: str = "") -> go.Figure:
    """Overlay a `pss compare` table on a front figure: per run, best accuracy within each budget.

    One step line per compared run (the accuracy a user gets for a budget B is
    that of the best subnet with cost <= B, so it is constant between budgets);
    markers sit at the chosen subnets' own costs.
    """
    if _empty(comparison):
        return fig
    for i, (run, g) in enumerate(comparison.groupby("run", sort=False)):
        color = OTHER_RUN_COLORS[i % len(OTHER_RUN_COLORS)]
        g = g.sort_values("budget")
        strategy = g["strategy"].iloc[0]
        label = f"{run} ({strategy})" if strategy else str(run)
        fig.add_trace(go.Scatter(
            x=g["budget"].to_numpy(float), y=100 * g["accuracy"].to_numpy(float), mode="lines", line_shape="hv",
            name=f"{label}: best ≤ budget", legendgroup=f"cmp-{run}", line=dict(color=color, dash="dot", width=2),
            hovertemplate=f"<b>{label}</b><br>budget %{{x:.4~s}}<br>accuracy %{{y:.2f}}%<extra>{name}</extra>"))
        fig.add_trace(go.Scatter(
            x=g["cost"].to_numpy(float), y=100 * g["accuracy"].to_numpy(float), mode="markers", showlegend=False,
            legendgroup=f"cmp-{run}", marker=dict(color=color, symbol="x", size=9), text=g["key"].to_numpy(dtype=object),
            hovertemplate=f"<b>{label}</b><br>%{{text}}<br>cost %{{x:.4~s}}<br>accuracy %{{y:.2f}}%<extra>{name}</extra>"))
    return fig


def samples_figure(samples: pd.DataFrame, budgets: pd.DataFrame | None = None, epoch: int | None = None,
                   cost_label: str = "MACs") -> go.Figure:
    """The subnets a strategy without pools trained in one epoch: cost C(φ) against mean training loss.

    ``samples`` is ``analysis.samples_at(data, epoch)``; marker size ~ how
    often the subnet was trained; the budgets θ ± δ are drawn as bands for
    orientation (uniform, mutual, random and pse sample S without them).
    """
    title = "Subnets trained" + (f" in epoch {epoch}" if epoch is not None else "")
    if _empty(samples):
        return empty_figure(title)
    times = samples["times"].to_numpy(float)
    fig = go.Figure([_scatter(
        x=samples["cost"].to_numpy(float), y=samples["loss"].to_numpy(float), mode="markers", name="trained subnet",
        text=samples["key"].to_numpy(dtype=object),
        customdata=np.column_stack([samples["resolution"].to_numpy(), times, samples["rel_loss"].to_numpy(float)]),
        marker=dict(size=6 + 10 * np.sqrt(times / max(times.max(), 1.0)), color=samples["resolution"].to_numpy(float),
                    colorscale="Viridis", showscale=True, colorbar=dict(title="r (px)"), opacity=0.75),
        hovertemplate=("%{text}<br>cost %{x:.4~s} " + cost_label + ", r = %{customdata[0]}<br>loss %{y:.4f} "
                       "(x%{customdata[2]:.2f} of the max subnet's), trained %{customdata[1]}×<extra></extra>"))])
    if not _empty(budgets):
        fig.update_layout(**_budget_bands(budgets, pool_colors(len(budgets)), labels=False))
    fig.update_xaxes(title_text=f"cost C(φ) ({cost_label})", tickformat=SI)
    fig.update_yaxes(title_text="training loss (cross-entropy, mean over its steps)")
    return _layout(fig, title, height=480, hovermode="closest")


def _find_key(key: str | None, front: pd.DataFrame | None, references: pd.DataFrame | None, x: str) -> tuple[float, float] | None:
    """(x, accuracy %) of ``key``: a front row (the pool's best first) or a reference."""
    if not key:
        return None
    for df in (front, references):
        if _empty(df):
            continue
        rows = df[df["key"] == key]
        if len(rows):
            if "is_best" in rows:
                rows = rows.sort_values("is_best", ascending=False)
            return float(rows[x].iloc[0]), 100 * float(rows["accuracy"].iloc[0])
    return None


# ---------------------------------------------------------------------------- training
def training_curves_figure(epochs: pd.DataFrame) -> go.Figure:
    """Training of the sandwich (Alg. 2) per epoch: losses, validation accuracy, learning rate.

    Top: the loss of phi^max (cross-entropy with the labels) and of the
    medium and minimal subnets (KL divergence to phi^max, inplace
    distillation), log y; middle: validation accuracy (%) of phi^max and
    phi^min (BN statistics quickly re-estimated on ``eval_calib_images``
    training images each epoch); bottom: the learning rate.
    """
    title = "Training curves"
    if _empty(epochs):
        return empty_figure(title)
    e = epochs.sort_values("epoch")
    x = e["epoch"].to_numpy()
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.4, 0.4, 0.2],
                        subplot_titles=("loss (log scale)", "validation accuracy, quick BN re-estimate (%)", "learning rate"))
    specs = [(1, "loss_max", "φ<sup>max</sup>: cross-entropy", 0, "%{y:.4f}"),
             (1, "loss_medium", "medium: KL distillation", 1, "%{y:.4f}"),
             (1, "loss_min", "φ<sup>min</sup>: KL distillation", 2, "%{y:.4f}"),
             (2, "val_acc_max", "φ<sup>max</sup> accuracy", 0, "%{y:.2f}%"),
             (2, "val_acc_min", "φ<sup>min</sup> accuracy", 2, "%{y:.2f}%"),
             (3, "lr", "learning rate", 4, "%{y:.4g}")]
    traces = []
    for row, col, name, ci, val in specs:
        y = pd.to_numeric(e[col], errors="coerce").to_numpy(float) * (100 if row == 2 else 1)
        dash = "dash" if col.endswith("_min") else "solid"
        traces.append(_scatter(x=x, y=y, mode="lines+markers" if len(x) <= 60 else "lines", name=name, marker=dict(size=4),
                                 line=dict(color=SERIES_COLORS[ci], dash=dash if row == 2 else "solid"), **_on(row),
                                 hovertemplate=f"{name}<br>epoch %{{x}}: {val}<extra></extra>"))
    fig.add_traces(traces)
    fig.update_yaxes(type="log", title_text="loss", dtick="D2", tickformat=".2~g", row=1, col=1)  # 0.05, 0.1, 0.2, 0.5, 1, 2
    fig.update_yaxes(title_text="accuracy (%)", ticksuffix="%", row=2, col=1)
    fig.update_yaxes(title_text="lr", tickformat=".2~g", rangemode="tozero", row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=3, col=1)
    return _layout(fig, title, height=700, hovermode="x unified")


# ---------------------------------------------------------------------------- several runs
RUN_CURVES = {
    "val_acc_max": ("validation accuracy of φ<sup>max</sup> (%)", 100.0),
    "val_acc_min": ("validation accuracy of φ<sup>min</sup> (%)", 100.0),
    "loss_max": ("loss of φ<sup>max</sup> (cross-entropy)", 1.0),
}


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with ``weight`` in [0, 1) (0: the raw values), as TensorBoard's slider:
    s_e = weight * s_(e-1) + (1 - weight) * v_e, started at the first value; NaN values are skipped."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight} must be in [0, 1)")
    out = np.full(len(values), np.nan)
    last = np.nan
    for i, v in enumerate(np.asarray(values, dtype=float)):
        if np.isnan(v):
            continue
        last = v if np.isnan(last) else weight * last + (1.0 - weight) * v
        out[i] = last
    return out


def runs_curves_figure(runs: dict[str, pd.DataFrame], smoothing: float = 0.0) -> go.Figure:
    """Training curves of several runs overlaid: one colour per run, a row per curve (:data:`RUN_CURVES`).

    ``runs`` maps a run's name to its ``RunData.epochs``; ``smoothing`` is the
    weight of :func:`smooth` (the raw points stay as faint markers when > 0).
    """
    title = "Training curves of the selected runs" + (f" (smoothed, weight {smoothing:.2f})" if smoothing else "")
    runs = {n: e for n, e in runs.items() if not _empty(e)}
    if not runs:
        return empty_figure(title)
    fig = make_subplots(rows=len(RUN_CURVES), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[t for t, _ in RUN_CURVES.values()])
    traces = []
    for i, (name, epochs) in enumerate(runs.items()):
        e = epochs.sort_values("epoch")
        x, color = e["epoch"].to_numpy(), SERIES_COLORS[i % len(SERIES_COLORS)]
        for row, (col, (label, scale)) in enumerate(RUN_CURVES.items(), start=1):
            raw = pd.to_numeric(e[col], errors="coerce").to_numpy(float) * scale
            if smoothing:
                traces.append(_scatter(x=x, y=raw, mode="markers", marker=dict(size=4, color=_rgba(color, 0.3)), name=name,
                                       legendgroup=name, showlegend=False, hoverinfo="skip", **_on(row)))
            traces.append(_scatter(x=x, y=smooth(raw, smoothing) if smoothing else raw, mode="lines", name=name,
                                   legendgroup=name, showlegend=row == 1, line=dict(color=color, width=2), **_on(row),
                                   hovertemplate=f"<b>{name}</b><br>epoch %{{x}}: %{{y:.4g}}<extra></extra>"))
    fig.add_traces(traces)
    fig.update_yaxes(ticksuffix="%", row=1, col=1)
    fig.update_yaxes(ticksuffix="%", row=2, col=1)
    fig.update_yaxes(type="log", tickformat=".2~g", row=3, col=1)
    fig.update_xaxes(title_text="epoch", row=len(RUN_CURVES), col=1)
    return _layout(fig, title, height=720, hovermode="x unified", legend=dict(groupclick="togglegroup"))
