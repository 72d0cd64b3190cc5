"""Streamlit caches over pssviz/pss: what is read once, and what invalidates it.

* Run tables: ``st.cache_data`` keyed by the run path and its file signature
  (modification times and sizes), so a new snapshot or a recalibration
  invalidates exactly that run. Unchanged snapshot files are parsed once
  (``SnapshotCache`` resource), so following a live run re-reads one file per epoch.
* The trained supernet: ``st.cache_resource`` keyed by the checkpoint's mtime;
  export only reads it (slices are copies).
* Exports: ``st.cache_data`` per (run, subnet key, signature).
* A study (``pss study``): its tables keyed by the study's file signature; report.html is made on
  download only (plotly.js makes it ~5 MB) and cached per signature.
* EAS (``pss generate``): the generator's description and scenarios keyed by the run's and the generator
  files' signatures (``pssviz.eas.eas_signature``), so a scenario generated from the page shows on the next rerun.
  Exporting a generated subnet is not cached: it draws and calibrates again and rewrites scenarios.json.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

import pss  # torch loads on first use of a torch-needing name (exporting, calibrating), not here
import pssviz  # its names load on first use: pandas and plotly come with the first table, not with the sidebar
from pssviz import discover

if TYPE_CHECKING:
    from pssviz import eas as easviz
    from pssviz import studydoc
    from pssviz.load import RunData
    from pssviz.study import StudyData

REPO = Path(__file__).resolve().parents[1]
SAMPLE_ROOT = REPO / "sample_checkpoints"
RUNS_ENV, ANY_FOLDER_ENV, ALLOW_REMOTE_ENV = pss.RUNS_ENV, pss.ANY_FOLDER_ENV, pss.ALLOW_REMOTE_ENV
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def default_runs_root() -> str:
    """The runs root chosen at start: $PSS_RUNS when set, else the bundled sample runs."""
    return os.environ.get(RUNS_ENV) or str(SAMPLE_ROOT)


def any_folder_allowed() -> bool:
    """$PSS_ANY_FOLDER=1 (`pss dashboard --any-folder`): the runs-folder box may leave the runs root."""
    return _flag(ANY_FOLDER_ENV)


def folder_problem(folder: str) -> str | None:
    """Why the dashboard will not browse ``folder``, or None: it must lie inside the runs root (links resolved)."""
    if any_folder_allowed():
        return None
    root = Path(default_runs_root()).expanduser().resolve()
    try:
        Path(folder).expanduser().resolve().relative_to(root)
    except ValueError:
        return (f"`{folder}` is outside the runs root `{root}` this dashboard was started with; restart it with "
                f"{RUNS_ENV}=FOLDER (or `pss dashboard --runs FOLDER`), or allow any folder with {ANY_FOLDER_ENV}=1")
    return None


def remote_client_refused() -> str | None:
    """A message when the page is requested from another machine (unless $PSS_ALLOW_REMOTE=1), else None.

    The dashboard can calibrate and export, and it reads the server's files:
    it answers only its own machine, however Streamlit was started.
    """
    ip = getattr(st.context, "ip_address", None)
    if not isinstance(ip, str) or not ip or ip in LOOPBACK or _flag(ALLOW_REMOTE_ENV):  # no client address: not served
        return None
    return (f"This dashboard answers only the machine it runs on (your address is {ip}). Open it there, or start it "
            f"with {ALLOW_REMOTE_ENV}=1 (`pss dashboard --allow-remote`) to serve other machines.")


@st.cache_resource
def snapshot_cache() -> pssviz.SnapshotCache:
    return pssviz.SnapshotCache()


@st.cache_data(max_entries=8, show_spinner="Reading run…")
def _load(path: str, signature: tuple) -> RunData:
    return pssviz.load_run(path, cache=snapshot_cache())


def load_run(path: str | Path) -> tuple[RunData, tuple]:
    """(the run's tables, the file signature they were read at); raises RunLoadError (one line)."""
    path = str(Path(path).expanduser())
    signature = discover.run_signature(path)
    return _load(path, signature), signature


@st.cache_data(ttl=10, show_spinner=False)
def find_runs(root: str) -> list[str]:
    return [str(p) for p in discover.find_runs(root)]


@st.cache_data(ttl=10, show_spinner=False)
def find_study(root: str) -> str | None:
    """The study directory at or directly below the runs folder, or None (then the Study page is hidden)."""
    found = discover.find_study(root)
    return None if found is None else str(found)


@st.cache_data(max_entries=4, show_spinner=False)
def _study_summary(path: str, signature: tuple) -> "studydoc.StudySummary":
    from pssviz import studydoc

    return studydoc.study_summary(path)


def study_summary(path: str) -> tuple["studydoc.StudySummary", tuple]:
    """(the study's first-tab summary, the file signature it was read at), without pandas; raises StudyLoadError."""
    signature = discover.study_signature(path)
    return _study_summary(path, signature), signature


@st.cache_data(max_entries=4, show_spinner="Reading study…")
def _load_study(path: str, signature: tuple) -> StudyData:
    from pssviz import study as studies

    return studies.load_study_dir(path)


def load_study(path: str) -> tuple[StudyData, tuple]:
    """(the study's tables, the file signature they were read at); raises StudyLoadError (one line)."""
    signature = discover.study_signature(path)
    return _load_study(path, signature), signature


@st.cache_data(max_entries=2, show_spinner=False)
def study_report_html(path: str, signature: tuple) -> bytes:
    """report.html of the study, as `pss study` writes it (made on the first download click)."""
    from pssviz import study as studies

    return studies.report_html(path).encode("utf-8")


@st.cache_resource(max_entries=2, show_spinner="Loading the trained supernet…")
def trained_run(path: str, checkpoint_stamp: tuple) -> "pss.TrainedRun":
    """The run with its supernet loaded; shared across sessions, never mutated."""
    trained = pss.load_trained(path)
    for p in trained.supernet.parameters():
        p.requires_grad_(False)
    return trained


def checkpoint_stamp(path: str | Path) -> tuple:
    st_ = pss.RunDir(path).checkpoint.stat()
    return (st_.st_mtime_ns, st_.st_size)


def export_problem(data: RunData) -> str | None:
    """Why this run's calibrated subnets cannot be exported now, or None."""
    if data.front is None:
        return "the run is not calibrated yet"
    if not data.has_checkpoint:
        return "the run has no checkpoint.pt (a generated or trimmed run): nothing to slice weights from"
    if not data.files.bn_stats_file.is_file():
        return f"calibration/bn_stats.pt is missing; rerun `pss calibrate {data.path}`"
    if data.front_epoch != data.last_epoch:
        return f"the calibration is from epoch {data.front_epoch} but training has reached epoch {data.last_epoch}; recalibrate first"
    try:  # the weights must load before a download is offered (an empty or damaged checkpoint says so here)
        trained_run(str(data.path), checkpoint_stamp(data.path))
    except pss.PssError as exc:
        return str(exc)
    return None


def _zipped(folder: Path, name: str) -> bytes:
    """The files of ``folder`` in a zip, under ``name/``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, arcname=f"{name}/{f.name}")
    return buf.getvalue()


@st.cache_data(max_entries=16, show_spinner=False)
def export_zip(path: str, key: str, signature: tuple) -> bytes:
    """The same files `pss export` writes (model.pt2, model.onnx, state_dict.pt, card.json), zipped."""
    trained = trained_run(path, checkpoint_stamp(path))
    with tempfile.TemporaryDirectory(prefix="pss-export-") as tmp:
        out = Path(tmp) / "subnet"
        pss.export_candidate(path, key, out, trained=trained)
        return _zipped(out, pss.export_name(key))


@st.cache_data(max_entries=8, show_spinner=False)
def _load_eas(path: str, signature: tuple, eas_signature: tuple, _data: RunData) -> "easviz.EasData":
    from pssviz import eas as easviz

    return easviz.load_eas(_data)


def load_eas(data: RunData) -> "easviz.EasData":
    """The run's EAS generator and scenarios (pssviz.eas), re-read when the run or its generator files change."""
    from pssviz import eas as easviz  # here: only the EAS page needs it (the first page loads faster)

    return _load_eas(str(data.path), pssviz.run_signature(data.path), easviz.eas_signature(data.path), data)


def export_generated_zip(path: str, superclass: str, budget: float) -> tuple[bytes, str, dict]:
    """`pss export RUN --superclass NAME --budget B` on a run with a generator, zipped: (zip bytes, folder name, card).

    The API draws the generator's architecture for (superclass, budget) again (default settings), calibrates it
    on the superclass's images and records it in generator/scenarios.json; the card says which subnet it is.
    """
    from pssviz import eas as easviz

    with tempfile.TemporaryDirectory(prefix="pss-export-") as tmp:
        out = Path(tmp) / "subnet"
        card = pss.export_subnet(path, float(budget), out, superclass=superclass)
        name = f"{pss.export_name(card['key'])}-{easviz.file_slug(superclass)}"
        return _zipped(out, name), name, card


def describe_error(exc: Exception) -> str:
    from pssviz.load import RunLoadError
    from pssviz.studydoc import StudyLoadError

    if isinstance(exc, (RunLoadError, StudyLoadError)):
        return str(exc)
    return f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
