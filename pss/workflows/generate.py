"""`pss generate`: train the EAS architecture generator of a run, and generate architectures for (superclass, budget).

Training reads the run's validation split (the supernet frozen) and writes
``RUN_DIR/generator/`` (seed 0) or ``RUN_DIR/generator-sS/`` (``--seed S``;
:mod:`pss.io.generator`). Generating draws architectures within the budget from
the generator's gate probabilities (all scenarios of a call in one batched
forward), calibrates each candidate's BN statistics on training images of all
classes (as `pss calibrate` does), keeps the one with the best accuracy on the
superclass's validation images, and measures it once on the superclass's test
images (which report, never choose). Results are added to that seed's
``scenarios.json``, which the dashboard reads.

Equal effort: every method gets the same N calibrated evaluations per scenario
(:attr:`GenerateOptions.evaluations`): EAS and ``random`` calibrate N distinct
candidates drawn within the ceiling (from the generator, or uniformly from S),
OFA-T runs an evolutionary search of N evaluations per scenario, and OFA-V's one
search per budget over all classes gets N per scenario that shares it (N x K for
K superclasses at that budget: the same number of calibrations per budget as the
others spend). Each record says what was asked and what was made, and, for the
methods that draw within the ceiling, how many draws were made and how many fit.

Why all classes for BN: the supernet was trained with BN statistics of mixed batches, and statistics of one
superclass's images alone shift every layer's input (a footwear subnet measured 95% with all-class statistics,
79-82% with footwear-only ones).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data import DataBundle, load_data, subset_of_classes
from ..eas.gates import GateLayout
from ..eas.generator import ArchitectureGenerator
from ..eas.baselines import best_of, evolutionary_search, uniform_within_budget
from ..eas.draws import DrawTally
from ..eas.search import (
    GeneratorSettings,
    Scored,
    best,
    gate_probabilities,
    generate_candidates,
    restricted_accuracy,
    restricted_predictions,
    train_generator,
)
from ..errors import PssError
from ..evaluate.calibration import BNCalibrator
from ..evaluate.statistics import Accuracy
from ..io.checkpoint import read_generator_weights, write_generator_weights
from ..io.generator import (
    draw_tally_json,
    generator_document,
    read_generator_document,
    read_scenarios,
    scenario_record,
    write_generator_document,
    write_scenarios,
)
from ..nn.device import resolve_device
from ..problem.space import Structure
from ..problem.superclasses import SuperclassMap
from ..units import format_cost
from .evaluation import CALIBRATION_SEED_OFFSET
from .loaded import TrainedRun, load_trained
from .superclass import SuperclassTarget, class_batches, superclass_target

ANALYTIC = ("macs", "params")


def _cost_kind(trained: TrainedRun) -> str:
    kind = trained.cfg.constraint if trained.cfg.constraint in ANALYTIC else "macs"
    return kind


def _seed_kw(seed: int) -> dict[str, int]:
    """``seed=`` for pss.io.checkpoint's generator weights functions: named only for a seed other than 0, whose
    folder (generator/) is their default."""
    return {"seed": seed} if seed else {}


def train_run_generator(run: str | Path, superclasses: str | None = None, settings: GeneratorSettings = GeneratorSettings(),
                        device: str = "auto", progress: Callable[[int, int, dict], None] | None = None) -> dict[str, Any]:
    """EAS Alg. 1 on a trained run; writes the generator of ``settings.seed`` (generator/ for 0, generator-sS/
    otherwise, leaving the other seeds alone) and returns its description (generator.json)."""
    seed = int(settings.seed)
    if seed < 0:
        raise PssError(f"--seed must be 0 or more, got {seed}")
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    target = superclass_target(trained, 0, superclasses)
    smap = target.map
    data = load_data(trained.cfg, create=False)
    kind = _cost_kind(trained)
    cm = trained.problem.cost_model
    c_range = (cm.cost(kind, cm.space.min_structure), cm.cost(kind, cm.space.max_structure))
    gen, log = train_generator(trained.supernet, cm, smap.class_superclass, lambda b: data.val_batches(b, dev), settings,
                               kind=kind, c_range=c_range, progress=progress)
    layout = gen.layout
    doc = generator_document(
        superclasses={"source": target.source, **smap.to_json()}, kind=kind, c_min=c_range[0], c_max=c_range[1],
        settings=settings.to_json(), layout={"dims": list(layout.dims), "choices": [list(c) for c in layout.choices],
                                             "resolutions": list(layout.resolutions)},
        training=log.to_json(), run_epoch=trained.epoch, dropout=float(getattr(trained.cfg, "superclass_dropout", 0.0) or 0.0),
        validation_images=data.num_val, seed=seed,
    )
    write_generator_weights(trained.path, gen.state_dict(), **_seed_kw(seed))
    write_generator_document(trained.path, doc, seed)
    return doc


@dataclass
class LoadedGenerator:
    """A run with its trained generator, data and a calibrator: what generating scenarios needs, opened once."""

    trained: TrainedRun
    doc: dict[str, Any]
    generator: ArchitectureGenerator
    smap: SuperclassMap
    data: DataBundle
    calibrator: BNCalibrator
    device: torch.device
    seed: int = 0
    """The replicate: this generator was trained with it, and its draws and the baselines' use it."""

    @property
    def kind(self) -> str:
        return self.doc["cost_kind"]

    def target(self, superclass: str | int) -> SuperclassTarget:
        names = tuple(self.trained.run_json["dataset"]["class_names"])
        return SuperclassTarget(self.smap, self.smap.index(superclass), str(self.doc["superclasses"].get("source", "")), names)


@dataclass
class OpenedGenerator:
    """A run's generator of one seed with its description and superclass map, without data: enough to draw."""

    trained: TrainedRun
    doc: dict[str, Any]
    generator: ArchitectureGenerator
    smap: SuperclassMap
    seed: int = 0


def open_generator(run: str | Path, device: str = "auto", seed: int = 0) -> OpenedGenerator:
    """The run's generator of ``seed`` (generator/ for 0, generator-sS/ otherwise), checked against the run's
    structure space, in eval mode; no data is loaded (drawing needs none)."""
    dev = resolve_device(device)
    trained = load_trained(run, dev)
    doc = read_generator_document(trained.path, seed)
    smap_doc = {k: v for k, v in doc["superclasses"].items() if k != "source"}
    smap = SuperclassMap.from_json(smap_doc)
    cm = trained.problem.cost_model
    layout = GateLayout.of(cm.space)
    again = "train it again with --train" + (f" --seed {seed}" if seed else "")
    if [list(c) for c in layout.choices] != doc["layout"]["choices"] or list(layout.resolutions) != doc["layout"]["resolutions"]:
        raise PssError(f"the generator of {trained.path} was trained for another structure space; {again}")
    s = doc["settings"]
    gen = ArchitectureGenerator(layout, smap.num_superclasses, doc["c_min"], doc["c_max"], int(s["levels"]), int(s["embedding"]), int(s["hidden"]))
    try:
        gen.load_state_dict(read_generator_weights(trained.path, **_seed_kw(seed)))
    except RuntimeError as exc:
        raise PssError(f"the generator weights of {trained.path} do not match generator.json ({str(exc).splitlines()[0]}); "
                       f"{again}") from None
    gen.to(dev).eval()
    return OpenedGenerator(trained, doc, gen, smap, seed)


def load_generator(run: str | Path, device: str = "auto", seed: int = 0) -> LoadedGenerator:
    """The run's generator of ``seed`` (:func:`open_generator`), its data and a calibrator: what generating needs."""
    opened = open_generator(run, device, seed)
    data = load_data(opened.trained.cfg, create=False)
    return LoadedGenerator(opened.trained, opened.doc, opened.generator, opened.smap, data, BNCalibrator(opened.trained.supernet),
                           resolve_device(device), seed)


METHODS = ("eas", "random", "ofa-t", "ofa-v")
"""How a scenario's candidates are found: the generator (EAS), uniform draws within the budget, an evolutionary
search per scenario (OFA-T) or one per budget over all classes (OFA-V) -- :mod:`pss.eas.baselines`."""


@dataclass(frozen=True)
class GenerateOptions:
    """How scenarios are generated: N calibrated evaluations per scenario (every method alike), the seed of the
    replicate, and the calibration and validation images."""

    samples: int = 10
    """N when ``evaluations`` is not given (the name `--samples` and earlier code use)."""
    seed: int = 0
    """The replicate :func:`generate` opens: the generator trained with this seed (``pss generate --train --seed S``);
    its draws and the baselines' draws and searches use the same seed."""
    calib_images: int | None = None
    """Training images (all classes) for BN calibration (default: those of the run's `pss calibrate`)."""
    val_images: int | None = None
    """At most this many of the superclass's validation images choose among candidates (None: all); quick runs."""
    evaluations: int | None = None
    """N: calibrated evaluations per scenario, the same for every method (None: ``samples``). EAS and random
    calibrate N distinct candidates drawn within the ceiling, OFA-T searches with N evaluations per scenario,
    OFA-V's one search per budget gets N per scenario sharing it (N x K for K superclasses at that budget)."""

    def __post_init__(self) -> None:
        n = self.effort
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PssError(f"the number of calibrated evaluations per scenario must be a whole number >= 1, got {n!r}")

    @property
    def effort(self) -> int:
        """N: the calibrated evaluations per scenario every method gets."""
        return self.evaluations if self.evaluations is not None else self.samples


class _Scorer:
    """Calibrate-and-validate structures for one set of classes, cached by structure key.

    BN statistics come from training images of *all* classes, exactly as `pss calibrate` estimates them (its
    number of images, seed and batch size), so they are shared by every superclass (``stats``) and an export of
    the chosen structure re-estimates the same ones; only the validation and test images are the superclass's.
    """

    def __init__(self, loaded: LoadedGenerator, classes: Sequence[int], options: GenerateOptions,
                 stats: dict[str, dict[str, torch.Tensor]]) -> None:
        self.loaded, self.classes, self.stats = loaded, tuple(classes), stats
        trained = loaded.trained
        self.bs = trained.cfg.eval_batch_size
        self.images = int(options.calib_images or calibration_images(loaded))
        self.val_images = options.val_images
        self.cache: dict[str, Scored] = {}

    def _calib(self):
        gen = torch.Generator().manual_seed(self.loaded.trained.cfg.seed + CALIBRATION_SEED_OFFSET)
        return self.loaded.data.calibration_batches(self.images, self.bs, gen, self.loaded.device)

    def _split(self, split: str):
        data = self.loaded.data
        limit = self.val_images if split == "val" else None
        if limit is None:
            return class_batches(data, split, self.classes, self.bs, self.loaded.device)
        try:
            return data.subset_batches(split, subset_of_classes(data, split, self.classes)[:limit], self.bs, self.loaded.device)
        except NotImplementedError:
            return class_batches(data, split, self.classes, self.bs, self.loaded.device)

    def calibrate(self, structures: Sequence[Structure]) -> None:
        """BN statistics of every structure not calibrated yet (shared by the superclasses through ``stats``)."""
        fresh = list({s.key: s for s in structures if s.key not in self.stats}.values())
        if fresh:
            for s, st in zip(fresh, self.loaded.calibrator.calibrate_many(fresh, self._calib())):
                self.stats[s.key] = st

    def __call__(self, structures: Sequence[Structure]) -> list[Scored]:
        todo = [s for s in {s.key: s for s in structures}.values() if s.key not in self.cache]
        self.calibrate(todo)
        cm = self.loaded.trained.problem.cost_model
        for s in todo:
            acc = restricted_accuracy(self.loaded.calibrator, s, self.stats[s.key], self._split("val"), self.classes)
            self.cache[s.key] = Scored(s, float(cm.cost(self.loaded.kind, s)), acc, self.stats[s.key])
        return [self.cache[s.key] for s in structures]

    def fitness(self, structures: Sequence[Structure]) -> list[float]:
        return [r.validation.value for r in self(structures)]

    def test(self, chosen: Scored) -> Accuracy | None:
        if not self.loaded.data.has_test:
            return None
        return restricted_accuracy(self.loaded.calibrator, chosen.structure, chosen.stats, self._split("test"), self.classes)

    def test_correct(self, structure: Structure) -> np.ndarray | None:
        """Per test image of the superclass (in the data's order): does ``structure`` get it right? None without a
        test split."""
        if not self.loaded.data.has_test:
            return None
        self.calibrate([structure])
        hits = restricted_predictions(self.loaded.calibrator, structure, self.stats[structure.key], self._split("test"),
                                      self.classes)
        return hits.numpy().astype(bool)


def calibration_images(loaded: LoadedGenerator) -> int:
    """The images `pss calibrate` used for this run (its front's), else the run's eval_calib_images."""
    try:
        return int(loaded.trained.run.read_front()["calibration_images"])
    except (PssError, KeyError, TypeError, ValueError):
        return int(loaded.trained.cfg.eval_calib_images)


def _tally_json(tally: DrawTally) -> dict[str, Any]:
    return draw_tally_json(tally.draws, tally.in_budget, tally.resolutions, tally.in_budget_resolutions)


def generate_scenarios(loaded: LoadedGenerator, scenarios: Sequence[tuple[str | int, float]], options: GenerateOptions = GenerateOptions(),
                       progress: Callable[[int, int, str], None] | None = None, write: bool = True,
                       method: str = "eas", chosen_out: list[Scored | None] | None = None) -> list[dict[str, Any]]:
    """An architecture for each (superclass, budget) by ``method`` (:data:`METHODS`), each method given the same
    N = ``options.effort`` calibrated evaluations per scenario (module docstring), chosen on the superclass's
    validation images and tested once on its test images; the records (also added to the scenarios of the loaded
    generator's seed, which seeds the draws and searches). ``chosen_out`` receives each scenario's chosen
    candidate (with its BN statistics), None where nothing fit."""
    if method not in METHODS:
        raise PssError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    n = options.effort
    trained = loaded.trained
    cm = trained.problem.cost_model
    targets = [loaded.target(k) for k, _ in scenarios]
    c_floor = cm.cost(loaded.kind, cm.space.min_structure)
    for _, b in scenarios:
        if b < c_floor:
            raise PssError(f"budget {format_cost(b, loaded.kind)} is below the smallest subnet's ({format_cost(c_floor, loaded.kind)}); "
                           "nothing fits, choose a larger budget")
    stats: dict[str, dict[str, torch.Tensor]] = {}  # BN statistics by structure key, shared by the superclasses
    rng = np.random.default_rng(loaded.seed)
    shared_seconds = [0.0] * len(scenarios)
    tallies: list[DrawTally | None] = [None] * len(scenarios)
    fallback = [False] * len(scenarios)
    shared: list[dict[str, Any] | None] = [None] * len(scenarios)
    candidates: list[list[Structure] | None] = [None] * len(scenarios)
    if method == "eas":
        t0 = time.perf_counter()
        cands = generate_candidates(loaded.generator, cm, [(t.index, float(b)) for t, (_, b) in zip(targets, scenarios)],
                                    samples=n, seed=loaded.seed, kind=loaded.kind)
        shared_seconds = [(time.perf_counter() - t0) / len(scenarios)] * len(scenarios)
        candidates = [list(c.structures) for c in cands]
        tallies = [c.tally for c in cands]
        fallback = [c.fallback for c in cands]
    elif method == "ofa-v":  # one search per budget over all classes, N per scenario sharing it; its winner for every one
        everyone = _Scorer(loaded, range(loaded.smap.num_classes), options, stats)
        for b in sorted({float(b) for _, b in scenarios}):
            sharing = [i for i, (_, b2) in enumerate(scenarios) if float(b2) == b]
            t0 = time.perf_counter()
            result = evolutionary_search(cm, b, everyone.fitness, n * len(sharing), rng, loaded.kind)
            winner, made = best_of(result), len(result.evaluated)
            secs = time.perf_counter() - t0
            for i in sharing:
                candidates[i] = [winner] if winner is not None else []
                shared_seconds[i] = secs / len(sharing)
                shared[i] = {"evaluations": made, "scenarios": len(sharing)}
    records = []
    for i, ((_, budget), target) in enumerate(zip(scenarios, targets)):
        t1 = time.perf_counter()
        scorer = _Scorer(loaded, target.classes, options, stats)
        if method == "random":
            candidates[i], tallies[i] = uniform_within_budget(cm, float(budget), n, rng, loaded.kind)
            if not candidates[i]:  # as EAS: when no draw fits, the cheapest subnet of S (if within the budget)
                smallest = cm.space.min_structure
                candidates[i] = [smallest] if cm.cost(loaded.kind, smallest) <= float(budget) else []
                fallback[i] = bool(candidates[i])
        elif method == "ofa-t":
            result = evolutionary_search(cm, float(budget), scorer.fitness, n, rng, loaded.kind)
            candidates[i] = [v[0] for v in result.evaluated.values()]
        chosen = best(scorer(candidates[i] or []))
        test = scorer.test(chosen) if chosen is not None else None
        if chosen_out is not None:
            chosen_out.append(chosen)
        if shared[i] is not None:
            made = shared[i]["evaluations"] / shared[i]["scenarios"]
            draws = shared[i]["evaluations"]
        else:
            made = len(scorer.cache)
            draws = len(scorer.cache)
        records.append(scenario_record(
            method=method, seed=loaded.seed, superclass=target.name, superclass_index=target.index, budget=float(budget),
            kind=loaded.kind, structure=chosen.structure.to_json() if chosen else None,
            costs=cm.costs(chosen.structure) if chosen else None,
            validation=chosen.validation.to_json() if chosen else None, test=test.to_json() if test else None,
            candidates=len(scorer.cache), draws=draws, evaluations=made, evaluations_requested=n,
            tally=_tally_json(tallies[i]) if tallies[i] is not None else None, shared_search=shared[i],
            fallback=fallback[i], seconds=time.perf_counter() - t1 + shared_seconds[i],
        ))
        if progress is not None:
            progress(i + 1, len(scenarios), f"{method}: {target.name} <= {format_cost(float(budget), loaded.kind)}")
    if write:
        write_scenarios(trained.path, records, loaded.doc["created"], loaded.seed)
    return records


def chosen_test_correct(loaded: LoadedGenerator, records: Sequence[dict[str, Any]], options: GenerateOptions = GenerateOptions(),
                        chosen: Sequence[Scored | None] | None = None) -> list[np.ndarray | None]:
    """Per record: which of its superclass's test images (in the data's order) its chosen architecture gets right,
    with BN statistics calibrated as when it was chosen (``chosen``'s when given, else estimated again); None
    where nothing fitted or the run has no test split. What paired comparisons need, image by image."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    out: list[np.ndarray | None] = []
    for i, r in enumerate(records):
        c = chosen[i] if chosen is not None else None
        if c is not None:
            stats.setdefault(c.structure.key, c.stats)
        if not r.get("structure"):
            out.append(None)
            continue
        scorer = _Scorer(loaded, loaded.target(r["superclass"]).classes, options, stats)
        out.append(scorer.test_correct(Structure.from_json(r["structure"])))
    return out


def generated_structure(loaded: LoadedGenerator, superclass: str | int, budget: float,
                        options: GenerateOptions = GenerateOptions()) -> Structure:
    """The generator's architecture for one scenario: the one recorded in scenarios.json (method eas, same superclass
    and budget) when there is one, so an export is the architecture the user saw; else generated (and recorded) now."""
    name = loaded.target(superclass).name
    for r in read_scenarios(loaded.trained.path, loaded.seed):
        if r.get("method", "eas") == "eas" and r["superclass"] == name and abs(float(r["budget"]) - float(budget)) < 0.5 \
                and r.get("structure"):
            return Structure.from_json(r["structure"])
    chosen: list[Scored | None] = []
    generate_scenarios(loaded, [(superclass, float(budget))], options, chosen_out=chosen)
    if chosen[0] is None:
        raise PssError(f"the generator found no architecture within {format_cost(float(budget), loaded.kind)} for "
                       f"{name}; choose a larger budget")
    return chosen[0].structure


def generator_seconds(loaded: LoadedGenerator, n: int = 50, repeats: int = 5, samples: int = 10) -> dict[str, float]:
    """Time of the generator alone for ``n`` scenarios (EAS Table 3: 50 in 0.1 s): one batched forward, and with
    drawing ``samples`` architectures within budget per scenario. Median of ``repeats``; nothing calibrated."""

    cm = loaded.trained.problem.cost_model
    lo, hi = loaded.doc["c_min"], loaded.doc["c_max"]
    scen = [(i % loaded.smap.num_superclasses, lo + (hi - lo) * ((i * 0.618) % 1.0)) for i in range(n)]
    forward, drawing = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        gate_probabilities(loaded.generator, [k for k, _ in scen], [b for _, b in scen])
        forward.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        generate_candidates(loaded.generator, cm, scen, samples=samples, seed=r, kind=loaded.kind)
        drawing.append(time.perf_counter() - t0)
    return {"scenarios": n, "forward_s": statistics.median(forward), "with_drawing_s": statistics.median(drawing)}


def settings_from(**overrides: Any) -> GeneratorSettings:
    """GeneratorSettings with the given fields (None = default); an unknown field is a one-line error."""
    fields = {f.name for f in dataclasses.fields(GeneratorSettings)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise PssError(f"unknown generator setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    return GeneratorSettings(**{k: v for k, v in overrides.items() if v is not None})


def generate(run: str | Path, superclass: str | int | Sequence[str | int], budgets: float | Sequence[float],
             options: GenerateOptions = GenerateOptions(), device: str = "auto",
             progress: Callable[[int, int, str], None] | None = None, method: str = "eas") -> list[dict[str, Any]]:
    """Architectures for every (superclass, budget) pair with the generator of ``options.seed``; ``superclass="all"``
    means every superclass of the map."""
    loaded = load_generator(run, device, options.seed)
    names: list[str | int]
    if isinstance(superclass, (str, int)):
        names = list(loaded.smap.superclasses) if str(superclass).lower() == "all" else [superclass]
    else:
        names = list(superclass)
    budget_list = [float(budgets)] if isinstance(budgets, (int, float)) else [float(b) for b in budgets]
    if not budget_list:
        raise PssError("give at least one budget, e.g. --budget 2M")
    return generate_scenarios(loaded, [(n, b) for n in names for b in budget_list], options, progress, method=method)


def _resolutions_text(counts: dict[str, int] | None) -> str:
    total = sum((counts or {}).values())
    if not total:
        return ""
    return ", ".join(f"{r} px {100 * k / total:.0f}%" for r, k in sorted(counts.items(), key=lambda kv: int(kv[0])))


def effort_text(r: dict[str, Any]) -> str:
    """One line on what choosing a record's architecture cost: calibrated evaluations (of N), and for the methods
    that draw within the ceiling, the draws made, how many fit, and the draws per resolution."""
    made, asked = r.get("evaluations"), r.get("evaluations_requested")
    if made is None:  # a record from before effort was recorded
        return f"{r['candidates']} candidates calibrated ({r['draws']} drawn)"
    text = f"{made:g} calibrated evaluations" + (f" of {asked} asked" if asked is not None else "")
    if r.get("shared_search"):
        share = r["shared_search"]
        text += f" (its share of one all-class search of {share['evaluations']} for {share['scenarios']} scenarios)"
    if r.get("in_budget") is not None:
        rate = r.get("in_budget_rate")
        text += (f"; {r['draws']} drawn, {r['in_budget']} within the budget ({100 * rate:.0f}%)" if rate is not None
                 else f"; {r['draws']} drawn")
        drawn = _resolutions_text(r.get("draw_resolutions"))
        if drawn:
            text += f"; drawn at {drawn}"
    if r.get("fallback"):
        text += "; nothing drawn fitted, so the cheapest subnet of the space was taken"
    return text


def format_generated(records: Sequence[dict[str, Any]]) -> str:
    """One block per scenario: the structure, its costs, per-superclass validation and test accuracy."""
    lines = []
    for r in records:
        head = f"{r['superclass']} <= {format_cost(r['budget'], r['cost_kind'])}"
        if r["structure"] is None:
            lines.append(f"{head}: no architecture within the budget")
            continue
        costs = ", ".join(format_cost(v, k) for k, v in r["costs"].items())
        lines.append(f"{head}: r{r['structure']['resolution']} widths {'.'.join(map(str, r['structure']['widths']))}")
        lines.append(f"  cost {costs}; {effort_text(r)}")
        val = Accuracy.from_json(r["validation"])
        lines.append(f"  validation ({r['superclass']} only): {val}")
        if r.get("test"):
            lines.append(f"  test ({r['superclass']} only): {Accuracy.from_json(r['test'])}")
    return "\n".join(lines)
