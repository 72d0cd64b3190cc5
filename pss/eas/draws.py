"""What drawing architectures within a ceiling saw: how many draws, how many fit, at which input resolution (no torch).

EAS (the generator) and the ``random`` baseline both draw architectures and reject
those over the budget. How often a draw fits -- the in-budget rate -- and where the
draws land (a generator that puts half its draws on a resolution where nothing fits
is choosing by rejection, not by what it learned) are part of the evidence, so
both samplers tally every draw they make in the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class DrawTally:
    """Counts over every architecture drawn for one scenario (duplicates included), before and after rejection."""

    draws: int = 0
    in_budget: int = 0
    resolutions: Counter = field(default_factory=Counter)
    """Draws per input resolution (px), before rejection."""
    in_budget_resolutions: Counter = field(default_factory=Counter)
    """Draws within the budget per input resolution (px)."""

    def add(self, resolutions: np.ndarray, fits: np.ndarray) -> None:
        """Count one round of draws: each draw's resolution and whether its cost is within the ceiling."""
        res = np.asarray(resolutions).astype(int).ravel()
        ok = np.asarray(fits, dtype=bool).ravel()
        if res.shape != ok.shape:
            raise ValueError("one resolution and one fit flag per draw")
        self.draws += int(res.size)
        self.in_budget += int(ok.sum())
        self.resolutions.update(int(r) for r in res)
        self.in_budget_resolutions.update(int(r) for r in res[ok])

    @property
    def in_budget_rate(self) -> float:
        """Share of the draws whose cost is within the ceiling (NaN before any draw)."""
        return self.in_budget / self.draws if self.draws else float("nan")
