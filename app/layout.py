"""Layout helpers shared by the dashboard's pages (cheap to import: no plotting library, no pandas)."""

from __future__ import annotations

import streamlit as st

PLOT_CONFIG = {"displaylogo": False}
#: the pages of one run drawn by app/views.py, in menu order (views.PAGES maps them to their functions; main.py
#: lists them without importing views, which loads plotly and the analysis tables)
RUN_PAGE_NAMES = ("Overview", "Pools", "Sampling", "Widths", "Front & Export")


def metric_row():
    """A row of metrics that wraps instead of cutting values off in a narrow window (each metric as wide as its text)."""
    return st.container(horizontal=True, wrap=True, gap="large")


def _chart(fig, key: str, text: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)
    if text:
        st.caption(text)


def _svg_chart(svg: str, text: str | None = None) -> None:
    """A static chart from :mod:`pssviz.svgchart` (inline SVG; hover shows each point's numbers)."""
    st.markdown(svg, unsafe_allow_html=True)
    if text:
        st.caption(text)
