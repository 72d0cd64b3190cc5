"""Nothing lost, nothing let in: every defect of issue 9 as the command that showed it, and what it gives now.

Each test runs the real CLI on a copy of a small trained run. Failures of the
operating system (a full disk, a read-only one) are simulated by making the
OS call fail the way it does (``OSError(ENOSPC)``, ``os.access`` saying no);
the code under test is never replaced.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import helpers
from helpers import assert_user_error, run_cli

SMALL = helpers.TRAIN_SMALL


# ---------------------------------------------------------------------- 1. --force
def test_force_refuses_a_folder_that_is_not_a_run(capsys, tmp_path):
    """`mkdir x; echo t > x/thesis.tex; pss train smoke --out x --force` used to delete thesis.tex."""
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "thesis.tex").write_text("t")
    line = assert_user_error(capsys, "train", "smoke", "--out", folder, "--force", "--quiet", *SMALL)
    assert "--force only replaces a pss run directory" in line
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"] and (folder / "thesis.tex").read_text() == "t"


def test_force_with_a_bad_config_leaves_the_good_run_alone(capsys, run_copy, tree_state):
    """The delete used to happen before errors found later (`--set eval_batch_size=0`)."""
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "train", "smoke", "--out", run_copy, "--force", "--quiet", *SMALL, "--set", "eval_batch_size=0")
    assert "eval_batch_size" in line
    assert tree_state(run_copy) == before


def test_force_never_follows_a_link_out_of_the_run(capsys, run_copy, tmp_path):
    """A run whose snapshots/ is a link to another folder: the link goes, the folder it points at stays."""
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(run_copy / "snapshots"), elsewhere)
    (run_copy / "snapshots").symlink_to(elsewhere, target_is_directory=True)
    kept = sorted(p.name for p in elsewhere.iterdir())
    code, _, err = run_cli(capsys, "train", "smoke", "--out", run_copy, "--force", "--quiet", *SMALL)
    assert code == 0, err
    assert sorted(p.name for p in elsewhere.iterdir()) == kept
    assert not (run_copy / "snapshots").is_symlink() and (run_copy / "snapshots" / "epoch_0001.json").is_file()


# ---------------------------------------------------------------------- 2. scientific notation
def test_floats_in_scientific_notation(tmp_path):
    from pss.config import load_config

    assert load_config("smoke", {"lr": "1e-3"}).lr == pytest.approx(1e-3)
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nweight_decay: 5E-5\nstructure_set_size: 2e4\n")
    cfg = load_config(str(path))
    assert (cfg.lr, cfg.weight_decay, cfg.structure_set_size) == (pytest.approx(1e-3), pytest.approx(5e-5), 20000)


# ---------------------------------------------------------------------- 3. full and read-only disks
def test_export_on_a_full_disk_leaves_nothing_and_can_be_redone(capsys, run_copy, tmp_path, monkeypatch):
    out = tmp_path / "subnet"
    out.mkdir()
    (out / ".partial.model.pt2").write_bytes(b"half")  # what an export cut short by an older version left

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    line = assert_user_error(capsys, "export", run_copy, "--budget", "5.35M", "--out", out, code=1)
    assert "disk is full" in line
    assert not [p.name for p in out.iterdir()], "a half-written file was left behind"
    monkeypatch.undo()
    code, _, err = run_cli(capsys, "export", run_copy, "--budget", "5.35M", "--out", out)
    assert code == 0, err
    assert (out / "model.pt2").is_file()


def test_train_on_a_full_disk_is_one_line_and_leaves_no_temp_files(capsys, tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    run = tmp_path / "run"
    line = assert_user_error(capsys, "train", "smoke", "--out", run, "--quiet", *SMALL, code=1)
    assert "disk is full" in line
    assert not list(run.rglob("*.tmp"))


def test_calibrate_into_a_read_only_run_fails_before_the_work(capsys, run_copy, tree_state, monkeypatch):
    real_access = os.access
    read_only = str(run_copy)

    def access(path, mode, *args, **kwargs):
        if str(path).startswith(read_only) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    before = tree_state(run_copy)
    line = assert_user_error(capsys, "calibrate", run_copy, "--quiet")
    assert "cannot write" in line and "read-only" in line
    assert tree_state(run_copy) == before


# ---------------------------------------------------------------------- 4. an empty checkpoint
@pytest.mark.parametrize("command", ["calibrate", "export", "resume"])
def test_a_zero_byte_checkpoint_is_one_line(capsys, run_copy, command):
    (run_copy / "checkpoint.pt").write_bytes(b"")
    argv = {
        "calibrate": ["calibrate", run_copy, "--quiet"],
        "export": ["export", run_copy, "--budget", "5.35M", "--out", run_copy.parent / "x"],
        "resume": ["train", "smoke", "--out", run_copy, "--resume", "--quiet"],
    }[command]
    line = assert_user_error(capsys, *argv)
    assert "empty (0 bytes)" in line


# ---------------------------------------------------------------------- 5. labels and images
def _npz(path: Path, y: np.ndarray, size: int = 32) -> Path:
    x = np.random.default_rng(0).integers(0, 256, (len(y), size, size, 3), dtype=np.uint8)
    np.savez(path, x=x, y=y)
    return path


def test_a_stray_label_is_refused_before_any_classifier_is_built(capsys, tmp_path):
    y = np.arange(200) % 10
    y[7] = 10**7
    npz = _npz(tmp_path / "bad.npz", y)
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--quiet", "--set", "dataset=npz",
                             "--set", f"npz_path={npz}")
    assert "labels go up to 10000000" in line and "without gaps" in line
    assert not (tmp_path / "run").exists()


def test_one_class_and_tiny_images_are_warned_about(tmp_path):
    from pss.config import DataConfig
    from pss.data import load_data

    with pytest.warns(UserWarning, match="one class"):
        load_data(DataConfig(dataset="npz", npz_path=str(_npz(tmp_path / "one.npz", np.zeros(100, dtype=np.int64)))))
    with pytest.warns(UserWarning, match="4x4-pixel"):
        load_data(DataConfig(dataset="npz", npz_path=str(_npz(tmp_path / "tiny.npz", np.arange(100) % 10, size=4))))


# ---------------------------------------------------------------------- 6. values that slipped through
@pytest.mark.parametrize("setting, key", [
    ("lr=.inf", "lr"), ("momentum=-5", "momentum"), ("seed=1e20", "seed"), ("resolution_min=0", "resolution_min"),
    ("structure_set_size=2e8", "structure_set_size"), ("warmup_epochs=-1", "warmup_epochs"),
    ("eval_batch_size=0", "eval_batch_size"), ("weight_decay=-1", "weight_decay"), ("val_fraction=1", "val_fraction"),
])
def test_out_of_range_values_are_refused_up_front(capsys, tmp_path, setting, key):
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--quiet", "--set", setting)
    assert key in line and line.startswith("pss train: error: bad config:")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- 7. more tracebacks
def test_resume_on_a_checkpoint_of_another_model(capsys, run_copy):
    run_json = json.loads((run_copy / "run.json").read_text())
    run_json["config"]["width_mult"] = 0.5  # the checkpoint holds a x0.25 supernet
    (run_copy / "run.json").write_text(json.dumps(run_json))
    line = assert_user_error(capsys, "train", "smoke", "--out", run_copy, "--resume", "--quiet", "--epochs", "2")
    assert "does not match" in line


@pytest.mark.parametrize("argv", [["info"], ["export", "--budget", "5.35M", "--out", "{tmp}/x"], ["calibrate", "--quiet"]])
def test_a_run_json_missing_fields(capsys, run_copy, tmp_path, argv):
    run_json = json.loads((run_copy / "run.json").read_text())
    del run_json["budgets"], run_json["dataset"]["num_classes"]
    (run_copy / "run.json").write_text(json.dumps(run_json))
    line = assert_user_error(capsys, argv[0], run_copy, *[a.format(tmp=tmp_path) for a in argv[1:]])
    assert "lacks budgets, dataset.num_classes" in line


def test_an_undecodable_image_names_its_file(capsys, tmp_path):
    from PIL import Image

    root = tmp_path / "inet"
    for split in ("train", "val"):
        for wnid, colour in (("n001", (255, 0, 0)), ("n002", (0, 0, 255))):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(6):
                Image.new("RGB", (16, 16), colour).save(folder / f"img{i}.jpg")
    broken = root / "train" / "n002" / "img3.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--quiet", "--set", "dataset=imagenet-subset",
                             "--set", f"imagenet_root={root}", "--set", "imagenet_resolution=32", "--set", "batch_size=4",
                             "--set", "num_workers=1", "--set", "structure_set_size=2000", "--set", "eval_calib_images=0")
    assert f"cannot decode image {broken}" in line


# ---------------------------------------------------------------------- 9. smaller ones
def test_info_skips_a_damaged_snapshot_and_a_stray_file(capsys, run_copy):
    snaps = run_copy / "snapshots"
    (snaps / "epoch_0001.json").write_text('{"schema_version": 1, "kind": "pss-snap')  # half-written
    shutil.copy(run_copy / "run.json", snaps / "epoch_old-backup.json")
    code, out, err = run_cli(capsys, "info", run_copy)
    assert code == 0, err
    assert "1 damaged snapshot(s) skipped" in out
    code, out, err = run_cli(capsys, "info", run_copy, "--json")
    summary = json.loads(out)
    assert summary["snapshots"] == 1 and summary["damaged_snapshots"] == 1 and summary["epochs_done"] == 0


def test_resume_cleans_temp_files_and_takes_a_new_lr(capsys, run_copy):
    (run_copy / ".checkpoint.pt.abc123.tmp").write_bytes(b"partial")
    (run_copy / "snapshots" / ".epoch_0002.json.xyz.tmp").write_text("{")
    code, _, err = run_cli(capsys, "train", "smoke", "--out", run_copy, "--resume", "--quiet", "--epochs", "2", "--set", "lr=0.05")
    assert code == 0, err
    assert not list(run_copy.rglob("*.tmp"))
    assert json.loads((run_copy / "run.json").read_text())["config"]["lr"] == 0.05
    assert (run_copy / "snapshots" / "epoch_0002.json").is_file()


def test_divergence_names_epoch_and_step_and_a_command_that_works(capsys, tmp_path):
    line = assert_user_error(capsys, "train", "smoke", "--out", tmp_path / "run", "--quiet", *SMALL, "--set", "lr=1e30")
    assert "diverged in epoch 1, step" in line and "--resume --set lr=" in line


def test_calibrate_of_a_foreign_run_json_creates_no_folders(capsys, run_copy, tmp_path):
    run_json = json.loads((run_copy / "run.json").read_text())
    target = tmp_path / "somewhere" / "new"
    run_json["config"].update(dataset="cifar10", data_root=str(target), download=True, synthetic_fallback=False)
    (run_copy / "run.json").write_text(json.dumps(run_json))
    line = assert_user_error(capsys, "calibrate", run_copy, "--quiet")
    assert "CIFAR-10 not found" in line
    assert not target.exists() and not target.parent.exists()


def test_a_class_list_that_is_another_file_is_not_echoed(tmp_path):
    from pss.config import DataConfig
    from pss.data import load_data
    from pss.errors import PssError

    root = tmp_path / "inet"
    for split in ("train", "val"):
        (root / split / "n001").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:hunter2\ndaemon:x:1:1:swordfish\n")
    with pytest.raises(PssError) as exc:
        load_data(DataConfig(dataset="imagenet-subset", imagenet_root=str(root), imagenet_classes=str(secret)))
    assert "does not look like a class list" in str(exc.value)
    assert "hunter2" not in str(exc.value) and "root:x" not in str(exc.value)


def test_the_dashboard_does_not_offer_an_export_of_an_empty_checkpoint(run_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    (run_copy / "checkpoint.pt").write_bytes(b"")
    monkeypatch.setenv("PSS_RUNS", str(run_copy.parent))
    at = AppTest.from_file(str(helpers.APP), default_timeout=120)
    at.run()
    at.radio(key="page").set_value("Front & Export").run()
    assert not at.exception
    assert any("Export unavailable" in i.value and "empty (0 bytes)" in i.value for i in at.info)


@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB file system (tmpfs) to fill up; skipped where this process may not mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True)
    helpers.require(proc.returncode == 0, f"cannot mount a tmpfs here ({proc.stderr.strip()[:80]}); the simulated full-disk tests still run")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path, leave: int) -> Path:
    """Fill ``folder``'s file system until about ``leave`` bytes are free."""
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def test_a_really_full_disk(capsys, trained_run, small_disk):
    """Export and calibrate on a file system with 20 KB left: one line, exit 1, nothing half-written, the run intact."""
    run = helpers.copy_run(trained_run, small_disk / "run")
    out = small_disk / "subnet"
    filler = _fill(small_disk, 20_000)
    line = assert_user_error(capsys, "export", run, "--budget", "5.35M", "--out", out, code=1)
    assert "disk is full" in line
    assert not out.exists() or not [p.name for p in out.iterdir()]
    front_before = (run / "calibration" / "front.json").read_bytes()
    line = assert_user_error(capsys, "calibrate", run, "--quiet", "--images", "64", "--top-k", "1", code=1)
    assert "disk is full" in line
    assert (run / "calibration" / "front.json").read_bytes() == front_before
    assert not list(small_disk.rglob("*.tmp"))
    filler.unlink()
    code, _, err = run_cli(capsys, "export", run, "--budget", "5.35M", "--out", out)
    assert code == 0, err
