"""The Study page: a study in the runs folder (`pss study`), the page the dashboard opens on.

Kept apart from views.py with light imports, because it is the first page a reader waits for: its text (study.json's
own reading first), its first tab's two figures (static SVG) and the tables under them (Markdown) are drawn from
study.json by :mod:`pssviz.studydoc`, without pandas or plotly; the other tabs read the study's tables
(:mod:`pssviz.study`) when they are opened.
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
    """The study in the runs folder: accuracy per budget, paired differences, every run's front, Tables 6/8, cost.

    The text and the first tab come from study.json alone (:mod:`pssviz.studydoc`, no pandas); the other tabs
    read the study's tables and runs (:mod:`pssviz.study`) when they are opened.
    """
    from pssviz import studydoc

    try:
        summary, signature = state.study_summary(path)
    except studydoc.StudyLoadError as exc:
        st.error(f"Cannot open this study: {exc}")
        st.caption(STUDY_HOWTO)
        return
    for problem in summary.problems:
        st.warning(problem)
    config, doc = summary.config, summary.doc
    st.subheader(f"`{summary.path.name}`")
    # the conclusion first: study.json's own sentences, the very ones report.md and notebook 06 print
    sentences = studydoc.reading(doc)
    st.markdown(f"**Reading.** {sentences[0]}")
    for sentence in sentences[1:]:
        st.markdown(sentence)
    plateau = studydoc.plateau_sentence(doc)
    if plateau:
        st.markdown(f"**Did training level off?** {plateau}")
    if config.get("description"):
        st.markdown(config["description"])
    st.markdown(STUDY_INTRO)
    st.markdown(studydoc.recipe_markdown(doc))
    families = studydoc.families_sentence(doc)
    if families:
        st.caption(families)
    with metric_row():
        st.metric("Strategies", len(config.get("strategies") or []), width="content")
        st.metric("Seeds", studydoc.seed_count_text(doc), width="content")
        st.metric("Budgets", len(doc.get("budgets") or []), width="content")
        st.metric("Runs", len(doc.get("runs") or []), width="content")
    has_tables = any((doc.get("tables") or {}).get(name) for name in studydoc.TABLES)
    views = [ACCURACY_VIEW, FRONTS_VIEW, *([TABLES_VIEW] if has_tables else []), COST_VIEW]
    # Lazy tabs (their label in the URL, ?study_view=...): only the open one is computed and sent. The first one
    # holds no plotly chart or data grid, whose script chunks the browser would load before drawing anything.
    tabs = dict(zip(views, st.tabs(views, key=VIEW_KEY, bind="query-params")))
    with tabs[ACCURACY_VIEW]:
        if tabs[ACCURACY_VIEW].open is not False:
            # static SVG: drawn with the text, not after plotly.js (4.7 MB) has loaded -- the dashboard's first screen
            _svg_chart(studydoc.study_accuracy_svg(summary.accuracy, summary.constraint), STUDY_CHARTS["accuracy"])
            _svg_chart(studydoc.study_difference_svg(summary.differences, summary.constraint), STUDY_CHARTS["differences"])
            with st.expander("The numbers behind the figures: tables, not-comparable cells, selection effort"):
                _numbers(summary)  # wide tables: folded, so the page fits a 1024 px window
    for view in views[1:]:
        with tabs[view]:
            if tabs[view].open is not False:
                _tab(view, path, summary.problems)
    st.download_button(
        "Download report.html", data=lambda: state.study_report_html(path, signature), file_name="report.html",
        mime="text/html", key="download_study_report", on_click="ignore",
        help="This page as one HTML file (figures, tables, method) that opens without a network: what `pss study` "
        "writes next to study.json.",
    )


def _numbers(summary) -> None:
    """The figures' numbers as report.md's tables ("—": not comparable), the not-comparable cells with their
    reasons, and the selection effort; Markdown tables, drawn with the text (no data grid on the first tab)."""
    from pssviz import studydoc

    st.markdown("**Test accuracy at each budget** (mean over seeds, 95% interval, resolution shipped; — not comparable)")
    st.markdown(studydoc.accuracy_markdown(summary.accuracy))
    if summary.differences:
        st.markdown("**pss minus each baseline** (same test images; verdicts after Holm's adjustment at 5%)")
        st.markdown(studydoc.difference_markdown(summary.differences))
    notes = studydoc.not_comparable_notes(summary.accuracy)
    if notes:
        st.markdown("**Not comparable**\n\n" + "\n".join(f"- {n}" for n in notes))
    st.markdown("**Selection effort**: calibrated subnets at or under each ceiling (per seed; a range when seeds differ)")
    st.markdown(studydoc.effort_markdown(summary.accuracy))
    st.caption(STUDY_CHARTS["effort"])


def _tab(view: str, path: str, shown: list[str]) -> None:
    """One of the tabs after the first: they need the study's tables (pandas) and, for the fronts, every run's front."""
    from pssviz import study as studies

    try:
        data, _ = state.load_study(path)
    except studies.StudyLoadError as exc:
        st.error(f"Cannot open this study: {exc}")
        return
    for problem in data.problems:
        if problem not in shown:  # e.g. a run whose front cannot be read
            st.warning(problem)
    if view == FRONTS_VIEW:
        _chart(studies.study_fronts_figure(data), "study_fronts", STUDY_CHARTS["fronts"])
    elif view == TABLES_VIEW:
        for name, (accuracy, differences) in data.tables.items():
            st.subheader(studies.TABLES[name])
            st.dataframe(studies.accuracy_table(accuracy), width="stretch", key=f"study_{name}_accuracy")
            st.dataframe(studies.difference_table(differences), hide_index=True, width="stretch", key=f"study_{name}_differences")
        st.caption(STUDY_CHARTS["tables"])
    else:
        st.dataframe(data.costs, hide_index=True, width="stretch", key="study_cost", column_config={
            "epochs": st.column_config.NumberColumn("epochs", format="%.0f"),
            "train_seconds": st.column_config.NumberColumn("training s per run", format="%.1f"),
            "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
            "selection_seconds": st.column_config.NumberColumn("selection s per run", format="%.1f")})
        st.caption(STUDY_CHARTS["cost"])
        st.markdown("**Method**")
        st.markdown("\n".join(f"- **{k.replace('_', ' ')}**: {v}" for k, v in (data.doc.get("statistics") or {}).items()))
