"""Training configuration: one flat dataclass, built-in presets, YAML/JSON files.

Flat keys keep ``--set key=value`` simple and make every ablation knob of the
papers (p_end, eta_end, M, divisor, k, lower bound...) a plain config key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import PssError, one_line
from .units import COST_KINDS


STRATEGIES = ("pss", "uniform", "mutual", "random", "pse")
"""Training strategies (``strategy`` key): PSS-Net, US-Net, MutualNet, random (BigNAS/OFA), PSE-Net.

:mod:`pss.sampling.strategies` implements one class per name."""

MAX_STRUCTURE_SET = 2_000_000
"""Largest Eq. 4 structure set G (about 100 bytes each: 2,000,000 take some 200 MB)."""

WIDTH_RULES = ("free", "official")
"""How a structure's widths relate (``width_rule``): all free, or MobileNetV2's reference rule."""

KIND_DRAWS = ("proportional", "uniform")
"""How PSS-Net_M draws a batch's constraint kind (``kind_draw``)."""

IMAGENET_AUGMENTATIONS = ("reference", "basic")
"""Training augmentation of the ImageNet subset (``imagenet_augmentation``)."""

LEGACY_DEFAULTS: dict[str, Any] = {
    "test_split": False,
    "depthwise_weight_decay": True,
    "kind_draw": "uniform",
    "imagenet_augmentation": "basic",
}
"""What a key meant before it existed: a stored config (run.json) without the key was trained this way.

New runs take the dataclass default; :meth:`TrainConfig.from_stored` fills in these values, so a run
written before a key existed is read (and recalibrated, resumed) exactly as it was trained."""

SUPERCLASS_DATASETS = ("cifar10", "cifar100", "fashion-mnist")
"""Datasets with a built-in superclass map (``superclasses: builtin``; :mod:`pss.problem.superclasses`).

An ``npz`` dataset whose classes are one of these datasets' classes (same names, same order) takes that map too."""

NO_BUILTIN_SUPERCLASSES = ("synthetic", "imagenet-subset")
"""Datasets that can never have a built-in superclass map: they need a superclass file."""


def canonical_dataset(name: str) -> str:
    """A dataset name as :func:`pss.data.load_data` reads it: lower case, ``-`` for ``_``, Fashion-MNIST's aliases."""
    key = str(name).strip().lower().replace("_", "-")
    return "fashion-mnist" if key in ("fashionmnist", "fmnist") else key


def is_builtin_superclasses(value: str | None) -> bool:
    """Whether a ``superclasses`` value names the dataset's built-in map (``builtin``) rather than a file."""
    return value is not None and str(value).strip().lower() in ("builtin", "built-in")


SEARCH_METHODS = ("random", "evolution", "uniform")
"""How ``pss search`` finds subnets per budget (:mod:`pss.workflows.search`)."""


@dataclass
class ModelConfig:
    """The network family (one NetSpec builds supernet, costs and export)."""

    model: str = "mobilenet_v2"
    width_mult: float = 1.0
    stem: str = "cifar"
    dropout: float | None = None  # classifier dropout; null: the family's default (0.2 for the ImageNet MobileNetV2, else 0)


@dataclass
class SpaceConfig:
    """The structure space S (PSS-Net Sec. 3.1)."""

    lower_bound: float = 0.75
    divisor: int = 8
    resolution_min: int = 24
    resolution_max: int = 32
    resolution_step: int = 4
    width_rule: str = "free"  # free: every width its own dimension; official: MobileNetV2 as the reference (expansion 6 x block input, 1280 tail fixed)


@dataclass
class BudgetConfig:
    """The budgets Theta and their tolerance delta (Eq. 1-2)."""

    constraint: str = "macs"
    extra_constraints: str | None = None  # PSS-Net_M: comma list of further kinds (macs, params, latency) with their own pools
    latency_lut: str | None = None  # LUT JSON from `pss lut build`; needed by constraint=latency (ms budgets)
    budget_count: int | None = 8
    budget_step: float | None = None
    tolerance: float | None = None


@dataclass
class SamplingConfig:
    """Which subnets a batch trains: the strategy, and prioritized subnet sampling (Alg. 3, Eq. 3-6)."""

    strategy: str = "pss"  # pss | uniform (US-Net) | mutual (MutualNet) | random (BigNAS/OFA) | pse (PSE-Net); see pss.sampling.strategies
    num_subnets: int = 4  # n subnets per batch incl. max (and min for the sandwich strategies); ignored by pss (always 3)
    pool_size: int = 50
    p_end: float = 0.01
    eta_end: float = 0.01
    metric_lambda: float = 0.9
    structure_set_size: int = 100_000
    max_trials: int = 1000
    kind_draw: str = "proportional"  # PSS-Net_M: draw a constraint kind in proportion to its pools (the reference), or "uniform" over kinds


@dataclass
class OptimConfig:
    """Optimisation (Alg. 1-2) and where it runs."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    depthwise_weight_decay: bool = False  # the reference decays no depthwise convolution weights
    warmup_epochs: float = 1.0
    superclass_dropout: float = 0.0  # EAS Sec. 3.1: per sample, each non-target superclass's logits dropped with this probability (needs superclasses); 0: plain training
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    progress: bool = True


@dataclass
class DataConfig:
    """Which data to train on and how to split it (:mod:`pss.data`). ``seed`` also seeds training."""

    dataset: str = "cifar10"
    data_root: str = "~/.cache/pss/data"
    download: bool = True
    npz_path: str | None = None
    synthetic_fallback: bool = False
    imagenet_root: str | None = None
    imagenet_classes: str | None = None  # a class count ("100") or a file with one wnid per line
    imagenet_resolution: int = 224
    val_fraction: float = 0.1  # of the training images (after any test hold-out): the validation split that selects subnets
    test_split: bool = True  # report on a test split selection never sees (official test set, imagenet val/, or test_fraction of an npz)
    test_fraction: float = 0.1  # npz and synthetic data: the share held out as the test split
    imagenet_augmentation: str = "reference"  # reference: RandomResizedCrop scale 0.25-1, colour jitter 0.4, lighting 0.1; basic: crop + flip
    superclasses: str | None = None  # each class's superclass: "builtin" (cifar10, cifar100, fashion-mnist) or a JSON/YAML file {superclass: [classes]}
    train_limit: int | None = None
    val_limit: int | None = None
    test_limit: int | None = None
    num_workers: int = 2
    seed: int = 0


@dataclass
class EvalConfig:
    """Evaluation and BN calibration (Alg. 1 lines 11-17)."""

    eval_calib_images: int = 2048
    calib_top_k: int = 5
    calib_images: int = 8192
    eval_batch_size: int = 256
    calib_rescore: bool = False  # re-measure every pool entry's -CE with the final weights before choosing the top-k
    rescore_images: int = 1024  # training images (fixed, un-augmented) for calib_rescore


#: The sections in the order ``--help`` and run.json list them.
SECTIONS = (ModelConfig, SpaceConfig, BudgetConfig, SamplingConfig, OptimConfig, DataConfig, EvalConfig)


@dataclass
class TrainConfig(EvalConfig, DataConfig, OptimConfig, SamplingConfig, BudgetConfig, SpaceConfig, ModelConfig):
    """Every key of a training run, flat (sections as base classes, fields in :data:`SECTIONS` order).

    A TrainConfig *is* a :class:`DataConfig`, so the data layer takes it as it is.
    """

    # ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        cfg = cls()
        cfg.update(data, source)
        return cfg

    @classmethod
    def from_stored(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """A config as a run stored it; keys it predates take their :data:`LEGACY_DEFAULTS` values."""
        legacy = {k: v for k, v in LEGACY_DEFAULTS.items() if k not in data}
        return cls.from_mapping({**legacy, **data}, source)

    def update(self, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        hints = get_type_hints(type(self))
        names = [f.name for f in fields(self)]
        for key, value in data.items():
            if key == "description":
                continue
            if key not in hints:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PssError(f"unknown config key {key!r} in {source}{hint}; `pss train --help` lists them")
            setattr(self, key, _coerce(key, value, hints[key], source))
        self.validate()
        return self

    def validate(self) -> None:
        """Every key in its range, with a one-line PssError naming the key and a value that works."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise PssError(f"bad config: {f.name} must be a finite number, got {value!r}")
        at_least_1 = ("epochs", "divisor", "resolution_step", "pool_size", "max_trials", "calib_top_k", "calib_images",
                      "eval_batch_size")
        checks = [(getattr(self, k) >= 1, f"{k} must be at least 1 (got {getattr(self, k)!r})") for k in at_least_1]
        checks += [
            (self.batch_size >= 2, "batch_size must be at least 2 (BatchNorm needs a batch)"),
            (self.lr > 0, f"lr must be positive (got {self.lr!r}); the presets use 0.1 with batch 128"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1) (got {self.momentum!r}); 0.9 is usual"),
            (self.weight_decay >= 0, f"weight_decay must not be negative (got {self.weight_decay!r})"),
            (self.warmup_epochs >= 0, f"warmup_epochs must not be negative (got {self.warmup_epochs!r}); 0 means no warm-up"),
            (0 <= self.seed < 2**32, f"seed must be in [0, 2**32) (got {self.seed!r})"),
            (0 < self.width_mult <= 4, f"width_mult must be in (0, 4] (got {self.width_mult!r})"),
            (0 < self.lower_bound <= 1, "lower_bound must be in (0, 1]"),
            (8 <= self.resolution_min <= self.resolution_max <= 1024,
             f"resolutions must satisfy 8 <= resolution_min <= resolution_max <= 1024 (got {self.resolution_min}..{self.resolution_max})"),
            (0 < self.p_end <= 1, "p_end must be in (0, 1]"),
            (0 < self.eta_end <= 1, "eta_end must be in (0, 1]"),
            (0 <= self.metric_lambda <= 1, "metric_lambda must be in [0, 1]"),
            (100 <= self.structure_set_size <= MAX_STRUCTURE_SET,
             f"structure_set_size must be in [100, {MAX_STRUCTURE_SET:,}] (got {self.structure_set_size:,}); "
             "100,000 is the default (about 100 bytes of memory each)"),
            (self.max_trials <= 10**7, f"max_trials must be at most 10,000,000 (got {self.max_trials:,})"),
            (self.eval_calib_images >= 0, "eval_calib_images must be 0 (stale statistics) or more"),
            (self.num_workers >= 0, "num_workers must not be negative"),
            (0 < self.val_fraction < 1, f"val_fraction must be strictly between 0 and 1 (got {self.val_fraction!r}); e.g. 0.1"),
            (self.train_limit is None or self.train_limit >= 1, "train_limit must be at least 1 or null"),
            (self.val_limit is None or self.val_limit >= 1, "val_limit must be at least 1 or null"),
            (self.test_limit is None or self.test_limit >= 1, "test_limit must be at least 1 or null"),
            (0 < self.test_fraction < 1, f"test_fraction must be strictly between 0 and 1 (got {self.test_fraction!r}); e.g. 0.1, "
             "or test_split=false for no test split"),
            (self.dropout is None or 0 <= self.dropout < 1, f"dropout must be in [0, 1) or null (got {self.dropout!r})"),
            (self.width_rule in WIDTH_RULES, f"width_rule must be one of {', '.join(WIDTH_RULES)} (got {self.width_rule!r})"),
            (self.width_rule != "official" or self.model == "mobilenet_v2",
             f"width_rule=official is MobileNetV2's reference space; model {self.model!r} takes width_rule=free"),
            (self.kind_draw in KIND_DRAWS, f"kind_draw must be one of {', '.join(KIND_DRAWS)} (got {self.kind_draw!r})"),
            (self.imagenet_augmentation in IMAGENET_AUGMENTATIONS,
             f"imagenet_augmentation must be one of {', '.join(IMAGENET_AUGMENTATIONS)} (got {self.imagenet_augmentation!r})"),
            (self.rescore_images >= 1, f"rescore_images must be at least 1 (got {self.rescore_images!r}); 1024 is the default"),
            (self.imagenet_resolution >= 8, "imagenet_resolution must be at least 8 (e.g. 224 or 128)"),
            (self.budget_count is None or 1 <= self.budget_count <= 1000, "budget_count must be in [1, 1000] or null"),
            (self.budget_step is None or self.budget_step > 0, "budget_step must be positive or null"),
            (self.tolerance is None or self.tolerance > 0, "tolerance must be positive or null (null: half the budget step)"),
            (self.constraint in COST_KINDS, f"constraint must be one of {', '.join(COST_KINDS)}"),
            (self.constraint != "latency" or bool(self.latency_lut), "constraint 'latency' needs latency_lut, a LUT JSON from `pss lut build` (--set latency_lut=PATH)"),
            (self.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}"),
            (2 <= self.num_subnets <= 64, "num_subnets must be in [2, 64] (the max subnet and at least one more)"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device must be auto, cpu or cuda[:N]"),
            ((self.budget_count is None) != (self.budget_step is None), "set exactly one of budget_count and budget_step (set the other to null)"),
        ]
        for ok, message in checks:
            if not ok:
                raise PssError(f"bad config: {message}")
        self.constraint_kinds()  # validates extra_constraints
        self._validate_superclasses()

    def _validate_superclasses(self) -> None:
        """``superclasses`` names a built-in map the dataset can have, or a JSON/YAML file; dropout needs it.

        Only the form is checked here (a run.json read on another machine validates too): the file itself
        and the dataset's classes are checked when the map is resolved (:func:`pss.problem.superclasses.resolve_superclasses`).
        """
        value, rate = self.superclasses, self.superclass_dropout
        if not 0 <= rate <= 1:
            raise PssError(f"bad config: superclass_dropout must be in [0, 1] (got {rate!r}); EAS uses 0.1-0.6, 0 turns it off")
        if value is None:
            if rate > 0:
                raise PssError(f"bad config: superclass_dropout={rate:g} needs superclasses: set superclasses=builtin "
                               f"({', '.join(SUPERCLASS_DATASETS)}) or superclasses=PATH of a JSON/YAML file mapping each superclass to its classes")
            return
        text = str(value).strip()
        if is_builtin_superclasses(text):
            dataset = canonical_dataset(self.dataset)
            if dataset in NO_BUILTIN_SUPERCLASSES:
                raise PssError(f"bad config: dataset {self.dataset!r} has no built-in superclass map (built in for "
                               f"{', '.join(SUPERCLASS_DATASETS)}); set superclasses=PATH of a JSON/YAML file mapping each superclass to its classes")
            return
        if not text or Path(text).suffix.lower() not in (".json", ".yaml", ".yml"):
            raise PssError(f"bad config: superclasses must be 'builtin' or the path of a .json/.yaml file mapping each superclass "
                           f"to its classes (got {value!r})")

    def constraint_kinds(self) -> list[str]:
        """The primary ``constraint`` followed by the ``extra_constraints`` (PSS-Net_M), validated."""
        extra = [k.strip() for k in (self.extra_constraints or "").split(",") if k.strip()]
        if self.extra_constraints is not None and not extra:
            raise PssError("bad config: extra_constraints is empty; give a comma list such as params or params,latency (or null)")
        for k in extra:
            if k not in COST_KINDS:
                raise PssError(f"bad config: extra_constraints: unknown kind {k!r}; choose among {', '.join(COST_KINDS)}")
        if len(set(extra)) != len(extra):
            raise PssError(f"bad config: extra_constraints {self.extra_constraints!r} names a kind twice")
        if self.constraint in extra:
            raise PssError(f"bad config: extra_constraints repeats the primary constraint {self.constraint!r}")
        if "latency" in extra and not self.latency_lut:
            raise PssError("bad config: extra constraint 'latency' needs latency_lut, a LUT JSON from `pss lut build` (--set latency_lut=PATH)")
        if extra and self.budget_step is not None:
            raise PssError("bad config: budget_step cannot span several cost units; use budget_count with extra_constraints")
        return [self.constraint, *extra]


def _coerce(key: str, value: Any, hint: Any, source: str) -> Any:
    """Turn ``value`` (possibly a string from --set) into the field's type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if args else hint
    if isinstance(value, str) and base is not str:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if isinstance(value, str) and base in (int, float):
        # YAML 1.1 reads 1e-3 (no dot) as a string; people write learning rates that way
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, str) and base is str and optional and value.strip().lower() in ("null", "none", "~"):
        value = None
    if value is None:
        if optional:
            return None
        raise PssError(f"config key {key!r} in {source} cannot be null")
    ok = (
        (base is bool and isinstance(value, bool))
        or (base is int and isinstance(value, int) and not isinstance(value, bool))
        or (base is int and isinstance(value, float) and value.is_integer())
        or (base is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool))
    )
    if not ok:
        kind = base.__name__ + (" or null" if optional else "")
        raise PssError(f"config key {key!r} in {source} must be {kind}, got {value!r}")
    return base(value)


# ---------------------------------------------------------------------- presets
def _preset_files() -> dict[str, Path]:
    root = resources.files("pss") / "presets"
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def list_presets() -> dict[str, str]:
    """name -> one-line description."""
    out = {}
    for name, path in sorted(_preset_files().items()):
        data = yaml.safe_load(path.read_text()) or {}
        out[name] = str(data.get("description", "")).strip()
    return out


def load_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A preset name or a YAML/JSON file, plus overrides (from --set/--epochs)."""
    presets = _preset_files()
    path = Path(name_or_path)
    if name_or_path in presets:
        data, source = yaml.safe_load(presets[name_or_path].read_text()) or {}, f"preset {name_or_path!r}"
    elif path.suffix.lower() in (".yaml", ".yml", ".json") and path.is_file():
        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise PssError(f"cannot parse config file {path}: {one_line(exc)}") from None
        source = str(path)
        if not isinstance(data, dict):
            raise PssError(f"config file {path} must hold a mapping of keys to values")
    elif path.suffix.lower() in (".yaml", ".yml", ".json"):
        raise PssError(f"config file {path} does not exist")
    else:
        close = difflib.get_close_matches(name_or_path, list(presets), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PssError(f"unknown preset {name_or_path!r}{hint}; `pss presets` lists them, or pass a .yaml/.json config file")
    cfg = TrainConfig.from_mapping(data, source)
    if overrides:
        cfg.update(overrides, "--set")
    return cfg


def parse_set_options(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise PssError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def config_keys_help() -> str:
    """The keys with their defaults, one line each, grouped by section (for ``pss train --help``)."""
    cfg = TrainConfig()
    lines = []
    for section in SECTIONS:
        lines.append(f" {section.__doc__.splitlines()[0].rstrip('.')}:")
        lines += [f"  {f.name} = {getattr(cfg, f.name)!r}" for f in fields(section)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- studies
STUDY_SELECTIONS = ("calibrate", "uniform", "random", "evolution")
"""How a study gives a trained run its per-budget subnets: `pss calibrate` (the pools) or a `pss search` method."""

MAX_STUDY_SEEDS = 100
"""A study trains one run per (strategy, seed): more seeds than this is a typo, not a plan."""

DEFAULT_SELECTION = {"pss": "calibrate", "uniform": "uniform", "mutual": "uniform", "random": "evolution", "pse": "evolution"}
"""PSS by its pools; US-Net and MutualNet by uniform-width search (the subnets they train); random and
PSE-Net by the evolutionary search (PSE-Net Sec. 3.3)."""


@dataclass
class StudyConfig:
    """A comparison of training strategies (``pss study``): one recipe, several strategies and seeds.

    Every (strategy, seed) is an ordinary run trained from ``recipe`` + ``set`` + its strategy and seed;
    every strategy gets ``evaluations`` calibrated evaluations per budget to choose its subnets
    (``selection``), so selection effort is equal; all are compared at the same budget ceilings.
    """

    recipe: str = "sample"
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategies: list[str] = dataclasses.field(default_factory=lambda: ["pss", "uniform", "mutual", "random", "pse"])
    # one list for every strategy, or per strategy ({pss: [0, 1, 2, 3, 4], uniform: [0, 1, 2], ...}; every strategy named)
    seeds: list[int] | dict[str, list[int]] = dataclasses.field(default_factory=lambda: [0, 1])
    budgets: list[str] | None = None  # ceilings ("6M", 7.5e6); null: the recipe's pools' upper edges theta + delta
    evaluations: int = 16
    selection: dict[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""
    pack: bool = False  # store each finished run as `pss pack` does (float16, no optimizer) before selecting: to ship it
    equivalence_margin: float = 0.5  # points of accuracy: a difference ruled out beyond ±margin reads "equivalent" (TOST)

    def method(self, strategy: str) -> str:
        return self.selection.get(strategy, DEFAULT_SELECTION[strategy])

    def seeds_of(self, strategy: str) -> list[int]:
        """The seeds ``strategy`` is trained with."""
        return list(self.seeds[strategy]) if isinstance(self.seeds, dict) else list(self.seeds)

    def all_seeds(self) -> list[int]:
        return sorted({seed for s in self.strategies for seed in self.seeds_of(s)})

    def jobs(self) -> list[tuple[str, int]]:
        """Every (strategy, seed) run, seed by seed: one seed of every strategy before the next seed of any."""
        return [(s, seed) for seed in self.all_seeds() for s in self.strategies if seed in self.seeds_of(s)]

    def run_config(self, strategy: str, seed: int) -> TrainConfig:
        """The TrainConfig of one run: the recipe, the study's overrides, then strategy and seed."""
        return load_config(self.recipe, {**self.set, "strategy": strategy, "seed": seed})

    def validate(self) -> None:
        where = "study"
        if not self.strategies:
            raise PssError(f"bad {where}: strategies is empty; list some of {', '.join(STRATEGIES)}")
        for s in self.strategies:
            if s not in STRATEGIES:
                close = difflib.get_close_matches(str(s), STRATEGIES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PssError(f"bad {where}: unknown strategy {s!r}{hint}; choose among {', '.join(STRATEGIES)}")
        if len(set(self.strategies)) != len(self.strategies):
            raise PssError(f"bad {where}: strategies lists a strategy twice")
        if isinstance(self.seeds, dict):
            missing = [s for s in self.strategies if s not in self.seeds]
            extra = [s for s in self.seeds if s not in self.strategies]
            if missing or extra:
                raise PssError(f"bad {where}: seeds per strategy must name exactly the strategies "
                               f"({'missing ' + ', '.join(missing) if missing else 'unknown ' + ', '.join(map(str, extra))})")
        for strategy in self.strategies:
            seeds = self.seeds.get(strategy) if isinstance(self.seeds, dict) else self.seeds
            if (not isinstance(seeds, list) or not seeds
                    or any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 2**32 for x in seeds)):
                raise PssError(f"bad {where}: seeds must be a non-empty list of integers in [0, 2**32), e.g. [0, 1, 2], "
                               "or one such list per strategy")
            if len(set(seeds)) != len(seeds):
                raise PssError(f"bad {where}: seeds lists a seed twice")
            if len(seeds) > MAX_STUDY_SEEDS:
                raise PssError(f"bad {where}: {len(seeds)} seeds for {strategy}; at most {MAX_STUDY_SEEDS} (each seed trains a run)")
        if (isinstance(self.equivalence_margin, bool) or not isinstance(self.equivalence_margin, (int, float))
                or not 0 < self.equivalence_margin <= 50):
            raise PssError(f"bad {where}: equivalence_margin must be a number of points in (0, 50], e.g. 0.5")
        if isinstance(self.evaluations, bool) or not isinstance(self.evaluations, int) or not 1 <= self.evaluations <= 4096:
            raise PssError(f"bad {where}: evaluations must be an integer in [1, 4096] (calibrated subnets per budget), "
                           f"got {self.evaluations!r}")
        for strategy, method in self.selection.items():
            if strategy not in STRATEGIES:
                raise PssError(f"bad {where}: selection names unknown strategy {strategy!r}")
            if method not in STUDY_SELECTIONS:
                raise PssError(f"bad {where}: selection of {strategy} must be one of {', '.join(STUDY_SELECTIONS)}, got {method!r}")
            if method == "calibrate" and strategy != "pss":
                raise PssError(f"bad {where}: only pss keeps pools to calibrate; choose uniform, random or evolution for {strategy}")
        if "strategy" in self.set or "seed" in self.set:
            raise PssError(f"bad {where}: set may not fix strategy or seed; list them in strategies and seeds")
        cfg = self.run_config(self.strategies[0], self.seeds_of(self.strategies[0])[0])  # the recipe and overrides, validated like a config
        if "pss" in self.strategies and self.method("pss") == "calibrate" and self.evaluations > cfg.pool_size:
            raise PssError(f"bad {where}: evaluations {self.evaluations} exceeds pool_size {cfg.pool_size}, the most pss can "
                           "calibrate per pool; lower evaluations or raise pool_size in set")


def _study_files() -> dict[str, Path]:
    root = resources.files("pss") / "studies"
    return {Path(str(f)).stem: Path(str(f)) for f in root.iterdir() if str(f).endswith(".yaml")}


def list_studies() -> dict[str, str]:
    """Built-in study name -> its description (``pss study NAME`` runs it)."""
    return {name: " ".join(str((yaml.safe_load(path.read_text()) or {}).get("description", "")).split())
            for name, path in sorted(_study_files().items())}


def load_study(path: str | Path) -> StudyConfig:
    """A built-in study name or a study file (YAML or JSON), validated; one-line :class:`PssError` naming the problem and the fix."""
    builtin = _study_files()
    p = builtin[str(path)] if str(path) in builtin else Path(path).expanduser()
    if not p.is_file():
        close = difflib.get_close_matches(str(path), list(builtin), n=1)
        hint = f" (did you mean the built-in study {close[0]!r}?)" if close else ""
        raise PssError(f"study file {p} does not exist{hint}; name a built-in study ({', '.join(sorted(builtin))}) "
                       "or write a file (see `pss study --help`)")
    try:
        text = p.read_text()
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PssError(f"cannot parse study file {p}: {one_line(exc)}") from None
    if not isinstance(data, dict):
        raise PssError(f"study file {p} must hold a mapping (recipe, set, strategies, seeds, budgets, evaluations)")
    names = [f.name for f in fields(StudyConfig)]
    unknown = [k for k in data if k not in names]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PssError(f"unknown key {unknown[0]!r} in study file {p}{hint}; keys: {', '.join(names)}")
    kinds = {"recipe": str, "set": dict, "strategies": list, "seeds": (list, dict), "budgets": (list, type(None)),
             "evaluations": int, "selection": dict, "description": str, "pack": bool, "equivalence_margin": (int, float)}
    for key, value in data.items():
        if not isinstance(value, kinds[key]):
            raise PssError(f"study file {p}: {key} has the wrong type ({type(value).__name__}); see `pss study --help`")
    study = StudyConfig(**data)
    if study.budgets is not None:
        study.budgets = [str(b) for b in study.budgets]
    try:
        study.validate()
    except PssError as exc:
        raise PssError(f"{p}: {exc}") from None
    return study
