"""pss-explorer dashboard: `streamlit run app/main.py` (opens on the bundled sample run).

Thin on purpose: reading runs lives in ``pssviz.load``, derived tables in
``pssviz.analysis``, figures in ``pssviz.figures``, calibration and export in
``pss``. This file only lays out the sidebar and routes to a page.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # app/ modules, also under AppTest

import streamlit as st  # noqa: E402

import pssviz  # noqa: E402
import state  # noqa: E402
import teach  # noqa: E402
from layout import RUN_PAGE_NAMES  # noqa: E402
import study_page  # noqa: E402

st.set_page_config(page_title="pss-explorer", page_icon="🧭", layout="wide")

STUDY_PAGE = study_page.STUDY_PAGE
#: the pages of one run, in menu order: views.PAGES, then Superclasses (EAS)
PAGE_NAMES = [*RUN_PAGE_NAMES, teach.EAS_PAGE]


def _run_page(name: str):
    """The function that draws run page ``name``. The run pages' modules (plotly, the analysis tables) are imported
    here, on first use, not at the top: the page the dashboard opens on (Study, or Start here) goes out first."""
    import eas
    import views

    return {**views.PAGES, teach.EAS_PAGE: eas.page}[name]


def _page_names(study: str | None) -> list[str]:
    """Start here, the Study page when the runs folder holds a study, the run pages (the sampling
    playground beside Sampling)."""
    runs = list(PAGE_NAMES)
    runs.insert(runs.index("Sampling") + 1, teach.PLAYGROUND_PAGE)
    return [teach.START_PAGE] + ([STUDY_PAGE] if study else []) + runs


_slug = teach.slug  # ?page=front-export, ?page=superclasses-eas


def _page_from_url(names: list[str]) -> str:
    """The page a link names (?page=pools), else the Study page when there is one, else the Overview."""
    default = STUDY_PAGE if STUDY_PAGE in names else "Overview"
    wanted = st.query_params.get("page", _slug(default))
    by_slug = {_slug(n): n for n in names}
    return by_slug.get(str(wanted).lower(), wanted if wanted in names else default)


def _study_in(root: str) -> str | None:
    """The study at or directly below the runs folder as the box holds it now (its widget is drawn below the pages)."""
    return None if not root or state.folder_problem(root) else state.find_study(root)


def _navigation() -> tuple[str | None, list[str], str]:
    """(the study in the runs folder, the menu, the page) as the session or a shared link holds them; draws nothing,
    so that a page that needs no run can be drawn before the sidebar."""
    if "runs_root" not in st.session_state:  # first visit: a shared link may name the runs folder
        st.session_state["runs_root"] = st.query_params.get("folder") or state.default_runs_root()
    study = _study_in(st.session_state["runs_root"])
    names = _page_names(study)
    if st.session_state.get("page") not in names:  # first visit, or the Study page went with its folder
        st.session_state["page"] = _page_from_url(names)
    return study, names, st.session_state["page"]


def _sidebar(study: str | None, names: list[str]) -> tuple[str | None, list[str], str, bool]:
    with st.sidebar:
        st.title("pss-explorer")
        st.caption("Prioritized Subnet Sampling, seen from the inside.")
        page = st.radio("Page", names, key="page")
        st.query_params["page"] = _slug(page)
        st.divider()
        root = st.text_input(
            "Runs folder", key="runs_root",
            help=f"A run directory or a folder of runs (searched 3 levels deep) inside the runs root; "
            f"${state.RUNS_ENV} sets the root at start.",
        )
        if root and root != state.default_runs_root():
            st.query_params["folder"] = root
        else:
            st.query_params.pop("folder", None)
        refused = state.folder_problem(root) if root else None
        if refused:
            st.warning(refused)
            return None, [], page, False
        runs = state.find_runs(root) if root else []
        if not runs:
            st.warning(f"No runs under `{root}`. Train one with `pss train smoke --out runs/smoke`, or pick another folder.")
            return None, [], page, False
        rel = {r: _short(r, root) for r in runs}
        # a shared link (?run=NAME) counts on the session's first draw only; later the app writes ?run= itself
        wanted = None if st.session_state.get("run_link_read") else st.query_params.get("run")
        st.session_state["run_link_read"] = True
        if wanted and st.session_state.get("run") not in runs:
            match = [r for r in runs if rel[r] == wanted or Path(r).name == wanted]
            if match:
                st.session_state["run"] = match[0]
            else:
                st.session_state["link_problem"] = (f"The linked run `{wanted}` is not in `{root}`; showing another run "
                                                    "instead. Pick the runs folder that holds it, or a run in the sidebar.")
        if st.session_state.get("run") not in runs:
            st.session_state.pop("run", None)
        run = st.selectbox("Run", runs, format_func=rel.get, key="run")
        st.query_params["run"] = rel[run]
        others = st.multiselect(
            "Compare with", [r for r in runs if r != run], format_func=rel.get, key="compare",
            help="Other runs (e.g. baselines) to overlay: training curves and config differences on Overview, "
            "the accuracy–resource front on Front & Export.",
        )
        follow = st.toggle("Follow training", value=True, key="follow", help="Re-read the run when new epochs land (every 3 s).")
        if study:
            st.caption(f"Study: `{_short(study, root)}` (the Study page)")
        return run, others, page, follow


def _short(path: str, root: str) -> str:
    try:
        rel = str(Path(path).relative_to(Path(root).expanduser()))
    except ValueError:
        rel = path
    return Path(path).name if rel == "." else rel


@st.fragment(run_every=3)
def _watch(path: str, signature: tuple) -> None:
    """Polls the run's file signature; a change reruns the app (new epoch, new calibration)."""
    if pssviz.run_signature(path) != signature:
        st.rerun(scope="app")


def main() -> None:
    refused = state.remote_client_refused()
    if refused:
        st.error(refused)
        st.stop()
    study, names, page = _navigation()
    if page in (teach.START_PAGE, teach.PLAYGROUND_PAGE) or (page == STUDY_PAGE and study):
        # Needs no run: drawn before the sidebar, because this is what a reader waits for on opening the dashboard.
        st.header(page)
        notice = st.empty()
        _page(page, names, None, [], False, study)
        _sidebar(study, names)
    else:
        run, others, page, follow = _sidebar(study, names)
        st.header(page)
        notice = st.empty()
        _page(page, names, run, others, follow, study)
    if "link_problem" in st.session_state:
        notice.warning(st.session_state.pop("link_problem"))
    teach.next_page_button(page, names)


def _page(page: str, names: list[str], run: str | None, others: list[str], follow: bool, study: str | None) -> None:
    if page == teach.START_PAGE:
        teach.start_here(names)
        return
    if page == teach.PLAYGROUND_PAGE:
        teach.sampling_playground()
        return
    if page == STUDY_PAGE and study:
        try:
            study_page.study(study)
        except Exception as exc:  # keep the rest of the app alive; one line, no traceback
            st.error(f"The study page could not be drawn: {state.describe_error(exc)}")
        return
    if run is None:
        st.info("Pick a runs folder in the sidebar to begin.")
        return
    try:
        data, signature = state.load_run(run)
    except pssviz.RunLoadError as exc:
        st.error(f"Cannot open this run: {exc}")
        return
    for problem in data.problems:
        st.warning(problem)
    compared = []
    for other in others:
        try:
            compared.append(state.load_run(other)[0])
        except pssviz.RunLoadError as exc:
            st.warning(f"Not compared: {exc}")
    if follow and data.status in ("training", "empty", "stopped"):
        with st.sidebar:
            st.caption(f"Watching **{data.name}** for new epochs…")
            _watch(run, signature)
    try:
        _run_page(page)(data, compared)
    except Exception as exc:  # keep the rest of the app alive; one line, no traceback
        st.error(f"This page could not be drawn for {data.name}: {state.describe_error(exc)}")


main()
