"""Workflows: the only place that combines data, the run format and training or evaluation.

One module per command (train, calibrate, search, export, compare, info, lut,
pack). Each opens its run once (:func:`.loaded.load_trained`) and passes the
loaded run down; the CLI (:mod:`pss.cli`) and the Python API (:mod:`pss.api`)
call these functions and nothing below them.
"""
