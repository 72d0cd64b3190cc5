"""The `pss` command line: help, presets, info, user errors, --resume and --force.

User errors must give exit code 2, exactly one line on stderr, no traceback,
and leave the file system as it was.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pss.config import list_presets, load_config
from pss.problem.models import MODELS
from pss.io.run import subnet_for_budget
from pss.units import format_quantity, parse_quantity

from helpers import assert_user_error, one_line_error, run_cli  # noqa: E402

SUBCOMMANDS = ("train", "presets", "info", "calibrate", "export")


def pss_subprocess(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pss.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


# ------------------------------------------------------------------ help/presets
def test_presets_lists_smoke(capsys):
    code, out, err = run_cli(capsys, "presets")
    assert code == 0 and err == ""
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert "smoke" in names
    assert names == sorted(list_presets())
    assert all(len(line.split(None, 1)) == 2 for line in out.strip().splitlines()), "every preset needs a description"


def test_presets_cover_every_model_family(capsys):
    """At least one preset per model family (pss/problem/models/<family>.py: MobileNetV1, MobileNetV2, ResNet)."""
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()]
    family_of = {model: fn.__module__.rsplit(".", 1)[-1] for model, fn in MODELS.items()}
    assert set(family_of.values()) == {"mobilenet_v1", "mobilenet_v2", "resnet"}
    covered = {family_of[load_config(name).model] for name in names}
    missing = sorted(set(family_of.values()) - covered)
    assert not missing, f"no preset trains a {missing} model; presets: {names}"


def test_presets_named_in_train_help_exist(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    named = set(re.findall(r"^\s+pss train ([\w./-]+) --out", out, re.M))  # the examples
    named = {n for n in named if not n.endswith((".yaml", ".yml", ".json"))}
    assert named, "the train help shows examples"
    missing = sorted(named - set(list_presets()))
    assert not missing, f"`pss train --help` shows presets that do not exist: {missing}"


def test_top_level_help_lists_every_subcommand(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for cmd in SUBCOMMANDS:
        assert re.search(rf"^\s+{cmd}\s", out, re.M), f"`pss --help` does not list {cmd}"


def test_no_command_prints_help_and_fails(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 2
    assert "COMMAND" in out


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and "pss-explorer" in out


def test_train_help_mentions_options_and_config_keys(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    for opt in ("--out", "--resume", "--force", "--set", "--epochs", "--quiet"):
        assert opt in out, opt
    for key in ("pool_size", "p_end", "eta_end", "lower_bound", "divisor", "budget_count", "model", "width_mult", "epochs"):
        assert re.search(rf"^\s+{key} = ", out, re.M), f"config key {key} missing from `pss train --help`"


@pytest.mark.parametrize(
    "cmd,options",
    [
        ("calibrate", ("--top-k", "--images", "--device", "--quiet")),
        ("export", ("--budget", "--out")),
        ("info", ("--json",)),
    ],
)
def test_subcommand_help(capsys, cmd, options):
    code, out, _ = run_cli(capsys, cmd, "--help")
    assert code == 0
    for opt in options:
        assert opt in out, f"`pss {cmd} --help` lacks {opt}"


# ------------------------------------------------------------------ user errors
def test_unknown_preset_suggests_close_one(capsys, tmp_path):
    out_dir = tmp_path / "run"
    line = assert_user_error(capsys, "train", "smok", "--out", out_dir)
    assert "smok" in line and "'smoke'" in line
    assert not out_dir.exists()


def test_unknown_set_key(capsys, tmp_path):
    out_dir = tmp_path / "run"
    line = assert_user_error(capsys, "train", "smoke", "--out", out_dir, "--set", "epoch=1")
    assert "'epoch'" in line and "'epochs'" in line
    assert not out_dir.exists()


def test_unknown_set_key_points_to_a_working_command(capsys, tmp_path):
    """The error names a command to list the keys; that command must exist."""
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--set", "epoch=1")
    suggested = re.findall(r"`(pss [^`]+)`", line)
    assert suggested, line
    for cmd in suggested:
        args = shlex.split(cmd)[1:]
        code, out, err = run_cli(capsys, *args)
        assert code == 0, f"suggested `{cmd}` fails: {err.strip()}"
        assert "pool_size" in out


@pytest.mark.parametrize("setting,key", [("epochs=abc", "epochs"), ("epochs=1.5", "epochs"), ("lr=fast", "lr"), ("nesterov=3", "nesterov"), ("pool_size=null", "pool_size")])
def test_bad_set_value_type(capsys, tmp_path, setting, key):
    out_dir = tmp_path / "run"
    line = assert_user_error(capsys, "train", "smoke", "--out", out_dir, "--set", setting)
    assert f"'{key}'" in line
    assert not out_dir.exists()


def test_set_without_equals(capsys, tmp_path):
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--set", "epochs")
    assert "key=value" in line


def test_bad_config_value(capsys, tmp_path):
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--set", "p_end=2")
    assert "p_end" in line


def test_missing_config_file(capsys, tmp_path):
    line = assert_user_error(capsys, "train", str(tmp_path / "nope.yaml"), "--out", tmp_path / "run")
    assert "nope.yaml" in line
    assert not (tmp_path / "run").exists()


def test_existing_run_without_resume_or_force_is_untouched(capsys, run_copy, tree_state):
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "train", "smoke", "--out", run_copy, "--quiet", "--set", "epochs=1")
    assert "--resume" in line and "--force" in line
    assert tree_state(run_copy) == before


def test_non_empty_non_run_dir_is_refused(capsys, tmp_path, tree_state):
    d = tmp_path / "stuff"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    before = tree_state(d)
    line = assert_user_error(capsys, "train", "smoke", "--out", d)
    assert "not empty" in line
    assert tree_state(d) == before


@pytest.mark.parametrize("cmd", ["info", "calibrate", "export"])
def test_directory_that_is_not_a_run(capsys, tmp_path, cmd, tree_state):
    d = tmp_path / "plain"
    d.mkdir()
    (d / "readme.txt").write_text("not a run")
    before = tree_state(d)
    extra = ["--budget", "5M", "--out", tmp_path / "exp"] if cmd == "export" else []
    line = assert_user_error(capsys, cmd, d, *extra)
    assert "not a pss run directory" in line
    assert tree_state(d) == before
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("cmd", ["info", "calibrate"])
def test_missing_directory(capsys, tmp_path, cmd):
    line = assert_user_error(capsys, cmd, tmp_path / "nowhere")
    assert "does not exist" in line
    assert not (tmp_path / "nowhere").exists()


def test_export_before_calibrate(capsys, uncalibrated_run_copy, tmp_path, tree_state):
    before = tree_state(uncalibrated_run_copy)
    line = assert_user_error(capsys, "export", uncalibrated_run_copy, "--budget", "5M", "--out", tmp_path / "exp")
    assert "pss calibrate" in line
    assert not (tmp_path / "exp").exists()
    assert tree_state(uncalibrated_run_copy) == before


def test_export_malformed_budget(capsys, trained_run, tmp_path, tree_state):
    before = tree_state(trained_run)
    line = assert_user_error(capsys, "export", trained_run, "--budget", "12 apples", "--out", tmp_path / "exp")
    assert "12 apples" in line
    assert not (tmp_path / "exp").exists()
    assert tree_state(trained_run) == before


def test_export_budget_below_every_subnet_names_the_cheapest(capsys, trained_run, tmp_path):
    front = json.loads((trained_run / "calibration" / "front.json").read_text())
    cheapest = front["references"]["min"]
    line = assert_user_error(capsys, "export", trained_run, "--budget", "1K", "--out", tmp_path / "exp")
    assert cheapest["key"] in line and format_quantity(cheapest["costs"]["macs"]) in line, line
    assert not (tmp_path / "exp").exists()


def test_export_nearest_pool_out_of_range_states_range(capsys, trained_run, tmp_path):
    summary = json.loads(run_cli(capsys, "info", trained_run, "--json")[1])
    pools = [p for p in summary["pools"] if "calibrated" in p]
    lo = pools[0]["budget"]["value"] - pools[0]["budget"]["tolerance"]
    hi = pools[-1]["budget"]["value"] + pools[-1]["budget"]["tolerance"]
    line = assert_user_error(capsys, "export", trained_run, "--budget", "900G", "--nearest-pool", "--out", tmp_path / "exp")
    assert format_quantity(lo) in line and format_quantity(hi) in line, line
    assert not (tmp_path / "exp").exists()


def test_export_needs_a_budget_or_a_key(capsys, trained_run, tmp_path):
    assert_user_error(capsys, "export", trained_run, "--out", tmp_path / "exp")
    assert_user_error(capsys, "export", trained_run, "--key", "r1-1", "--budget", "5M", "--out", tmp_path / "exp")
    line = assert_user_error(capsys, "export", trained_run, "--key", "r32-not-a-subnet", "--out", tmp_path / "exp")
    assert "not in the calibrated front" in line
    assert not (tmp_path / "exp").exists()


def test_missing_dataset(capsys, tmp_path):
    out_dir = tmp_path / "run"
    line = assert_user_error(
        capsys, "train", "smoke", "--out", out_dir, "--quiet",
        "--set", "dataset=npz", "--set", "npz_path=/nonexistent.npz", "--set", "synthetic_fallback=false",
    )
    assert "/nonexistent.npz" in line
    assert not out_dir.exists()


def test_missing_dataset_in_a_subprocess_has_no_traceback(tmp_path, child_env):
    out_dir = tmp_path / "run"
    proc = pss_subprocess(
        ["train", "smoke", "--out", out_dir, "--quiet",
         "--set", "dataset=npz", "--set", "npz_path=/nonexistent.npz", "--set", "synthetic_fallback=false"],
        child_env, tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = one_line_error(proc.stderr)
    assert line.startswith("pss train: error:") and "/nonexistent.npz" in line
    assert proc.stdout == ""
    assert not out_dir.exists()


def test_not_a_run_in_a_subprocess_has_no_traceback(tmp_path, child_env):
    proc = pss_subprocess(["export", tmp_path, "--budget", "5M", "--out", tmp_path / "exp"], child_env, tmp_path)
    assert proc.returncode == 2
    line = one_line_error(proc.stderr)
    assert line.startswith("pss export: error:")
    assert not (tmp_path / "exp").exists()


def test_argparse_errors_are_one_line(capsys, tmp_path):
    line = assert_user_error(capsys, "train", "smoke")  # --out missing
    assert "--out" in line
    line = assert_user_error(capsys, "frobnicate")
    assert "frobnicate" in line
    line = assert_user_error(capsys, "export", tmp_path, "--out", tmp_path / "x")  # neither --budget nor --key
    assert "--budget" in line and "--key" in line


def test_out_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    line = assert_user_error(capsys, "train", "smoke", "--out", f)
    assert "not a directory" in line
    assert f.read_text() == "x"


@pytest.mark.parametrize("option", ["--top-k", "--images"])
def test_calibrate_rejects_zero(capsys, run_copy, tree_state, option):
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "calibrate", run_copy, option, "0", "--quiet")
    assert option in line
    assert tree_state(run_copy) == before


def test_damaged_run_json(capsys, run_copy):
    (run_copy / "run.json").write_text("{ not json")
    line = assert_user_error(capsys, "info", run_copy)
    assert "run.json" in line and "not valid JSON" in line


def test_resume_with_force(capsys, run_copy, tree_state):
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "train", "smoke", "--out", run_copy, "--resume", "--force", "--quiet")
    assert "--resume" in line and "--force" in line
    assert tree_state(run_copy) == before


def test_resume_of_something_that_is_not_a_run(capsys, tmp_path):
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "none", "--resume")
    assert "cannot resume" in line
    assert not (tmp_path / "none").exists()


def test_resume_rejects_config_changes(capsys, run_copy, tree_state):
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "train", "smoke", "--out", run_copy, "--resume", "--set", "pool_size=7")
    assert "--set" in line and "lr" in line  # says what may change
    assert tree_state(run_copy) == before


# ------------------------------------------------------------------ info
def test_info_json(capsys, trained_run):
    code, out, err = run_cli(capsys, "info", trained_run, "--json")
    assert code == 0, err
    data = json.loads(out)
    run_json = json.loads((trained_run / "run.json").read_text())
    assert data["calibrated"] is True and data["finished"] is True
    assert data["epochs_done"] == data["epochs"] == 1
    assert len(data["pools"]) == len(run_json["budgets"]) >= 2
    calibrated = 0
    for pool, budget in zip(data["pools"], run_json["budgets"]):
        b = pool["budget"]
        assert b["kind"] == "macs" and b["value"] == budget["value"] and b["tolerance"] == budget["tolerance"] > 0
        if "calibrated" in pool:
            calibrated += 1
            assert 0.0 <= pool["calibrated"]["accuracy"] <= 1.0
            assert abs(pool["calibrated"]["costs"]["macs"] - b["value"]) <= b["tolerance"]
    assert calibrated >= 1
    values = [p["budget"]["value"] for p in data["pools"]]
    assert values == sorted(values)


def test_info_table(capsys, trained_run):
    code, out, err = run_cli(capsys, "info", trained_run)
    assert code == 0, err
    n = len(json.loads((trained_run / "run.json").read_text())["budgets"])
    lines = out.strip().splitlines()
    header = next(i for i, l in enumerate(lines) if l.split()[:2] == ["pool", "budget"])
    rows = lines[header + 1 : header + 1 + n]
    assert [r.split()[0] for r in rows] == [str(i) for i in range(n)]
    assert all(len(r.split()) >= 7 for r in rows), rows  # index, budget +/- tol, entries, best m, acc, cost
    assert "not calibrated" not in out
    assert "progress   1/1 epochs (finished)" in out


def test_info_of_uncalibrated_run_says_so(capsys, uncalibrated_run_copy):
    code, out, _ = run_cli(capsys, "info", uncalibrated_run_copy)
    assert code == 0
    assert f"pss calibrate {uncalibrated_run_copy}" in out


# ------------------------------------------------------------------ export
def test_export_via_cli(capsys, trained_run, tmp_path):
    summary = json.loads(run_cli(capsys, "info", trained_run, "--json")[1])
    pool = [p for p in summary["pools"] if "calibrated" in p][0]
    budget = format_quantity(pool["budget"]["value"])
    out_dir = tmp_path / "exp"
    code, out, err = run_cli(capsys, "export", trained_run, "--budget", budget, "--out", out_dir)
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["card.json", "model.onnx", "model.pt2", "state_dict.pt"]
    card = json.loads((out_dir / "card.json").read_text())
    front = json.loads((trained_run / "calibration" / "front.json").read_text())
    assert card["key"] == subnet_for_budget(front, parse_quantity(budget))[1]["key"]
    assert card["costs"]["macs"] <= parse_quantity(budget) and card["selection"]["rule"] == "ceiling"
    assert card["key"] in out and str(out_dir) in out and "at most" in out and "test " in out
    code, out, err = run_cli(capsys, "export", trained_run, "--budget", budget, "--nearest-pool", "--out", tmp_path / "pool")
    assert code == 0, err
    assert json.loads((tmp_path / "pool" / "card.json").read_text())["key"] == pool["calibrated"]["key"]


# ------------------------------------------------------------------ resume/force
@pytest.mark.slow
def test_resume_extends_a_run(capsys, uncalibrated_run_copy, tree_state):
    run = uncalibrated_run_copy
    first = run / "snapshots" / "epoch_0001.json"
    first_bytes, first_mtime = first.read_bytes(), first.stat().st_mtime_ns
    code, out, err = run_cli(capsys, "train", "smoke", "--out", run, "--resume", "--epochs", "2", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == ["epoch_0001.json", "epoch_0002.json"]
    assert first.read_bytes() == first_bytes and first.stat().st_mtime_ns == first_mtime
    snap = json.loads((run / "snapshots" / "epoch_0002.json").read_text())
    assert snap["epoch"] == 2 and snap["epochs"] == 2
    first_snap = json.loads(first_bytes)
    assert snap["step"] == 2 * first_snap["step"] > 0, "the second epoch continues the step count"
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["config"]["epochs"] == 2
    code, out, _ = run_cli(capsys, "info", run, "--json")
    assert json.loads(out)["epochs_done"] == 2

    # resuming the finished run without extending it is an error that changes nothing
    before = tree_state(run)
    line = assert_user_error(capsys, "train", "smoke", "--out", run, "--resume", "--quiet")
    assert "already finished" in line and "--epochs" in line
    assert tree_state(run) == before


def test_force_overwrites(capsys, run_copy):
    run = run_copy
    (run / "stray.txt").write_text("left over")
    code, out, err = run_cli(
        capsys, "train", "smoke", "--out", run, "--force", "--quiet",
        "--set", "epochs=1", "--set", "train_limit=64", "--set", "batch_size=32", "--set", "val_limit=64",
        "--set", "structure_set_size=2000", "--set", "eval_calib_images=0", "--set", "dataset=synthetic",
    )
    assert code == 0, err
    names = sorted(p.name for p in run.iterdir())
    # the old run's files are replaced; a file that is not the run's own is left alone
    assert names == ["checkpoint.pt", "run.json", "snapshots", "stray.txt"], names
    assert (run / "stray.txt").read_text() == "left over"
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["config"]["train_limit"] == 64 and run_json["config"]["dataset"] == "synthetic"
    assert [p.name for p in (run / "snapshots").iterdir()] == ["epoch_0001.json"]
    code, out, _ = run_cli(capsys, "info", run, "--json")
    assert code == 0 and json.loads(out)["calibrated"] is False
