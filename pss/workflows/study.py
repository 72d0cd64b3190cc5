"""`pss study`: train every (strategy, seed) of a study, give each its per-budget subnets with equal
selection effort, and compare them on the test split with paired statistics.

Every run is an ordinary run directory under ``STUDY_DIR/runs/``: a finished run is skipped, an
interrupted one resumed, so a study can be stopped and restarted anywhere. Selection: ``pss`` by its
pools (`pss calibrate`, top-k = ``evaluations``), the others by `pss search` with ``evaluations``
calibrated subnets per budget. Comparison: at each budget ceiling, each run's subnet as `pss export
--budget` would choose it (validation accuracy), then its per-image correctness on the test split.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import statistics
import warnings
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import StudyConfig, load_study
from ..errors import PssError
from ..evaluate.calibration import BNCalibrator
from ..evaluate.statistics import (EQUIVALENCE_MARGIN, Accuracy, arm_accuracy, holm_adjust, paired_difference,
                                   verdict)
from ..io.checkpoint import read_bn_stats
from ..io.run import RunDir, front_kinds, front_points, subnet_for_budget
from ..io.study import RUNS_DIR, prepare_study_dir, reading_sentences, run_name, study_document, study_lock, write_study
from ..nn.device import resolve_device
from ..data import load_data
from ..problem.budgets import Budget
from ..problem.space import Structure, StructureSpace
from ..sampling.family import TrainedFamily
from ..sampling.strategies import trained_family
from ..units import format_cost, parse_quantity
from .calibrate import calibrate_run
from .compare import default_budgets
from .loaded import load_trained
from .pack import pack_checkpoint
from .search import search_run
from .train import train



def run_study(study_file: str | Path, out: str | Path, device: str = "auto", progress: bool = True,
              workers: int = 1) -> dict[str, Any]:
    """Run (or continue) the study of ``study_file`` in ``out``; returns study.json's document.

    ``workers`` > 1 trains and selects that many runs at once in separate processes (each with its share of
    the CPU threads); the comparison follows once every run is done. One study at a time per directory.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise PssError(f"--workers must be a positive integer, got {workers!r}")
    study = load_study(study_file)
    root = prepare_study_dir(out, study)
    with study_lock(root):
        jobs = study.jobs()  # seed by seed: one seed of every strategy first
        started = time.perf_counter()
        if workers == 1:
            for i, job in enumerate(jobs, start=1):
                _run_job(study, root, job, f"[{i}/{len(jobs)}]", jobs, device, progress, threads=None, workers=1)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_run_job, study, root, job, f"[{i}/{len(jobs)}]", jobs, device, progress, threads, workers)
                           for i, job in enumerate(jobs, start=1)]
                for f in futures:
                    f.result()  # a failed run raises here, after the others finished; their results stay on disk
        runs = {job: RunDir(root / RUNS_DIR / run_name(*job)) for job in jobs}
        _say(progress, "comparing on the test split")
        doc = compare_study(study, runs, device)
        doc["wall_seconds_this_invocation"] = round(time.perf_counter() - started, 1)
        write_study(root, doc, format_report(doc))
        for name in write_extra_reports(root):
            _say(progress, f"wrote {name}")
    return doc


def _run_job(study: StudyConfig, root: Path, job: tuple[str, int], tag: str, jobs: list[tuple[str, int]], device: str,
             progress: bool, threads: int | None, workers: int) -> None:
    """Train (or resume, or skip) one run of the study, pack it if asked, and give it its per-budget subnets."""
    if threads is not None:
        torch.set_num_threads(threads)
    strategy, seed = job
    name = run_name(strategy, seed)
    cfg = study.run_config(strategy, seed)
    _say(progress, f"{tag} {name}: {training_outlook(root, jobs, cfg.epochs, name, workers)}")
    # bars of several worker processes would overwrite each other: workers print the lines only
    run = train_or_resume(cfg, root / RUNS_DIR / name, progress and threads is None)
    if study.pack:  # before selection, so every number is of the weights the study ships
        pack_checkpoint(run.path)
    _say(progress, f"{tag} {name}: choosing subnets by {study.method(strategy)} ({study.evaluations} per budget)")
    select_subnets(study, strategy, run, device)
    if strategy == "pss" and study.method("pss") == "calibrate":  # Table 6's search, here so workers share it
        _select(run.alternative("evolution"), "evolution", study.evaluations, device)


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


def training_outlook(root: Path, jobs: list[tuple[str, int]], epochs: int, name: str, workers: int = 1) -> str:
    """Where training stands: this run's epochs, the epochs left in the study and, once one was timed, the time left
    (epochs left x the median epoch's seconds / ``workers`` training side by side)."""
    done = {run_name(*job): _last_epoch(RunDir(root / RUNS_DIR / run_name(*job))) for job in jobs}
    seconds = [float(s["seconds"]) for job in jobs for s in RunDir(root / RUNS_DIR / run_name(*job)).read_snapshots()
               if s.get("seconds")] if any(done.values()) else []
    left = sum(max(0, epochs - d) for d in done.values())
    here = "finished, nothing to train" if done[name] >= epochs else (
        f"training, epoch {done[name] + 1} of {epochs}" + (" (resumed)" if done[name] else ""))
    if not left:
        return here
    per = statistics.median(seconds) if seconds else 0.0
    side = f" and {workers} at a time" if workers > 1 else ""
    eta = f", about {format_duration(left * per / workers)} at {per:.0f} s per epoch{side}" if seconds else ""
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
    """The run's front (of ``run.calibration``) is of its last epoch, by ``method``, with ``evaluations`` per budget,
    searched within the configurations the run trained and keeping every evaluated subnet (fronts written
    before trained families are selected again)."""
    if not run.has_front():
        return False
    front = run.read_front()
    return front.get("epoch") == _last_epoch(run) and front.get("method", "calibrate") == method and (
        "trained_family" in front and front["top_k"] == evaluations) and (
        method == "calibrate" or front.get("search", {}).get("evaluations_per_budget") == evaluations)


def select_subnets(study: StudyConfig, strategy: str, run: RunDir, device: str) -> dict[str, Any]:
    """The run's calibrated front for the study: calibrate or search, unless a current one with the same effort exists."""
    return _select(run, study.method(strategy), study.evaluations, device)


def _select(run: RunDir, method: str, evaluations: int, device: str) -> dict[str, Any]:
    if _front_is_current(run, method, evaluations):
        return run.read_front()
    if method == "calibrate":
        return calibrate_run(run, top_k=evaluations, device=device, progress=False)
    # every evaluated subnet stays on the front, so the effort at each ceiling can be counted from it
    return search_run(run, method=method, evaluations_per_budget=evaluations, top_k=evaluations, device=device, progress=False)


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


def run_family(run: RunDir, front: dict[str, Any]) -> tuple[TrainedFamily, StructureSpace]:
    """The configurations ``run`` trained (as its front records them, else from its strategy) and its space S."""
    cfg, problem = run.read_problem()
    doc = front.get("trained_family")
    return (TrainedFamily.from_json(doc) if doc else trained_family(cfg.strategy, problem.space)), problem.space


def evaluations_within(front: dict[str, Any], budget: float, constraint: str) -> int:
    """Selection effort at a ceiling: the calibrated subnets (candidates and references) selection could choose
    among at or under ``budget``. A search that kept fewer candidates than it evaluated (fronts written before
    studies kept them all) is counted from its per-band record: every evaluation of a band under the ceiling."""
    fits = {p.key for p in front_points(front) if p.costs.get(constraint) is not None and p.costs[constraint] <= budget}
    search = front.get("search") or {}
    bands = search.get("budgets") or []
    if not bands or int(front.get("top_k") or 0) >= int(search.get("evaluations_per_budget") or 0):
        return len(fits)
    n, kept = 0, set()
    for pool, stats in zip(front["pools"], bands):
        under = [c["key"] for c in pool["candidates"] if c["costs"].get(constraint, math.inf) <= budget]
        kept |= set(under)
        n += int(stats.get("evaluations", len(under))) if Budget.from_json(pool["budget"]).high <= budget else len(under)
    return n + len(fits - kept)


def _seed_list(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


def _cell(arm: str, seeds: list[int], picks: list[dict[str, Any] | None], families: list[tuple[TrainedFamily, StructureSpace]],
          budget: float, constraint: str) -> tuple[bool, str | None, list[dict[str, Any]]]:
    """Whether an arm's cell is comparable (every seed ships a subnet its strategy trained), why not, and per-seed rows."""
    rows, why_by_seed = [], {}
    for seed, pick, (family, space) in zip(seeds, picks, families):
        if pick is None:
            why_by_seed[seed] = f"nothing {family.strategy} trained and calibrated costs at most {format_cost(budget, constraint)}"
            rows.append({"seed": seed, "key": None, "trained": False})
            continue
        s = Structure.from_key(pick["key"])
        why = family.why_not(space, s)
        if why:
            shipped = f"{s.resolution} px" if s.resolution not in family.resolutions else "layer-wise"
            why_by_seed[seed] = f"{family.strategy} trains {family.describe()} only, and shipped a {shipped} subnet here"
        rows.append({"seed": seed, "key": pick["key"], "resolution": s.resolution, "cost": pick["costs"][constraint],
                     "validation": pick["accuracy"], "trained": why is None, **({"untrained_because": why} if why else {})})
    reasons = {}
    for seed, why in why_by_seed.items():
        reasons.setdefault(why, []).append(seed)
    reason = "; ".join(f"{why} ({_seed_list(ss)})" for why, ss in reasons.items()) or None
    return not why_by_seed, reason, rows


def compare_arms(arms: dict[str, dict[int, tuple[RunDir, dict[str, Any]]]], reference: str | None, budgets: list[float],
                 constraint: str, marks: _TestMarks, arms_key: str = "strategies", diff_key: str = "vs_reference",
                 margin: float = EQUIVALENCE_MARGIN) -> list[dict[str, Any]]:
    """Per budget: each arm's test accuracy over its seeds and its difference from ``reference``, with a verdict.

    An arm is a way of getting subnets (a strategy, or a selection of one supernet) with, per seed, a run and
    the front it chose from; arms may have different seeds. A cell is *comparable* only when every seed's
    shipped subnet is one its strategy trained (:class:`TrainedFamily`); a cell that is not is reported with
    its reason and never tested, so it can be neither a win nor a loss. Differences: reference minus arm on the
    same test images (:func:`paired_difference`: seeds and images as noise sources, t interval, McNemar per
    seed pair, TOST at ±``margin``, the difference detectable at 80% power). Holm's adjustment runs over
    every comparable test of this call (one family), and each test's verdict is read from the adjusted p-values.
    """
    seeds_of = {a: sorted(by_seed) for a, by_seed in arms.items()}
    chosen = {(a, seed): _choices(front, budgets, constraint) for a, by_seed in arms.items() for seed, (_, front) in by_seed.items()}
    families = {(a, seed): run_family(run, front) for a, by_seed in arms.items() for seed, (run, front) in by_seed.items()}
    correct = {(a, seed): marks(arms[a][seed][0], sorted({c["key"] for c in row if c})) for (a, seed), row in chosen.items()}
    out, tests = [], []
    for j, b in enumerate(budgets):
        entry: dict[str, Any] = {"budget": b, "label": format_cost(b, constraint), arms_key: {}}
        masks: dict[str, tuple[list[int], np.ndarray]] = {}
        for a in arms:
            seeds = seeds_of[a]
            picks = [chosen[(a, seed)][j] for seed in seeds]
            ok, reason, rows = _cell(a, seeds, picks, [families[(a, seed)] for seed in seeds], b, constraint)
            effort = [evaluations_within(arms[a][seed][1], b, constraint) for seed in seeds]
            cell: dict[str, Any] = {"comparable": ok, "reason": reason, "evaluations": effort, "per_seed": rows}
            if all(p is not None for p in picks):
                m = np.stack([correct[(a, seed)][p["key"]] for seed, p in zip(seeds, picks)])
                acc = arm_accuracy(m)
                cell.update({"mean_test_accuracy": acc.mean, "ci95": list(acc.ci95), "se": acc.se, "df": _finite(acc.df)})
                for row, i in zip(rows, range(len(seeds))):
                    row["test"] = Accuracy(int(m[i].sum()), int(m.shape[1])).to_json()
                if ok:
                    masks[a] = (seeds, m)
            else:
                cell.update({"mean_test_accuracy": None, "ci95": None})
            entry[arms_key][a] = cell
        if reference is not None and reference in arms:
            entry[diff_key] = {}
            for a in arms:
                if a == reference:
                    continue
                if reference not in masks or a not in masks:
                    why = entry[arms_key][a]["reason"] if a not in masks else entry[arms_key][reference]["reason"]
                    entry[diff_key][a] = {"comparable": False, "verdict": "not comparable", "reason": why, "significant": False}
                    continue
                entry[diff_key][a] = _paired(masks[reference], masks[a], margin)
                tests.append(entry[diff_key][a])
        out.append(entry)
    p_holm = holm_adjust([t["p_value"] for t in tests])
    tost_holm = holm_adjust([t["tost_p"] for t in tests])
    for t, ph, th in zip(tests, p_holm, tost_holm):
        t["p_holm"], t["tost_p_holm"] = ph, th
        t["verdict"] = verdict(ph, th)
        t["significant"] = t["verdict"] == "different"
    return out


def _finite(x: float) -> float | None:
    return None if math.isinf(x) else float(x)


def _paired(ref: tuple[list[int], np.ndarray], other: tuple[list[int], np.ndarray], margin: float) -> dict[str, Any]:
    """The reference minus an arm on the same test images; per-seed rows pair the seeds both arms have."""
    (seeds_a, a), (seeds_b, b) = ref, other
    common = [s for s in seeds_a if s in seeds_b]
    order_a = [seeds_a.index(s) for s in common] + [i for i, s in enumerate(seeds_a) if s not in common]
    order_b = [seeds_b.index(s) for s in common] + [i for i, s in enumerate(seeds_b) if s not in common]
    d = paired_difference(a[order_a], b[order_b], margin)
    per_seed = [{"seed": common[x.seed_index], "difference": x.difference, "only_reference": x.only_reference,
                 "only_other": x.only_other, "mcnemar_p": x.mcnemar_p} for x in d.per_seed if x.seed_index < len(common)]
    return {"comparable": True, "mean_difference": d.difference, "ci95": list(d.ci95), "se": d.se, "df": _finite(d.df),
            "p_value": d.p_value, "tost_p": d.tost_p, "margin": d.margin, "mdd80": d.mdd80,
            "seeds": [len(seeds_a), len(seeds_b)], "per_seed": per_seed}


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
    """study.json: per budget, each strategy's test accuracy over its seeds, whether the cell is comparable, the
    selection effort, and pss minus each baseline with a verdict; Tables 6 and 8; the training plateau."""
    fronts = {k: r.read_front() for k, r in runs.items()}
    budgets, constraint = study_budgets(study, fronts)
    marks = _TestMarks(device)
    margin = study.equivalence_margin / 100.0
    arms = {s: {seed: (runs[(s, seed)], fronts[(s, seed)]) for seed in study.seeds_of(s) if (s, seed) in runs}
            for s in study.strategies}
    comparison = compare_arms(arms, "pss", budgets, constraint, marks, diff_key="vs_pss", margin=margin)
    tables = {"pools_vs_search": table_pools_vs_search(study, runs, budgets, constraint, marks, device),
              "top_k": table_top_k(study, runs, budgets, constraint, marks)}
    run_rows = [_run_row(strategy, seed, runs[(strategy, seed)]) for strategy, seed in runs]
    families = {s: run_family(*next(iter(by_seed.values())))[0].to_json() for s, by_seed in arms.items() if by_seed}
    tests = sum(1 for e in comparison for d in e.get("vs_pss", {}).values() if d.get("comparable"))
    method = {
        "accuracy_interval": "mean over seeds; 95% t interval whose standard error adds the spread between seeds "
                             "(s^2/n) and the test images' sampling noise (variance of the seed-averaged per-image "
                             "correctness / N), degrees of freedom by Welch-Satterthwaite",
        "difference_test": "pss minus baseline on the same test images, over both strategies' seeds (the same standard "
                           "error for the difference); two-sided t test; McNemar's exact test per seed pair alongside",
        "multiple_comparisons": f"Holm's adjustment over the {tests} comparable pss-vs-baseline tests (and, apart, over "
                                "their equivalence tests); verdicts read from the adjusted p-values",
        "equivalence": f"two one-sided tests (TOST) at a margin of ±{study.equivalence_margin:g} points: 'equivalent' when "
                       "a difference beyond the margin is ruled out at 5%",
        "power": "mdd80: the smallest true difference the test would find with 80% probability at 5% "
                 "((t_0.975 + t_0.80) x standard error)",
        "comparable": "a cell counts only when every seed ships a subnet its strategy trained (its trained family: "
                      "resolutions and width pattern its sampler draws); other cells are 'not comparable' and untested",
        "selection": f"each run's most accurate calibrated subnet (validation) with cost <= budget, chosen within its "
                     f"trained family; {study.evaluations} calibrated evaluations per budget band for every strategy (or "
                     "every trained subnet in the band when it has fewer); 'evaluations' counts those at or under the ceiling",
    }
    doc = study_document(study, budgets, constraint, run_rows, comparison, method, tables)
    doc["trained_families"] = families
    doc["plateau"] = training_plateau(run_rows)
    doc["reading"] = reading_sentences(doc)
    return doc


#: The max subnet should gain less than this (points of validation accuracy) over the last quarter of training.
PLATEAU_POINTS = 0.3


def last_quarter_gain(val_max: list[float]) -> float | None:
    """Validation accuracy of the max subnet gained over the last quarter of the epochs (a proportion), or None
    with fewer than 4 epochs: acc[E] - acc[E - ceil(E / 4)], epochs counted from 1."""
    n = len(val_max)
    if n < 4:
        return None
    return float(val_max[-1] - val_max[n - 1 - math.ceil(n / 4)])


def training_plateau(run_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether training had levelled off: each run's last-quarter gain of the max subnet, and the verdict."""
    gains = {r["path"]: r.get("last_quarter_gain") for r in run_rows}
    known = [g for g in gains.values() if g is not None]
    return {"threshold_points": PLATEAU_POINTS, "per_run_points": {k: None if g is None else round(100 * g, 3) for k, g in gains.items()},
            "mean_points": round(100 * statistics.mean(known), 3) if known else None,
            "max_points": round(100 * max(known), 3) if known else None,
            "reached": bool(known) and max(known) * 100 < PLATEAU_POINTS}


def _run_row(strategy: str, seed: int, run: RunDir) -> dict[str, Any]:
    snaps = run.read_snapshots()
    seconds = sum(float(s.get("seconds", 0.0)) for s in snaps)
    speeds = [float(s["images_per_second"]) for s in snaps if s.get("images_per_second")]
    front = run.read_front() if run.has_front() else {}
    val_max = [float(s["val_acc"]["max"]) for s in snaps if isinstance(s.get("val_acc"), dict) and "max" in s["val_acc"]]
    return {"strategy": strategy, "seed": seed, "path": f"{RUNS_DIR}/{run.path.name}", "epochs": _last_epoch(run),
            "train_seconds": round(seconds, 1), "images_per_second": round(statistics.median(speeds), 1) if speeds else None,
            "selection_seconds": round(_selection_seconds(front), 1) if front else None,
            "val_max": [round(v, 5) for v in val_max], "last_quarter_gain": last_quarter_gain(val_max)}


def _selection_seconds(front: dict[str, Any]) -> float:
    cands = [c for p in front.get("pools", []) for c in p.get("candidates", [])] + list(front.get("references", {}).values())
    return sum(float(c.get("calibration_seconds") or 0.0) for c in cands)


def _seeds_text(study: dict[str, Any]) -> str:
    seeds = study["seeds"]
    if isinstance(seeds, dict):
        return "seeds " + ", ".join(f"{s} {len(v)} ({', '.join(map(str, v))})" for s, v in seeds.items())
    return f"seeds {', '.join(map(str, seeds))}"


def format_report(doc: dict[str, Any]) -> str:
    """report.md: the reading, the comparison per budget (not-comparable cells as '—'), the paired differences
    with verdicts and power, the selection effort, Tables 6 and 8, the training plateau, cost and method."""
    study = doc["study"]
    strategies = study["strategies"]
    lines = [f"# Study: {study.get('description') or study['recipe']}", "",
             f"Recipe `{study['recipe']}` with {', '.join(f'`{k}={v}`' for k, v in study['set'].items()) or 'no overrides'}; "
             f"strategies {', '.join(strategies)}; {_seeds_text(study)}; {study['evaluations']} calibrated evaluations per "
             "budget band for every strategy. Accuracy is top-1 on the test split, which no selection saw.", "",
             "## Reading", ""]
    lines += [f"- {sentence}" for sentence in doc.get("reading") or []]
    families = doc.get("trained_families") or {}
    if families:
        lines += ["", "What each strategy trained (its subnets are chosen, and compared, only among these): "
                  + "; ".join(f"{s}: {f['description']}" for s, f in families.items()) + "."]
    lines += ["", "## Test accuracy at each budget (mean over seeds, 95% interval; — not comparable)", ""]
    lines += _accuracy_table(doc["comparison"], strategies, "strategies")
    if any("vs_pss" in e for e in doc["comparison"]):
        lines += ["", "## pss minus each baseline (same test images)", ""]
        lines += _difference_table(doc["comparison"], "vs_pss", "baseline")
    lines += ["", "## Selection effort: calibrated subnets at or under each ceiling (per seed)", ""]
    lines += _effort_table(doc["comparison"], strategies, "strategies")
    nc = [(e["label"], s, c["reason"]) for e in doc["comparison"] for s, c in e["strategies"].items()
          if c is not None and not c.get("comparable", True)]
    if nc:
        lines += ["", "Not comparable:", ""] + [f"- {s} at <= {label}: {reason}" for label, s, reason in nc]
    tables = doc.get("tables") or {}
    if tables.get("pools_vs_search"):
        t = tables["pools_vs_search"]
        lines += ["", "## PSS-Net Table 6: the pss supernet's pool subnets vs evolutionary search on the same supernet", "",
                  f"Both with {study['evaluations']} calibrated evaluations per budget; pools minus evolution.", ""]
        lines += _accuracy_table(t["comparison"], ["pools", "evolution"], "arms")
        lines += [""] + _difference_table(t["comparison"], "vs_reference", "compared with")
    if tables.get("top_k"):
        t = tables["top_k"]
        names = [f"top-{k}" for k in t["k"]]
        lines += ["", "## PSS-Net Table 8: calibrating each pool's top-k entries (by the metric m)", "",
                  f"From the pss runs' own calibration (the first k of each pool's ranked candidates); "
                  f"{t['reference']} minus each.", ""]
        lines += _accuracy_table(t["comparison"], names, "arms")
        lines += [""] + _difference_table(t["comparison"], "vs_reference", "compared with")
    plateau = doc.get("plateau")
    if plateau and plateau.get("max_points") is not None:
        lines += ["", "## Did training level off?", "",
                  f"The max subnet's validation accuracy gained {plateau['mean_points']:.2f} points on average (at most "
                  f"{plateau['max_points']:.2f}) over the last quarter of training; the target is under "
                  f"{plateau['threshold_points']:g} points: " + ("reached." if plateau["reached"] else
                  "**not reached** — the runs were still improving, so longer training could change the comparison.")]
    lines += ["", "## Cost", "", "| strategy | runs | training time per run | images/s | selection time per run |", "|---|---|---|---|---|"]
    for strategy in strategies:
        rows = [r for r in doc["runs"] if r["strategy"] == strategy]
        if rows:
            sel = [r["selection_seconds"] for r in rows if r.get("selection_seconds") is not None]
            speed = [r["images_per_second"] for r in rows if r.get("images_per_second")]
            lines.append(f"| {strategy} | {len(rows)} | {format_duration(statistics.mean(r['train_seconds'] for r in rows))} | "
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


def _budget_table(comparison: list[dict[str, Any]], names: list[str], key: str, cell) -> list[str]:
    """A Markdown table: one row per budget, one column per arm, ``cell(arm's entry or None)`` in each."""
    lines = ["| budget | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for e in comparison:
        lines.append(f"| <= {e['label']} | " + " | ".join(cell(e[key].get(s)) for s in names) + " |")
    return lines


def _accuracy_cell(r: dict[str, Any] | None) -> str:
    if r is None or r.get("mean_test_accuracy") is None or not r.get("comparable", True):
        return "—"
    res = sorted({row["resolution"] for row in r.get("per_seed", []) if row.get("resolution")})
    px = f" ({'/'.join(map(str, res))} px)" if res else ""
    return f"{100 * r['mean_test_accuracy']:.2f}% [{100 * r['ci95'][0]:.2f}, {100 * r['ci95'][1]:.2f}]{px}"


def _effort_cell(r: dict[str, Any] | None) -> str:
    n = (r or {}).get("evaluations")
    return "–" if not n else (str(n[0]) if len(set(n)) == 1 else f"{min(n)}-{max(n)}")


def _accuracy_table(comparison: list[dict[str, Any]], names: list[str], key: str) -> list[str]:
    return _budget_table(comparison, names, key, _accuracy_cell)


def _effort_table(comparison: list[dict[str, Any]], names: list[str], key: str) -> list[str]:
    return _budget_table(comparison, names, key, _effort_cell)


def _difference_table(comparison: list[dict[str, Any]], key: str, other: str) -> list[str]:
    lines = [f"| budget | {other} | difference [95% CI] | verdict (Holm) | p (Holm) | detectable at 80% power | "
             "per seed (McNemar p) |", "|---|---|---|---|---|---|---|"]
    for e in comparison:
        for s, d in e.get(key, {}).items():
            if not d.get("comparable", True):
                lines.append(f"| <= {e['label']} | {s} | — | not comparable | – | – | – |")
                continue
            seeds = ", ".join(f"s{x['seed']} {100 * x['difference']:+.2f} ({x['mcnemar_p']:.2g})" for x in d["per_seed"])
            v = d["verdict"] if d["verdict"] != "equivalent" else f"equivalent (±{100 * d['margin']:g})"
            lines.append(f"| <= {e['label']} | {s} | {100 * d['mean_difference']:+.2f} points "
                         f"[{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}] | {v} | {d['p_holm']:.2g} | "
                         f"{100 * d['mdd80']:.2f} points | {seeds} |")
    return lines


README_BEGIN = "<!-- study-result:begin (written by `python docs/update_readme.py` from the shipped study.json; do not edit) -->"
README_END = "<!-- study-result:end -->"


def _verdict_table(comparison: list[dict[str, Any]], baselines: list[str]) -> list[str]:
    lines = ["| budget (ceiling) | " + " | ".join(f"pss − {b}" for b in baselines) + " |", "|---|" + "---|" * len(baselines)]
    for e in comparison:
        cells = []
        for b in baselines:
            d = (e.get("vs_pss") or {}).get(b)
            if d is None or not d.get("comparable", True):
                cells.append("— not comparable")
                continue
            word = {"different": "**different**", "equivalent": f"equivalent (±{100 * d['margin']:g})"}.get(d["verdict"], d["verdict"])
            cells.append(f"{100 * d['mean_difference']:+.2f} [{100 * d['ci95'][0]:+.2f}, {100 * d['ci95'][1]:+.2f}] {word}; "
                         f"MDD {100 * d['mdd80']:.2f}")
        lines.append(f"| <= {e['label']} | " + " | ".join(cells) + " |")
    return lines


def readme_section(doc: dict[str, Any]) -> str:
    """README's result block, generated from study.json so README cannot drift from the shipped study."""
    study = doc["study"]
    strategies = study["strategies"]
    tests = [d for e in doc["comparison"] for d in (e.get("vs_pss") or {}).values() if d.get("comparable", True) and "verdict" in d]
    lines = [README_BEGIN, "", "**Reading** (the same sentences as `report.md` and the dashboard's Study page):", ""]
    lines += [f"- {s}" for s in doc.get("reading") or reading_sentences(doc)]
    lines += ["", f"Test accuracy (%) of the subnet each strategy ships at each MAC ceiling ({_seeds_text(study)}; mean over "
                  "seeds, 95% interval from the seeds' spread and the 10,000 test images; the shipped resolution in "
                  "brackets; — where the strategy has no subnet it trained, or shipped one it never trained):", ""]
    lines += _accuracy_table(doc["comparison"], strategies, "strategies")
    lines += ["", f"pss minus each baseline in points on the same test images, 95% interval, verdict after Holm's "
                  f"adjustment over the {len(tests)} comparable tests (equivalent: a difference beyond "
                  f"±{study.get('equivalence_margin', 0.5):g} points ruled out), and MDD, the difference the study "
                  "could detect at 80% power:", ""]
    lines += _verdict_table(doc["comparison"], [s for s in strategies if s != "pss"])
    lines += ["", "Selection effort, calibrated subnets at or under each ceiling (per seed; a strategy with fewer "
                  "trained subnets than asked evaluates all of them):", ""]
    lines += _effort_table(doc["comparison"], strategies, "strategies")
    plateau = doc.get("plateau") or {}
    if plateau.get("max_points") is not None:
        lines += ["", f"Training plateau: the max subnet gained {plateau['mean_points']:.2f} points on average (at most "
                      f"{plateau['max_points']:.2f}) of validation accuracy over the last quarter of training; target "
                      f"< {plateau['threshold_points']:g}: {'reached' if plateau['reached'] else 'not reached'}."]
    lines += ["", README_END]
    return "\n".join(lines)
