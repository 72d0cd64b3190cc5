"""`pss export --superclass NAME`: a model whose classifier keeps only one superclass's classes (EAS).

The exported model (model.pt2, model.onnx, state_dict.pt) is the calibrated supernet slice's logits of those
classes, with a physically smaller classifier; its card reports the accuracy among those classes on their own
test images. Uses the session's ``trained_run`` (a real `pss train smoke` + `pss calibrate` on the CIFAR-10
subset, trained without a superclass map: the map comes from ``--superclasses builtin`` or a copy whose config
names it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import helpers
import pss
from pss.data import load_data
from pss.errors import PssError
from pss.evaluate.statistics import Accuracy
from pss.io.checkpoint import read_bn_stats
from pss.io.run import open_run, subnet_for_budget
from pss.nn.supernet import resize_batch
from pss.problem.space import Structure
from pss.problem.superclasses import CIFAR10_CLASS_NAMES, builtin_superclasses
from pss.units import format_quantity
from pss.workflows.export import choose_for_budget, choose_structure_for_superclass, export_candidate, export_subnet, export_superclass
from pss.workflows.loaded import load_trained
from pss.workflows.superclass import SuperclassTarget

VEHICLES = [0, 1, 8, 9]
ANIMALS = [2, 3, 4, 5, 6, 7]

pytestmark = pytest.mark.skipif(not helpers.NPZ_PATH.is_file(), reason="needs the CIFAR-10 subset (built-in CIFAR-10 superclasses)")


def _front(run: Path) -> dict:
    return json.loads((run / "calibration" / "front.json").read_text())


def _everything(run: Path) -> float:
    """A budget every calibrated subnet fits."""
    return 10.0 * _front(run)["references"]["max"]["costs"]["macs"]


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """The vehicles model under a budget every subnet fits (the builtin map given at export)."""
    out = tmp_path_factory.mktemp("superclass") / "vehicles"
    card = export_subnet(trained_run, _everything(trained_run), out, superclass="vehicles", superclasses="builtin")
    return {"out": out, "card": card, "structure": Structure.from_json(card["structure"])}


@pytest.fixture(scope="module")
def trained(trained_run):
    return load_trained(open_run(trained_run))


def _calibrated_supernet(trained, structure: Structure):
    """A copy of the supernet with ``structure``'s calibrated BN statistics in its buffers, in eval mode."""
    model = load_trained(trained.run).supernet
    stats = read_bn_stats(trained.run)[structure.key]
    with torch.no_grad():
        for key, value in stats.items():
            model.get_buffer(key)[: value.shape[0]].copy_(value)
    return model.eval()


@pytest.fixture(scope="module")
def reference(trained, exported):
    """The calibrated supernet's logits of every class on random images, at the max resolution."""
    s = exported["structure"]
    model = _calibrated_supernet(trained, s)
    r_max = trained.problem.space.resolutions[-1]
    x = torch.randn(7, trained.problem.spec.in_channels, r_max, r_max, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x, s)
    return {"model": model, "x": x, "logits": logits, "x_r": resize_batch(x, s.resolution).contiguous()}


# ------------------------------------------------------------------------------------------- the models
@pytest.mark.parametrize("batch", [1, 7])
def test_program_equals_supernet_logits_of_the_superclass(exported, reference, batch):
    program = torch.export.load(str(exported["out"] / "model.pt2")).module()
    with torch.no_grad():
        got = program(reference["x_r"][:batch])
    assert got.shape == (batch, len(VEHICLES))
    torch.testing.assert_close(got, reference["logits"][:batch, VEHICLES], rtol=0, atol=1e-4)
    assert reference["logits"].abs().max() > 1e-2  # not vacuous


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_equals_supernet_logits_of_the_superclass(exported, reference, batch):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(exported["out"] / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": reference["x_r"][:batch].numpy()})
    assert got.shape == (batch, len(VEHICLES))
    torch.testing.assert_close(torch.from_numpy(got), reference["logits"][:batch, VEHICLES], rtol=0, atol=1e-4)


def test_load_subnet_rebuilds_the_smaller_model(exported, reference):
    dense = pss.load_subnet(exported["out"])
    assert dense.classifier.out_features == len(VEHICLES)
    with torch.no_grad():
        got = dense(reference["x_r"])
    torch.testing.assert_close(got, reference["logits"][:, VEHICLES], rtol=0, atol=1e-4)


def test_classifier_is_physically_smaller(exported, trained):
    s, card = exported["structure"], exported["card"]
    head_in = s.widths[trained.problem.spec.head_in]
    supernet = trained.supernet.state_dict()
    state = torch.load(exported["out"] / "state_dict.pt", weights_only=True)
    assert tuple(state["classifier.weight"].shape) == (len(VEHICLES), head_in)
    assert tuple(state["classifier.bias"].shape) == (len(VEHICLES),)
    assert torch.equal(state["classifier.weight"], supernet["classifier.weight"][VEHICLES, :head_in])
    assert torch.equal(state["classifier.bias"], supernet["classifier.bias"][VEHICLES])
    program = torch.export.load(str(exported["out"] / "model.pt2"))
    assert tuple(program.state_dict["classifier.weight"].shape) == (len(VEHICLES), head_in)
    onnx = pytest.importorskip("onnx")
    shapes = [tuple(t.dims) for t in onnx.load(str(exported["out"] / "model.onnx")).graph.initializer]
    assert (len(VEHICLES), head_in) in shapes and (10, head_in) not in shapes
    # the card's costs are the smaller model's: (K - k) x (head width + 1) parameters fewer, (K - k) x head width MACs
    full = card["superclass"]["all_classes"]["costs"]
    assert full == trained.problem.cost_model.costs(s)
    assert full["params"] - card["params"] == (10 - len(VEHICLES)) * (head_in + 1)
    assert full["macs"] - card["macs"] == (10 - len(VEHICLES)) * head_in
    total = sum(t.numel() for k, t in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert total == card["params"] == card["costs"]["params"]


# ------------------------------------------------------------------------------------------- the card
def test_card_records_the_superclass(exported, trained_run):
    card = json.loads((exported["out"] / "card.json").read_text())
    assert card == json.loads(json.dumps(exported["card"]))
    sc = card["superclass"]
    assert sc["name"] == "vehicles" and sc["index"] == 0 and sc["map"] == "builtin"
    assert sc["classes"] == VEHICLES and sc["class_names"] == ["airplane", "automobile", "ship", "truck"]
    assert "classes[j]" in sc["outputs"]
    assert card["class_names"] == sc["class_names"]  # output j -> its name, as for every card
    run_json = json.loads((trained_run / "run.json").read_text())
    assert card["model"] == run_json["model"] and card["model"]["num_classes"] == 10  # the supernet's model
    assert card["selection"] == {"rule": "ceiling", "budget": _everything(trained_run), "kind": "macs"}
    assert sc["chosen_by"] == "superclass_validation" and sc["candidates"] >= 2
    assert card["validation"] == sc["validation"] and card["accuracy"] == sc["validation"]["accuracy"]
    assert card["test"] == sc["test"] and card["test"]["ci95"][0] <= card["test"]["accuracy"] <= card["test"]["ci95"][1]
    assert card["dominated_by"] is None  # the most accurate of every subnet within the budget
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4
    front = _front(trained_run)
    candidate = next(c for p in front["pools"] for c in p["candidates"] + list(front["references"].values())
                     if c["key"] == card["key"])
    assert sc["all_classes"]["accuracy"] == candidate["accuracy"] and sc["all_classes"]["test"] == candidate["test"]


def test_card_validates_against_the_schema(exported):
    jsonschema = pytest.importorskip("jsonschema")
    errors = list(jsonschema.Draft202012Validator(helpers.schema("card")).iter_errors(exported["card"]))
    assert not errors, [e.message for e in errors]


def _superclass_counts(model, structure, batches, classes) -> tuple[int, int]:
    """(correct, images) among ``classes`` on their images, from the supernet's full logits."""
    correct = images = 0
    with torch.no_grad():
        for x, y in batches:
            keep = torch.isin(y, torch.tensor(classes))
            if keep.any():
                pred = torch.tensor(classes)[model(x[keep], structure)[:, classes].argmax(1)]
                correct += int((pred == y[keep]).sum())
                images += int(keep.sum())
    return correct, images


def test_accuracy_is_measured_on_the_superclass_images_only(exported, trained):
    """The card's test: argmax among the kept classes, on the test images of those classes, nothing else."""
    card, s = exported["card"], exported["structure"]
    data = load_data(trained.cfg, create=False)
    model = _calibrated_supernet(trained, s)
    test_labels = torch.cat([y for _, y in data.test_batches(256)])
    in_superclass = int(torch.isin(test_labels, torch.tensor(VEHICLES)).sum())
    assert 0 < in_superclass < test_labels.numel() == data.num_test
    correct, images = _superclass_counts(model, s, data.test_batches(256), VEHICLES)
    assert images == in_superclass
    assert card["test"]["images"] == images and card["test"]["correct"] == correct
    assert card["test"] == Accuracy(correct, images).to_json()
    v_correct, v_images = _superclass_counts(model, s, data.val_batches(256), VEHICLES)
    assert (card["validation"]["correct"], card["validation"]["images"]) == (v_correct, v_images)
    assert v_images < data.num_val


def test_format_export_names_the_superclass(exported):
    text = pss.format_export(exported["card"], exported["out"])
    assert "vehicles" in text and "airplane (0)" in text and "truck (9)" in text and "4 of 10 kept" in text
    assert "test images of vehicles" in text


# ------------------------------------------------------------------------------------------- the choice
def _target() -> SuperclassTarget:
    smap = builtin_superclasses("cifar10")
    return SuperclassTarget(smap, smap.index("animals"), "builtin", CIFAR10_CLASS_NAMES)


def test_choice_ranks_by_the_superclass_measurement(trained_run):
    front = _front(trained_run)
    budget = _everything(trained_run)
    keys = [c["key"] for p in front["pools"] for c in p["candidates"]] + [c["key"] for c in front["references"].values()]
    favourite = keys[len(keys) // 2]
    seen = []

    def measure(structures):
        seen.extend(s.key for s in structures)
        return {s.key: Accuracy(9 if s.key == favourite else 3, 10) for s in structures}

    choice = choose_structure_for_superclass(front, _target(), budget, measure=measure)
    assert choice.structure.key == favourite and choice.chosen_by == "superclass_validation"
    assert set(seen) == set(keys) and set(choice.measured) == set(keys)
    assert choice.selection == {"rule": "ceiling", "budget": budget, "kind": "macs"}
    # nothing measurable: the plain export's choice
    plain = choose_structure_for_superclass(front, _target(), budget, measure=lambda structures: {})
    assert plain.chosen_by == "validation" and plain.structure.key == choose_for_budget(front, budget)[0]
    assert plain.structure.key == subnet_for_budget(front, budget)[1]["key"]
    # nearest pool: only that pool's candidates are measured
    pool = next(p for p in front["pools"] if p["best"] is not None)
    seen.clear()
    near = choose_structure_for_superclass(front, _target(), pool["budget"]["value"], nearest_pool=True, measure=measure)
    assert set(seen) == {c["key"] for c in pool["candidates"]}
    assert near.selection["rule"] == "nearest_pool" and near.structure.key in seen


def test_budget_is_a_ceiling_on_the_smaller_model(trained_run, trained, tmp_path):
    """The min subnet with every class costs more than the budget, restricted to vehicles it fits."""
    front = _front(trained_run)
    cheapest = min(c["costs"]["macs"] for p in front["pools"] for c in p["candidates"] + list(front["references"].values()))
    budget = cheapest - 1
    with pytest.raises(PssError, match="no calibrated subnet costs at most"):
        export_subnet(trained_run, budget, tmp_path / "plain")
    card = export_subnet(trained_run, budget, tmp_path / "vehicles", check=False, superclass="vehicles", superclasses="builtin")
    assert card["macs"] <= budget < card["superclass"]["all_classes"]["costs"]["macs"]
    # below every restricted cost: one line naming the cheapest
    s_min = trained.problem.space.min_structure
    with pytest.raises(PssError) as err:
        export_subnet(trained_run, 1000, tmp_path / "never", superclass="vehicles", superclasses="builtin")
    assert "\n" not in str(err.value) and "vehicles" in str(err.value) and format_quantity(1000) in str(err.value)
    assert s_min.key in str(err.value)
    assert not (tmp_path / "never").exists()


def test_key_exports_that_subnet_restricted(trained_run, tmp_path):
    front = _front(trained_run)
    key = front["references"]["max"]["key"]
    card = export_candidate(trained_run, key, tmp_path / "max", check=False, superclass="Animals", superclasses="builtin")
    assert card["key"] == key and card["selection"]["rule"] == "key"
    assert card["superclass"]["name"] == "animals" and card["superclass"]["classes"] == ANIMALS
    assert card["superclass"]["chosen_by"] == "given" and card["source"]["reference"] == "max"
    assert card["test"]["images"] == card["superclass"]["test"]["images"]


def test_a_structure_the_front_lacks_is_calibrated_then_exported(trained_run, trained, tmp_path):
    """The hook the EAS generator uses: any structure of the space, calibrated at export."""
    front = _front(trained_run)
    known = {c["key"] for p in front["pools"] for c in p["candidates"]} | {c["key"] for c in front["references"].values()}
    rng = np.random.default_rng(5)
    s = next(x for x in (trained.problem.space.sample_uniform(rng) for _ in range(100)) if x.key not in known)
    card = export_superclass(trained_run, "vehicles", tmp_path / "generated", structure=s, superclasses="builtin")
    assert card["key"] == s.key and card["source"]["pool_index"] is None and card["budget"] is None
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4
    assert card["superclass"]["chosen_by"] == "given" and card["validation"]["images"] > 0 and card["test"]["images"] > 0
    assert card["superclass"]["all_classes"]["validation"]["images"] == front["validation_images"]
    assert s.key not in read_bn_stats(open_run(trained_run))  # the run is only read
    dense = pss.load_subnet(tmp_path / "generated")
    assert dense.classifier.out_features == len(VEHICLES)


def test_given_statistics_replace_the_fronts(trained_run, tmp_path):
    """bn_stats passed with a structure (what a generator calibrated) are the exported model's, and its all-class
    figures are measured with them: with the front's own statistics, the front's numbers come back."""
    front = _front(trained_run)
    pool = next(p for p in front["pools"] if p["best"] is not None)
    candidate = pool["candidates"][pool["best"]]
    stats = read_bn_stats(open_run(trained_run))[candidate["key"]]
    card = pss.export_structure(trained_run, candidate["key"], tmp_path / "given", superclass="vehicles",
                                superclasses="builtin", bn_stats=stats, selection={"rule": "ceiling", "budget": 1e9, "kind": "macs"})
    assert card["check"]["max_abs_diff_vs_supernet"] < 1e-4 and card["source"]["pool_index"] == pool["index"]
    assert card["superclass"]["all_classes"]["validation"] == candidate["validation"]
    assert card["superclass"]["all_classes"]["test"] == candidate["test"]
    assert card["selection"]["rule"] == "ceiling" and card["superclass"]["chosen_by"] == "given"
    state = torch.load(tmp_path / "given" / "state_dict.pt", weights_only=True)
    for key, value in stats.items():
        assert torch.equal(state[key], value), key
    with pytest.raises(ValueError, match="chosen_by"):
        export_superclass(trained_run, "vehicles", tmp_path / "never", structure=candidate["key"], superclasses="builtin",
                          chosen_by="magic")


# ------------------------------------------------------------------------------------------- the command
def test_cli_uses_the_run_config_map(run_copy, tmp_path, capsys):
    """A run whose config names the map: `pss export --superclass animals` needs no --superclasses."""
    run_json = json.loads((run_copy / "run.json").read_text())
    run_json["config"]["superclasses"] = "builtin"
    (run_copy / "run.json").write_text(json.dumps(run_json))
    out = tmp_path / "animals"
    code, stdout, stderr = helpers.run_cli(capsys, "export", run_copy, "--superclass", "animals", "--budget",
                                           repr(_everything(run_copy)), "--out", out)
    assert code == 0, stderr
    card = json.loads((out / "card.json").read_text())
    assert card["superclass"]["classes"] == ANIMALS and card["superclass"]["map"] == "builtin"
    assert "animals" in stdout and "6 of 10 kept" in stdout
    assert {p.name for p in out.iterdir()} == {"model.pt2", "model.onnx", "state_dict.pt", "card.json"}


def test_cli_superclass_without_a_map_is_one_line(trained_run, tmp_path, capsys):
    out = tmp_path / "never"
    line = helpers.assert_user_error(capsys, "export", trained_run, "--superclass", "vehicles", "--budget", "100M", "--out", out)
    assert "superclasses" in line and "--superclasses builtin" in line and "--set superclasses=builtin" in line
    assert not out.exists()


def test_cli_unknown_superclass_names_the_known_ones(trained_run, tmp_path, capsys):
    out = tmp_path / "never"
    line = helpers.assert_user_error(capsys, "export", trained_run, "--superclass", "plants", "--superclasses", "builtin",
                                     "--budget", "100M", "--out", out)
    assert "plants" in line and "vehicles" in line and "animals" in line
    assert not out.exists()


def test_cli_superclasses_alone_is_one_line(trained_run, tmp_path, capsys):
    line = helpers.assert_user_error(capsys, "export", trained_run, "--superclasses", "builtin", "--budget", "100M",
                                     "--out", tmp_path / "never")
    assert "--superclass NAME" in line
