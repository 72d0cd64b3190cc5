"""Runs written before test splits (pss 0.1) still open, calibrate and export, marked as having no test split.

The legacy run is a real small run trained with the behaviours of 0.1 (no test split, depthwise weight
decay, uniform kind draw) whose run.json and front.json are then stripped of every field 0.1 did not
write, so it is byte for byte what the old version left on disk.
"""

from __future__ import annotations

import json

import pytest
import torch

import helpers
import pssviz
from pss.config import LEGACY_DEFAULTS
from pss.data import load_data
from pss.errors import PssError
from pss.io.checkpoint import read_bn_stats, write_bn_stats
from pss.io.run import open_run
from pss.workflows.calibrate import calibrate_run
from pss.workflows.export import export_subnet
from pss.workflows.info import format_summary, run_summary
from pssviz import analysis

NEW_CONFIG_KEYS = ("dropout", "width_rule", "kind_draw", "depthwise_weight_decay", "test_split", "test_fraction",
                   "imagenet_augmentation", "test_limit", "calib_rescore", "rescore_images", "superclasses", "superclass_dropout")


@pytest.fixture(scope="module")
def legacy_run(small_run, tmp_path_factory):
    trained = small_run(calibrate=(128, 2), test_split="false", depthwise_weight_decay="true", kind_draw="uniform")
    run = helpers.copy_run(trained, tmp_path_factory.mktemp("legacy") / "run")
    doc = json.loads((run / "run.json").read_text())
    for key in NEW_CONFIG_KEYS:
        doc["config"].pop(key)
    for key in ("num_test", "test_split"):
        doc["dataset"].pop(key)
    (run / "run.json").write_text(json.dumps(doc))
    front = json.loads((run / "calibration" / "front.json").read_text())
    for key in ("test_images", "test_split", "selection"):
        front.pop(key)
    for c in [c for p in front["pools"] for c in p["candidates"]] + list(front["references"].values()):
        c.pop("validation"), c.pop("test")
    (run / "calibration" / "front.json").write_text(json.dumps(front))
    # the first layout: one tensor per BN buffer, {key: {buffer name: tensor}}
    torch.save(read_bn_stats(open_run(run)), run / "calibration" / "bn_stats.pt")
    return run


def test_the_first_bn_stats_layout_reads_as_the_current_one(legacy_run, tmp_path):
    old = open_run(legacy_run)
    assert "layout" not in torch.load(old.bn_stats_file, weights_only=True)
    stats = read_bn_stats(old)
    new = open_run(helpers.copy_run(legacy_run, tmp_path / "run"))
    write_bn_stats(new, stats)
    assert new.bn_stats_file.stat().st_size < old.bn_stats_file.stat().st_size
    again = read_bn_stats(new)
    assert list(again) == list(stats)
    for key in stats:
        assert list(again[key]) == list(stats[key])
        assert all(torch.equal(again[key][n], stats[key][n]) for n in stats[key])


def test_a_damaged_bn_stats_index_is_a_one_line_error(legacy_run, tmp_path):
    run = open_run(helpers.copy_run(legacy_run, tmp_path / "run"))
    write_bn_stats(run, read_bn_stats(run))
    raw = torch.load(run.bn_stats_file, weights_only=True)
    raw["index"] = raw["index"][:-40]
    torch.save(raw, run.bn_stats_file)
    with pytest.raises(PssError, match="damaged.*pss calibrate again"):
        read_bn_stats(run)


def test_a_stored_config_reads_as_it_was_trained(legacy_run):
    cfg = open_run(legacy_run).read_config()
    assert {k: getattr(cfg, k) for k in LEGACY_DEFAULTS} == LEGACY_DEFAULTS
    data = load_data(cfg, create=False)
    assert data.num_test == 0 and data.num_val == helpers.SMALL_RUN["val_limit"]


def test_info_and_dashboard_say_there_is_no_test_split(legacy_run):
    text = format_summary(run_summary(legacy_run))
    assert "no test split" in text and "optimistic" in text
    data = pssviz.load_run(legacy_run)
    assert data.front["test_acc"].isna().all() and data.front["val_images"].notna().all()
    assert data.info()["test split"].startswith("none")
    chosen = analysis.subnet_for_budget(data, float(data.references.set_index("name").loc["max", "cost"]))
    assert chosen is not None and chosen["accuracy"] > 0


def test_export_of_a_legacy_run_has_no_test_accuracy(legacy_run, tmp_path, capsys):
    budget = json.loads((legacy_run / "calibration" / "front.json").read_text())["references"]["max"]["costs"]["macs"]
    card = export_subnet(legacy_run, budget, tmp_path / "subnet", check=False)
    assert card["test"] is None and card["test_split"] == "none"
    assert card["validation"]["images"] == helpers.SMALL_RUN["val_limit"]  # rebuilt from the front's validation_images
    code, out, err = helpers.run_cli(capsys, "export", legacy_run, "--budget", str(budget), "--out", tmp_path / "cli")
    assert code == 0, err
    assert "no test split" in out


def test_recalibrating_a_legacy_run_keeps_it_without_a_test_split(legacy_run, tmp_path):
    run = helpers.copy_run(legacy_run, tmp_path / "again")
    front = calibrate_run(run, top_k=1, images=64, progress=False)
    assert front["test_images"] == 0 and front["test_split"] == "none"
    assert all(c["test"] is None for p in front["pools"] for c in p["candidates"])
    assert front["references"]["max"]["test"] is None
