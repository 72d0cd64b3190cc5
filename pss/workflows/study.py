"""`pss study`: train every (strategy, seed) of a study, give each its per-budget subnets with equal
selection effort, and compare them on the test split with paired statistics.

Every run is an ordinary run directory under ``STUDY_DIR/runs/``: a finished run is skipped, an
interrupted one resumed, so a study can be stopped and restarted anywhere. Selection: ``pss`` by its
pools (`pss calibrate`, top-k = ``evaluations``), the others by `pss search` with ``evaluations``
calibrated subnets per budget. Comparison: at each budget ceiling, each run's subnet as `pss export
--budget` would choose it (validation accuracy), then its per-image correctness on the test split.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import StudyConfig, load_study
from ..errors import PssError
from ..evaluate.calibration import BNCalibrator
from ..evaluate.statistics import Accuracy, bootstrap_seed_image_means, mcnemar_exact, percentile_interval
from ..io.checkpoint import read_bn_stats
from ..io.run import RunDir, front_kinds, subnet_for_budget
from ..io.study import RUNS_DIR, prepare_study_dir, run_name, study_document, write_study
from ..nn.device import resolve_device
from ..data import load_data
from ..problem.space import Structure
from ..units import format_cost, parse_quantity
from .calibrate import calibrate_run
from .compare import default_budgets
from .loaded import load_trained
from .search import search_run
from .train import train

BOOTSTRAP_REPLICATES = 2000


def run_study(study_file: str | Path, out: str | Path, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study of ``study_file`` in ``out``; returns study.json's document."""
    study = load_study(study_file)
    root = prepare_study_dir(out, study)
    jobs = [(s, seed) for s in study.strategies for seed in study.seeds]
    runs: dict[tuple[str, int], RunDir] = {}
    started, spent = time.perf_counter(), []
    for i, (strategy, seed) in enumerate(jobs, start=1):
        name = run_name(strategy, seed)
        left = "" if not spent else f", about {statistics.mean(spent) * (len(jobs) - i + 1) / 60:.0f} min left"
        _say(progress, f"[{i}/{len(jobs)}] {name}: training{left}")
        t0 = time.perf_counter()
        run = train_or_resume(study.run_config(strategy, seed), root / RUNS_DIR / name, progress)
        _say(progress, f"[{i}/{len(jobs)}] {name}: choosing subnets by {study.method(strategy)} ({study.evaluations} per budget)")
        select_subnets(study, strategy, run, device)
        spent.append(time.perf_counter() - t0)
        runs[(strategy, seed)] = run
    _say(progress, "comparing on the test split")
    doc = compare_study(study, runs, device)
    doc["wall_seconds_this_invocation"] = round(time.perf_counter() - started, 1)
    write_study(root, doc, format_report(doc))
    return doc


def _say(progress: bool, line: str) -> None:
    if progress:
        print(f"pss study: {line}", file=sys.stderr, flush=True)


def _last_epoch(run: RunDir) -> int:
    paths = run.snapshot_paths()
    return int(run.read_snapshot(paths[-1])["epoch"]) if paths else 0


def train_or_resume(cfg, path: Path, progress: bool) -> RunDir:
    """Train the run at ``path``, resume it if interrupted, or leave it if finished."""
    cfg.progress = progress
    run = RunDir(path)
    if run.is_run():
        stored = run.read_config()
        if _last_epoch(run) >= stored.epochs:
            return run
        if run.checkpoint.is_file():
            stored.progress = progress
            return train(stored, path, resume=True)
        return train(cfg, path, force=True)  # cut before its first checkpoint: nothing to keep
    return train(cfg, path)


def select_subnets(study: StudyConfig, strategy: str, run: RunDir, device: str) -> dict[str, Any]:
    """The run's calibrated front for the study: calibrate or search, unless a current one with the same effort exists."""
    method = study.method(strategy)
    if run.has_front():
        front = run.read_front()
        same = front.get("epoch") == _last_epoch(run) and front.get("method", "calibrate") == method and (
            front["top_k"] == study.evaluations if method == "calibrate"
            else front.get("search", {}).get("evaluations_per_budget") == study.evaluations)
        if same:
            return front
    if method == "calibrate":
        return calibrate_run(run, top_k=study.evaluations, device=device, progress=False)
    return search_run(run, method=method, evaluations_per_budget=study.evaluations, device=device, progress=False)


@torch.no_grad()
def per_image_correct(run: RunDir, keys: list[str], device: str) -> dict[str, np.ndarray]:
    """Per-image top-1 correctness on the test split of calibrated subnets ``keys`` of a run (their BN statistics)."""
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    data = load_data(trained.cfg, create=False)
    if not data.has_test:
        raise PssError(f"run {run.path} has no test split; a study reports on test images (set test_split=true)")
    stats = read_bn_stats(run)
    calibrator = BNCalibrator(trained.supernet)
    out = {}
    for key in keys:
        s = Structure.from_key(key)
        calibrator.load(stats[key])
        model = calibrator.model.eval()
        marks = [(model(x, s).argmax(1) == y).cpu() for x, y in data.test_batches(trained.cfg.eval_batch_size, dev)]
        out[key] = torch.cat(marks).numpy()
    return out


def compare_study(study: StudyConfig, runs: dict[tuple[str, int], RunDir], device: str) -> dict[str, Any]:
    """study.json: per budget, each strategy's test accuracy over seeds and its paired difference from pss."""
    fronts = {k: r.read_front() for k, r in runs.items()}
    first = fronts[next(iter(runs))]
    constraint = first.get("constraint", "macs")
    if study.budgets:
        budgets = sorted(parse_quantity(b) for b in study.budgets)
    else:
        pss_fronts = [f for (s, _), f in fronts.items() if s == "pss"] or [first]
        budgets = default_budgets(pss_fronts[0]) if pss_fronts[0]["pools"] else [float(first["references"]["max"]["costs"][constraint])]
    chosen: dict[tuple[str, int], list[dict[str, Any] | None]] = {}
    for k, front in fronts.items():
        if constraint not in front_kinds(front) and constraint not in front["references"]["max"]["costs"]:
            raise PssError(f"run {runs[k].path} has no {constraint} costs")
        row = []
        for b in budgets:
            try:
                row.append(subnet_for_budget(front, b, constraint)[1])
            except PssError:
                row.append(None)
        chosen[k] = row
    correct = {k: per_image_correct(runs[k], sorted({c["key"] for c in row if c}), device) for k, row in chosen.items()}
    comparison = []
    for j, b in enumerate(budgets):
        entry: dict[str, Any] = {"budget": b, "label": format_cost(b, constraint), "strategies": {}}
        masks: dict[str, np.ndarray] = {}
        for strategy in study.strategies:
            picks = [chosen[(strategy, seed)][j] for seed in study.seeds]
            if any(p is None for p in picks):
                entry["strategies"][strategy] = None
                continue
            m = np.stack([correct[(strategy, seed)][p["key"]] for seed, p in zip(study.seeds, picks)])
            masks[strategy] = m
            lo, hi = percentile_interval(bootstrap_seed_image_means(m, BOOTSTRAP_REPLICATES, seed=j))
            entry["strategies"][strategy] = {
                "mean_test_accuracy": float(m.mean()), "ci95": [lo, hi],
                "per_seed": [{"seed": seed, "key": p["key"], "cost": p["costs"][constraint], "validation": p["accuracy"],
                              "test": Accuracy(int(m[i].sum()), int(m.shape[1])).to_json()}
                             for i, (seed, p) in enumerate(zip(study.seeds, picks))],
            }
        if "pss" in masks:
            entry["vs_pss"] = {s: _paired(masks["pss"], masks[s], study.seeds, j) for s in masks if s != "pss"}
        comparison.append(entry)
    run_rows = [_run_row(strategy, seed, runs[(strategy, seed)]) for strategy, seed in runs]
    method = {"accuracy_interval": f"percentile bootstrap over seeds and test images ({BOOTSTRAP_REPLICATES} replicates)",
              "difference_test": "paired bootstrap of pss minus baseline over seeds and the same test images; "
                                 "significant at 5% when its 95% interval excludes 0; McNemar's exact test per seed alongside",
              "selection": "each run's most accurate calibrated subnet (validation) with cost <= budget"}
    return study_document(study, budgets, constraint, run_rows, comparison, method)


def _paired(a: np.ndarray, b: np.ndarray, seeds: list[int], j: int) -> dict[str, Any]:
    """pss (``a``) minus a baseline (``b``), both seeds x the same test images."""
    diff = a.astype(np.int8) - b.astype(np.int8)
    lo, hi = percentile_interval(bootstrap_seed_image_means(diff, BOOTSTRAP_REPLICATES, seed=1000 + j))
    per_seed = []
    for i, seed in enumerate(seeds):
        only_a, only_b = int((a[i] & ~b[i]).sum()), int((~a[i] & b[i]).sum())
        per_seed.append({"seed": seed, "only_pss": only_a, "only_baseline": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b)})
    return {"mean_difference": float(diff.mean()), "ci95": [lo, hi], "significant": bool(lo > 0 or hi < 0), "per_seed": per_seed}


def _run_row(strategy: str, seed: int, run: RunDir) -> dict[str, Any]:
    snaps = run.read_snapshots()
    seconds = sum(float(s.get("seconds", 0.0)) for s in snaps)
    speeds = [float(s["images_per_second"]) for s in snaps if s.get("images_per_second")]
    return {"strategy": strategy, "seed": seed, "path": f"{RUNS_DIR}/{run.path.name}", "epochs": _last_epoch(run),
            "train_seconds": round(seconds, 1), "images_per_second": round(statistics.median(speeds), 1) if speeds else None}


def format_report(doc: dict[str, Any]) -> str:
    """report.md: the comparison table per budget, the paired differences, training cost, and the method."""
    study = doc["study"]
    strategies = study["strategies"]
    lines = [f"# Study: {study.get('description') or study['recipe']}", "",
             f"Recipe `{study['recipe']}` with {', '.join(f'`{k}={v}`' for k, v in study['set'].items()) or 'no overrides'}; "
             f"strategies {', '.join(strategies)}; "
             f"seeds {', '.join(map(str, study['seeds']))}; {study['evaluations']} calibrated evaluations per budget for "
             "every strategy.", "", "## Test accuracy at each budget (mean over seeds, 95% interval)", "",
             "| budget | " + " | ".join(strategies) + " |", "|---|" + "---|" * len(strategies)]
    for e in doc["comparison"]:
        cells = []
        for s in strategies:
            r = e["strategies"].get(s)
            cells.append("–" if r is None else f"{100 * r['mean_test_accuracy']:.1f}% [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}]")
        lines.append(f"| <= {e['label']} | " + " | ".join(cells) + " |")
    if any("vs_pss" in e for e in doc["comparison"]):
        lines += ["", "## pss minus each baseline (paired, same test images)", "",
                  "| budget | baseline | difference [95% CI] | significant at 5% | McNemar p per seed |", "|---|---|---|---|---|"]
        for e in doc["comparison"]:
            for s, d in e.get("vs_pss", {}).items():
                ps = ", ".join(f"{x['mcnemar_p']:.3g}" for x in d["per_seed"])
                lines.append(f"| <= {e['label']} | {s} | {100 * d['mean_difference']:+.2f} points "
                             f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}] | {'yes' if d['significant'] else 'no'} | {ps} |")
    lines += ["", "## Training", "", "| run | epochs | training time | images/s |", "|---|---|---|---|"]
    for r in doc["runs"]:
        lines.append(f"| {r['path']} | {r['epochs']} | {r['train_seconds'] / 60:.1f} min | {r['images_per_second']} |")
    lines += ["", "## Method", ""] + [f"- {k.replace('_', ' ')}: {v}" for k, v in doc["statistics"].items()]
    return "\n".join(lines) + "\n"
