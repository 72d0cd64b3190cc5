"""The run format: the one owner of every file the package writes.

:mod:`.files` (atomic writes, versioned JSON documents), :mod:`.run` (the run
directory: names, run.json, snapshots, the calibrated front), :mod:`.checkpoint`
(the training state and calibrated BN statistics; the only modules here that
import torch are it and :mod:`.tensors`), :mod:`.card` (an exported subnet),
:mod:`.comparison` (``pss compare`` files) and :mod:`.lut` (latency lookup tables).
The dashboard (``pssviz``) reads runs through :mod:`.run` without importing torch.
"""
