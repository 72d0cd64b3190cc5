"""Derived tables the figures and the app show: best subnets, width profiles, the pool table.

Pure functions of :class:`~pssviz.load.RunData` tables, so notebooks can call
them and tests can pin them.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd

from pss.errors import PssError
from pss.evaluate.selection import FrontPoint, best_within, dominated_by, pareto_front
from pss.io.run import RunDir
from pss.io.run import subnet_for_budget as _subnet_for_budget
from pss.problem.problem import Problem
from pss.units import format_cost

from .load import RunData, width_ratios, widths_of


def entries_at(data: RunData, epoch: int | None = None) -> pd.DataFrame:
    """Pool entries pi^t at ``epoch`` (default: the newest), best first within each pool."""
    if not len(data.entries):
        return data.entries
    epoch = data.last_epoch if epoch is None else int(epoch)
    return data.entries[data.entries["epoch"] == epoch]


def sampled_in_epoch(data: RunData, epoch: int | None = None) -> pd.DataFrame:
    """:func:`entries_at` with ``sampled_in_epoch``: how often each entry was sampled during ``epoch`` itself.

    Snapshots store ``times_sampled`` since the entry entered its pool; the count in
    one epoch is its difference to the previous snapshot (same pool, same key), or
    the whole count for an entry that entered during the epoch. (An entry evicted
    and pushed again within the epoch restarts its count: it is then undercounted.)
    """
    at = entries_at(data, epoch).copy()
    if not len(at):
        return at.assign(sampled_in_epoch=pd.Series(dtype="int64"))
    epoch = data.last_epoch if epoch is None else int(epoch)
    earlier = data.entries[data.entries["epoch"] < epoch]
    before = pd.Series(dtype="int64")
    if len(earlier):
        previous = earlier[earlier["epoch"] == earlier["epoch"].max()]
        before = previous.set_index(["pool", "key"])["times_sampled"]
    index = pd.MultiIndex.from_arrays([at["pool"], at["key"]])
    prior = before.reindex(index).to_numpy(dtype=float)
    now = at["times_sampled"].to_numpy(dtype=float)
    at["sampled_in_epoch"] = np.where(np.isnan(prior) | (prior > now), now, now - prior).astype("int64")
    return at


def best_entries(data: RunData, epoch: int | None = None, k: int = 1) -> pd.DataFrame:
    """The top-``k`` entries of each pool by the metric m at ``epoch``."""
    at = entries_at(data, epoch)
    return at[at["rank"] < k].sort_values(["pool", "rank"]).reset_index(drop=True)


@lru_cache(maxsize=32)
def _problem(essentials: str, run_dir: str) -> Problem:
    return RunDir(run_dir).read_problem(json.loads(essentials))[1]


def run_problem(data: RunData) -> Problem:
    """The run's :class:`pss.problem.problem.Problem` (space S, cost model C), rebuilt from run.json without torch."""
    ds = data.run["dataset"]
    essentials = {"config": data.run["config"], "dataset": {"num_classes": ds["num_classes"], "in_channels": ds["in_channels"]}}
    return _problem(json.dumps(essentials, sort_keys=True), str(data.path))  # the path: a latency run's own LUT


def uniform_reference(data: RunData, cost: float, resolution: int | None = None) -> dict:
    """The uniform-width subnet (every o_i = w * o_max, Sec. 4 baselines) whose cost is nearest ``cost``.

    Searched over w in [lower_bound, 1] at ``resolution`` (default: the largest);
    returns {"multiplier", "key", "cost", "resolution"}.
    """
    ctx = run_problem(data)
    space, costs = ctx.space, ctx.cost_model
    resolution = int(resolution or space.resolutions[-1])
    multipliers = np.linspace(space.lower_bound, 1.0, 101)
    structures = [space.uniform_structure(float(w), resolution) for w in multipliers]
    widths = np.array([s.widths for s in structures], dtype=np.int64)
    values = costs.cost_array(data.constraint, widths, np.full(len(structures), resolution, dtype=np.int64))
    i = int(np.argmin(np.abs(values - cost)))
    return {"multiplier": float(multipliers[i]), "key": structures[i].key, "cost": float(values[i]), "resolution": resolution}


def width_profiles(data: RunData, epoch: int | None = None, pools: list[int] | None = None, reference: bool = True) -> pd.DataFrame:
    """Tidy o_i/o_max per layer of each pool's best subnet (and its uniform-width reference).

    Columns: pool, label, series ("best" or "uniform"), layer, name, group, ratio,
    width, o_max, resolution, cost. The uniform reference has the same
    resolution and (nearest) the same cost as the pool's best.
    """
    best = best_entries(data, epoch)
    if pools is not None:
        best = best[best["pool"].isin(pools)]
    dims = data.dimensions
    rows = []
    labels = dict(zip(data.budgets["pool"], data.budgets["label"]))
    for _, e in best.iterrows():
        series = [("best", e["key"], e["cost"], np.nan)]
        if reference:
            ref = uniform_reference(data, float(e["cost"]), int(e["resolution"]))
            series.append(("uniform", ref["key"], ref["cost"], ref["multiplier"]))
        for name, key, cost, multiplier in series:
            ratio = width_ratios([key], dims)[0]
            for i, r in enumerate(ratio):
                rows.append({
                    "pool": int(e["pool"]), "label": labels.get(int(e["pool"])), "series": name, "layer": i,
                    "name": dims["name"].iloc[i], "group": dims["group"].iloc[i], "ratio": float(r),
                    "width": int(round(r * dims["o_max"].iloc[i])), "o_max": int(dims["o_max"].iloc[i]),
                    "resolution": int(key.split("-", 1)[0][1:]), "cost": float(cost), "multiplier": multiplier,
                })
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


PROFILE_COLUMNS = ["pool", "label", "series", "layer", "name", "group", "ratio", "width", "o_max", "resolution", "cost", "multiplier"]


def channels_table(profiles: pd.DataFrame) -> pd.DataFrame:
    """The subnets of :func:`width_profiles` as rows of absolute channels: pool (1-based), subnet, input
    resolution, cost, then one column per layer holding o_i (its o_max in the last row, ``o_max``)."""
    if profiles is None or not len(profiles):
        return pd.DataFrame()
    order = profiles.drop_duplicates("layer").sort_values("layer")["name"].astype(str).tolist()
    rows = []
    for (pool, series), g in profiles.groupby(["pool", "series"], sort=False):
        g = g.sort_values("layer")
        subnet = "best" if series == "best" else f"uniform ×{float(g['multiplier'].iloc[0]):.2f}"
        rows.append({"pool": int(pool) + 1, "budget θ": g["label"].iloc[0], "subnet": subnet,
                     "r (px)": int(g["resolution"].iloc[0]), "cost": float(g["cost"].iloc[0]),
                     **dict(zip(g["name"].astype(str), g["width"].astype(int)))})
    first = profiles[profiles["series"] == profiles["series"].iloc[0]].drop_duplicates("layer").sort_values("layer")
    rows.append({"pool": None, "budget θ": "", "subnet": "o_max", "r (px)": None, "cost": None,
                 **dict(zip(first["name"].astype(str), first["o_max"].astype(int)))})
    table = pd.DataFrame(rows)
    return table[["pool", "budget θ", "subnet", "r (px)", "cost", *order]]


def key_profile(data: RunData, key: str, cost: float, pool: int, label: str, reference: bool = True) -> pd.DataFrame:
    """:func:`width_profiles` for one subnet ``key`` (the export page's chosen subnet)."""
    resolution = int(key.split("-", 1)[0][1:])
    series = [("best", key, cost, np.nan)]
    if reference:
        ref = uniform_reference(data, cost, resolution)
        series.append(("uniform", ref["key"], ref["cost"], ref["multiplier"]))
    dims = data.dimensions
    rows = []
    for name, k, c, multiplier in series:
        for i, r in enumerate(width_ratios([k], dims)[0]):
            rows.append({
                "pool": pool, "label": label, "series": name, "layer": i, "name": dims["name"].iloc[i], "group": dims["group"].iloc[i],
                "ratio": float(r), "width": int(round(r * dims["o_max"].iloc[i])), "o_max": int(dims["o_max"].iloc[i]),
                "resolution": resolution, "cost": float(c), "multiplier": multiplier,
            })
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def width_matrix(data: RunData, epoch: int | None = None) -> pd.DataFrame:
    """Pools x layers matrix of o_i/o_max of each pool's best subnet (rows: pool labels)."""
    best = best_entries(data, epoch)
    if not len(best):
        return pd.DataFrame(columns=list(data.dimensions["name"]))
    ratios = width_ratios(best["key"], data.dimensions)
    labels = dict(zip(data.budgets["pool"], data.budgets["label"]))
    return pd.DataFrame(ratios, index=[labels.get(int(p), f"pool {p}") for p in best["pool"]], columns=list(data.dimensions["name"]))


def pool_table(data: RunData, epoch: int | None = None, pool: int | None = None) -> pd.DataFrame:
    """The sortable pool table: one row per entry, with calibrated accuracy where the front has it.

    Accuracy is joined only when the front was calibrated at ``epoch`` (an older
    front describes other weights).
    """
    at = entries_at(data, epoch)
    if pool is not None:
        at = at[at["pool"] == pool]
    table = at[["pool", "rank", "key", "resolution", "m", "q", "times_sampled", "macs", "params"]].copy()
    epoch = data.last_epoch if epoch is None else int(epoch)
    if data.front is not None and data.front_epoch == epoch and len(table):
        acc = data.front[["pool", "key", "accuracy", "is_best"]]
        table = table.merge(acc, on=["pool", "key"], how="left")
    else:
        table["accuracy"] = np.nan
        table["is_best"] = False
    table["is_best"] = table["is_best"].fillna(False).astype(bool)
    return table.reset_index(drop=True)


def best_within_budget(front: pd.DataFrame, budget: float, column: str = "cost") -> pd.Series | None:
    """Eq. 5 over the whole calibrated front: the most accurate candidate with ``column`` <= budget.

    Ties go to the cheaper subnet. ``None`` when nothing fits.
    """
    if front is None or not len(front):
        return None
    points = [FrontPoint(str(i), float(a), {column: float(c)}) for i, (a, c) in enumerate(zip(front["accuracy"], front[column]))]
    best = best_within(points, budget, column)
    return None if best is None else front.iloc[int(best.key)]


def front_subnets(data: RunData, kind: str | None = None) -> pd.DataFrame:
    """Every calibrated subnet a budget can choose, with Pareto flags in cost ``kind`` (default: the
    front's constraint): :func:`subnet_table` of the run's front and references."""
    if data.front is None:
        return pd.DataFrame()
    return subnet_table(data.front, data.references, kind or data.front_constraint or data.constraint)


def subnet_table(front: pd.DataFrame | None, references: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """The pools' candidates, then the max and min references (each structure once), with Pareto flags.

    Columns: the ``front`` table's, ``source`` ("pool 3", "max φ", "min φ"), ``is_reference``,
    ``pareto`` (on the non-dominated front of validation accuracy against ``kind``), ``dominated_by``
    (the key of the most accurate subnet that costs no more and beats it; None on the front) and
    ``cost`` in ``kind``.
    """
    parts = []
    if front is not None and len(front):
        parts.append(front.assign(source=[f"pool {int(t)}" for t in front["pool"]], is_reference=False))
    if references is not None and len(references):
        names = [f"{n} φ" for n in references["name"]]
        parts.append(references.drop(columns="name").assign(
            pool=-1, candidate=-1, label=names, theta=np.nan, delta=np.nan, m=np.nan, fresh_m=np.nan, is_best=False,
            source=names, is_reference=True))
    if not parts:
        return pd.DataFrame(columns=["key", "accuracy", "cost", "source", "is_reference", "pareto", "dominated_by"])
    table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    table = table.drop_duplicates("key", keep="first").reset_index(drop=True)
    table["cost"] = table[kind].astype(float)
    points = [FrontPoint(k, float(a), {kind: float(c)}) for k, a, c in zip(table["key"], table["accuracy"], table["cost"])
              if np.isfinite(c)]
    on_front = {p.key for p in pareto_front(points, kind)}
    table["pareto"] = table["key"].isin(on_front)
    beaten = {p.key: dominated_by(p, points, kind) for p in points if p.key not in on_front}
    table["dominated_by"] = pd.Series([None if beaten.get(k) is None else beaten[k].key for k in table["key"]], dtype=object)
    return table


def subnet_for_budget(data: RunData, budget: float, kind: str | None = None) -> pd.Series | None:
    """The subnet `pss export --budget` writes for ``budget`` (a ceiling), as a row of :func:`front_subnets`.

    The choice is :func:`pss.io.run.subnet_for_budget`'s, the very function the CLI calls, so the
    dashboard and `pss export` cannot disagree. None when nothing fits.
    """
    if data.front_doc is None:
        return None
    kind = kind or data.front_constraint or data.constraint
    try:
        _, candidate = _subnet_for_budget(data.front_doc, budget, kind)
    except PssError:
        return None
    table = front_subnets(data, kind)
    return table[table["key"] == candidate["key"]].iloc[0]


def budget_range(data: RunData, column: str = "cost") -> tuple[float, float]:
    """The export slider's range: C(min) .. C(max) over every calibrated subnet (references included).

    The min subnet is the cheapest structure of S, so every budget on the slider has a subnet to export.
    """
    if data.front is None or not len(data.front):
        return (0.0, 0.0)
    values = list(data.front[column])
    if data.references is not None:
        values += list(data.references[column])
    values = [float(v) for v in values if pd.notna(v)]
    return min(values), max(values)


def budget_stops(data: RunData, kind: str | None = None, steps: int = 200) -> dict[str, float]:
    """The budget slider's stops, in human units ("8.79M MACs") -> budget.

    ``steps`` equal steps from C(min) to C(max) plus every calibrated subnet's own cost, so each
    subnet can be chosen exactly; of values that print alike, the larger (a ceiling keeps both).
    """
    kind = kind or data.front_constraint or data.constraint
    lo, hi = budget_range(data, kind)
    table = front_subnets(data, kind)
    out: dict[str, float] = {}
    for v in sorted({float(v) for v in np.linspace(lo, hi, steps + 1)} | {float(v) for v in table["cost"]}):
        out[format_cost(v, kind)] = v
    return out


def front_budgets(data: RunData) -> pd.DataFrame:
    """The budgets the calibrated front was made for, in the ``budgets`` table's shape.

    Usually the run's own Theta; after `pss search --budgets ...` they are the
    searched ones, so labels and colours must come from the front, not from
    run.json by index.
    """
    if data.front is None or not len(data.front):
        return data.budgets
    b = data.front.drop_duplicates("pool")[["pool", "theta", "delta", "label"]].sort_values("pool").reset_index(drop=True)
    b.insert(1, "kind", data.front_constraint or data.constraint)
    b["lo"], b["hi"] = b["theta"] - b["delta"], b["theta"] + b["delta"]
    return b[["pool", "kind", "theta", "delta", "lo", "hi", "label"]]


def samples_at(data: RunData, epoch: int | None = None) -> pd.DataFrame:
    """The subnets trained in ``epoch`` (default: the newest) with their cost and mean training loss.

    One row per distinct structure: key, resolution, cost (the run's
    constraint), times (how often it was trained), loss (mean CE), rel_loss
    (mean of loss / max-subnet loss at the same step, PSE-Net Eq. 19's proxy).
    """
    columns = ["key", "resolution", "cost", "times", "loss", "rel_loss"]
    s = data.samples
    if s is None or not len(s):
        return pd.DataFrame(columns=columns)
    epoch = int(s["epoch"].max()) if epoch is None else int(epoch)
    s = s[s["epoch"] == epoch]
    if not len(s):
        return pd.DataFrame(columns=columns)
    g = s.assign(rel=s["loss"] / s["max_loss"]).groupby("key", sort=False).agg(times=("loss", "size"), loss=("loss", "mean"), rel_loss=("rel", "mean")).reset_index()
    widths = widths_of(g["key"])
    res = np.array([int(k.split("-", 1)[0][1:]) for k in g["key"]], dtype=np.int64)
    ctx = run_problem(data)
    g["resolution"] = res
    g["cost"] = ctx.cost_model.cost_array(data.constraint, widths, res).astype(float)
    return g[columns]


def config_differences(runs: dict[str, RunData]) -> pd.DataFrame:
    """The config keys whose values differ between ``runs`` (name -> run), one column per run, plus the
    number of epochs finished and the dataset; empty when the runs share every key."""
    configs = {name: dict(data.run.get("config") or {}) for name, data in runs.items()}
    keys = sorted({k for c in configs.values() for k in c})
    missing = "—"  # a key a run's config lacks (written by an older pss) differs even from an explicit null
    differing = [k for k in keys if len({json.dumps(c.get(k, missing), sort_keys=True, default=str) for c in configs.values()}) > 1]
    rows = {k: {name: _config_text(c.get(k, missing)) for name, c in configs.items()} for k in differing}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(runs))
    table.index.name = "config key"
    return table


def _config_text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value)
