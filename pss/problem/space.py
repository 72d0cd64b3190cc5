"""The subnet structure space S (PSS-Net Sec. 3.1).

A supernet exposes L searchable width dimensions plus the input resolution.
Each dimension i has a backbone width ``o_max`` and a lower bound
``o_min = lower_bound * o_max``; sampled widths are rounded to the nearest
multiple of ``divisor`` so deployed channels stay hardware friendly
(``rounding="nearest"``, the paper's Sec. 3.1), or by the reference
implementation's ``make_divisible`` (``rounding="make_divisible"``: nearest,
but never more than 10% down). Fixed dimensions keep their maximum in every
subnet.

A :class:`Structure` is the canonical, immutable identity of a subnet: its
realised integer channels and its resolution. Pools are keyed by
:attr:`Structure.key`, never by float multipliers, so two multipliers that
round to the same channels are the same subnet.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import PssError
from .spec import NetSpec

ROUNDINGS = ("nearest", "make_divisible")
"""How a sampled width o becomes channels: the nearest multiple of the divisor, or make_divisible's rule."""

ROUNDING_OF_RULE = {"free": "nearest", "official": "make_divisible"}
"""The rounding each spec width rule uses (``NetSpec.width_rule``)."""


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``min_value``).

    Used for backbone widths under a width multiplier (as in MobileNet code): a
    result more than 10% below ``value`` is bumped up one step.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def round_to_divisor(value: float, divisor: int) -> int:
    """Nearest multiple of ``divisor`` (Sec. 3.1: "round to its nearest multiple of 8")."""
    return max(divisor, int(math.floor(value / divisor + 0.5)) * divisor)


def make_divisible_array(values: np.ndarray, divisor: int) -> np.ndarray:
    """:func:`make_divisible` of every (positive) value: the reference's width rule, vectorised.

    Nearest multiple of ``divisor`` (at least ``divisor``), one step up where
    that is more than 10% below the value (chenbong/PSS-Net ``utils/comm.py``).
    """
    values = np.asarray(values, dtype=np.float64)
    rounded = np.maximum(divisor, np.floor(values + divisor / 2) // divisor * divisor)
    return np.where(rounded < 0.9 * values, rounded + divisor, rounded).astype(np.int64)


def round_to_divisor_array(values: np.ndarray, divisor: int) -> np.ndarray:
    """:func:`round_to_divisor` of every value, vectorised."""
    return np.maximum(divisor, np.floor(np.asarray(values) / divisor + 0.5).astype(np.int64) * divisor)


def rounded_integer_pool(low: int, top: int, divisor: int, rounding: str) -> np.ndarray:
    """Every integer o in [low, top] rounded to channels: uniform draws over it are Sec. 3.1's "sample o, then round".

    ``nearest`` clips into [nearest(low), top]; ``make_divisible`` never
    rounds more than 10% down, so it needs no lower clip. Both clip at ``top``
    and keep ``top`` itself reachable even when it is not a multiple of the
    divisor, so the supernet (phi_max) is a member of S.
    """
    integers = np.arange(low, top + 1)
    if rounding == "nearest":
        rounded = np.floor(integers / divisor + 0.5).astype(np.int64) * divisor
        rounded = np.clip(rounded, min(top, round_to_divisor(low, divisor)), top)
    else:
        rounded = np.minimum(make_divisible_array(integers, divisor), top)
    rounded[-1] = top
    return rounded


@dataclass(frozen=True)
class Dimension:
    """One searchable width: the channel count shared by every layer tied to it."""

    name: str
    o_min: int
    o_max: int
    choices: tuple[int, ...]

    @property
    def group(self) -> str:
        """The stage or block the dimension belongs to: ``s3`` for ``s3.b2.expand``."""
        return self.name.split(".")[0]


@dataclass(frozen=True)
class Structure:
    """A subnet phi = ({o_i}, r): realised channels per dimension and input resolution."""

    widths: tuple[int, ...]
    resolution: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "resolution", int(self.resolution))

    @property
    def key(self) -> str:
        """Stable, human-readable identity: ``r32-16.24.24...``."""
        return f"r{self.resolution}-" + ".".join(str(w) for w in self.widths)

    @property
    def short_id(self) -> str:
        """A short stable hash of :attr:`key`, for file names and tables."""
        return hashlib.sha1(self.key.encode()).hexdigest()[:10]

    def to_json(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "resolution": self.resolution}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Structure":
        try:
            return cls(tuple(data["widths"]), data["resolution"])
        except (KeyError, TypeError) as exc:  # pragma: no cover - message path
            raise PssError(f"malformed structure {data!r}: expected {{'widths': [...], 'resolution': R}}") from exc

    @classmethod
    def from_key(cls, key: str) -> "Structure":
        try:
            head, tail = key.split("-", 1)
            if not head.startswith("r"):
                raise ValueError(key)
            return cls(tuple(int(w) for w in tail.split(".")), int(head[1:]))
        except ValueError as exc:
            raise PssError(f"malformed structure key {key!r}: expected 'r<res>-<w1>.<w2>...'") from exc


class StructureSpace:
    """S: per-dimension channel choices and the resolution choices.

    ``choices`` of a dimension are the distinct values of the rounded o for
    every integer o in [o_min, o_max] (Sec. 3.1: sample o from {o_min, ...,
    o_max} then round; :func:`rounded_integer_pool`); a fixed dimension has
    the one choice o_max. Sampling an index uniformly over ``choices`` is
    therefore *not* the same as sampling o uniformly; :meth:`sample_uniform`
    follows the paper (integers first, then rounding).
    """

    def __init__(
        self,
        names: Sequence[str],
        o_max: Sequence[int],
        resolutions: Sequence[int],
        lower_bound: float = 0.75,
        divisor: int = 8,
        fixed: Sequence[int] = (),
        rounding: str = "nearest",
    ) -> None:
        if not 0.0 < lower_bound <= 1.0:
            raise PssError(f"lower_bound must be in (0, 1], got {lower_bound}; the paper uses 0.75 (Table 7: 0.25, 0.7, 0.8)")
        if divisor < 1:
            raise PssError(f"divisor must be a positive integer, got {divisor}")
        if not resolutions:
            raise PssError("the structure space needs at least one resolution")
        if rounding not in ROUNDINGS:
            raise PssError(f"unknown width rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
        self.lower_bound = float(lower_bound)
        self.divisor = int(divisor)
        self.rounding = rounding
        self.resolutions = tuple(sorted(int(r) for r in resolutions))
        fixed = {int(i) for i in fixed}
        dims, self.integer_pools = [], []
        for i, (name, top) in enumerate(zip(names, o_max)):
            top = int(top)
            low = top if i in fixed else max(1, math.ceil(lower_bound * top))
            rounded = rounded_integer_pool(low, top, self.divisor, rounding)
            choices = tuple(int(c) for c in np.unique(rounded))
            dims.append(Dimension(name, choices[0], top, choices))
            self.integer_pools.append(rounded)
        self.dimensions = tuple(dims)

    @classmethod
    def for_spec(cls, spec: NetSpec, resolutions: Sequence[int], lower_bound: float = 0.75, divisor: int = 8) -> StructureSpace:
        """S of a spec: its dimensions, its fixed dimensions and the rounding of its width rule."""
        return cls(spec.dim_names, spec.dim_max, resolutions, lower_bound=lower_bound, divisor=divisor,
                   fixed=spec.fixed_dims, rounding=ROUNDING_OF_RULE[spec.width_rule])

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.dimensions)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def max_structure(self) -> Structure:
        return Structure(tuple(d.o_max for d in self.dimensions), self.resolutions[-1])

    @property
    def min_structure(self) -> Structure:
        return Structure(tuple(d.choices[0] for d in self.dimensions), self.resolutions[0])

    def realise(self, values: np.ndarray) -> np.ndarray:
        """Channels of raw per-dimension widths ``values`` (n, L): this space's rounding, clipped into each dimension.

        How a width multiplier becomes a subnet (US-Net / MutualNet draws,
        :meth:`uniform_structure`): nearest multiple of the divisor, or the
        reference's ``make_divisible``; a fixed dimension always gets o_max.
        """
        values = np.asarray(values, dtype=np.float64)
        if self.rounding == "nearest":
            widths = round_to_divisor_array(values, self.divisor)
        else:
            widths = make_divisible_array(values, self.divisor)
        low = np.array([d.choices[0] for d in self.dimensions], dtype=np.int64)
        top = np.array([d.o_max for d in self.dimensions], dtype=np.int64)
        return np.minimum(top[None, :], np.maximum(low[None, :], widths))

    def uniform_structure(self, multiplier: float, resolution: int | None = None) -> Structure:
        """The uniform-width subnet: every dimension at ``multiplier * o_max`` (realised into S by :meth:`realise`)."""
        o_max = np.array([d.o_max for d in self.dimensions], dtype=np.float64)
        widths = self.realise(float(multiplier) * o_max[None, :])[0]
        return Structure(tuple(widths), resolution or self.resolutions[-1])

    def with_resolutions(self, resolutions: Sequence[int]) -> StructureSpace:
        """This space with only ``resolutions`` (each one of S's): the part of S a strategy trains at fewer input sizes."""
        wanted = tuple(sorted(int(r) for r in resolutions))
        if not wanted or any(r not in self.resolutions for r in wanted):
            raise PssError(f"resolutions {list(wanted)} are not a non-empty subset of this space's {list(self.resolutions)}")
        twin = object.__new__(StructureSpace)
        twin.__dict__.update(self.__dict__)
        twin.resolutions = wanted
        return twin

    def uniform_multiplier_breakpoints(self) -> np.ndarray:
        """Every multiplier in (lower_bound, 1) where :meth:`uniform_structure` may change its channels.

        One dimension's channels round(m * o_max) change only where m * o_max crosses a rounding edge:
        (k + 1/2) * divisor for the nearest multiple, and also k * divisor / 0.9 for make_divisible's
        10% rule. Between two neighbouring breakpoints every multiplier gives the same structure.
        """
        edges = []
        ks = np.arange(0, max(d.o_max for d in self.dimensions) // self.divisor + 2)
        for d in self.dimensions:
            edges.append((ks + 0.5) * self.divisor / d.o_max)
            if self.rounding == "make_divisible":
                edges.append(ks * self.divisor / (0.9 * d.o_max))
        m = np.unique(np.concatenate(edges))
        return m[(m > self.lower_bound) & (m < 1.0)]

    def uniform_structures(self, resolution: int | None = None) -> tuple[Structure, ...]:
        """Every distinct uniform-width subnet at ``resolution`` (default r^max), smallest first: exactly the set
        US-Net / MutualNet draws (multiplier ~ U[lower_bound, 1]) can give, plus the two ends m = lower_bound, 1.

        Each open interval between :meth:`uniform_multiplier_breakpoints` gives one structure (its midpoint's),
        so every member has a positive probability of being drawn.
        """
        cuts = np.concatenate([[self.lower_bound], self.uniform_multiplier_breakpoints(), [1.0]])
        ms = np.concatenate([[self.lower_bound], (cuts[:-1] + cuts[1:]) / 2, [1.0]])
        o_max = np.array([d.o_max for d in self.dimensions], dtype=np.float64)
        widths = self.realise(ms[:, None] * o_max[None, :])
        r = self.resolutions[-1] if resolution is None else int(resolution)
        out: dict[str, Structure] = {}
        for row in widths:
            s = Structure(tuple(row), r)
            out.setdefault(s.key, s)
        return tuple(out.values())

    def contains(self, s: Structure) -> bool:
        return (
            len(s.widths) == len(self.dimensions)
            and s.resolution in self.resolutions
            and all(w in d.choices for w, d in zip(s.widths, self.dimensions))
        )

    def validate(self, s: Structure) -> Structure:
        if not self.contains(s):
            raise PssError(f"structure {s.key} is not in this structure space ({len(self)} dimensions, resolutions {list(self.resolutions)})")
        return s

    # ---------------------------------------------------------------- sampling
    def sample_uniform_arrays(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n structures drawn as in Sec. 3.1, vectorised: (widths (n, L) int, resolutions (n,) int)."""
        widths = np.empty((n, len(self.dimensions)), dtype=np.int64)
        for i, pool in enumerate(self.integer_pools):
            widths[:, i] = pool[rng.integers(0, len(pool), size=n)]
        res = np.asarray(self.resolutions)[rng.integers(0, len(self.resolutions), size=n)]
        return widths, res

    def sample_uniform(self, rng: np.random.Generator) -> Structure:
        w, r = self.sample_uniform_arrays(1, rng)
        return Structure(tuple(w[0]), int(r[0]))

    def to_json(self) -> dict[str, Any]:
        return {
            "lower_bound": self.lower_bound,
            "divisor": self.divisor,
            "resolutions": list(self.resolutions),
            "dimensions": [
                {"name": d.name, "o_min": d.o_min, "o_max": d.o_max, "choices": list(d.choices)}
                for d in self.dimensions
            ],
            "dimension_names": list(self.names),
        }


def resolution_range(r_min: int, r_max: int, step: int) -> tuple[int, ...]:
    """{r_min, r_min + step, ..., r_max} (Sec. 3.1 uses step 8 for 224-px data)."""
    if r_min > r_max or step <= 0:
        raise PssError(f"bad resolution range {r_min}..{r_max} step {step}: need r_min <= r_max and step > 0")
    values = list(range(r_min, r_max + 1, step))
    if values[-1] != r_max:
        values.append(r_max)
    return tuple(values)
