"""EAS end to end on a real small run: train the generator, generate, the baselines, export, the bench, and CLI misuse.

What the tests pin: the generator trains on the frozen supernet (its weights and
BN buffers unchanged) and its cost loss falls; every generated architecture is a
member of S within its budget (a ceiling), chosen on the superclass's validation
images and tested on exactly that superclass's test images; every method gets the
same N calibrated evaluations per scenario and records how many it made (OFA-V
its share of one search per budget); the methods that draw within the ceiling
record every draw, how many fit and at which resolution; a generator per seed
lives in its own folder and its scenarios round-trip through it; means over
superclasses leave out one-class superclasses; an export of a run with a
generator carries the generated architecture with a head cut to the superclass
and equals the supernet's logits for those classes; misuse is a one-line error
with exit code 2.
"""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch

import helpers
import pss
from pss.cli import main
from pss.data import load_data, subset_of_classes
from pss.eas.comparison import draw_summary, effort_summary, pooled_correct, split_one_class, stack_seeds
from pss.eas.gates import decode_arrays
from pss.eas.search import draw_within_budget, gate_probabilities
from pss.io.generator import generator_dir, generator_seeds, read_generator_document, read_scenarios
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


@pytest.mark.parametrize("method", ["eas", "random", "ofa-t", "ofa-v"])
def test_every_method_gets_the_same_calibrated_evaluations_per_scenario(trained_generator, method):
    run, doc, _ = trained_generator
    lo, hi = doc["c_min"], doc["c_max"]
    budgets = [lo + 0.5 * (hi - lo), lo + 0.8 * (hi - lo)]
    records = pss.generate(run, "all", budgets, pss.GenerateOptions(samples=5, evaluations=3), device="cpu", method=method)
    assert len(records) == 4
    for r in records:
        assert r["method"] == method and r["costs"]["macs"] <= r["budget"]
        assert r["evaluations_requested"] == 3, "evaluations wins over samples: one N for every method"
        assert r["evaluations"] == 3, "three distinct candidates exist well inside these budgets"
        if method == "ofa-v":  # one all-class search per budget, N per superclass sharing it; only its winner is measured
            assert r["shared_search"] == {"evaluations": 6, "scenarios": 2} and r["candidates"] == 1
        else:
            assert r["shared_search"] is None and r["candidates"] == 3
    assert effort_summary(records).made_min == effort_summary(records).made_max == 3
    recorded = [x for x in read_scenarios(run) if x["method"] == method]
    assert {(x["superclass"], x["evaluations"]) for x in recorded} >= {(r["superclass"], 3) for r in records}


@pytest.mark.parametrize("method", ["eas", "random"])
def test_fewer_evaluations_only_when_fewer_candidates_exist_and_then_recorded(trained_generator, method):
    run, doc, _ = trained_generator
    floor = doc["c_min"]  # only the cheapest subnet of S costs C(min): one distinct candidate exists
    (r,) = pss.generate(run, "vehicles", [floor], pss.GenerateOptions(evaluations=3), device="cpu", method=method)
    assert r["evaluations_requested"] == 3 and r["evaluations"] == 1 == r["candidates"]
    assert effort_summary([r]).short == 1
    assert r["structure"] == pss.load_trained(run).problem.space.min_structure.to_json()
    assert r["fallback"] == (r["in_budget"] == 0), "the cheapest subnet stands in only when no draw fitted"
    assert r["draws"] >= 150, "draws went on up to the limit looking for more"


def test_the_in_budget_rate_is_every_draw_that_fits_over_every_draw(trained_generator):
    run, doc, _ = trained_generator
    loaded = pss.load_generator(run, "cpu")
    cm = loaded.trained.problem.cost_model
    budget = doc["c_min"] + 0.4 * (doc["c_max"] - doc["c_min"])
    probs = gate_probabilities(loaded.generator, [0], [budget])[0]
    # one round of 128 draws (max_draws caps it; far more samples are wanted than exist): recount it by hand
    found, tally = draw_within_budget(loaded.generator.layout, cm, probs, budget, 10**6, torch.Generator().manual_seed(7),
                                      max_draws=128)
    bits = (torch.rand((128, probs.shape[-1]), generator=torch.Generator().manual_seed(7)) < probs[None, :]).numpy()
    widths, res = decode_arrays(loaded.generator.layout, bits)
    fits = cm.cost_array("macs", widths, res) <= budget
    assert tally.draws == 128 and tally.in_budget == int(fits.sum()) and tally.in_budget_rate == fits.mean()
    assert dict(tally.resolutions) == {int(r): int((res == r).sum()) for r in set(res.tolist())}
    assert dict(tally.in_budget_resolutions) == {int(r): int((res[fits] == r).sum()) for r in set(res[fits].tolist())}
    assert len(found) == len({Structure(tuple(w), int(r)).key for w, r in zip(widths[fits], res[fits])})
    for method in ("eas", "random"):
        records = pss.generate(run, "all", [budget], pss.GenerateOptions(evaluations=3), device="cpu", method=method)
        for r in records:
            assert r["in_budget_rate"] == pytest.approx(r["in_budget"] / r["draws"])
            assert sum(r["draw_resolutions"].values()) == r["draws"] and sum(r["in_budget_resolutions"].values()) == r["in_budget"]
            assert r["in_budget"] >= r["evaluations"], "every candidate is a draw within the budget"
        d = draw_summary(records)
        assert d.in_budget_rate == pytest.approx(sum(r["in_budget"] for r in records) / sum(r["draws"] for r in records))
        assert sum(d.resolution_share.values()) == pytest.approx(1.0)
    others = pss.generate(run, "vehicles", [budget], pss.GenerateOptions(evaluations=3), device="cpu", method="ofa-t")
    assert others[0]["in_budget"] is None and draw_summary(others) is None, "a search does not draw within the ceiling"
    assert "within the budget (" in pss.format_generated(records) and "drawn at " in pss.format_generated(records)


def test_one_class_superclasses_are_left_out_of_the_mean():
    counted, single = split_one_class({"tops": 4, "bottoms": 2, "footwear": 3, "bags": 1})
    assert counted == ["tops", "bottoms", "footwear"] and single == ["bags"]
    seeds = {"tops": {0: [1, 0, 1, 1], 1: [1, 1, 0, 1]}, "bottoms": {0: [0, 1], 1: [1, 1]}, "bags": {0: [1, 1, 1], 1: [1, 1, 1]}}
    arrays = {s: stack_seeds({k: np.array(v, bool) for k, v in per.items()}) for s, per in seeds.items()}
    pooled = pooled_correct(arrays, ["tops", "bottoms"])
    assert pooled.shape == (2, 6) and pooled.mean() == pytest.approx(9 / 12), "bags' 100% is not in it"
    with pytest.raises(ValueError):
        pooled_correct(arrays, [])


def test_a_generator_per_seed_round_trips_through_its_own_folder(trained_generator, tmp_path):
    src, _, _ = trained_generator
    run = helpers.copy_run(src, tmp_path / "run")
    seed0 = read_generator_document(run)
    doc = pss.train_generator(run, settings=pss.settings_from(epochs=1, batch_size=64, seed=1), device="cpu")
    assert doc["seed"] == 1 and generator_seeds(run) == [0, 1]
    assert (generator_dir(run, 1) / "generator.pt").is_file() and generator_dir(run, 1).name == "generator-s1"
    assert read_generator_document(run)["created"] == seed0["created"], "seed 0's generator is left alone"
    budget = doc["c_min"] + 0.6 * (doc["c_max"] - doc["c_min"])
    before = read_scenarios(run)
    records = pss.generate(run, "all", [budget], pss.GenerateOptions(evaluations=2, seed=1), device="cpu", method="random")
    assert all(r["seed"] == 1 for r in records)
    again = {(r["method"], r["superclass"]): r for r in read_scenarios(run, 1)}
    assert [again["random", r["superclass"]] for r in records] == records, "what was written is what is read"
    assert read_scenarios(run) == before, "seed 0's scenarios are untouched"
    assert pss.load_generator(run, "cpu", 1).seed == 1
    with pytest.raises(pss.PssError, match="--seed 2"):
        pss.generate(run, "all", [budget], pss.GenerateOptions(seed=2), device="cpu")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_eas", helpers.REPO_ROOT / "bench" / "eas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bench_compares_every_method_with_equal_effort_over_seeds(eas_run, tmp_path, capsys):
    run = helpers.copy_run(eas_run, tmp_path / "run")
    shutil.rmtree(run / "generator", ignore_errors=True)
    smap = tmp_path / "map.json"  # a one-class superclass, as Fashion-MNIST's bags
    smap.write_text(json.dumps({"vehicles": [0, 1, 8, 9], "cats": [3], "animals": [2, 4, 5, 6, 7]}))
    args = [str(run), "--seeds", "2", "--evaluations", "2", "--epochs", "1", "--ceilings", "0.6", "--superclasses", str(smap)]
    assert _bench().main(args) == 0
    out = capsys.readouterr().out
    assert generator_seeds(run) == [0, 1]
    for seed in (0, 1):
        records = read_scenarios(run, seed)
        assert {r["method"] for r in records} == {"eas", "random", "ofa-t", "ofa-v"} and len(records) == 12
        assert all(r["seed"] == seed and r["evaluations_requested"] == 2 and r["evaluations"] == 2 for r in records)
    assert "cats (one class" in out and "excluded from the means" in out
    assert "Holm over the family of 3 tests" in out and "uniform draws within the budget" in out
    assert "within the budget:" in out and "drawn at " in out
    table = out[out.index("4. test accuracy"):out.index("5. EAS minus")]
    assert "cats" not in table.splitlines()[0] and "vehicles" in table and "animals" in table
    assert any(f"-> {v};" in out for v in ("different", "equivalent", "inconclusive"))
    assert _bench().main(args[:1] + ["--seeds", "2", "--evaluations", "2", "--ceilings", "0.6", "--methods", "eas"]) == 0
    again = capsys.readouterr().out
    assert "note:" not in again, "reused records measure again to what they recorded"
    assert "training the generator" not in again and ": eas, seed 1" in again
    assert _bench().main(args[:1] + ["--seeds", "2", "--draws-only", "--draws", "300", "--ceilings", "0.6"]) == 0
    draws = capsys.readouterr().out
    assert "generator seed 1, 300 draws per scenario" in draws and "uniform" in draws and "within the budget at" in draws


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
    assert main(["generate", str(run), "--superclass", "vehicles", "--budget", "5M", "--evaluations", "0"]) == 2
    err = _err(capsys)
    assert "\n" not in err and "calibrated evaluations per scenario" in err
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
