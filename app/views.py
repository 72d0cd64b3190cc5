"""The pages. Each run page is a function of a loaded run; the Study page, of a study directory.
Figures come from pssviz.figures and pssviz.study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import pss
import state
import study_page
from layout import RUN_PAGE_NAMES, _chart, metric_row
from teach import symbol_help
from pssviz import analysis, figures
from pssviz import eas as easviz
from pssviz.load import RunData
from texts import CHARTS, INTRO

COST_LABELS = {"macs": "MACs", "params": "parameters", "latency": "latency (ms)"}


def _from_url(key: str, param: str, options: list, parse) -> None:
    """Seed widget ``key`` from the link's ?param= on its first draw (ignored when unreadable or not an option)."""
    if key in st.session_state or param not in st.query_params:
        return
    try:
        value = parse(st.query_params[param], options)
    except (ValueError, TypeError, pss.PssError):
        return
    if value in options:
        st.session_state[key] = value


def _epoch_slider(data: RunData, key: str) -> int:
    """The epoch of this page's views; shared through the URL (?epoch=12) with the other pages."""
    epochs = [int(e) for e in data.epochs["epoch"]]
    if len(epochs) == 1:
        st.caption(f"Epoch {epochs[0]} (the only finished epoch so far)")
        return epochs[0]
    _from_url(key, "epoch", epochs, lambda text, _: int(text))
    if key not in st.session_state:
        st.session_state[key] = epochs[-1]
    epoch = int(st.select_slider("Epoch", options=epochs, key=key, help="Pools as they were at the end of this epoch."))
    st.query_params["epoch"] = str(epoch)
    return epoch


def _nearest_option(text: str, stops: dict[str, float]) -> str:
    """The slider stop nearest a linked budget (?budget=8.299M; the URL holds 4 digits, the stops are exact)."""
    value = pss.parse_quantity(text)
    return min(stops, key=lambda o: abs(stops[o] - value))


def _no_epochs(data: RunData) -> bool:
    if len(data.epochs):
        return False
    st.info(
        f"No epoch of **{data.name}** has finished yet. This page fills in as `pss train` writes "
        f"`snapshots/epoch_NNNN.json` (the view refreshes by itself while *Follow training* is on)."
    )
    return True


def _strategy(data: RunData) -> str:
    return str(data.run.get("config", {}).get("strategy", "pss"))


STRATEGY_NAMES = {
    "uniform": "US-Net uniform-width sandwich", "mutual": "MutualNet (width and resolution)",
    "random": "random structures from S (BigNAS/OFA style)", "pse": "PSE-Net parallel subnets",
}


def _no_pools(data: RunData, what: str) -> bool:
    """Strategies other than PSS keep no pools: say so, and what the page shows instead."""
    if len(data.pools) or _strategy(data) == "pss":
        return False
    st.info(
        f"**{data.name}** was trained with strategy `{_strategy(data)}` ({STRATEGY_NAMES.get(_strategy(data), '')}), "
        f"which keeps no subnet pools, so there is no {what} to show. {'Below: the subnets it trained.' if what == 'pool' else ''} "
        "Its calibrated subnets per budget come from `pss search` (Front & Export)."
    )
    return True


def _cost_label(data: RunData) -> str:
    return COST_LABELS.get(data.constraint, data.constraint)


# ---------------------------------------------------------------------------- Overview
def overview(data: RunData, others: list[RunData]) -> None:
    st.markdown(INTRO)
    info = data.info()
    info.update(easviz.superclass_settings(data.run, state.load_eas(data).doc))  # EAS: superclass map, superclass dropout
    with metric_row():
        st.metric("Status", info["status"], width="content")
        st.metric("Epochs", info["epochs"], width="content")
        if len(data.epochs):
            last = data.epochs.iloc[-1]
            if pd.notna(last["val_acc_max"]):
                st.metric("Val. accuracy max / min", f"{last['val_acc_max']:.1%} / {last['val_acc_min']:.1%}", width="content")
            st.metric("Images / s", f"{last['images_per_second']:.0f}", width="content")
    left, right = st.columns([3, 2])
    with left:
        if not _no_epochs(data):
            _chart(figures.training_curves_figure(data.epochs), "curves", CHARTS["curves"])
    with right:
        st.subheader("Run")
        st.dataframe(pd.DataFrame({"value": [str(v) for v in info.values()]}, index=list(info.keys())), width="stretch")
        st.subheader(f"Budgets θ ± δ ({_cost_label(data)})")
        b = data.budgets.assign(theta=data.budgets["theta"].map(pss.format_quantity), delta=data.budgets["delta"].map(pss.format_quantity))
        b["pool"] = b["pool"] + 1
        st.dataframe(b[["pool", "label", "theta", "delta"]], hide_index=True, width="stretch")
    if others:
        _compared_runs(data, others)


def _compared_runs(data: RunData, others: list[RunData]) -> None:
    """The run and the runs picked under *Compare with*: curves overlaid, and what differs in their configs."""
    st.subheader(f"{data.name} and {len(others)} compared run{'s' if len(others) > 1 else ''}")
    runs = {data.name: data, **{o.name: o for o in others if o.name != data.name}}
    smoothing = st.slider("Smoothing", 0.0, 0.95, 0.0, 0.05, key="smoothing",
                          help="Exponential moving average over epochs (0 = the raw curves; raw points stay faint).")
    _chart(figures.runs_curves_figure({n: r.epochs for n, r in runs.items()}, smoothing), "runs_curves", CHARTS["runs_curves"])
    diff = analysis.config_differences(runs)
    if len(diff):
        st.dataframe(diff, width="stretch", key="runs_diff")
        st.caption(CHARTS["runs_diff"])
    else:
        st.caption("These runs share every config key (they differ only in what training did, e.g. an unfinished run).")


# ---------------------------------------------------------------------------- Pools
def pools(data: RunData, others: list[RunData]) -> None:
    if _no_epochs(data):
        return
    if _no_pools(data, "pool"):
        epoch = _epoch_slider(data, "pools_epoch")
        _chart(figures.samples_figure(analysis.samples_at(data, epoch), data.budgets, epoch, _cost_label(data)), "samples",
               "Every dot is a subnet φ the strategy trained in this epoch: its cost C(φ) against its mean training loss; "
               "PSE-Net builds its search prior ĥ(A|ε) from exactly these losses (Eq. 17-20).")
        return
    # A multi-constraint run (extra_constraints, PSS-Net_M) has pools of several kinds whose costs are in
    # different units: show one kind at a time. (The other pages show the primary kind only.)
    kinds = data.kinds
    kind, budgets, pools_ = data.constraint, data.budgets, data.pools
    if len(kinds) > 1:
        kind = st.radio("Constraint", kinds, key="pools_kind", horizontal=True, format_func=lambda c: COST_LABELS.get(c, c))
        budgets = budgets[budgets["kind"] == kind]
        pools_ = pools_[pools_["kind"] == kind] if "kind" in pools_.columns else pools_
    shown = set(budgets["pool"])
    cost_label = COST_LABELS.get(kind, kind)
    view = st.segmented_control(
        "View", POOL_VIEWS, default=POOL_VIEWS[0], key="pools_view",
        help=symbol_help("π", "m") + "\n\nOne epoch: every entry, Alg. 3's counters and the pool table. Play: the entries epoch by epoch. "
        "All epochs: how each pool evolved.",
    )
    if view == "Play over epochs":
        _chart(figures.pool_entries_animation(data.entries[data.entries["pool"].isin(shown)] if len(kinds) > 1 else data.entries,
                                              budgets, cost_label=cost_label), "animation", CHARTS["animation"])
        return
    if view == "Over all epochs":
        labels = dict(zip(budgets["pool"], budgets["label"]))
        names = {f"pool {t + 1} (θ = {labels[t]})": t for t in budgets["pool"]}
        picked = st.multiselect("Pools", list(names), default=list(names), key="evolution_pools",
                                help="Show fewer pools to follow one; the legend also toggles them.")
        chosen = pools_[pools_["pool"].isin([names[n] for n in picked])]
        _chart(figures.pool_evolution_figure(chosen, cost_label=cost_label, n_pools=len(budgets)), "evolution", CHARTS["evolution"])
        return
    epoch = _epoch_slider(data, "pools_epoch")
    at = analysis.entries_at(data, epoch)
    at = at[at["pool"].isin(shown)] if len(kinds) > 1 else at
    _chart(figures.pool_entries_figure(at, budgets, epoch=epoch, cost_label=cost_label), "entries", CHARTS["entries"])
    _chart(figures.pool_counters_figure(pools_, epoch), "counters", CHARTS["counters"])
    st.subheader("Pool table")
    labels = dict(zip(budgets["pool"], budgets["label"]))
    choice = st.selectbox("Pool", ["all pools"] + [f"pool {t + 1} (θ = {labels[t]})" for t in budgets["pool"]],
                          key="table_pool" if len(kinds) == 1 else f"table_pool_{kind}")
    pool = None if choice == "all pools" else int(choice.split()[1]) - 1
    table = analysis.pool_table(data, epoch, pool)
    table = table[table["pool"].isin(shown)] if len(kinds) > 1 else table
    st.dataframe(
        _readable_pool_table(table),
        hide_index=True,
        width="stretch",
        column_config={
            "pool": st.column_config.NumberColumn("pool", help="1 = the cheapest budget θ"),
            "rank": st.column_config.NumberColumn("rank", help="by m within the pool, 1 = best"),
            "m": st.column_config.NumberColumn("m", format="%.4f", help=symbol_help("m")),
            "q": st.column_config.NumberColumn("q", format="%.3f", help=symbol_help("q") + " (at the end of this epoch)"),
            "sampled": st.column_config.NumberColumn("sampled", help="times drawn since the entry joined its pool"),
            "MACs": st.column_config.NumberColumn("MACs", format="compact"),
            "params": st.column_config.NumberColumn("params", format="compact"),
            "val. accuracy": st.column_config.TextColumn("val. accuracy", help="after calibration (Alg. 1); blank: not calibrated"),
            "chosen": st.column_config.TextColumn("chosen", help="✓ the pool's best after calibration (Eq. 5)"),
        },
        key="pool_table",
    )
    st.caption(CHARTS["table"])


POOL_VIEWS = ["At one epoch", "Play over epochs", "Over all epochs"]


def _readable_pool_table(table: pd.DataFrame) -> pd.DataFrame:
    """The pool table for people: 1-based pool and rank, no literal None, accuracy as text only where measured."""
    out = table.rename(columns={"times_sampled": "sampled", "macs": "MACs", "resolution": "r (px)"}).copy()
    out["pool"] = out["pool"] + 1
    out["rank"] = out["rank"] + 1
    out["val. accuracy"] = [f"{a:.2%}" if pd.notna(a) else "" for a in out.pop("accuracy")]
    out["chosen"] = np.where(out.pop("is_best"), "✓", "")
    return out


# ---------------------------------------------------------------------------- Sampling
def sampling(data: RunData, others: list[RunData]) -> None:
    if _no_epochs(data) or _no_pools(data, "sampling probability p, η or q"):
        return
    log = st.toggle("Logarithmic y axis", value=False, key="prob_log", help=symbol_help("p", "η"))
    _chart(figures.sampling_probability_figure(data.pools, data.epochs, log=log), "probabilities", CHARTS["probabilities"])
    st.subheader("Inside one pool: q against actual samples")
    c1, c2 = st.columns([1, 3])
    with c1:
        labels = list(data.budgets["label"])
        label = st.selectbox("Pool", labels, index=len(labels) // 2, key="dist_pool", help=symbol_help("π", "q"))
        pool = labels.index(label)
    with c2:
        epoch = _epoch_slider(data, "dist_epoch")
    _chart(figures.pool_distribution_figure(analysis.sampled_in_epoch(data, epoch), pool, label), "distribution", CHARTS["distribution"])


# ---------------------------------------------------------------------------- Widths
def widths(data: RunData, others: list[RunData]) -> None:
    if _no_epochs(data):
        return
    if _no_pools(data, "pool width profile"):
        if data.front is not None and len(data.front):
            best = data.front[data.front["is_best"]]
            for _, row in best.iloc[[0, len(best) // 2, len(best) - 1]].drop_duplicates("key").iterrows():
                _chart(figures.width_profile_figure(_profile_of(data, row)), f"profile_{row['pool']}")
            st.caption(CHARTS["profiles"])
        return
    epoch = _epoch_slider(data, "widths_epoch")
    labels = list(data.budgets["label"])
    default = sorted({labels[0], labels[len(labels) // 2], labels[-1]}, key=labels.index)
    chosen = st.multiselect("Pools to compare", labels, default=default, key="widths_pools")
    pools_ = [labels.index(c) for c in chosen]
    if pools_:
        profiles = analysis.width_profiles(data, epoch, pools_)
        _chart(figures.width_profile_figure(profiles), "profiles", CHARTS["profiles"])
        table = analysis.channels_table(profiles)
        table["cost"] = [pss.format_cost(c, data.constraint) if pd.notna(c) else "" for c in table["cost"]]
        table["pool"] = [str(int(v)) if pd.notna(v) else "" for v in table["pool"]]
        table["r (px)"] = [str(int(v)) if pd.notna(v) else "" for v in table["r (px)"]]
        st.dataframe(table, hide_index=True, width="stretch", key="channels")
        st.caption(CHARTS["channels"])
    else:
        st.info("Pick at least one pool to draw its width profile.")
    _chart(figures.width_heatmap_figure(analysis.width_matrix(data, epoch)), "heatmap", CHARTS["heatmap"])


# ---------------------------------------------------------------------------- Front & Export
def front_export(data: RunData, others: list[RunData]) -> None:
    if data.front is None:
        _offer_calibration(data)
        return
    if data.front_epoch != data.last_epoch:
        st.warning(
            f"This front was calibrated at epoch {data.front_epoch}; training has reached epoch {data.last_epoch}. "
            "Recalibrate to see the current weights."
        )
        _calibrate_button(data, "Recalibrate now")
    columns = [c for c in ("macs", "params", "latency") if data.front[c].notna().all()]
    constraint = data.constraint if data.constraint in columns else columns[0]
    if len(columns) > 1:
        constraint = st.radio(
            "Constraint", columns, index=columns.index(constraint), format_func=lambda c: COST_LABELS.get(c, c),
            horizontal=True, key="constraint",
        )
    label = COST_LABELS.get(constraint, constraint)
    table = analysis.front_subnets(data, constraint)
    budgets = analysis.budget_stops(data, constraint)
    options = list(budgets)
    key = f"budget_{constraint}"
    _from_url(key, "budget", options, lambda text, _: _nearest_option(text, budgets))
    if key not in st.session_state:
        st.session_state[key] = options[len(options) // 2]
    shown = st.select_slider(
        f"Budget ({label}, a ceiling)", options=options, key=key,
        help=symbol_help("θ", "C(·)") + "\n\nThe most accurate calibrated subnet (validation accuracy, Eq. 5) whose cost is at most this value: "
        "the same choice as `pss export --budget`. The slider spans the min subnet's cost to the max subnet's.",
    )
    budget = budgets[shown]
    st.query_params["budget"] = pss.format_quantity(budget)
    chosen = analysis.subnet_for_budget(data, budget, constraint)
    other_fronts = {o.name: (o.front, o.references) for o in others if o.front is not None}
    left, right = st.columns([3, 2])
    with left:
        fig = figures.front_figure(
            data.front, data.references, x=constraint, others=other_fronts or None,
            highlight_key=None if chosen is None else chosen["key"],
            budgets=analysis.front_budgets(data) if constraint == (data.front_constraint or data.constraint) else None,
            x_label=label,
        )
        fig.add_vline(x=budget, line_dash="dot", line_color="#444", annotation_text="budget")
        usable = [n for n, c in data.comparisons.items() if len(c) and c["constraint"].iloc[0] == constraint]
        if usable:
            shown = st.multiselect("Overlay comparisons (`pss compare`)", usable, default=usable[:1], key=f"comparisons_{constraint}")
            for name in shown:
                figures.add_comparison(fig, data.comparisons[name], name)
        marked = _table_selection(table)
        if marked is not None:
            row = table.iloc[marked]
            fig.add_scatter(x=[row[constraint]], y=[100 * row["accuracy"]], mode="markers", name="table row",
                            marker=dict(symbol="square-open", size=22, color="#d62728", line=dict(width=3)),
                            text=[row["key"]], hovertemplate="<b>table row</b><br>%{text}<extra></extra>")
        _chart(fig, "front", CHARTS["front"])
        if others and not other_fronts:
            st.caption("The runs picked for comparison are not calibrated, so they are not overlaid.")
    with right:
        st.subheader("Chosen subnet")
        if chosen is None:
            st.warning(f"No calibrated subnet costs at most {pss.format_quantity(budget)} {label}; raise the budget.")
        else:
            _chosen_card(data, chosen, constraint)
    if chosen is not None:
        _chart(figures.width_profile_figure(_profile_of(data, chosen)), "chosen_profile", CHARTS["selected_profile"])
    st.caption(CHARTS["export"])
    st.subheader("Calibrated subnets")
    if data.front_doc and not data.front_doc.get("test_images"):
        st.caption("This run has no test split (made before pss 0.2, or test_split=false): the accuracies below are on the "
                   "validation split that also chose the subnets, so they are optimistic.")
    costs = ["macs", "params"] if constraint in ("macs", "params") else ["cost", "macs", "params"]
    shown = table.assign(test_ci=[_interval(r) for _, r in table.iterrows()])[
        ["source", "key", "accuracy", "test_acc", "test_ci", *costs, "m", "pareto", "dominated_by"]]
    st.dataframe(
        shown, hide_index=True, width="stretch", key="front_table", on_select="rerun", selection_mode="single-row",
        column_config={"accuracy": st.column_config.NumberColumn("val. accuracy", format="percent", help="chose the subnet (Eq. 5)"),
                       "test_acc": st.column_config.NumberColumn("test accuracy", format="percent", help="reports only; never used to choose"),
                       "test_ci": st.column_config.TextColumn("test 95% CI (images)"),
                       "cost": st.column_config.NumberColumn(label, format="compact"),
                       "macs": st.column_config.NumberColumn("MACs", format="compact"),
                       "params": st.column_config.NumberColumn("params", format="compact"),
                       "pareto": st.column_config.CheckboxColumn("Pareto", help="no other subnet is cheaper-or-equal and more accurate"),
                       "dominated_by": st.column_config.TextColumn("dominated by")},
    )
    st.caption("Click a row to mark that subnet on the front above (a square); click a column header to sort.")


def _interval(row: pd.Series) -> str:
    if not np.isfinite(row.get("test_acc", np.nan)):
        return "no test split"
    return f"{100 * row['test_lo']:.1f}–{100 * row['test_hi']:.1f}% ({int(row['test_images']):,})"


def _table_selection(front: pd.DataFrame) -> int | None:
    """Row index selected in the candidates table (its widget state is readable before it is drawn)."""
    state_ = st.session_state.get("front_table")
    try:
        rows = state_["selection"]["rows"]
    except (KeyError, TypeError):
        return None
    return int(rows[0]) if rows and int(rows[0]) < len(front) else None


def _profile_of(data: RunData, chosen: pd.Series) -> pd.DataFrame:
    return analysis.key_profile(data, str(chosen["key"]), float(chosen["cost"]), int(chosen["pool"]), str(chosen["label"]))


def _chosen_card(data: RunData, chosen: pd.Series, constraint: str) -> None:
    val_n = f"{int(chosen['val_images']):,} images" if np.isfinite(chosen.get("val_images", np.nan)) else ""
    tested = np.isfinite(chosen.get("test_acc", np.nan))
    with metric_row():
        st.metric("Val. accuracy (chose it)", f"{chosen['accuracy']:.2%}", help=f"validation split, {val_n}; Eq. 5 ranks by it",
                  width="content")
        st.metric("Test accuracy", f"{chosen['test_acc']:.1%}" if tested else "–", width="content",
                  help="test split: reports only, never chooses" if tested else "this run has no test split")
        st.metric("MACs", pss.format_quantity(chosen["macs"]), width="content")
        st.metric("Parameters", pss.format_quantity(chosen["params"]), width="content")
        st.metric("Input", f"{int(chosen['resolution'])} px", width="content")
    if tested:
        st.caption(f"Test: {chosen['test_acc']:.1%}, 95% interval {100 * chosen['test_lo']:.1f}–{100 * chosen['test_hi']:.1f}% "
                   f"on {int(chosen['test_images']):,} images (Wilson).")
    else:
        st.caption("No test split in this run: the validation accuracy also chose this subnet, so it is optimistic.")
    if "latency" in chosen and pd.notna(chosen["latency"]):
        st.caption(f"Predicted latency {chosen['latency']:.3g} ms (the run's lookup table)")
    if chosen["is_reference"]:
        st.markdown(f"The **{chosen['source']}** subnet (a reference, calibrated like the pools' candidates).")
    else:
        by = "re-measured −CE" if (data.front_doc or {}).get("selection", {}).get("metric") == "fresh" else "m"
        st.markdown(f"From pool **{chosen['label']}** (θ ± δ), candidate {int(chosen['candidate']) + 1} by {by}.")
    if chosen.get("dominated_by"):
        st.warning(f"Dominated by {chosen['dominated_by']}, which costs no more and is more accurate.")
    st.code(chosen["key"], language=None, wrap_lines=True)
    problem = state.export_problem(data)
    name = pss.export_name(chosen["key"])
    if problem:
        st.info(f"Export unavailable: {problem}.")
        return
    path, key, sig = str(data.path), str(chosen["key"]), state.pssviz.run_signature(data.path)
    st.download_button(
        "Download the exported model (.zip)",
        data=lambda: state.export_zip(path, key, sig),
        file_name=f"{name}.zip",
        mime="application/zip",
        type="primary",
        key="download_export",
        on_click="ignore",
        help="model.pt2 (torch.export) and model.onnx (ONNX opset 18), both with a dynamic batch, state_dict.pt and card.json: what `pss export` writes.",
    )
    st.caption(f"Load it without pss: `torch.export.load('{name}/model.pt2').module()(x)`")


def _offer_calibration(data: RunData) -> None:
    st.info(
        "This run has not been calibrated yet. Calibration (Alg. 1 lines 11-17) re-estimates the BN statistics of each "
        "pool's top-k subnets on training images, evaluates them on the validation split and keeps the best per pool; "
        "it writes `calibration/front.json`, which this page draws."
    )
    _calibrate_button(data, "Calibrate now")


def _calibrate_button(data: RunData, label: str) -> None:
    if not data.has_checkpoint:
        st.caption("No checkpoint.pt in this run, so it cannot be calibrated here.")
        return
    if data.status == "training":
        st.caption("The run is still training; calibrate when it has finished (or now, for the current checkpoint).")
    pools_kept = _strategy(data) == "pss"
    if not pools_kept:
        evaluations = st.number_input(
            "Subnets to evaluate per budget (random search)", min_value=1, max_value=512, value=8, key="search_evaluations",
            help="This strategy keeps no pools, so `pss search --method random` draws subnets of each budget from S, "
            "calibrates and validates them; more finds better subnets and takes longer.",
        )
    if st.button(label if pools_kept else label.replace("Calibrate", "Search"), key="calibrate", type="primary"):
        bar = st.progress(0.0, text="Calibrating…")

        def report(done: int, total: int, message: str) -> None:
            bar.progress(min(done / max(total, 1), 1.0), text=f"Calibrated {done}/{total} subnets — {message}")

        try:
            if pools_kept:
                pss.calibrate(data.path, progress=False, on_progress=report)
            else:
                pss.search(data.path, method="random", evaluations_per_budget=int(evaluations), progress=False, on_progress=report)
        except Exception as exc:  # a user-facing one-liner, never a traceback
            st.error(f"Calibration failed: {state.describe_error(exc)}")
            return
        bar.progress(1.0, text="Calibration finished")
        st.rerun()


# ---------------------------------------------------------------------------- Study
STUDY_PAGE = study_page.STUDY_PAGE  # the page itself: app/study_page.py (light imports: the first page)


PAGES = dict(zip(RUN_PAGE_NAMES, (overview, pools, sampling, widths, front_export), strict=True))
