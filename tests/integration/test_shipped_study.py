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


def test_every_shipped_run_loads_packed_and_calibrated(doc):
    assert len(doc["runs"]) == len(doc["study"]["strategies"]) * len(doc["study"]["seeds"]) >= 10
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
            for row in result["per_seed"]:
                front = RunDir(STUDY / "runs" / f"{strategy}-s{row['seed']}").read_front()
                chosen = subnet_for_budget(front, entry["budget"], doc["constraint"])[1]
                assert row["key"] == chosen["key"] and row["cost"] <= entry["budget"]
                assert row["test"]["correct"] == chosen["test"]["correct"] and row["test"]["images"] == 10_000
    t6 = doc["tables"]["pools_vs_search"]
    for entry in t6["comparison"]:
        for row in entry["arms"]["evolution"]["per_seed"]:
            searched = RunDir(STUDY / "runs" / f"pss-s{row['seed']}").alternative("evolution").read_front()
            assert row["key"] == subnet_for_budget(searched, entry["budget"], doc["constraint"])[1]["key"]


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
