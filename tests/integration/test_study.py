"""`pss study`: a tiny real study (two strategies, two seeds), its restart, and bad study files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import helpers
from helpers import assert_user_error, run_cli
from pss.io.run import RunDir, subnet_for_budget
from pss.workflows.study import per_image_correct

TINY = {**helpers.SMALL_RUN, "pool_size": 4, "calib_images": 64, "eval_batch_size": 64}


def _write(path: Path, **study) -> Path:
    path.write_text(yaml.safe_dump({"recipe": "smoke", "set": TINY, "strategies": ["pss", "random", "uniform"],
                                    "seeds": {"pss": [0, 1], "random": [0, 1], "uniform": [0]},
                                    "evaluations": 2, **study}))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    file = _write(root / "study.yaml", description="tiny")
    out = root / "out"
    from pss.cli import main

    assert main(["study", str(file), "--out", str(out), "--quiet"]) == 0
    return file, out


def test_study_writes_runs_json_and_report_that_agree(study):
    _, out = study
    doc = json.loads((out / "study.json").read_text())
    assert doc["kind"] == "pss-study" and doc["constraint"] == "macs" and doc["budgets"] == sorted(doc["budgets"])
    assert sorted(r["path"] for r in doc["runs"]) == ["runs/pss-s0", "runs/pss-s1", "runs/random-s0", "runs/random-s1",
                                                      "runs/uniform-s0"]
    for entry in doc["comparison"]:
        for strategy in ("pss", "random", "uniform"):
            result = entry["strategies"][strategy]
            if result["mean_test_accuracy"] is None:  # nothing the strategy trained fits this ceiling
                assert not result["comparable"] and "nothing uniform trained" in result["reason"]
                continue
            accs = []
            for row in result["per_seed"]:
                run = RunDir(out / "runs" / f"{strategy}-s{row['seed']}")
                front = run.read_front()
                chosen = subnet_for_budget(front, entry["budget"])[1]
                assert row["key"] == chosen["key"] and row["cost"] <= entry["budget"]
                # the test count is what evaluating that subnet on the test split gives, image by image
                marks = per_image_correct(run, [row["key"]], "cpu")[row["key"]]
                assert row["test"]["correct"] == int(marks.sum()) and row["test"]["images"] == marks.size == TINY["test_limit"]
                assert row["test"]["correct"] == chosen["test"]["correct"]  # and what calibration measured
                accs.append(marks.mean())
                assert row["trained"]  # every seed ships a subnet its strategy trained
            assert result["mean_test_accuracy"] == pytest.approx(np.mean(accs))
            assert result["ci95"][0] <= result["mean_test_accuracy"] <= result["ci95"][1]
            # selection effort: the distinct calibrated subnets at or under the ceiling, per seed
            assert len(result["evaluations"]) == len(result["per_seed"]) and min(result["evaluations"]) >= 1
        diff = entry["vs_pss"]["random"]
        assert diff["mean_difference"] == pytest.approx(entry["strategies"]["pss"]["mean_test_accuracy"]
                                                        - entry["strategies"]["random"]["mean_test_accuracy"])
        assert diff["significant"] == (diff["verdict"] == "different") == (diff["p_holm"] < 0.05)
        assert diff["p_holm"] >= diff["p_value"] and diff["mdd80"] > 0 and diff["verdict"] in ("different", "equivalent", "inconclusive")
        assert all(0 <= s["mcnemar_p"] <= 1 for s in diff["per_seed"]) and [s["seed"] for s in diff["per_seed"]] == [0, 1]
        # uniform has one seed: its difference pairs seed 0 only
        u = entry["vs_pss"]["uniform"]
        assert u["verdict"] == "not comparable" or [s["seed"] for s in u["per_seed"]] == [0]
    # uniform trained uniform widths at r^max only: it was searched, and chose, only among those
    fam = doc["trained_families"]["uniform"]
    assert fam["widths"] == "uniform" and fam["resolutions"] == [32]
    assert all(row["resolution"] == 32 for e in doc["comparison"] for row in e["strategies"]["uniform"]["per_seed"] if row["key"])
    assert doc["reading"] and doc["reading"][0].startswith("Of ")
    assert doc["plateau"]["threshold_points"] == 0.3
    # equal selection effort: pss calibrated `evaluations` per pool, random searched `evaluations` per budget
    assert RunDir(out / "runs" / "pss-s0").read_front()["top_k"] == 2
    assert RunDir(out / "runs" / "random-s0").read_front()["search"]["evaluations_per_budget"] == 2
    report = (out / "report.md").read_text()
    assert "| budget | pss | random | uniform |" in report and "verdict (Holm)" in report
    assert "## Reading" in report and doc["reading"][0] in report


def test_tables_6_and_8_come_from_the_same_runs(study):
    _, out = study
    doc = json.loads((out / "study.json").read_text())
    main_pss = [e["strategies"]["pss"] for e in doc["comparison"]]
    # Table 8: top-k of each pool; k = evaluations is the study's own pss selection, top-1 takes each pool's first
    top = doc["tables"]["top_k"]
    assert top["k"] == [1, 2] and top["reference"] == "top-2"
    assert [e["arms"]["top-2"] for e in top["comparison"]] == main_pss
    for e in top["comparison"]:
        for row in e["arms"]["top-1"]["per_seed"]:
            front = RunDir(out / "runs" / f"pss-s{row['seed']}").read_front()
            firsts = [c for p in front["pools"] for c in p["candidates"][:1]] + list(front["references"].values())
            assert row["key"] in {c["key"] for c in firsts} and row["cost"] <= e["budget"]
            # the most accurate first-ranked candidate (or reference) under the ceiling
            assert row["validation"] == max(c["accuracy"] for c in firsts if c["costs"]["macs"] <= e["budget"])
    # Table 6: the same supernets searched by evolution with the same effort, beside (not over) their own front
    t6 = doc["tables"]["pools_vs_search"]
    assert [e["arms"]["pools"] for e in t6["comparison"]] == main_pss
    for seed in (0, 1):
        run = RunDir(out / "runs" / f"pss-s{seed}")
        assert run.read_front().get("method", "calibrate") == "calibrate" and run.read_front()["top_k"] == 2
        searched = run.alternative("evolution").read_front()
        assert searched["method"] == "evolution" and searched["search"]["evaluations_per_budget"] == 2
        for e in t6["comparison"]:
            row = next(r for r in e["arms"]["evolution"]["per_seed"] if r["seed"] == seed)
            assert row["key"] == subnet_for_budget(searched, e["budget"])[1]["key"]
    assert "Table 6" in (out / "report.md").read_text() and "Table 8" in (out / "report.md").read_text()


def test_running_a_study_again_trains_and_selects_nothing(study, capsys):
    file, out = study
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*") if p.is_file()}
    stamps.update({p: p.stat().st_mtime_ns for p in out.glob("runs/*/calibration*/*")})
    before = json.loads((out / "study.json").read_text())["comparison"]
    code, _, err = run_cli(capsys, "study", file, "--out", out)
    assert code == 0, err
    assert "pss-s0: finished, nothing to train" in err and "random-s1: finished" in err  # progress names each run
    assert "uniform-s1" not in err  # uniform has one seed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "study.json").read_text())["comparison"] == before


def test_bad_study_files_are_one_line_errors(study, tmp_path, capsys):
    _, out = study
    cases = [
        ({"strategy": ["pss"]}, "did you mean 'strategies'"),
        ({"strategies": ["pss", "unifrom"]}, "did you mean 'uniform'"),
        ({"evaluations": 9}, "exceeds pool_size 4"),
        ({"seeds": [0, 0]}, "seeds lists a seed twice"),
        ({"set": {**TINY, "seed": 3}}, "may not fix strategy or seed"),
        ({"selection": {"random": "calibrate"}}, "only pss keeps pools"),
        ({"recipe": "no-such-preset"}, "unknown preset"),
    ]
    for i, (change, message) in enumerate(cases):
        file = _write(tmp_path / f"bad{i}.yaml", **change)
        line = assert_user_error(capsys, "study", file, "--out", tmp_path / f"o{i}")
        assert message in line, line
        assert not (tmp_path / f"o{i}").exists()
    other = _write(tmp_path / "other.yaml", set={**TINY, "epochs": 3})
    line = assert_user_error(capsys, "study", other, "--out", out)  # a study that trains differently
    assert "different study" in line


def test_changing_the_selection_reselects_without_training(study, capsys):
    """A restart with more evaluations per budget re-selects every run with the new effort; nothing is retrained."""
    file, out = study
    weights = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/checkpoint.pt")}
    more = _write(file.parent / "more.yaml", description="tiny", evaluations=3)
    code, _, err = run_cli(capsys, "study", more, "--out", out)
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in weights} == weights
    assert yaml.safe_load((out / "study.yaml").read_text())["evaluations"] == 3
    assert RunDir(out / "runs" / "pss-s1").read_front()["top_k"] == 3
    assert RunDir(out / "runs" / "random-s1").read_front()["search"]["evaluations_per_budget"] == 3
    assert RunDir(out / "runs" / "pss-s0").alternative("evolution").read_front()["search"]["evaluations_per_budget"] == 3
    assert json.loads((out / "study.json").read_text())["tables"]["top_k"]["k"] == [1, 3]


def test_a_cell_shipping_an_untrained_subnet_is_not_comparable_and_never_significant(study, tmp_path):
    """A random run's front whose best low-budget subnet is one a PSE-Net run never trains (r < r^max): reported
    with its reason, left out of the tests (and of Holm's count), never a win or a loss."""
    import shutil

    from pss.io.run import front_points
    from pss.workflows.study import _TestMarks, compare_arms

    _, out = study
    arms = {"pss": {}, "other": {}}
    for seed in (0, 1):
        arms["pss"][seed] = (RunDir(out / "runs" / f"pss-s{seed}"), RunDir(out / "runs" / f"pss-s{seed}").read_front())
        copy = tmp_path / f"random-s{seed}"
        shutil.copytree(out / "runs" / f"random-s{seed}", copy)
        run = RunDir(copy)
        front = run.read_front()
        r_max = max(front["trained_family"]["resolutions"])
        # declare the run a PSE-Net run: it trained layer-wise widths at r^max only
        front["trained_family"] = {"strategy": "pse", "resolutions": [r_max], "widths": "layer-wise", "also": []}
        run.write_front(front)
        arms["other"][seed] = (run, front)
    budgets = sorted({p.costs["macs"] for p in front_points(arms["other"][0][1])})
    comparison = compare_arms(arms, "pss", budgets, "macs", _TestMarks("cpu"), diff_key="vs_pss")
    shipped_low = 0
    for e in comparison:
        cell, diff = e["strategies"]["other"], e["vs_pss"]["other"]
        untrained = [row for row in cell["per_seed"] if row["key"] and not row["trained"]]
        assert cell["comparable"] == (not untrained and all(row["key"] for row in cell["per_seed"]))
        if not cell["comparable"]:
            shipped_low += bool(untrained)
            assert diff == {"comparable": False, "verdict": "not comparable", "reason": cell["reason"], "significant": False}
            assert "p_value" not in diff and "p_holm" not in diff
            assert all("trains 32 px inputs only" in row["untrained_because"] for row in untrained)
        else:
            assert diff["verdict"] in ("different", "equivalent", "inconclusive")
    assert shipped_low >= 1  # the case this test is about did occur


def test_each_run_is_searched_only_within_what_its_strategy_trained(study):
    """US-Net trained uniform widths at r^max: its front holds only those (all of them in a band when the band has
    at most `evaluations`), and its min reference is S's smallest widths at r^max, the subnet it trained."""
    from pss.problem.space import Structure
    from pss.sampling.family import TrainedFamily

    _, out = study
    n = yaml.safe_load((out / "study.yaml").read_text())["evaluations"]  # an earlier test may have raised it
    run = RunDir(out / "runs" / "uniform-s0")
    front = run.read_front()
    family = TrainedFamily.from_json(front["trained_family"])
    _, problem = run.read_problem()
    space = problem.space
    assert family.strategy == "uniform" and family.resolutions == (space.resolutions[-1],)
    keys = [c["key"] for p in front["pools"] for c in p["candidates"]]
    assert keys and all(family.contains(space, Structure.from_key(k)) for k in keys)
    assert front["references"]["min"]["key"] == Structure(space.min_structure.widths, space.resolutions[-1]).key
    uniform = {s.key: s for s in space.uniform_structures(space.resolutions[-1])}
    for pool, stats in zip(front["pools"], front["search"]["budgets"]):
        band = [k for k, s in uniform.items() if abs(problem.cost_model.cost("macs", s) - pool["budget"]["value"])
                <= pool["budget"]["tolerance"]]
        assert stats["available"] == len(band) and stats["evaluations"] == min(len(band), n)
        assert len(pool["candidates"]) == stats["evaluations"]  # the front keeps every evaluated subnet
    # random trained all of S: its (evolutionary) search may use every resolution, and evaluated n per band
    searched = RunDir(out / "runs" / "random-s0").read_front()
    assert searched["trained_family"]["resolutions"] == list(space.resolutions)
    assert [b["evaluations"] for b in searched["search"]["budgets"]] == [n] * len(searched["pools"])
