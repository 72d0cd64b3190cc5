"""The Study page: a study in the runs folder (`pss study`), the page the dashboard opens on.

Kept apart from views.py with light imports, because it is the first page a reader waits for: its text and
its first two figures (static SVG, :mod:`pssviz.svgchart`) go out before anything imports plotly.
"""

from __future__ import annotations

import streamlit as st

import state
from layout import _chart, _svg_chart, metric_row
from texts import STUDY_CHARTS, STUDY_HOWTO, STUDY_INTRO

STUDY_PAGE = "Study"
#: the page's tabs; the open one is in the URL as ?study_view=<label>
ACCURACY_VIEW, FRONTS_VIEW, TABLES_VIEW, COST_VIEW = "Accuracy per budget", "Pareto fronts", "Tables 6 & 8", "Cost & method"
VIEW_KEY = "study_view"


def study(path: str) -> None:
    """The study in the runs folder: accuracy per budget, paired differences, every run's front, Tables 6/8, cost."""
    from pssviz import study as studies  # here: the page's heading and the sidebar go out before pandas is imported

    try:
        data, signature = state.load_study(path)
    except studies.StudyLoadError as exc:
        st.error(f"Cannot open this study: {exc}")
        st.caption(STUDY_HOWTO)
        return
    for problem in data.problems:
        st.warning(problem)
    st.subheader(f"`{data.path.name}`")
    if data.config.get("description"):
        st.markdown(data.config["description"])
    st.markdown(STUDY_INTRO)
    st.markdown(studies.recipe_markdown(data.doc))
    with metric_row():
        st.metric("Strategies", len(data.config.get("strategies") or []), width="content")
        st.metric("Seeds", len(data.config.get("seeds") or []), width="content")
        st.metric("Budgets", len(data.doc.get("budgets") or []), width="content")
        st.metric("Runs", len(data.doc.get("runs") or []), width="content")
    st.markdown(f"**Reading:** {studies.significance_sentence(data.differences)}")  # the conclusion first, then the evidence
    views = [ACCURACY_VIEW, FRONTS_VIEW, *([TABLES_VIEW] if data.tables else []), COST_VIEW]
    # Lazy tabs (their label in the URL, ?study_view=...): only the open one is computed and sent. The first one
    # holds no plotly chart or data grid, whose script chunks the browser would load before drawing anything.
    tabs = dict(zip(views, st.tabs(views, key=VIEW_KEY, bind="query-params")))
    with tabs[ACCURACY_VIEW]:
        if tabs[ACCURACY_VIEW].open is not False:
            # static SVG: drawn with the text, not after plotly.js (4.7 MB) has loaded -- the dashboard's first screen
            _svg_chart(studies.study_accuracy_svg(data.accuracy, data.constraint), STUDY_CHARTS["accuracy"])
            _svg_chart(studies.study_difference_svg(data.differences, data.constraint), STUDY_CHARTS["differences"])
    with tabs[FRONTS_VIEW]:
        if tabs[FRONTS_VIEW].open is not False:
            _chart(studies.study_fronts_figure(data), "study_fronts", STUDY_CHARTS["fronts"])
    if TABLES_VIEW in tabs:
        with tabs[TABLES_VIEW]:
            if tabs[TABLES_VIEW].open is not False:
                for name, (accuracy, differences) in data.tables.items():
                    st.subheader(studies.TABLES[name])
                    st.dataframe(studies.accuracy_table(accuracy), width="stretch", key=f"study_{name}_accuracy")
                    st.dataframe(studies.difference_table(differences), hide_index=True, width="stretch",
                                 key=f"study_{name}_differences")
                    st.caption(studies.significance_sentence(differences))
    with tabs[COST_VIEW]:
        if tabs[COST_VIEW].open is not False:
            st.dataframe(data.costs, hide_index=True, width="stretch", key="study_cost", column_config={
                "epochs": st.column_config.NumberColumn("epochs", format="%.0f"),
                "train_seconds": st.column_config.NumberColumn("training s per run", format="%.1f"),
                "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
                "selection_seconds": st.column_config.NumberColumn("selection s per run", format="%.1f")})
            st.caption(STUDY_CHARTS["cost"])
            st.markdown("**Method**")
            st.markdown("\n".join(f"- **{k.replace('_', ' ')}**: {v}" for k, v in (data.doc.get("statistics") or {}).items()))
    st.download_button(
        "Download report.html", data=lambda: state.study_report_html(path, signature), file_name="report.html",
        mime="text/html", key="download_study_report", on_click="ignore",
        help="This page as one HTML file (figures, tables, method) that opens without a network: what `pss study` "
        "writes next to study.json.",
    )
