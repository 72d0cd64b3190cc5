"""Colours and number formats shared by every figure, plotly or SVG (no plotting import: cheap to load)."""

SI = "~s"  # d3 format of big numbers: 5360000 -> 5.36M
#: colours of the non-pool series (losses, counters, other runs)
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
