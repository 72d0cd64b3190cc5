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
import warnings
import sys
import time
from importlib.metadata import entry_points
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
from .pack import pack_checkpoint
from .search import search_run
from .train import train

BOOTSTRAP_REPLICATES = 2000


def run_study(study_file: str | Path, out: str | Path, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study of ``study_file`` in ``out``; returns study.json's document."""
    study = load_study(study_file)
    root = prepare_study_dir(out, study)
    jobs = [(s, seed) for seed in study.seeds for s in study.strategies]  # seed by seed: one seed of every strategy first
    runs: dict[tuple[str, int], RunDir] = {}
    started = time.perf_counter()
    for i, (strategy, seed) in enumerate(jobs, start=1):
        name = run_name(strategy, seed)
        cfg = study.run_config(strategy, seed)
        _say(progress, f"[{i}/{len(jobs)}] {name}: {training_outlook(root, jobs, cfg.epochs, name)}")
        run = train_or_resume(cfg, root / RUNS_DIR / name, progress)
        if study.pack:  # before selection, so every number is of the weights the study ships
            pack_checkpoint(run.path)
        _say(progress, f"[{i}/{len(jobs)}] {name}: choosing subnets by {study.method(strategy)} ({study.evaluations} per budget)")
        select_subnets(study, strategy, run, device)
        runs[(strategy, seed)] = run
    _say(progress, "comparing on the test split")
    doc = compare_study(study, runs, device)
    doc["wall_seconds_this_invocation"] = round(time.perf_counter() - started, 1)
    write_study(root, doc, format_report(doc))
    for name in write_extra_reports(root):
        _say(progress, f"wrote {name}")
    return doc


#: Entry-point group of functions ``write(study_dir) -> Path`` that add a report to a finished study. pssviz
#: registers the self-contained ``report.html`` with plotly figures; pss itself draws nothing (layer rule).
REPORT_WRITERS = "pss.study_reports"


def write_extra_reports(root: Path) -> list[str]:
    """Run every installed report writer on the study in ``root``; a failing one is a note, never a lost study."""
    written = []
    for ep in entry_points(group=REPORT_WRITERS):
        try:
            written.append(Path(ep.load()(root)).name)
        except Exception as exc:  # a plugin's bug must not cost the study: study.json and report.md are written
            warnings.warn(f"the {ep.name} report was not written ({type(exc).__name__}: {exc})")
    return written


def training_outlook(root: Path, jobs: list[tuple[str, int]], epochs: int, name: str) -> str:
    """Where training stands: this run's epochs, the epochs left in the study and, once one was timed, the time left."""
    done = {run_name(*job): _last_epoch(RunDir(root / RUNS_DIR / run_name(*job))) for job in jobs}
    seconds = [float(s["seconds"]) for job in jobs for s in RunDir(root / RUNS_DIR / run_name(*job)).read_snapshots()
               if s.get("seconds")] if any(done.values()) else []
    left = sum(max(0, epochs - d) for d in done.values())
    here = "finished, nothing to train" if done[name] >= epochs else (
        f"training, epoch {done[name] + 1} of {epochs}" + (" (resumed)" if done[name] else ""))
    if not left:
        return here
    eta = f", about {format_duration(left * statistics.median(seconds))} at {statistics.median(seconds):.0f} s per epoch" if seconds else ""
    return f"{here}; {left} epochs left in the study{eta}"


def format_duration(seconds: float) -> str:
    """``2 h 05 min``, ``14 min``, ``40 s``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


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


def _front_is_current(run: RunDir, method: str, evaluations: int) -> bool:
    """The run's front (of ``run.calibration``) is of its last epoch, by ``method``, with ``evaluations`` per budget."""
    if not run.has_front():
        return False
    front = run.read_front()
    return front.get("epoch") == _last_epoch(run) and front.get("method", "calibrate") == method and (
        front["top_k"] == evaluations if method == "calibrate"
        else front.get("search", {}).get("evaluations_per_budget") == evaluations)


def select_subnets(study: StudyConfig, strategy: str, run: RunDir, device: str) -> dict[str, Any]:
    """The run's calibrated front for the study: calibrate or search, unless a current one with the same effort exists."""
    return _select(run, study.method(strategy), study.evaluations, device)


def _select(run: RunDir, method: str, evaluations: int, device: str) -> dict[str, Any]:
    if _front_is_current(run, method, evaluations):
        return run.read_front()
    if method == "calibrate":
        return calibrate_run(run, top_k=evaluations, device=device, progress=False)
    return search_run(run, method=method, evaluations_per_budget=evaluations, device=device, progress=False)


class _TestMarks:
    """Per-image test correctness of calibrated subnets, computed once per (run, front, subnet)."""

    def __init__(self, device: str) -> None:
        self.device, self.cache = device, {}

    def __call__(self, run: RunDir, keys: list[str]) -> dict[str, np.ndarray]:
        todo = [k for k in keys if (run.path, run.calibration, k) not in self.cache]
        if todo:
            for k, v in per_image_correct(run, todo, self.device).items():
                self.cache[(run.path, run.calibration, k)] = v
        return {k: self.cache[(run.path, run.calibration, k)] for k in keys}


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


def _choices(front: dict[str, Any], budgets: list[float], constraint: str) -> list[dict[str, Any] | None]:
    """Per budget ceiling, the subnet `pss export --budget` would choose from ``front`` (None: nothing fits)."""
    row = []
    for b in budgets:
        try:
            row.append(subnet_for_budget(front, b, constraint)[1])
        except PssError:
            row.append(None)
    return row


def compare_arms(arms: dict[str, dict[int, tuple[RunDir, dict[str, Any]]]], reference: str | None, budgets: list[float],
                 constraint: str, marks: _TestMarks, arms_key: str = "strategies", diff_key: str = "vs_reference") -> list[dict[str, Any]]:
    """Per budget: each arm's test accuracy over seeds (bootstrap interval) and its paired difference from ``reference``.

    An arm is a way of getting subnets (a strategy, or a selection of one supernet) with, per seed, a run and
    the front it chose from. Paired: the same seeds and the same test images, ``reference`` minus the arm.
    """
    seeds = sorted({seed for by_seed in arms.values() for seed in by_seed})
    chosen = {(a, seed): _choices(front, budgets, constraint) for a, by_seed in arms.items() for seed, (_, front) in by_seed.items()}
    correct = {(a, seed): marks(arms[a][seed][0], sorted({c["key"] for c in row if c})) for (a, seed), row in chosen.items()}
    out = []
    for j, b in enumerate(budgets):
        entry: dict[str, Any] = {"budget": b, "label": format_cost(b, constraint), arms_key: {}}
        masks: dict[str, np.ndarray] = {}
        for a in arms:
            picks = [chosen[(a, seed)][j] for seed in seeds]
            if any(p is None for p in picks):
                entry[arms_key][a] = None
                continue
            m = np.stack([correct[(a, seed)][p["key"]] for seed, p in zip(seeds, picks)])
            masks[a] = m
            lo, hi = percentile_interval(bootstrap_seed_image_means(m, BOOTSTRAP_REPLICATES, seed=j))
            entry[arms_key][a] = {
                "mean_test_accuracy": float(m.mean()), "ci95": [lo, hi],
                "per_seed": [{"seed": seed, "key": p["key"], "cost": p["costs"][constraint], "validation": p["accuracy"],
                              "test": Accuracy(int(m[i].sum()), int(m.shape[1])).to_json()}
                             for i, (seed, p) in enumerate(zip(seeds, picks))],
            }
        if reference in masks:
            entry[diff_key] = {a: _paired(masks[reference], masks[a], seeds, j) for a in masks if a != reference}
        out.append(entry)
    return out


def study_budgets(study: StudyConfig, fronts: dict[tuple[str, int], dict[str, Any]]) -> tuple[list[float], str]:
    """The comparison's budget ceilings and cost kind: the study's, else the upper edges of the pss run's pools."""
    first = next(iter(fronts.values()))
    constraint = first.get("constraint", "macs")
    for k, front in fronts.items():
        if constraint not in front_kinds(front) and constraint not in front["references"]["max"]["costs"]:
            raise PssError(f"run {run_name(*k)} has no {constraint} costs")
    if study.budgets:
        return sorted(parse_quantity(b) for b in study.budgets), constraint
    pss_fronts = [f for (s, _), f in fronts.items() if s == "pss"] or [first]
    if pss_fronts[0]["pools"]:
        return default_budgets(pss_fronts[0]), constraint
    return [float(first["references"]["max"]["costs"][constraint])], constraint


#: PSS-Net Table 8: the pool entries calibrated per pool (top-k by the metric m)
TOP_K_TABLE = (1, 5, 20)


def table_top_k(study: StudyConfig, runs: dict[tuple[str, int], RunDir], budgets: list[float], constraint: str,
                marks: _TestMarks) -> dict[str, Any] | None:
    """PSS-Net Table 8 from the pss runs' own front: calibrating only each pool's top 1, 5, 20 entries (by m).

    The front calibrated the top ``evaluations`` of every pool in rank order; top-k keeps the first k of each
    pool (calibration is deterministic, so calibrating only those gives these very numbers). k above
    ``evaluations`` is left out. Reference: the largest k.
    """
    pss_runs = {seed: r for (s, seed), r in runs.items() if s == "pss"}
    if not pss_runs or study.method("pss") != "calibrate":
        return None
    ks = [k for k in TOP_K_TABLE if k <= study.evaluations] or [study.evaluations]
    if ks[-1] != study.evaluations and study.evaluations not in ks:
        ks.append(study.evaluations)
    arms = {}
    for k in ks:
        arms[f"top-{k}"] = {seed: (run, _first_k(run.read_front(), k)) for seed, run in pss_runs.items()}
    reference = f"top-{ks[-1]}"
    return {"reference": reference, "k": ks,
            "comparison": compare_arms(arms, reference, budgets, constraint, marks, arms_key="arms")}


def _first_k(front: dict[str, Any], k: int) -> dict[str, Any]:
    """``front`` as if only the first ``k`` candidates of each pool had been calibrated (each pool's best among them)."""
    pools = []
    for p in front["pools"]:
        cands = p["candidates"][:k]
        best = max(cands, key=lambda c: c["accuracy"]) if cands else None
        # the pool's best among its first k, as calibrate picks it (ties: the earlier, higher-ranked entry)
        for c in cands:
            if best is not None and c["accuracy"] == best["accuracy"]:
                best = c
                break
        pools.append({**p, "candidates": cands, "best": best})
    return {**front, "pools": pools, "top_k": k}


def table_pools_vs_search(study: StudyConfig, runs: dict[tuple[str, int], RunDir], budgets: list[float], constraint: str,
                          marks: _TestMarks, device: str) -> dict[str, Any] | None:
    """PSS-Net Table 6: the PSS supernet's pool subnets vs the evolutionary search on the very same supernet.

    Both get ``evaluations`` calibrated evaluations per budget; the search's front is kept beside the run's own,
    in ``calibration-evolution/`` (:meth:`RunDir.alternative`). Reference: the pools.
    """
    pss_runs = {seed: r for (s, seed), r in runs.items() if s == "pss"}
    if not pss_runs or study.method("pss") != "calibrate":
        return None
    arms = {"pools": {seed: (run, run.read_front()) for seed, run in pss_runs.items()}, "evolution": {}}
    for seed, run in pss_runs.items():
        alt = run.alternative("evolution")
        arms["evolution"][seed] = (alt, _select(alt, "evolution", study.evaluations, device))
    return {"reference": "pools", "comparison": compare_arms(arms, "pools", budgets, constraint, marks, arms_key="arms")}


def compare_study(study: StudyConfig, runs: dict[tuple[str, int], RunDir], device: str) -> dict[str, Any]:
    """study.json: per budget, each strategy's test accuracy over seeds and its paired difference from pss; Tables 6 and 8."""
    fronts = {k: r.read_front() for k, r in runs.items()}
    budgets, constraint = study_budgets(study, fronts)
    marks = _TestMarks(device)
    arms = {s: {seed: (runs[(s, seed)], fronts[(s, seed)]) for seed in study.seeds} for s in study.strategies}
    comparison = compare_arms(arms, "pss", budgets, constraint, marks, diff_key="vs_pss")
    tables = {"pools_vs_search": table_pools_vs_search(study, runs, budgets, constraint, marks, device),
              "top_k": table_top_k(study, runs, budgets, constraint, marks)}
    run_rows = [_run_row(strategy, seed, runs[(strategy, seed)]) for strategy, seed in runs]
    method = {"accuracy_interval": f"percentile bootstrap over seeds and test images ({BOOTSTRAP_REPLICATES} replicates)",
              "difference_test": "paired bootstrap of pss minus baseline over seeds and the same test images; "
                                 "significant at 5% when its 95% interval excludes 0; McNemar's exact test per seed alongside",
              "selection": "each run's most accurate calibrated subnet (validation) with cost <= budget"}
    return study_document(study, budgets, constraint, run_rows, comparison, method, tables)


def _paired(a: np.ndarray, b: np.ndarray, seeds: list[int], j: int) -> dict[str, Any]:
    """The reference (``a``) minus an arm (``b``), both seeds x the same test images."""
    diff = a.astype(np.int8) - b.astype(np.int8)
    lo, hi = percentile_interval(bootstrap_seed_image_means(diff, BOOTSTRAP_REPLICATES, seed=1000 + j))
    per_seed = []
    for i, seed in enumerate(seeds):
        only_a, only_b = int((a[i] & ~b[i]).sum()), int((~a[i] & b[i]).sum())
        per_seed.append({"seed": seed, "only_reference": only_a, "only_other": only_b, "mcnemar_p": mcnemar_exact(only_a, only_b)})
    return {"mean_difference": float(diff.mean()), "ci95": [lo, hi], "significant": bool(lo > 0 or hi < 0), "per_seed": per_seed}


def _run_row(strategy: str, seed: int, run: RunDir) -> dict[str, Any]:
    snaps = run.read_snapshots()
    seconds = sum(float(s.get("seconds", 0.0)) for s in snaps)
    speeds = [float(s["images_per_second"]) for s in snaps if s.get("images_per_second")]
    front = run.read_front() if run.has_front() else {}
    return {"strategy": strategy, "seed": seed, "path": f"{RUNS_DIR}/{run.path.name}", "epochs": _last_epoch(run),
            "train_seconds": round(seconds, 1), "images_per_second": round(statistics.median(speeds), 1) if speeds else None,
            "selection_seconds": round(_selection_seconds(front), 1) if front else None}


def _selection_seconds(front: dict[str, Any]) -> float:
    cands = [c for p in front.get("pools", []) for c in p.get("candidates", [])] + list(front.get("references", {}).values())
    return sum(float(c.get("calibration_seconds") or 0.0) for c in cands)


def format_report(doc: dict[str, Any]) -> str:
    """report.md: the comparison per budget, the paired differences, Tables 6 and 8, training cost, and the method."""
    study = doc["study"]
    strategies = study["strategies"]
    lines = [f"# Study: {study.get('description') or study['recipe']}", "",
             f"Recipe `{study['recipe']}` with {', '.join(f'`{k}={v}`' for k, v in study['set'].items()) or 'no overrides'}; "
             f"strategies {', '.join(strategies)}; "
             f"seeds {', '.join(map(str, study['seeds']))}; {study['evaluations']} calibrated evaluations per budget for "
             "every strategy. Accuracy is top-1 on the test split, which no selection saw.", "",
             "## Test accuracy at each budget (mean over seeds, 95% interval)", ""]
    lines += _accuracy_table(doc["comparison"], strategies, "strategies")
    if any("vs_pss" in e for e in doc["comparison"]):
        lines += ["", "## pss minus each baseline (paired, same test images)", ""]
        lines += _difference_table(doc["comparison"], "vs_pss", "baseline")
    tables = doc.get("tables") or {}
    if tables.get("pools_vs_search"):
        t = tables["pools_vs_search"]
        lines += ["", "## PSS-Net Table 6: the pss supernet's pool subnets vs evolutionary search on the same supernet", "",
                  f"Both with {study['evaluations']} calibrated evaluations per budget; pools minus evolution, paired.", ""]
        lines += _accuracy_table(t["comparison"], ["pools", "evolution"], "arms")
        lines += [""] + _difference_table(t["comparison"], "vs_reference", "compared with")
    if tables.get("top_k"):
        t = tables["top_k"]
        names = [f"top-{k}" for k in t["k"]]
        lines += ["", "## PSS-Net Table 8: calibrating each pool's top-k entries (by the metric m)", "",
                  f"From the pss runs' own calibration (the first k of each pool's ranked candidates); "
                  f"{t['reference']} minus each, paired.", ""]
        lines += _accuracy_table(t["comparison"], names, "arms")
        lines += [""] + _difference_table(t["comparison"], "vs_reference", "compared with")
    lines += ["", "## Cost", "", "| strategy | training time per run | images/s | selection time per run |", "|---|---|---|---|"]
    for strategy in strategies:
        rows = [r for r in doc["runs"] if r["strategy"] == strategy]
        if rows:
            sel = [r["selection_seconds"] for r in rows if r.get("selection_seconds") is not None]
            speed = [r["images_per_second"] for r in rows if r.get("images_per_second")]
            lines.append(f"| {strategy} | {format_duration(statistics.mean(r['train_seconds'] for r in rows))} | "
                         f"{statistics.mean(speed):.0f} | {format_duration(statistics.mean(sel)) if sel else '–'} |")
    total = study_seconds(doc)
    lines += ["", f"All {len(doc['runs'])} runs: {format_duration(total['train'])} of training and "
                  f"{format_duration(total['selection'])} of selection (sum of the runs' measured times)."]
    lines += ["", "## Method", ""] + [f"- {k.replace('_', ' ')}: {v}" for k, v in doc["statistics"].items()]
    return "\n".join(lines) + "\n"


def study_seconds(doc: dict[str, Any]) -> dict[str, float]:
    """The study's measured cost: training and selection seconds summed over its runs."""
    return {"train": sum(r["train_seconds"] for r in doc["runs"]),
            "selection": sum(r.get("selection_seconds") or 0.0 for r in doc["runs"])}


def _accuracy_table(comparison: list[dict[str, Any]], names: list[str], key: str) -> list[str]:
    lines = ["| budget | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for e in comparison:
        cells = []
        for s in names:
            r = e[key].get(s)
            cells.append("–" if r is None else f"{100 * r['mean_test_accuracy']:.2f}% [{100 * r['ci95'][0]:.2f}, {100 * r['ci95'][1]:.2f}]")
        lines.append(f"| <= {e['label']} | " + " | ".join(cells) + " |")
    return lines


def _difference_table(comparison: list[dict[str, Any]], key: str, other: str) -> list[str]:
    lines = [f"| budget | {other} | difference [95% CI] | significant at 5% | McNemar p per seed |", "|---|---|---|---|---|"]
    for e in comparison:
        for s, d in e.get(key, {}).items():
            ps = ", ".join(f"{x['mcnemar_p']:.3g}" for x in d["per_seed"])
            lines.append(f"| <= {e['label']} | {s} | {100 * d['mean_difference']:+.2f} points "
                         f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}] | {'yes' if d['significant'] else 'no'} | {ps} |")
    return lines
