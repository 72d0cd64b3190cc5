"""EAS end to end on a real small run: train the generator, generate, the baselines, export, and CLI misuse.

What the tests pin: the generator trains on the frozen supernet (its weights and
BN buffers unchanged) and its cost loss falls; every generated architecture is a
member of S within its budget (a ceiling), chosen on the superclass's validation
images and tested on exactly that superclass's test images; the baselines use the
evaluations they are given; an export of a run with a generator carries the
generated architecture with a head cut to the superclass and equals the supernet's
logits for those classes; misuse is a one-line error with exit code 2.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import pss
from pss.cli import main
from pss.data import load_data, subset_of_classes
from pss.io.generator import read_generator_document, read_scenarios
from pss.problem.space import Structure

CLASSES = {"vehicles": (0, 1, 8, 9), "animals": (2, 3, 4, 5, 6, 7)}


@pytest.fixture(scope="module")
def eas_run(small_run, tmp_path_factory):
    src = small_run(calibrate=(64, 2), superclasses="builtin", superclass_dropout=0.5)
    run = tmp_path_factory.mktemp("eas") / "run"
    shutil.copytree(src, run)
    return run


@pytest.fixture(scope="module")
def trained_generator(eas_run):
    before = {k: v.clone() for k, v in pss.load_trained(eas_run).supernet.state_dict().items()}
    doc = pss.train_generator(eas_run, settings=pss.settings_from(epochs=4, batch_size=64, min_rows=4), device="cpu")
    return eas_run, doc, before


def test_training_writes_the_generator_and_leaves_the_supernet_alone(trained_generator):
    run, doc, before = trained_generator
    assert (run / "generator" / "generator.pt").is_file()
    assert read_generator_document(run)["created"] == doc["created"]
    assert doc["superclasses"]["superclasses"] == ["vehicles", "animals"]
    assert doc["superclass_dropout"] == 0.5
    log = doc["training"]
    assert len(log["ce"]) == 4 and all(c > 0 for c in log["ce"])
    after = pss.load_trained(run).supernet.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def test_generated_architectures_fit_their_budget_and_are_measured_on_their_superclass(trained_generator):
    run, doc, _ = trained_generator
    trained = pss.load_trained(run)
    cm, space = trained.problem.cost_model, trained.problem.space
    lo, hi = doc["c_min"], doc["c_max"]
    budgets = [lo + 0.3 * (hi - lo), lo + 0.8 * (hi - lo)]
    records = pss.generate(run, "all", budgets, pss.GenerateOptions(samples=3), device="cpu")
    assert len(records) == 4
    data = load_data(trained.cfg, create=False)
    for r in records:
        s = Structure.from_json(r["structure"])
        assert space.contains(s)
        assert cm.macs(s) == r["costs"]["macs"] <= r["budget"]
        assert r["candidates"] == 3  # three distinct architectures within budget were drawn and calibrated
        classes = CLASSES[r["superclass"]]
        assert r["validation"]["images"] == len(subset_of_classes(data, "val", classes))
        assert r["test"]["images"] == len(subset_of_classes(data, "test", classes))
    assert {(r["superclass"], r["budget"]) for r in read_scenarios(run)} >= {(r["superclass"], r["budget"]) for r in records}


@pytest.mark.parametrize("method", ["random", "ofa-t", "ofa-v"])
def test_baselines_use_the_evaluations_they_are_given(trained_generator, method):
    run, doc, _ = trained_generator
    lo, hi = doc["c_min"], doc["c_max"]
    budget = lo + 0.5 * (hi - lo)
    records = pss.generate(run, "vehicles", [budget], pss.GenerateOptions(samples=3, evaluations=6), device="cpu", method=method)
    (r,) = records
    assert r["method"] == method and r["costs"]["macs"] <= budget
    if method == "random":
        assert r["candidates"] == 3
    elif method == "ofa-t":
        assert r["candidates"] == 6  # the search spent exactly its evaluations on this superclass
    else:  # ofa-v: one all-class search; the superclass only measures its winner
        assert r["candidates"] == 1 and r["draws"] == 6
    methods = {x["method"] for x in read_scenarios(run)}
    assert method in methods


def test_export_of_a_run_with_a_generator_uses_the_generated_architecture(trained_generator, tmp_path):
    run, doc, _ = trained_generator
    budget = doc["c_min"] + 0.6 * (doc["c_max"] - doc["c_min"])
    card = pss.export_subnet(run, budget, tmp_path / "out", superclass="animals")
    assert card["selection"]["rule"] == "generator"
    assert card["superclass"]["chosen_by"] == "generator"
    assert card["superclass"]["classes"] == list(CLASSES["animals"])
    assert card["costs"]["macs"] <= budget
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4
    state = torch.load(tmp_path / "out" / "state_dict.pt", weights_only=True)
    assert state["classifier.weight"].shape[0] == 6
    generated = [r for r in read_scenarios(run) if r["method"] == "eas" and r["superclass"] == "animals" and r["budget"] == budget]
    assert generated and generated[0]["structure"] == card["structure"]


def test_generator_time_for_fifty_scenarios_is_measured(trained_generator):
    run, _, _ = trained_generator
    t = pss.generator_seconds(pss.load_generator(run, "cpu"), n=50, repeats=2, samples=2)
    assert t["scenarios"] == 50 and t["forward_s"] > 0 and t["with_drawing_s"] >= t["forward_s"] * 0


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_cli_misuse_is_one_line_and_exit_2(trained_generator, small_run, capsys):
    run, doc, _ = trained_generator
    assert main(["generate", str(run)]) == 2
    assert "--train" in _err(capsys)
    assert main(["generate", str(run), "--superclass", "plants", "--budget", "5M"]) == 2
    err = _err(capsys)
    assert "\n" not in err and "vehicles" in err and "animals" in err
    assert main(["generate", str(run), "--superclass", "vehicles", "--budget", "1"]) == 2
    assert "smallest" in _err(capsys)
    assert main(["generate", str(run), "--superclass", "vehicles"]) == 2
    assert "--budget" in _err(capsys)
    plain = small_run(calibrate=(64, 2))
    assert main(["generate", str(plain), "--superclass", "vehicles", "--budget", "5M"]) == 2
    err = _err(capsys)
    assert "no architecture generator" in err and "--train" in err
    assert main(["generate", str(plain), "--train"]) == 2
    assert "superclasses" in _err(capsys)


def test_cli_generate_prints_the_scenario(trained_generator, capsys):
    run, doc, _ = trained_generator
    budget = doc["c_min"] + 0.7 * (doc["c_max"] - doc["c_min"])
    assert main(["generate", str(run), "--superclass", "Vehicles", "--budget", f"{budget:.0f}", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "vehicles <=" in out and "validation (vehicles only)" in out and "test (vehicles only)" in out
    doc2 = json.loads((run / "generator" / "scenarios.json").read_text())
    assert doc2["kind"] == "pss-generated"
