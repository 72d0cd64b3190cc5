"""The *Superclasses (EAS)* page: the subnet an architecture generator picks for a superclass and a budget.

Registered in main.py after Front & Export (``teach.EAS_PAGE``). Tables and figures come from
:mod:`pssviz.eas`; generating and exporting call the pss API (torch loads only when a button is pressed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import pss
import state
from pssviz import eas as easviz
from pssviz.load import RunData
from teach import symbol_help
from texts import EAS_CHARTS, EAS_INTRO, EAS_TERMS
from layout import _chart, metric_row
from views import COST_LABELS, _from_url, _nearest_option

SUPERCLASS_KEY, BUDGET_KEY = "eas_superclass", "eas_budget"
EXPORT_HELD = "eas_export"  # session state: the last export's zip, for the download button


def page(data: RunData, others: list[RunData]) -> None:
    """Scenario (superclass, budget) -> its generated subnet; then every superclass at that budget, Fig. B,
    Table 1 and the generator's training. Without a generator: what to run."""
    eas = state.load_eas(data)
    for problem in eas.problems:
        st.warning(problem)
    st.markdown(EAS_INTRO)
    _settings(data, eas)
    if not eas.has_generator:
        _no_generator(data, eas)
        return
    superclass, budget, label = _scenario(eas)
    record = easviz.scenario_for(eas.scenarios, superclass, budget)
    st.subheader(f"Generated subnet: {superclass}, budget {label}")
    if record is None:
        _offer_generation(data, eas, superclass, budget, label)
    elif not record["found"]:
        st.warning(f"The generator found no architecture of {superclass} within {label}: nothing it drew fits. "
                   "Raise the budget.")
    else:
        _card(data, eas, record)
    _all_superclasses(data, eas, budget, label)
    _similarity(data, eas)
    _table(eas)
    _training(eas)


# ---------------------------------------------------------------------------- header
def _settings(data: RunData, eas: easviz.EasData) -> None:
    words = easviz.superclass_settings(data.run, eas.doc)
    rate = easviz.dropout_rate(data.run, eas.doc)
    superclass_map = eas.superclass_map if eas.has_generator else easviz.configured_map(data.run, data.path)[0]
    with metric_row():
        st.metric("Superclasses", len(superclass_map) if superclass_map is not None and len(superclass_map) else "none",
                  help=EAS_TERMS["superclass"], width="content")
        st.metric("Superclass dropout", f"{rate:g}" if rate > 0 else "none", help=EAS_TERMS["dropout"], width="content")
        st.metric("Generator", _generator_state(eas), help=EAS_TERMS["generator"], width="content")
        if eas.has_generator:
            st.metric("Scenarios generated", int((eas.scenarios["method"] == "eas").sum()) if len(eas.scenarios) else 0,
                      help="(superclass, budget) pairs the generator has an architecture for (method eas).", width="content")
    st.caption(f"Superclass map: {words['superclass map']}. Superclass dropout: {words['superclass dropout']}.")
    if superclass_map is not None and len(superclass_map):
        with st.expander(f"The superclass map ({len(superclass_map)} superclasses)", expanded=not eas.has_generator):
            st.dataframe(superclass_map, hide_index=True, width="stretch", key="eas_map")


def _generator_state(eas: easviz.EasData) -> str:
    if not eas.has_generator:
        return "none"
    return "trained" if eas.can_generate else "weights missing"


def _suggested_budgets(data: RunData) -> str:
    """Two budgets in the run's own range for the example commands (its middle and largest pool budgets)."""
    b = data.budgets[data.budgets["kind"] == data.constraint] if len(data.budgets) else data.budgets
    if data.constraint not in ("macs", "params") or not len(b):
        return "2M 3M"
    thetas = sorted(float(t) for t in b["theta"])
    return " ".join(pss.format_quantity(t) for t in dict.fromkeys([thetas[len(thetas) // 2], thetas[-1]]))


def _no_generator(data: RunData, eas: easviz.EasData) -> None:
    configured = (data.run.get("config") or {}).get("superclasses")
    st.info(
        f"**{data.name}** has no architecture generator yet, so there is no subnet per superclass to show. EAS trains "
        "one after the supernet: a small network that, given a superclass and a budget θ, proposes a subnet in one "
        "forward pass. Train it on the run's validation split (minutes on a CPU), then generate the scenarios you "
        "care about; this page shows them on its next refresh."
    )
    path = str(data.path)
    train = f"pss generate {path} --train" + ("" if configured else " --superclasses builtin")
    budgets = _suggested_budgets(data)
    st.code(f"{train}\npss generate {path} --superclass all --budget {budgets}\n"
            f"pss generate {path} --superclass all --budget {budgets} --method random   # a baseline for the table",
            language=None, wrap_lines=True)
    if not configured:
        st.caption("This run was trained without a superclass map: `--superclasses builtin` uses the dataset's own "
                   "(CIFAR-10, CIFAR-100, Fashion-MNIST), or give a JSON/YAML file mapping each superclass to its "
                   "classes. Training with `--set superclasses=builtin --set superclass_dropout=0.5` prepares the "
                   "supernet for it (EAS Sec. 3.1).")
    _, problem = easviz.configured_map(data.run, data.path)
    if problem:
        st.warning(f"The run's superclass map cannot be read: {problem}")


# ---------------------------------------------------------------------------- the scenario
def _clear_stale(key: str, options: list) -> None:
    if key in st.session_state and st.session_state[key] not in options:  # another run: other superclasses, other stops
        del st.session_state[key]


def _scenario(eas: easviz.EasData) -> tuple[str, float, str]:
    """The superclass selectbox and the budget slider (both in the link: ?superclass=tops&budget=2.5M)."""
    names = eas.superclasses
    classes = dict(zip(eas.superclass_map["superclass"], eas.superclass_map["classes"]))
    kind = eas.cost_kind
    unit = COST_LABELS.get(kind, kind)
    stops = easviz.budget_stops(eas)
    options = list(stops)
    _clear_stale(SUPERCLASS_KEY, names)
    _clear_stale(BUDGET_KEY, options)
    _from_url(SUPERCLASS_KEY, "superclass", names, lambda text, opts: next((o for o in opts if o.lower() == str(text).lower()), None))
    _from_url(BUDGET_KEY, "budget", options, lambda text, _: _nearest_option(text, stops))
    left, right = st.columns([2, 3])
    with left:
        superclass = st.selectbox(
            "Superclass", names, key=SUPERCLASS_KEY,
            format_func=lambda n: f"{names.index(n) + 1}. {n}" + (f" ({classes[n]})" if classes.get(n) else ""),
            help=EAS_TERMS["superclass"])
    recorded = easviz.recorded_budgets(eas.scenarios[eas.scenarios["superclass"] == superclass]
                                       if len(eas.scenarios) else eas.scenarios)
    if BUDGET_KEY not in st.session_state:  # first visit: the superclass's first generated budget, else the middle
        generated = recorded or easviz.recorded_budgets(eas.scenarios)
        wanted = pss.format_cost(generated[0], kind) if generated else None
        st.session_state[BUDGET_KEY] = wanted if wanted in stops else options[len(options) // 2]
    with right:
        label = st.select_slider(
            f"Budget ({unit}, a ceiling)", options=options, key=BUDGET_KEY,
            help=symbol_help("θ", "C(·)") + "\n\nThe generated subnet costs at most this. The slider spans the cheapest "
            "subnet's cost to the whole supernet's, the range the generator was trained for; budgets already generated "
            "are among its stops.")
    budget = stops[label]
    st.query_params["superclass"] = superclass
    st.query_params["budget"] = easviz.budget_text(budget, kind)
    shown = ", ".join(pss.format_cost(b, kind) for b in recorded) if recorded else "none yet"
    st.caption(f"Generated for {superclass} so far: {shown}. Other budgets are generated on request (below).")
    return superclass, budget, label


def _offer_generation(data: RunData, eas: easviz.EasData, superclass: str, budget: float, label: str) -> None:
    st.info(f"No architecture of **{superclass}** within **{label}** has been generated yet. "
            f"{EAS_TERMS['generated']} This takes seconds to a minute.")
    if not eas.can_generate:
        st.caption("generator/generator.pt is missing, so nothing can be generated here; train the generator again "
                   f"with `pss generate {data.path} --train`.")
        return
    if data.status == "training":
        st.caption("The run is still training: the generator was trained on an earlier checkpoint.")
    if st.button("Generate", key="eas_generate", type="primary",
                 help=f"`pss generate {data.path} --superclass {superclass} --budget {easviz.budget_text(budget, eas.cost_kind)}`: "
                 "the result is added to generator/scenarios.json."):
        with st.spinner(f"Generating a subnet of {superclass} within {label}: drawing, calibrating and validating candidates…"):
            try:
                pss.generate(data.path, superclass, [budget], method="eas")
            except Exception as exc:  # a user-facing one-liner, never a traceback
                st.error(f"Generating failed: {state.describe_error(exc)}")
                return
        st.rerun()


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%" if np.isfinite(value) else "–"


def _card(data: RunData, eas: easviz.EasData, r: pd.Series) -> None:
    classes = dict(zip(eas.superclass_map["superclass"], eas.superclass_map["class count"])).get(r["superclass"])
    among = f"among its {classes} classes" if classes else "among its classes"
    tested = np.isfinite(r["test_acc"])
    with metric_row():
        st.metric("Test accuracy", _percent(r["test_acc"]), width="content",
                  help=f"{r['superclass']}'s test images, {among}: reports only, never chooses" if tested
                  else "this run has no test split")
        st.metric("Val. accuracy (chose it)", _percent(r["val_acc"]), width="content",
                  help=f"{r['superclass']}'s validation images, {among}: the best of the candidates by this was kept")
        st.metric("MACs", pss.format_quantity(r["macs"]) if np.isfinite(r["macs"]) else "–", width="content",
                  help=symbol_help("C(·)"))
        st.metric("Parameters", pss.format_quantity(r["params"]) if np.isfinite(r["params"]) else "–", width="content")
        st.metric("Input", f"{int(r['resolution'])} px", width="content", help=symbol_help("r"))
        st.metric("Candidates", f"{int(r['candidates'])} of {int(r['draws'])} drawn", width="content",
                  help="architectures within the budget that were calibrated and validated, of those drawn from the "
                  "generator. " + easviz.effort_text(r) + ": the calibrated evaluations made of the N every method is "
                  "given, and how many of the generator's draws fit the budget (the others were rejected).")
    test = easviz.accuracy_text(r["test_acc"], r["test_lo"], r["test_hi"], r["test_images"])
    val = easviz.accuracy_text(r["val_acc"], r["val_lo"], r["val_hi"], r["val_images"])
    st.caption(f"Test: {test or 'no test split'}. Validation: {val}. Cost {r['cost_label']} of the budget "
               f"{r['budget_label']}; generated in {r['seconds']:.1f} s. " + EAS_CHARTS["card"])
    st.code(r["key"], language=None, wrap_lines=True)
    _other_methods(eas, r)
    _chart(easviz.superclass_profile_figure(easviz.scenario_profile(data, r), len(eas.superclasses),
                                            title=f"Width profile: the subnet for {r['superclass']}"), "eas_profile", EAS_CHARTS["profile"])
    _export(data, eas, r)


def _other_methods(eas: easviz.EasData, r: pd.Series) -> None:
    """The same scenario found by the baselines recorded (`pss generate --method random|ofa-t|ofa-v`)."""
    f = eas.scenarios
    same = f[(f["superclass"] == r["superclass"]) & f["budget"].map(lambda b: easviz.same_budget(b, r["budget"]))]
    if len(same) < 2:
        return
    table = pd.DataFrame({
        "method": [easviz.method_name(m) for m in same["method"]],
        "test accuracy": [easviz.accuracy_text(a, lo, hi) or "–" for a, lo, hi in zip(same["test_acc"], same["test_lo"], same["test_hi"])],
        "val. accuracy": [_percent(a) for a in same["val_acc"]],
        "cost": [c or "nothing fits" for c in same["cost_label"]],
        "r (px)": [str(int(v)) if np.isfinite(v) else "" for v in same["resolution"]],
        "candidates": [f"{int(c)} of {int(d)}" for c, d in zip(same["candidates"], same["draws"])],
        "effort": [easviz.effort_text(row) for _, row in same.iterrows()],
    })
    st.dataframe(table, hide_index=True, width="stretch", key="eas_methods")
    st.caption("The same scenario by every method recorded: the baselines draw uniformly within the budget (random) "
               "or search (OFA-T per superclass, OFA-V once for all classes, N evaluations per superclass sharing "
               "it). Effort: the calibrated evaluations made of the N each method was given, and for the methods "
               "that draw within the ceiling, how many draws fit the budget.")


def _export_problem(data: RunData, eas: easviz.EasData) -> str | None:
    """Why the generated subnet cannot be exported now (cheap checks; the export says anything else), or None."""
    if not data.has_checkpoint:
        return "the run has no checkpoint.pt: nothing to slice weights from"
    if not eas.can_generate:
        return "generator/generator.pt is missing"
    if data.front is None:
        return f"the run is not calibrated yet (an export needs calibration/); run `pss calibrate {data.path}`"
    if data.front_epoch != data.last_epoch:
        return f"the calibration is from epoch {data.front_epoch} but training has reached epoch {data.last_epoch}; recalibrate first"
    return None


def _export(data: RunData, eas: easviz.EasData, r: pd.Series) -> None:
    problem = _export_problem(data, eas)
    if problem:
        st.info(f"Export unavailable: {problem}.")
        return
    path, superclass, budget = str(data.path), str(r["superclass"]), float(r["budget"])
    scenario = (path, superclass, round(budget, 6))
    if st.button("Export this subnet", key="eas_export_button",
                 help=f"`pss export {path} --superclass {superclass} --budget {easviz.budget_text(budget, eas.cost_kind)}`: "
                 "the model keeps only this superclass's outputs."):
        with st.spinner("Exporting: the generator's subnet is drawn again, calibrated on the superclass's images, "
                        "written as .pt2 and ONNX and checked against the supernet (about a minute)…"):
            try:
                zipped, name, card = state.export_generated_zip(path, superclass, budget)
            except Exception as exc:  # a user-facing one-liner, never a traceback
                st.error(f"Export failed: {state.describe_error(exc)}")
                return
        st.session_state[EXPORT_HELD] = {"scenario": scenario, "zip": zipped, "name": name, "key": card.get("key"),
                                         "shown": str(r["key"])}
        st.rerun()  # the export recorded its architecture in scenarios.json: show that one
    held = st.session_state.get(EXPORT_HELD)
    if not held or held["scenario"] != scenario:
        st.caption("The export is what `pss export --superclass` writes: model.pt2 (torch.export), model.onnx, "
                   "state_dict.pt and card.json, the classifier cut to this superclass's classes.")
        return
    st.download_button(
        "Download the exported model (.zip)", data=held["zip"], file_name=f"{held['name']}.zip", mime="application/zip",
        type="primary", key="eas_download", on_click="ignore",
        help="model.pt2 (torch.export) and model.onnx (ONNX opset 18), both with a dynamic batch, state_dict.pt and "
        "card.json (with a superclass section): what `pss export --superclass` writes.")
    if held["key"] != held["shown"]:
        st.warning(f"The export drew the generator's subnet again with the default settings and chose `{held['key']}`, "
                   f"not the `{held['shown']}` shown before (that one was generated with other settings); the card above "
                   "now shows the exported one.")
    st.caption(f"Load it without pss: `torch.export.load('{held['name']}/model.pt2').module()(x)`; output j is the "
               "class listed j-th in card.json's superclass.class_names.")


# ---------------------------------------------------------------------------- every superclass
def _all_superclasses(data: RunData, eas: easviz.EasData, budget: float, label: str) -> None:
    st.subheader(f"Every superclass at {label}")
    profiles = easviz.profile_frame(eas.scenarios, data.dimensions, budget)
    missing = [s for s in eas.superclasses if s not in set(profiles["superclass"])]
    if not len(profiles):
        recorded = easviz.recorded_budgets(eas.scenarios)
        shown = ", ".join(pss.format_cost(b, eas.cost_kind) for b in recorded) or "none yet"
        st.info(f"No superclass has a generated subnet within {label} yet. Budgets with generated subnets: {shown}. "
                f"Generate every superclass at once with `pss generate {data.path} --superclass all --budget "
                f"{easviz.budget_text(budget, eas.cost_kind)}`.")
        return
    _chart(easviz.superclass_profile_figure(profiles, len(eas.superclasses)), "eas_profiles", EAS_CHARTS["profiles"])
    table = easviz.channels_table(profiles, eas.cost_kind)
    st.dataframe(table, hide_index=True, width="stretch", key="eas_channels")
    if missing:
        st.caption(f"Not generated at this budget yet: {', '.join(missing)} (pick one above and press Generate).")


def _similarity(data: RunData, eas: easviz.EasData) -> None:
    st.subheader("How alike the superclasses' subnets are")
    similarity = easviz.similarity_frame(eas.scenarios, easviz.run_space(data))
    _chart(easviz.similarity_figure(similarity, eas.cost_kind), "eas_similarity", EAS_CHARTS["similarity"])


def _table(eas: easviz.EasData) -> None:
    st.subheader("Accuracy per superclass (EAS Table 1)")
    f = eas.scenarios
    if not len(f):
        st.info("No scenario has been generated yet: pick a superclass and a budget above and press Generate.")
        return
    split = "test" if np.isfinite(f["test_acc"]).any() else "val"
    single = eas.one_class_superclasses
    table = easviz.accuracy_table(f, split, eas.superclasses, excluded=single)
    help_ = {s: f"{s}: {c}" for s, c in zip(eas.superclass_map["superclass"], eas.superclass_map["classes"])}
    st.dataframe(table, hide_index=True, width="stretch", key="eas_table", column_config={
        "budget": st.column_config.TextColumn("budget θ", help=symbol_help("θ")),
        "mean": st.column_config.TextColumn("mean %", help="accuracy over the images of the superclasses with an "
                                            "architecture and more than one class (pooled)"),
        "mean cost": st.column_config.TextColumn("mean cost", help="mean cost of those architectures (each at most the budget)"),
        **{s: st.column_config.TextColumn(s, help=help_.get(s)) for s in eas.superclasses},
    })
    left_out = f" {', '.join(single)}: one class, so 100% for any model; shown, but left out of the mean." if single else ""
    st.caption(EAS_CHARTS["table"] + " " + easviz.images_note(f, split) + " The mean pools the images of the "
               "superclasses it counts." + left_out)


def _training(eas: easviz.EasData) -> None:
    st.subheader("How the generator was trained")
    doc = eas.doc or {}
    settings = doc.get("settings") or {}
    seconds = (doc.get("training") or {}).get("seconds")
    _chart(easviz.generator_training_figure(eas.training), "eas_training", EAS_CHARTS["training"])
    facts = [f"trained on {int(doc['validation_images']):,} validation images" if doc.get("validation_images") else "",
             f"in {seconds:.0f} s" if isinstance(seconds, (int, float)) else "",
             f"from the supernet of epoch {doc['run_epoch']}" if doc.get("run_epoch") is not None else "",
             f"cost-loss weight {settings['constraint_weight']:g} (Eq. 4)" if "constraint_weight" in settings else "",
             f"budgets {pss.format_cost(doc['c_min'], eas.cost_kind)} to {pss.format_cost(doc['c_max'], eas.cost_kind)}"
             if "c_min" in doc and "c_max" in doc else ""]
    st.caption("The generator was " + ", ".join(f for f in facts if f) + ".")
