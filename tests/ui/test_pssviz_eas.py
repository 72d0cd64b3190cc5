"""pssviz.eas: a run's EAS generator and scenarios as tidy tables, Table 1, Fig. B, width profiles (no training).

The run is a copy of the sample run's run.json (its real structure space S); the generator's description and the
scenarios are written with the library's own writers (pss.io.generator) from hand-made records with known numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import helpers
from pss.eas.similarity import architecture_vector, mean_pairwise_cosine
from pss.io.generator import draw_tally_json, generator_document, scenario_record, write_generator_document, write_scenarios
from pss.problem.space import Structure
from pss.units import format_cost
from pssviz import eas as easviz
from pssviz.load import load_run

SAMPLE_RUN = helpers.SAMPLE_RUN
SUPERCLASSES = ["vehicles", "animals"]
CLASS_SUPERCLASS = [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
B1, B2, B3 = 6.0e6, 8.0e6, 9.5e6


def _space():
    return easviz.run_space(load_run(SAMPLE_RUN))


def _accuracy(acc: float, images: int) -> dict:
    correct = int(round(acc * images))
    return {"accuracy": correct / images, "correct": correct, "images": images, "ci95": [correct / images - 0.05, correct / images + 0.04]}


def _record(method: str, superclass: str, budget: float, structure: Structure | None, acc: float = 0.8, test: bool = True) -> dict:
    index = SUPERCLASSES.index(superclass)
    images = (400, 600)[index]
    return scenario_record(
        method=method, superclass=superclass, superclass_index=index, budget=budget, kind="macs",
        structure=structure.to_json() if structure else None,
        costs={"macs": budget * 0.9, "params": 120_000.0} if structure else None,
        validation=_accuracy(acc - 0.01, images // 2) if structure else None,
        test=_accuracy(acc, images) if structure and test else None, candidates=4, draws=9, seconds=2.5)


@pytest.fixture(scope="module")
def structures():
    space = _space()
    return {
        "narrow": space.uniform_structure(0.8, 28), "wide": space.uniform_structure(1.0, 32),
        "mid": space.uniform_structure(0.9, 32), "small": space.min_structure,
    }


def _records(s: dict) -> list[dict]:
    return [
        _record("eas", "vehicles", B1, s["narrow"], 0.80), _record("eas", "animals", B1, s["narrow"], 0.70),
        _record("eas", "vehicles", B2, s["wide"], 0.90), _record("eas", "animals", B2, s["mid"], 0.60),
        _record("eas", "vehicles", B3, s["wide"], 0.85),  # animals has no record at B3
        _record("random", "vehicles", B1, s["small"], 0.75), _record("random", "animals", B1, None),  # nothing fitted
    ]


def _doc(dropout: float = 0.5) -> dict:
    return generator_document(
        superclasses={"source": "builtin", "name": "cifar10-2", "superclasses": SUPERCLASSES, "class_superclass": CLASS_SUPERCLASS},
        kind="macs", c_min=4.5e6, c_max=10.0e6, settings={"epochs": 3, "constraint_weight": 2.0},
        layout={"dims": [], "choices": [], "resolutions": [24, 28, 32]},
        training={"ce": [1.2, 1.0, 0.9], "constraint": [0.3, 0.1, 0.05], "within_budget": [0.5, 0.8, 0.95], "seconds": 12.0},
        run_epoch=40, dropout=dropout, validation_images=1000)


@pytest.fixture(scope="module")
def eas_run(tmp_path_factory, structures) -> Path:
    run = tmp_path_factory.mktemp("pssviz_eas") / "run"
    run.mkdir()
    run_json = json.loads((SAMPLE_RUN / "run.json").read_text())
    run_json["config"].update({"superclasses": "builtin", "superclass_dropout": 0.5})
    (run / "run.json").write_text(json.dumps(run_json))
    doc = _doc()
    write_generator_document(run, doc)
    (run / "generator" / "generator.pt").write_bytes(b"weights")  # only its presence matters here
    write_scenarios(run, _records(structures), doc["created"])
    return run


@pytest.fixture(scope="module")
def eas(eas_run):
    return easviz.load_eas(eas_run)


# ---------------------------------------------------------------------------- reading
def test_load_eas_reads_the_generator_and_one_row_per_record(eas):
    assert eas.has_generator and eas.can_generate and not eas.problems
    assert eas.superclasses == SUPERCLASSES and eas.cost_kind == "macs" and eas.budget_range == (4.5e6, 10.0e6)
    f = eas.scenarios
    assert list(f.columns) == easviz.SCENARIO_COLUMNS and len(f) == 7
    assert list(f["method"]) == ["random"] * 2 + ["eas"] * 5, "baselines first, EAS last (Table 1's order)"
    assert set(f["superclass_no"]) == {1, 2} and (f["superclass_no"] == f["superclass_index"] + 1).all()
    row = f[(f["method"] == "eas") & (f["superclass"] == "vehicles") & (f["budget"] == B1)].iloc[0]
    assert row["budget_label"] == "6M MACs" and row["cost_label"] == format_cost(B1 * 0.9, "macs") and row["resolution"] == 28
    assert row["test_acc"] == pytest.approx(0.8) and row["test_images"] == 400 and row["val_images"] == 200
    nothing = f[~f["found"]].iloc[0]
    assert nothing["key"] == "" and nothing["cost_label"] == "" and np.isnan(nothing["cost"]) and np.isnan(nothing["test_acc"])


def test_a_run_without_a_generator_and_a_damaged_one(eas_run, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(eas_run / "run.json", plain / "run.json")
    none = easviz.load_eas(plain)
    assert not none.has_generator and not none.can_generate and not len(none.scenarios) and not none.problems
    assert not len(none.training) and not len(none.superclass_map)
    assert easviz.eas_signature(plain) == (("generator.json", None, None), ("generator.pt", None, None), ("scenarios.json", None, None))
    damaged = shutil.copytree(eas_run, tmp_path / "damaged")
    (damaged / "generator" / "scenarios.json").write_text("{ not json")
    got = easviz.load_eas(damaged)
    assert got.has_generator and not len(got.scenarios) and len(got.problems) == 1 and "scenarios.json" in got.problems[0]
    (damaged / "generator" / "generator.json").write_text('{"kind": "something else"}')
    got = easviz.load_eas(damaged)
    assert not got.has_generator and "generator.json" in got.problems[0]


def test_training_and_the_superclass_map(eas):
    t = eas.training
    assert list(t["epoch"]) == [1, 2, 3] and list(t["within_budget"]) == [0.5, 0.8, 0.95]
    m = eas.superclass_map
    assert list(m["no."]) == [1, 2] and list(m["superclass"]) == SUPERCLASSES
    assert m["classes"].iloc[0] == "airplane, automobile, ship, truck" and list(m["class count"]) == [4, 6]


def test_superclass_settings_in_words(eas_run):
    run_json = json.loads((eas_run / "run.json").read_text())
    words = easviz.superclass_settings(run_json, _doc())
    assert words["superclass map"] == "built-in: cifar10-2, 2 superclasses"
    assert words["superclass dropout"].startswith("0.5: ")
    plain = {"config": {}}
    assert easviz.superclass_settings(plain) == {"superclass map": "none (plain training: no superclasses)",
                                                 "superclass dropout": "no superclass dropout"}
    assert easviz.superclass_settings({"config": {"superclasses": None, "superclass_dropout": 0.0}})["superclass dropout"] == "no superclass dropout"
    older = easviz.superclass_settings(plain, _doc(dropout=0.0))  # a run older than the config keys, generator given a map
    assert older["superclass map"].endswith("(given to `pss generate --train`)") and older["superclass dropout"] == "no superclass dropout"
    assert easviz.dropout_rate(plain, _doc(0.3)) == 0.3 and easviz.dropout_rate(run_json) == 0.5
    table, problem = easviz.configured_map(run_json, eas_run)
    assert problem is None and list(table["superclass"]) == ["vehicles", "animals"]
    assert easviz.configured_map(plain) == (None, None)
    _, problem = easviz.configured_map({"config": {"superclasses": "missing.yaml"}, "dataset": {"name": "cifar10"}}, eas_run)
    assert "missing.yaml" in problem


# ---------------------------------------------------------------------------- scenarios and budgets
def test_scenario_lookup_and_budget_stops(eas):
    f = eas.scenarios
    assert easviz.scenario_for(f, "Vehicles", B2 + 1e-9)["key"] == f[(f["method"] == "eas") & (f["budget"] == B2)
                                                                     & (f["superclass"] == "vehicles")]["key"].iloc[0]
    assert easviz.scenario_for(f, "animals", B3) is None and easviz.scenario_for(f, "animals", B1, "ofa-t") is None
    assert easviz.recorded_budgets(f) == [B1, B2, B3] and easviz.recorded_budgets(f, "random") == [B1]
    stops = easviz.budget_stops(eas, steps=10)
    values = list(stops.values())
    assert values == sorted(values) and values[0] == 4.5e6 and values[-1] == 10.0e6
    assert all(stops[format_cost(b, "macs")] == b for b in (B1, B2, B3)), "recorded budgets are exact stops"
    assert all(label.endswith(" MACs") for label in stops)
    assert easviz.accuracy_text(0.759, 0.745, 0.772, 4000) == "75.9% (95% CI 74.5–77.2%, 4,000 images)"
    assert easviz.accuracy_text(np.nan, np.nan, np.nan) == ""


# ---------------------------------------------------------------------------- EAS Table 1
def test_accuracy_pivot_and_table(eas):
    f = eas.scenarios
    pivot = easviz.accuracy_pivot(f)
    assert list(pivot.columns) == ["budget", "method", "vehicles", "animals", "mean", "found", "mean_cost"]
    assert list(zip(pivot["budget"], pivot["method"])) == [(B1, "random"), (B1, "eas"), (B2, "eas"), (B3, "eas")]
    row = pivot.iloc[1]
    assert row["vehicles"] == pytest.approx(0.8) and row["animals"] == pytest.approx(0.7)
    assert row["mean"] == pytest.approx((0.8 * 400 + 0.7 * 600) / 1000), "pooled over both superclasses' test images"
    assert row["mean_cost"] == pytest.approx(B1 * 0.9)
    assert pivot.iloc[3]["found"] == 1 and np.isnan(pivot.iloc[3]["animals"]) and pivot.iloc[3]["mean"] == pytest.approx(0.85)
    val = easviz.accuracy_pivot(f, "val")
    assert val.iloc[1]["vehicles"] == pytest.approx(0.79)
    with pytest.raises(ValueError):
        easviz.accuracy_pivot(f, "train")
    table = easviz.accuracy_table(f)
    assert list(table.columns) == ["budget", "method", "vehicles", "animals", "mean", "mean cost"]
    assert list(table["method"]) == ["random", "EAS (generator)", "EAS (generator)", "EAS (generator)"]
    assert list(table["budget"]) == ["6M MACs", "6M MACs", "8M MACs", "9.5M MACs"]
    assert table.iloc[1]["vehicles"] == "80.0 (75.0–84.0)" and table.iloc[1]["mean"] == "74.0"
    assert table.iloc[0]["animals"] == easviz.NOTHING_FITS and table.iloc[0]["mean"] == "75.0 (1 of 2)"
    assert table.iloc[3]["animals"] == easviz.NO_RECORD and table.iloc[3]["mean cost"] == format_cost(B3 * 0.9, "macs")
    cells = table.astype(str).to_numpy().ravel().tolist()
    assert "None" not in cells and "nan" not in cells


def test_one_class_superclasses_are_left_out_of_the_mean(eas):
    f = eas.scenarios
    pivot = easviz.accuracy_pivot(f, excluded=["animals"])
    row = pivot.iloc[1]
    assert row["animals"] == pytest.approx(0.7), "still shown"
    assert row["mean"] == pytest.approx(0.8) and row["found"] == 1, "but not in the mean"
    table = easviz.accuracy_table(f, excluded=["animals"])
    assert table.iloc[1]["mean"] == "80.0" and table.iloc[1]["animals"].startswith("70.0")
    assert table.iloc[0]["mean"] == "75.0", "random's missing animals record does not count as missing"
    assert eas.one_class_superclasses == []
    bags = easviz.EasData(path=Path("."), run={"dataset": {"class_names": ["a", "b", "c"]}}, scenarios=f.iloc[:0],
                          doc={"superclasses": {"superclasses": ["two", "bags"], "class_superclass": [0, 0, 1]}})
    assert bags.one_class_superclasses == ["bags"]


def test_effort_and_in_budget_rate_per_scenario(eas, structures):
    record = scenario_record(
        method="eas", seed=2, superclass="vehicles", superclass_index=0, budget=B1, kind="macs",
        structure=structures["narrow"].to_json(), costs={"macs": B1 * 0.9, "params": 1.0}, validation=_accuracy(0.8, 200),
        test=_accuracy(0.8, 400), candidates=10, draws=0, seconds=1.0, evaluations=10, evaluations_requested=10,
        tally=draw_tally_json(64, 31, {28: 30, 32: 34}, {28: 31}))
    row = easviz.scenario_frame([record]).iloc[0]
    assert row["seed"] == 2 and row["draws"] == 64 and row["in_budget"] == 31 and row["in_budget_rate"] == pytest.approx(31 / 64)
    assert row["evaluations"] == row["evaluations_requested"] == 10
    assert easviz.effort_text(row) == "10 of 10 evaluations; 31 of 64 draws fit (48%)"
    old = eas.scenarios.iloc[0]  # written without effort: its counts are NaN and the text says what is known
    assert np.isnan(old["evaluations"]) and np.isnan(old["in_budget_rate"]) and easviz.effort_text(old) == "4 of 9 drawn"


def test_the_note_on_test_images(eas):
    note = easviz.images_note(eas.scenarios)
    assert "vehicles 400, animals 600" in note and "95% Wilson interval" in note
    untested = easviz.scenario_frame([_record("eas", "vehicles", B1, _space().max_structure, test=False)])
    assert "no test split" in easviz.images_note(untested)
    assert "vehicles 200" in easviz.images_note(untested, "val")


# ---------------------------------------------------------------------------- EAS Fig. B
def test_similarity_is_the_mean_pairwise_cosine_per_budget(eas, structures):
    space = _space()
    sim = easviz.similarity_frame(eas.scenarios, space)
    assert list(sim.columns) == ["method", "budget", "budget_label", "similarity", "superclasses", "pairs"]
    eas_rows = sim[sim["method"] == "eas"]
    assert list(eas_rows["budget"]) == [B1, B2], "B3 has one superclass only; random's B1 has one architecture"
    assert eas_rows.iloc[0]["similarity"] == pytest.approx(1.0), "the same architecture for both superclasses"
    expected = mean_pairwise_cosine([architecture_vector(structures["wide"], space), architecture_vector(structures["mid"], space)])
    assert eas_rows.iloc[1]["similarity"] == pytest.approx(expected) and expected < 1
    assert list(eas_rows["pairs"]) == [1, 1] and list(eas_rows["superclasses"]) == [2, 2]
    assert len(easviz.similarity_frame(eas.scenarios, space, methods=["random"])) == 0
    fig = easviz.similarity_figure(sim)
    assert [t.name for t in fig.data] == ["EAS (generator)"]
    assert list(fig.data[0].x) == [B1, B2] and fig.layout.yaxis.range == (0, 1.05)
    empty = easviz.similarity_figure(sim.iloc[:0])
    assert not empty.data and "two or more superclasses" in empty.layout.annotations[0].text


# ---------------------------------------------------------------------------- widths
def test_profiles_of_every_superclass_at_one_budget(eas, structures):
    data = load_run(SAMPLE_RUN)
    dims = data.dimensions
    profiles = easviz.profile_frame(eas.scenarios, dims, B2)
    assert list(profiles.columns) == easviz.PROFILE_COLUMNS
    assert list(profiles.drop_duplicates("superclass")["superclass"]) == SUPERCLASSES
    vehicles = profiles[profiles["superclass"] == "vehicles"].sort_values("layer")
    assert list(vehicles["width"]) == list(structures["wide"].widths)
    assert np.allclose(vehicles["ratio"], np.array(structures["wide"].widths) / dims["o_max"].to_numpy())
    assert set(profiles["resolution"]) == {32}
    assert len(easviz.profile_frame(eas.scenarios, dims, B3)) == len(dims), "one superclass at B3"
    assert len(easviz.profile_frame(eas.scenarios, dims, B1, method="random")) == len(dims), "nothing fitted for animals"
    table = easviz.channels_table(profiles)
    assert list(table.columns[:4]) == ["superclass", "subnet", "r (px)", "cost"]
    assert list(table["superclass"]) == ["vehicles", "animals", ""] and table.iloc[-1]["subnet"] == "o_max"
    assert table.iloc[0]["cost"] == format_cost(B2 * 0.9, "macs") and table.iloc[0]["r (px)"] == "32"
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    fig = easviz.superclass_profile_figure(profiles, 2)
    assert [t.name for t in fig.data] == ["vehicles, 32 px", "animals, 32 px"]
    assert fig.data[0].line.color != fig.data[1].line.color
    assert "no generated architecture" in easviz.superclass_profile_figure(profiles.iloc[:0]).layout.annotations[0].text


def test_one_scenario_with_its_uniform_twin(eas):
    data = load_run(SAMPLE_RUN)
    record = easviz.scenario_for(eas.scenarios, "animals", B2)
    profile = easviz.scenario_profile(data, record)
    assert list(profile.drop_duplicates("series")["series"]) == ["generated", "uniform"]
    uniform = profile[profile["series"] == "uniform"]
    assert uniform["multiplier"].notna().all() and set(uniform["resolution"]) == {int(record["resolution"])}
    fig = easviz.superclass_profile_figure(profile)
    assert fig.data[0].name == "animals, 32 px" and fig.data[1].name.startswith("uniform ×") and fig.data[1].line.dash == "dash"
    table = easviz.channels_table(profile)
    assert list(table["subnet"])[0] == "generated" and table["subnet"].iloc[1].startswith("uniform ×")
    assert len(easviz.scenario_profile(data, record, reference=False)) == len(data.dimensions)


def test_generator_training_figure(eas):
    fig = easviz.generator_training_figure(eas.training)
    assert [t.name for t in fig.data] == ["cross-entropy", "constraint loss", "within budget"]
    assert list(fig.data[2].y) == pytest.approx([50, 80, 95]), "within budget in %"
    assert not easviz.generator_training_figure(pd.DataFrame()).data


def test_pssviz_eas_does_not_import_torch(child_env):
    code = "import sys, pssviz.eas; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=helpers.REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
