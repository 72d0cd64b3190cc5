"""`pss compare`: best calibrated accuracy per budget for several runs, and its file for the dashboard."""

from __future__ import annotations

import json
import shutil

import pytest

import pssviz
from pss.cli import main
from pss.evaluate.selection import FrontPoint, best_within
from pss.workflows.compare import compare_runs, format_comparison


def test_best_within_is_eq5_with_cheaper_ties():
    pts = [FrontPoint("a", 0.5, {"macs": 10}), FrontPoint("b", 0.7, {"macs": 20}), FrontPoint("c", 0.7, {"macs": 15}),
           FrontPoint("d", 0.9, {"macs": 40})]
    assert best_within(pts, 9, "macs") is None
    assert best_within(pts, 10, "macs").key == "a"
    assert best_within(pts, 25, "macs").key == "c"
    assert best_within(pts, 100, "macs").key == "d"


def test_compare_cli_table_file_and_dashboard_overlay(trained_run, tmp_path, capsys, monkeypatch):
    a = shutil.copytree(trained_run, tmp_path / "pss")
    b = shutil.copytree(trained_run, tmp_path / "other")
    front = json.loads((b / "calibration" / "front.json").read_text())
    for c in [c for pool in front["pools"] for c in pool["candidates"]] + list(front["references"].values()):
        c["accuracy"] = max(0.0, c["accuracy"] - 0.05)  # make the second run measurably worse (references count too)
    (b / "calibration" / "front.json").write_text(json.dumps(front))
    thetas = [p["budget"]["value"] for p in front["pools"]]
    budgets = ",".join(f"{t:.0f}" for t in thetas[:2]) + ",1"
    assert main(["compare", str(a), str(b), "--budgets", budgets]) == 0
    out, err = capsys.readouterr()
    assert "pss" in out and "other" in out and "-" in out
    assert "95% Wilson interval" in out and "%  [" not in out and "] @ " in out  # test accuracy [interval] @ cost
    path = a / "comparisons" / "pss-vs-other.json"
    assert path.is_file() and str(path) in err
    doc = json.loads(path.read_text())
    assert doc["kind"] == "pss-comparison" and doc["budgets"] == sorted(doc["budgets"])
    assert doc["budgets"][0] == 1 and doc["runs"][0]["results"][0] is None  # nothing costs <= 1 MAC
    for ra, rb in zip(doc["runs"][0]["results"][1:], doc["runs"][1]["results"][1:]):
        if ra is not None:
            assert rb["accuracy"] == pytest.approx(max(0.0, ra["accuracy"] - 0.05))
            assert ra["cost"] <= max(doc["budgets"])
            assert ra["test"]["images"] > 0 and ra["test"]["ci95"][0] <= ra["test"]["accuracy"] <= ra["test"]["ci95"][1]

    data = pssviz.load_run(a)
    assert list(data.comparisons) == ["pss-vs-other"]
    table = data.comparisons["pss-vs-other"]
    assert set(table["run"]) == {"pss", "other"} and (table["cost"] <= table["budget"]).all()
    from pssviz import figures

    fig = figures.add_comparison(figures.front_figure(data.front, data.references), table, "pss-vs-other")
    assert sum(1 for t in fig.data if t.name and "best ≤ budget" in t.name) == 2


def test_compare_errors_are_one_line(trained_run, uncalibrated_run_copy, tmp_path, capsys):
    assert main(["compare", str(uncalibrated_run_copy)]) == 2
    assert "no calibrated front" in capsys.readouterr().err
    assert main(["compare", str(trained_run), "--names", "a,b"]) == 2
    assert "one per run" in capsys.readouterr().err
    assert main(["compare", str(trained_run), "--budgets", "lots"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["compare", str(tmp_path / "nope")]) == 2


def test_format_lists_every_budget(trained_run):
    doc = compare_runs([trained_run])
    text = format_comparison(doc)
    assert len(text.splitlines()) == len(doc["budgets"]) + 2


def test_info_matches_front_pools_by_budget_not_index(run_copy, capsys):
    """A searched front may hold other budgets than run.json; `pss info` must not pair them by index."""
    path = run_copy / "calibration" / "front.json"
    front = json.loads(path.read_text())
    moved = front["pools"][0]
    moved["budget"] = dict(moved["budget"], value=moved["budget"]["value"] + 123.0, label="custom")
    front["pools"] = [moved] + front["pools"][1:]
    front["method"] = "random"
    path.write_text(json.dumps(front))
    from pss.workflows.info import run_summary

    s = run_summary(run_copy)
    assert "calibrated" not in s["pools"][0], "pool 0's budget is no longer in the front"
    assert len(s["other_budgets"]) == 1 and s["other_budgets"][0]["budget"]["label"] == "custom"
    assert all("calibrated" in p for p in s["pools"][1:] if any(
        fp["budget"]["value"] == p["budget"]["value"] and fp["best"] is not None for fp in front["pools"]))
    assert main(["info", str(run_copy)]) == 0
    out = capsys.readouterr().out
    assert "srch" in out and "pss search --method random" in out
