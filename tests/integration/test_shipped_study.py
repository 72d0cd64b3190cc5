"""The shipped default study (sample_checkpoints/fashion-mnist-study): every run loads, study.json agrees
with the runs, and the exported subnets' test accuracy is what their cards say."""

from __future__ import annotations

import json

import pytest
import torch

import helpers
from pss.data import load_data
from pss.io.run import RunDir, subnet_for_budget
from pss.io.study import read_study
from pss.nn.supernet import resize_batch
from pss.workflows.export import export_subnet
from pss.workflows.loaded import load_trained
from pssviz.load import load_run

STUDY = helpers.REPO_ROOT / "sample_checkpoints" / "fashion-mnist-study"


@pytest.fixture(scope="module")
def doc():
    return read_study(STUDY)


def _runs(doc):
    return [(row, RunDir(STUDY / row["path"])) for row in doc["runs"]]


def _seeds_of(doc, strategy):
    seeds = doc["study"]["seeds"]
    return seeds[strategy] if isinstance(seeds, dict) else seeds


def test_every_shipped_run_loads_packed_and_calibrated(doc):
    assert len(doc["runs"]) == sum(len(_seeds_of(doc, s)) for s in doc["study"]["strategies"]) >= 10
    for row, run in _runs(doc):
        trained = load_trained(run)
        assert trained.epoch == row["epochs"] == trained.cfg.epochs
        assert torch.load(run.checkpoint, weights_only=True).get("packed") == "float16"
        data = load_run(run.path)
        assert data.front_doc is not None and len(data.epochs) == row["epochs"]
        assert run.read_front()["test_images"] == 10_000  # the official Fashion-MNIST test set


def test_study_json_agrees_with_the_runs(doc):
    for entry in doc["comparison"]:
        for strategy, result in entry["strategies"].items():
            assert [row["seed"] for row in result["per_seed"]] == _seeds_of(doc, strategy)
            for row in result["per_seed"]:
                front = RunDir(STUDY / "runs" / f"{strategy}-s{row['seed']}").read_front()
                chosen = subnet_for_budget(front, entry["budget"], doc["constraint"])[1]
                assert row["key"] == chosen["key"] and row["cost"] <= entry["budget"]
                assert row["test"]["correct"] == chosen["test"]["correct"] and row["test"]["images"] == 10_000
            # a cell is comparable exactly when every seed shipped a subnet its strategy trained
            assert result["comparable"] == all(row["trained"] for row in result["per_seed"])
        for baseline, diff in entry["vs_pss"].items():
            both = entry["strategies"]["pss"]["comparable"] and entry["strategies"][baseline]["comparable"]
            assert diff["comparable"] == both and (both or (diff["verdict"] == "not comparable" and not diff["significant"]))
    t6 = doc["tables"]["pools_vs_search"]
    for entry in t6["comparison"]:
        for row in entry["arms"]["evolution"]["per_seed"]:
            searched = RunDir(STUDY / "runs" / f"pss-s{row['seed']}").alternative("evolution").read_front()
            assert row["key"] == subnet_for_budget(searched, entry["budget"], doc["constraint"])[1]["key"]


def test_readme_shows_the_shipped_study_json():
    """README's result block is generated from study.json (`python docs/update_readme.py`): the two cannot drift."""
    from pss.workflows.study import README_BEGIN, README_END, readme_section

    text = (helpers.REPO_ROOT / "README.md").read_text()
    block = text[text.index(README_BEGIN):text.index(README_END) + len(README_END)]
    assert block == readme_section(read_study(STUDY))


@torch.no_grad()
def test_an_export_tests_like_the_study_at_20_and_24_px(doc, tmp_path):
    """The input pipeline is one: a 20 px and a 24 px subnet the study shipped, exported and fed the test images as
    the card says (normalise, then resize), score exactly the study's count."""
    found = {}
    for entry in doc["comparison"]:
        for strategy, result in entry["strategies"].items():
            for row in result["per_seed"]:
                if row.get("resolution") in (20, 24) and row["resolution"] not in found:
                    found[row["resolution"]] = (entry["budget"], RunDir(STUDY / "runs" / f"{strategy}-s{row['seed']}"), row)
    assert set(found) == {20, 24}, "the shipped study has no 20 or no 24 px subnet to check"
    for r, (budget, run, row) in found.items():
        card = export_subnet(run.path, budget, tmp_path / f"r{r}")
        assert card["input"]["resolution"] == r and card["test"]["correct"] == row["test"]["correct"]
        program = torch.export.load(str(tmp_path / f"r{r}" / "model.pt2")).module()
        data = load_data(load_trained(run).cfg, create=False)
        correct = sum(int((program(resize_batch(x, r)).argmax(1) == y).sum()) for x, y in data.test_batches(500, torch.device("cpu")))
        assert correct == row["test"]["correct"], (r, correct, row["test"])


@torch.no_grad()
def test_exported_subnets_reproduce_their_cards_test_accuracy(doc, tmp_path):
    """At the middle budget, every run's export, evaluated on the 10,000 test images, gets the card's count."""
    budget = doc["budgets"][len(doc["budgets"]) // 2]
    for row, run in _runs(doc):
        card = export_subnet(run.path, budget, tmp_path / run.path.name)
        program = torch.export.load(str(tmp_path / run.path.name / "model.pt2")).module()
        data = load_data(load_trained(run).cfg, create=False)
        r = card["input"]["resolution"]
        correct = sum(int((program(resize_batch(x, r)).argmax(1) == y).sum()) for x, y in data.test_batches(500, torch.device("cpu")))
        assert correct == card["test"]["correct"], (run.path.name, correct, card["test"])
        assert json.loads((tmp_path / run.path.name / "card.json").read_text())["test"]["images"] == 10_000
