"""The subnets a training strategy trains: its *trained family* within the structure space S.

A comparison of strategies is like for like only when each ships a subnet its own sampler drew
during training. US-Net trains uniform widths at r^max only, MutualNet uniform widths at every
resolution of S, PSE-Net layer-wise widths at r^max only; PSS-Net and random sampling draw from all
of S. A 20 px subnet of a US-Net supernet is a configuration it never trained: its accuracy says
little about US-Net, so selection searches each run within its family, and a study reports a cell
whose shipped subnet lies outside it as *not comparable* (:meth:`TrainedFamily.why_not`).

Torch-free: the study, pssviz and the dashboard read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..problem.space import Structure, StructureSpace

WIDTH_PATTERNS = ("layer-wise", "uniform")
"""How a family's widths vary: every dimension on its own (S's draws), or one multiplier for all."""


@dataclass(frozen=True)
class TrainedFamily:
    """The configurations a strategy's sampler draws: resolutions and width pattern, plus the sandwich's ends.

    ``also`` holds the keys of subnets trained besides the family's draws (the max and min subnets
    of the sandwich rule), so they count as trained even where the pattern alone would not say so.
    """

    strategy: str
    resolutions: tuple[int, ...]
    widths: str
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.widths not in WIDTH_PATTERNS:
            raise ValueError(f"unknown width pattern {self.widths!r}; one of {', '.join(WIDTH_PATTERNS)}")
        object.__setattr__(self, "resolutions", tuple(sorted(int(r) for r in self.resolutions)))
        object.__setattr__(self, "also", tuple(self.also))

    @property
    def uniform_widths(self) -> bool:
        return self.widths == "uniform"

    def space(self, space: StructureSpace) -> StructureSpace:
        """S restricted to this family's resolutions (its widths are a matter of :meth:`contains`)."""
        return space if self.resolutions == space.resolutions else space.with_resolutions(self.resolutions)

    def why_not(self, space: StructureSpace, s: Structure) -> str | None:
        """None when ``s`` is a configuration this strategy trained; else, in plain words, why not."""
        if s.key in self.also:
            return None
        if not space.contains(s):
            return f"{s.key} is not in the structure space"
        if s.resolution not in self.resolutions:
            return (f"{self.strategy} trains {_px(self.resolutions)} inputs only; this subnet runs at {s.resolution} px")
        if self.uniform_widths and s.key not in _uniform_keys(space, s.resolution):
            return f"{self.strategy} trains uniform widths only (one multiplier for every layer); this subnet's widths are layer-wise"
        return None

    def contains(self, space: StructureSpace, s: Structure) -> bool:
        return self.why_not(space, s) is None

    def min_structure(self, space: StructureSpace) -> Structure:
        """The family's smallest subnet: S's smallest widths at the family's smallest resolution."""
        return Structure(space.min_structure.widths, self.resolutions[0])

    def max_structure(self, space: StructureSpace) -> Structure:
        return Structure(space.max_structure.widths, self.resolutions[-1])

    def describe(self) -> str:
        """``uniform widths at 28 px``, ``layer-wise widths at 20/24/28 px``."""
        return f"{self.widths} widths at {_px(self.resolutions)}"

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "resolutions": list(self.resolutions), "widths": self.widths,
                "also": list(self.also), "description": self.describe()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainedFamily":
        return cls(str(d["strategy"]), tuple(d["resolutions"]), str(d["widths"]), tuple(d.get("also", ())))


def _px(resolutions: tuple[int, ...]) -> str:
    return "/".join(str(r) for r in resolutions) + " px"


def _uniform_keys(space: StructureSpace, resolution: int) -> frozenset[str]:
    return _uniform_keys_cached(space, resolution)


@lru_cache(maxsize=64)
def _uniform_keys_cached(space: StructureSpace, resolution: int) -> frozenset[str]:
    return frozenset(s.key for s in space.uniform_structures(resolution))
