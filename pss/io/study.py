"""A study directory (``pss study``): the study file it ran, its runs, ``study.json`` and ``report.md``.

::

    STUDY_DIR/
      study.yaml          the study as run (recipe, overrides, strategies, seeds, budgets, evaluations)
      runs/<strategy>-s<seed>/   one ordinary run directory each (train, calibrate/search, dashboard)
      study.json          every number of the comparison (kind ``pss-study``)
      report.md           the comparison as tables, honest about significance
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..config import StudyConfig
from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import SCHEMA_VERSION, atomic_write_bytes, atomic_write_json, read_document

STUDY_FILE = "study.yaml"
STUDY_JSON = "study.json"
REPORT_FILE = "report.md"
RUNS_DIR = "runs"
STUDY_DOC = "pss-study"
LOCK_FILE = ".study.lock"


@contextlib.contextmanager
def study_lock(root: Path) -> Iterator[None]:
    """One ``pss study`` at a time in ``root``: a second one is refused at once (one line), never let in to
    train the same runs; the lock goes with the process, so a killed study leaves nothing that blocks a rerun."""
    path = Path(root) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PssError(f"another `pss study` is running in {root}; wait for it to finish (or stop it), then run "
                           "this command again to continue") from None
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def run_name(strategy: str, seed: int) -> str:
    return f"{strategy}-s{seed}"


def study_as_yaml(study: StudyConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(study), sort_keys=False)


def prepare_study_dir(out: str | Path, study: StudyConfig) -> Path:
    """``out`` ready for ``study``: new or empty (then study.yaml is written), or holding a study with the same
    training (recipe and overrides): a restart keeps its finished runs, and a changed selection, budget list,
    strategy or seed list is taken (study.yaml is updated; runs it no longer names stay on disk, unreported).
    A folder with other files, or a study that trains differently, is refused."""
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise PssError(f"--out {root} exists and is not a directory")
    text = study_as_yaml(study)
    stored = root / STUDY_FILE
    if stored.is_file():
        try:
            old = yaml.safe_load(stored.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PssError(f"cannot read {stored}: {exc}; use a new --out") from None
        if not isinstance(old, dict) or (old.get("recipe"), old.get("set")) != (study.recipe, study.set):
            raise PssError(f"{root} holds a different study (its recipe or set differ, so its runs were trained "
                           "differently); use a new --out, or delete it to start over")
        if stored.read_text() != text:
            atomic_write_bytes(stored, text.encode())
        return root
    if root.is_dir() and any(p.name != LOCK_FILE for p in root.iterdir()):
        raise PssError(f"--out {root} is not empty and holds no {STUDY_FILE}; give a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(stored, text.encode())
    return root


def study_document(study: StudyConfig, budgets: list[float], constraint: str, runs: list[dict[str, Any]],
                   comparison: list[dict[str, Any]], method: dict[str, Any],
                   tables: dict[str, Any] | None = None) -> dict[str, Any]:
    """study.json (kind ``pss-study``); ``tables``: PSS-Net Tables 6 and 8 from the same runs (null without pss runs)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": STUDY_DOC,
        "pss_version": __version__,
        "created": utc_timestamp(),
        "study": dataclasses.asdict(study),
        "constraint": constraint,
        "budgets": budgets,
        "statistics": method,
        "runs": runs,
        "comparison": comparison,
        "tables": tables or {},
    }


def write_study(root: Path, doc: dict[str, Any], report: str) -> None:
    atomic_write_json(root / STUDY_JSON, doc)
    atomic_write_bytes(root / REPORT_FILE, report.encode())


def read_study(root: str | Path) -> dict[str, Any]:
    return read_document(Path(root).expanduser() / STUDY_JSON, "study file", STUDY_DOC)


def _points(x: float) -> str:
    return f"{100 * x:+.2f}"


def _labels(cells: list[dict[str, Any]], every: int | None = None) -> str:
    """'1.466M and 1.726M MACs' (the unit once), or 'every ceiling' when the cells cover all ``every`` of them."""
    if every is not None and len(cells) == every > 1:
        return "every ceiling"
    labels = [str(c["label"]) for c in cells]
    unit = labels[0].split(" ", 1)[1] if " " in labels[0] and all(" " in x and x.split(" ", 1)[1] == labels[0].split(" ", 1)[1] for x in labels) else ""
    short = [x.split(" ", 1)[0] for x in labels] if unit else labels
    joined = short[0] if len(short) == 1 else ", ".join(short[:-1]) + " and " + short[-1]
    return f"{joined} {unit}".rstrip()


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def reading_sentences(doc: dict[str, Any]) -> list[str]:
    """The study in plain words, from study.json alone: what is different, equivalent, inconclusive, not comparable.

    The same sentences open report.md, the dashboard's Study page and notebook 06, so all three say what
    the numbers say and nothing more: a verdict is the Holm-adjusted test's, 'equivalent' is the TOST's at the
    study's margin, and 'inconclusive' comes with the size of difference the study could have detected.
    """
    margin = float(doc.get("study", {}).get("equivalence_margin", 0.5))
    n_budgets = len(doc.get("comparison", []))
    cells: dict[str, list[dict[str, Any]]] = {}
    for e in doc.get("comparison", []):
        for baseline, d in (e.get("vs_pss") or {}).items():
            cells.setdefault(baseline, []).append({**d, "label": e["label"]})
    if not cells:
        return ["This study has no pss runs to compare against, so it draws no conclusion."]
    tested = [c for cs in cells.values() for c in cs if c.get("comparable", True) and "verdict" in c]
    counts = {v: [c for c in tested if c["verdict"] == v] for v in ("different", "equivalent", "inconclusive")}
    ahead = [c for c in counts["different"] if c["mean_difference"] > 0]
    untested = [(b, c) for b, cs in cells.items() for c in cs if not c.get("comparable", True)]
    first = (f"Of {_n(len(tested), 'like-for-like comparison', 'like-for-like comparisons')} of pss with a baseline "
             f"(Holm-adjusted, 5%), {len(counts['different'])} {'shows' if len(counts['different']) == 1 else 'show'} a real "
             f"difference ({len(ahead)} with pss ahead, {len(counts['different']) - len(ahead)} behind), "
             f"{len(counts['equivalent'])} {'is' if len(counts['equivalent']) == 1 else 'are'} equivalent within ±{margin:g} "
             f"points and {len(counts['inconclusive'])} {'is' if len(counts['inconclusive']) == 1 else 'are'} inconclusive")
    mdds = [100 * c["mdd80"] for c in tested if c.get("mdd80") is not None]
    if mdds:
        first += f" (the study could detect differences of {min(mdds):.2f}-{max(mdds):.2f} points at 80% power)"
    first += f"; {_n(len(untested), 'cell is', 'cells are')} not comparable." if untested else "."
    parts = []
    for baseline, cs in cells.items():
        bits = []
        for v, phrase in (("different", None), ("equivalent", f"equivalent within ±{margin:g} points"), ("inconclusive", "inconclusive")):
            group = [c for c in cs if c.get("verdict") == v]
            if not group:
                continue
            if v == "different":
                for sign, word in ((1, "pss ahead"), (-1, f"{baseline} ahead")):
                    g = [c for c in group if sign * c["mean_difference"] > 0]
                    if g:
                        diffs = sorted(100 * c["mean_difference"] for c in g)
                        size = f"{diffs[0]:+.2f}" if len(diffs) == 1 else f"{diffs[0]:+.2f} to {diffs[-1]:+.2f}"
                        bits.append(f"{word} at {_labels(g, n_budgets)} ({size} points)")
            else:
                bits.append(f"{phrase} at {_labels(group, n_budgets)}")
        nc = [c for c in cs if not c.get("comparable", True)]
        if nc:
            bits.append(f"not comparable at {_labels(nc, n_budgets)}")
        parts.append(f"against {baseline}, " + ", ".join(bits))
    out = [first, "Per baseline: " + "; ".join(parts) + "."]
    if untested:
        by_strategy: dict[str, list[dict[str, Any]]] = {}
        for b, c in untested:
            by_strategy.setdefault(b, []).append(c)
        out.append("Not comparable (never counted as a win or a loss): " + "; ".join(
            f"{b} at {_labels(cs, n_budgets)}: {cs[0].get('reason') or 'no like-for-like subnet'}" for b, cs in by_strategy.items()) + ".")
    return out
