"""`pss export`: a calibrated subnet as a standalone dense PyTorch model with physically smaller weights.

Four files per export (:mod:`pss.io.card` owns their names):

* ``model.pt2`` -- a ``torch.export`` program with a dynamic batch dimension;
  plain PyTorch runs it with ``torch.export.load(path).module()(x)`` without
  this package;
* ``model.onnx`` -- the same network for ONNX runtimes (opset 18, input ``images``, output ``logits``,
  dynamic batch);
* ``state_dict.pt`` -- physically sliced weights and calibrated BN statistics,
  loadable with ``torch.load(..., weights_only=True)``; :func:`load_subnet`
  rebuilds the module from it and the card;
* ``card.json`` -- what the model is and the input it expects.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..data import DataBundle, load_data
from ..errors import PssError, one_line
from ..evaluate.selection import FrontPoint, best_within
from ..evaluate.statistics import Accuracy
from ..inputs import resize
from ..io.card import ONNX_FILE, ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUT, PARTIAL_PROGRAM_FILE, PROGRAM_FILE, STATE_FILE, card_document, check_export_dir, read_card, write_card
from ..io.checkpoint import read_bn_stats
from ..io.files import atomic_write_bytes, ensure_writable
from ..io.generator import has_generator
from ..io.run import RunDir, find_candidate, front_kinds, front_subnets, open_run, subnet_for_budget
from ..io.tensors import load_tensors, save_tensors
from ..nn.supernet import DenseNet, Supernet, extract_subnet, spec_for_classes
from ..problem.budgets import Budget
from ..problem.costs import CostModel
from ..problem.models import build_spec
from ..problem.problem import Problem
from ..problem.space import Structure
from ..units import COST_UNITS, format_cost, format_quantity, parse_quantity
from .evaluation import SubnetEvaluator
from .generate import generated_structure, load_generator
from .loaded import TrainedRun, load_trained
from .superclass import SuperclassTarget, class_batches, superclass_accuracies, superclass_target


def pool_for_budget(front: dict[str, Any], value: float, kind: str | None = None) -> dict[str, Any]:
    """The calibrated pool of kind ``kind`` whose constraint theta is nearest ``value`` (``--nearest-pool``).

    The paper's view (one subnet per pool); its best may cost more than ``value``. ``kind`` defaults to
    the front's constraint (the run's primary kind); a multi-constraint run (PSS-Net_M) also has pools of
    its extra kinds. A budget outside [theta_1 - delta, theta_T + delta] of that kind is an error that
    states the range.
    """
    kind = kind or front.get("constraint", "macs")
    kinds = front_kinds(front)
    if kind not in kinds:
        raise PssError(f"this run has no {kind} pools; its budgets are in {', '.join(kinds)} (choose one with --constraint)")
    pools = [p for p in front["pools"] if p["best"] is not None and p["budget"]["kind"] == kind]
    if not pools:
        raise PssError(f"the calibrated front has no {kind} pools with subnets; train longer or recalibrate")
    budgets = [Budget.from_json(p["budget"]) for p in pools]
    lo = min(b.low for b in budgets)
    hi = max(b.high for b in budgets)
    if not lo <= value <= hi:
        unit = COST_UNITS.get(kind, kind)
        raise PssError(
            f"budget {format_quantity(value)} is outside this run's range {format_quantity(lo)}..{format_quantity(hi)} {unit}; "
            f"pick a value in that range (`pss info RUN` lists the pools)"
        )
    return min(pools, key=lambda p: abs(Budget.from_json(p["budget"]).value - value))


def choose_for_budget(front: dict[str, Any], budget: float, kind: str | None = None, nearest_pool: bool = False) -> tuple[str, dict[str, Any]]:
    """(key, selection) of the subnet `pss export --budget` writes; ``selection`` goes into the card.

    By default the budget is a ceiling (:func:`~pss.io.run.subnet_for_budget`, what the dashboard and
    `pss compare` use). ``nearest_pool`` takes the best of the pool whose theta is nearest instead.
    """
    kind = kind or front.get("constraint", "macs")
    if nearest_pool:
        pool = pool_for_budget(front, budget, kind)
        key, rule = pool["candidates"][pool["best"]]["key"], "nearest_pool"
    else:
        key, rule = subnet_for_budget(front, budget, kind)[1]["key"], "ceiling"
    return key, {"rule": rule, "budget": float(budget), "kind": kind}


def export_subnet(run_dir, budget: str | float, out_dir, check: bool = True, kind: str | None = None,
                  nearest_pool: bool = False, superclass: str | None = None,
                  superclasses: str | Path | None = None) -> dict[str, Any]:
    """`pss export`: write the calibrated subnet chosen for ``budget`` to ``out_dir``; returns its card.

    The most accurate calibrated subnet whose cost is at most ``budget`` (:func:`choose_for_budget`);
    ``kind`` picks the cost kind (``--constraint``; default: the run's primary constraint). With
    ``superclass`` (`--superclass NAME`) the model keeps only that superclass's classes
    (:func:`export_superclass`); ``superclasses`` (`--superclasses builtin|FILE`) gives the map when the run's
    config has none (or overrides it). A run with an EAS architecture generator (`pss generate RUN --train`)
    exports the generated architecture for (superclass, budget) (the card's ``selection.rule`` is ``generator``);
    ``nearest_pool`` chooses from the calibrated front instead.
    """
    run = open_run(run_dir)
    value = parse_quantity(budget) if isinstance(budget, str) else float(budget)
    front = run.read_front()
    if superclass is not None:
        if has_generator(run.path) and not nearest_pool:
            # EAS: the generator's architecture for (superclass, budget), with its superclass-calibrated statistics
            loaded = load_generator(run.path, "cpu")
            source = str(loaded.doc["superclasses"].get("source") or "")
            if superclasses is not None and str(superclasses) != source:
                raise PssError(f"the run's generator was trained with the superclass map {source!r}, not {superclasses}; "
                               "drop --superclasses, or choose from the calibrated front with --nearest-pool")
            if kind is not None and kind != loaded.kind:
                raise PssError(f"the run's generator was trained for {loaded.kind} budgets, not {kind}; drop --constraint "
                               f"or export from the calibrated front with --nearest-pool")
            structure = generated_structure(loaded, superclass, value)
            # BN statistics are re-estimated as `pss calibrate` does, exactly those the scenario was chosen with
            return export_superclass(run, superclass, out_dir, structure=structure, check=check, front=front,
                                     superclasses=source or None, trained=loaded.trained, chosen_by="generator",
                                     selection={"rule": "generator", "budget": value, "kind": loaded.kind})
        return export_superclass(run, superclass, out_dir, budget=value, kind=kind, nearest_pool=nearest_pool,
                                 superclasses=superclasses, check=check, front=front)
    _no_map_without_superclass(superclasses)
    key, selection = choose_for_budget(front, value, kind, nearest_pool)
    return export_candidate(run, key, out_dir, check=check, front=front, selection=selection)


def export_candidate(
    run_dir: str | Path | RunDir, key: str, out_dir, check: bool = True, front: dict[str, Any] | None = None,
    trained: TrainedRun | None = None, selection: dict[str, Any] | None = None, superclass: str | None = None,
    superclasses: str | Path | None = None,
) -> dict[str, Any]:
    """Export the calibrated candidate ``key`` of a run's front to ``out_dir``; returns its card.

    ``trained`` is the run already loaded (:func:`~pss.workflows.loaded.load_trained`),
    so a long-lived caller (the dashboard) loads the checkpoint once. The
    supernet is only read, never modified: slices are copies and the
    self-check runs on a deep copy. ``superclass`` keeps only that superclass's
    classes (:func:`export_superclass`).
    """
    run = trained.run if trained is not None else run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    front = run.read_front() if front is None else front
    if superclass is not None:
        find_candidate(front, key)  # `--key` names a calibrated subnet (export_structure takes any)
        return export_superclass(run, superclass, out_dir, structure=key, superclasses=superclasses, check=check,
                                 front=front, trained=trained, selection=selection)
    _no_map_without_superclass(superclasses)
    pool, candidate = find_candidate(front, key)
    structure = Structure.from_json(candidate["structure"])
    out = ensure_writable(check_export_dir(Path(out_dir)))
    trained = load_trained(run) if trained is None else trained
    _check_epoch(trained, front)
    all_stats = read_bn_stats(run)
    if structure.key not in all_stats:
        raise PssError(f"calibrated BN statistics for {structure.key} are missing; rerun `pss calibrate {run.path}`")
    stats = all_stats[structure.key]
    model, in_channels = trained.supernet, trained.problem.spec.in_channels
    dense = extract_subnet(model, structure, stats)
    card = card_document(run, trained.run_json, front, pool, candidate, selection)
    if check:
        card["check"] = {"max_abs_diff_vs_supernet": slice_difference(model, dense, structure, stats, in_channels)}
    _write_export(out, dense, in_channels, structure.resolution, card)
    return card


def _no_map_without_superclass(superclasses) -> None:
    if superclasses is not None:
        raise PssError("--superclasses gives the map that --superclass NAME picks from; add --superclass NAME")


def _check_epoch(trained: TrainedRun, front: dict[str, Any]) -> None:
    if trained.epoch != int(front["epoch"]):
        raise PssError(
            f"the calibrated front is from epoch {front['epoch']} but the checkpoint is from epoch {trained.epoch}; "
            f"rerun `pss calibrate {trained.path}`"
        )


def _write_export(out: Path, dense: DenseNet, in_channels: int, resolution: int, card: dict[str, Any]) -> None:
    """model.pt2, model.onnx, state_dict.pt, then card.json (last: an export with a card is complete)."""
    example = torch.randn(2, in_channels, resolution, resolution)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(dense, (example,), dynamic_shapes=({0: batch},))
    # Serialised in memory, then written like every other file (temp file + rename): a full disk is a Python
    # OSError and leaves nothing, where torch's own file writer can abort the process half-way.
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    out.mkdir(parents=True, exist_ok=True)
    (out / PARTIAL_PROGRAM_FILE).unlink(missing_ok=True)  # what an export of an older version may have left
    atomic_write_bytes(out / PROGRAM_FILE, buffer.getvalue())
    atomic_write_bytes(out / ONNX_FILE, onnx_bytes(program, example))
    save_tensors(dense.state_dict(), out / STATE_FILE)
    write_card(out, card)


# ---------------------------------------------------------------- superclass exports (EAS)

SUPERCLASS_RULES = ("superclass_validation", "validation", "given", "generator")
"""How a superclass export's structure was chosen (the card's ``superclass.chosen_by``): by validation accuracy on
the superclass's images, by all-class validation accuracy (the plain export's choice, when the superclass could
not be measured), given (``--key`` / ``structure=``), or by the run's EAS architecture generator (:mod:`.generate`)."""


@dataclass
class SuperclassChoice:
    """What :func:`choose_structure_for_superclass` chose, and why (the card records it)."""

    structure: Structure
    selection: dict[str, Any]
    """The card's ``selection``: rule ceiling | nearest_pool | key, budget, kind (as for a plain export)."""
    chosen_by: str
    """One of :data:`SUPERCLASS_RULES`."""
    measured: dict[str, Accuracy] = field(default_factory=dict)
    """Superclass validation accuracy of every candidate measured, by structure key (empty: none measured)."""


#: Restricted models measured together on one pass over the validation images (bounds the memory they take).
MEASURE_GROUP = 16

#: (structures) -> {key: superclass validation accuracy}; keys missing where nothing could be measured
Measure = Callable[[Sequence[Structure]], dict[str, Accuracy]]


def choose_structure_for_superclass(
    front: dict[str, Any], target: SuperclassTarget, budget: float, kind: str | None = None, nearest_pool: bool = False,
    costs_of: Callable[[Structure], dict[str, float]] | None = None, measure: Measure | None = None,
) -> SuperclassChoice:
    """The structure `pss export --superclass NAME --budget B` exports (its BN statistics come from the front).

    The candidates are those the plain export chooses among: every calibrated subnet of the front (pools'
    candidates, min and max) whose cost ``costs_of(s)`` (the restricted model's: a smaller classifier; default
    the front's costs) is at most ``budget`` -- or, with ``nearest_pool``, the candidates of the pool whose theta
    is nearest ``budget``. ``measure`` gives their validation accuracy on ``target``'s images; the most accurate
    wins (ties: the cheaper, then the better all-class validation accuracy). Without measurements (no data, no
    validation image of those classes) the plain export's choice: the best all-class validation accuracy.

    This is the hook for the EAS architecture generator (Sec. 3 of the paper): a structure generated for
    (``target``, ``budget``) can be returned here instead; :func:`export_superclass` calibrates a structure
    the front lacks before exporting it.
    """
    kind = kind or front.get("constraint", "macs")
    subnets = {c["key"]: c for _, c in front_subnets(front)}
    structures = {k: Structure.from_json(c["structure"]) for k, c in subnets.items()}
    costs = {k: dict(costs_of(structures[k]) if costs_of is not None else c["costs"]) for k, c in subnets.items()}
    if nearest_pool:
        pool = pool_for_budget(front, budget, kind)
        keys = list(dict.fromkeys(c["key"] for c in pool["candidates"]))
        rule = "nearest_pool"
    else:
        keys = [k for k in subnets if costs[k].get(kind) is not None and costs[k][kind] <= budget]
        rule = "ceiling"
        if not keys:
            priced = [k for k in subnets if costs[k].get(kind) is not None]
            if not priced:
                raise PssError(f"the calibrated front has no subnets with a {kind} cost; choose another --constraint")
            cheapest = min(priced, key=lambda k: costs[k][kind])
            c = costs[cheapest][kind]
            raise PssError(f"no calibrated subnet restricted to {target.name} costs at most {format_cost(budget, kind)}; "
                           f"the cheapest is {cheapest} at {format_cost(c, kind)}: raise the budget to at least {format_quantity(c)}")
    selection = {"rule": rule, "budget": float(budget), "kind": kind}
    measured = measure([structures[k] for k in keys]) if measure is not None else {}
    measured = {k: a for k, a in measured.items() if k in keys}
    if measured:
        best = max(measured, key=lambda k: (measured[k].value, -costs[k].get(kind, 0.0), float(subnets[k]["accuracy"])))
        return SuperclassChoice(structures[best], selection, "superclass_validation", measured)
    points = [FrontPoint(k, float(subnets[k]["accuracy"]), costs[k]) for k in keys]
    best_point = best_within(points, float("inf"), kind) if rule == "nearest_pool" else best_within(points, budget, kind)
    return SuperclassChoice(structures[best_point.key], selection, "validation", {})


def restricted_costs(problem: Problem, classes: Sequence[int]) -> Callable[[Structure], dict[str, float]]:
    """C(.) of subnets whose classifier keeps only ``classes`` (macs and params exact; a latency stays the LUT's
    prediction, whose head term was timed with every class)."""
    return CostModel(spec_for_classes(problem.spec, classes), problem.space, problem.cost_model.latency).costs


def export_superclass(
    run_dir: str | Path | RunDir, superclass: str, out_dir, budget: str | float | None = None, *,
    kind: str | None = None, nearest_pool: bool = False, structure: Structure | str | None = None,
    superclasses: str | Path | None = None, check: bool = True, front: dict[str, Any] | None = None,
    trained: TrainedRun | None = None, selection: dict[str, Any] | None = None,
    bn_stats: Mapping[str, torch.Tensor] | None = None, chosen_by: str = "given",
) -> dict[str, Any]:
    """`pss export --superclass NAME`: a model whose classifier keeps only that superclass's classes; its card.

    Exactly one of ``budget`` (chosen by :func:`choose_structure_for_superclass`) and ``structure`` (a
    ``Structure`` or key; any structure of the run's space: one the calibrated front lacks is calibrated now,
    on the run's training images as `pss calibrate` would) says which subnet. With ``structure``,
    ``bn_stats`` (keyed as :func:`~pss.io.checkpoint.read_bn_stats` gives them, e.g. calibrated on the
    superclass's own images) replace the front's or that calibration, the all-class figures are then measured
    with them, and ``chosen_by`` (one of :data:`SUPERCLASS_RULES`) is what the card says chose it. The model's output j is the
    supernet's logit of class ``classes[j]``; its costs are those of the smaller classifier. The card's
    ``accuracy``/``validation`` are the superclass validation accuracy that chose it (all-class when the
    superclass could not be measured), and ``test`` the test accuracy among that superclass's classes, on the
    test images of those classes: the figure to report. ``superclass`` in the card says which classes, and
    holds the all-class figures of the same subnet for comparison.
    """
    if (budget is None) == (structure is None):
        raise PssError("a superclass export needs a budget or a structure (--budget or --key), one of them")
    if structure is None and bn_stats is not None:
        raise ValueError("bn_stats go with an explicit structure")
    if chosen_by not in SUPERCLASS_RULES:
        raise ValueError(f"chosen_by must be one of {', '.join(SUPERCLASS_RULES)}, got {chosen_by!r}")
    run = trained.run if trained is not None else run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    value = None if budget is None else parse_quantity(budget) if isinstance(budget, str) else float(budget)
    front = run.read_front() if front is None else front
    out = ensure_writable(check_export_dir(Path(out_dir)))
    trained = load_trained(run) if trained is None else trained
    _check_epoch(trained, front)
    target = superclass_target(trained, superclass, superclasses)
    classes = target.classes
    kind = kind or front.get("constraint", "macs")
    costs_of = restricted_costs(trained.problem, classes)
    all_stats = read_bn_stats(run)
    data = _superclass_data(trained, target)
    model, in_channels = trained.supernet, trained.problem.spec.in_channels
    batch_size = trained.cfg.eval_batch_size

    def measure(structures: Sequence[Structure]) -> dict[str, Accuracy]:
        """Superclass validation accuracy of those of ``structures`` with calibrated statistics."""
        ready = [s for s in structures if s.key in all_stats]
        found: dict[str, Accuracy] = {}
        for start in range(0, len(ready) if data is not None else 0, MEASURE_GROUP):
            group = ready[start:start + MEASURE_GROUP]
            models = [(extract_subnet(model, s, all_stats[s.key], classes), s.resolution) for s in group]
            accs = superclass_accuracies(models, class_batches(data, "val", classes, batch_size), classes)
            if accs is None:  # no validation image of these classes
                return {}
            found.update({s.key: a for s, a in zip(group, accs)})
        return found

    if structure is None:
        choice = choose_structure_for_superclass(front, target, value, kind, nearest_pool, costs_of, measure)
    else:
        s = structure if isinstance(structure, Structure) else Structure.from_key(str(structure))
        if not trained.problem.space.contains(s):
            raise PssError(f"structure {s.key} is not in this run's structure space; `pss info {run.path}` lists its dimensions")
        choice = SuperclassChoice(s, selection or {"rule": "key", "budget": None, "kind": kind}, chosen_by, {})
    s = choice.structure
    in_front = any(c["key"] == s.key for _, c in front_subnets(front))
    pool = find_candidate(front, s.key)[0] if in_front else None
    if in_front and bn_stats is None:
        candidate = find_candidate(front, s.key)[1]
        if s.key not in all_stats:
            raise PssError(f"calibrated BN statistics for {s.key} are missing; rerun `pss calibrate {run.path}`")
    else:  # e.g. a generated structure: calibrated now as `pss calibrate` does (front's number of images), or given
        if data is None:
            raise PssError(f"structure {s.key} is not in the calibrated front (or comes with its own statistics), and "
                           "measuring it needs the run's data")
        evaluator = SubnetEvaluator(trained, data, int(front["calibration_images"]), torch.device("cpu"))
        if bn_stats is None:
            candidate = evaluator.with_test(evaluator(s)).to_json()
            all_stats[s.key] = evaluator.stats_of(s)
        else:
            all_stats[s.key] = {k: v.detach().cpu() for k, v in bn_stats.items()}
            candidate = _all_class_candidate(evaluator, s, all_stats[s.key], trained.problem.cost_model.costs(s))
    stats = all_stats[s.key]
    if s.key not in choice.measured:
        choice.measured.update(measure([s]))
    validation = choice.measured.get(s.key)
    dense = extract_subnet(model, s, stats, classes)
    test = None
    if data is not None and data.has_test:
        tests = superclass_accuracies([(dense, s.resolution)], class_batches(data, "test", classes, batch_size), classes)
        test = None if tests is None else tests[0]
    costs = costs_of(s)
    restricted = {
        "structure": s.to_json(), "key": s.key, "costs": costs,
        "accuracy": validation.value if validation is not None else float(candidate["accuracy"]),
        "validation": validation.to_json() if validation is not None else candidate.get("validation"),
        "test": None if test is None else test.to_json(),
    }
    points = None
    if choice.measured:  # dominance among the subnets measured on this superclass, at the restricted costs
        points = [FrontPoint(k, a.value, costs_of(Structure.from_key(k))) for k, a in choice.measured.items()]
    doc = target.to_json()
    doc.update({
        "chosen_by": choice.chosen_by,
        "candidates": len(choice.measured),
        "validation": None if validation is None else validation.to_json(),
        "test": None if test is None else test.to_json(),
        "all_classes": {"accuracy": float(candidate["accuracy"]), "validation": candidate.get("validation"),
                        "test": candidate.get("test"), "costs": dict(candidate["costs"])},
    })
    card = card_document(run, trained.run_json, front, pool, restricted, choice.selection, superclass=doc, points=points)
    if check:
        card["check"] = {"max_abs_diff_vs_supernet": slice_difference(model, dense, s, stats, in_channels, classes=classes)}
    _write_export(out, dense, in_channels, s.resolution, card)
    return card


def export_structure(run_dir: str | Path | RunDir, structure: Structure | str, out_dir, superclass: str | None = None,
                     superclasses: str | Path | None = None, check: bool = True, trained: TrainedRun | None = None,
                     selection: dict[str, Any] | None = None, bn_stats: Mapping[str, torch.Tensor] | None = None,
                     chosen_by: str = "given") -> dict[str, Any]:
    """Export an explicit structure (a ``Structure`` or key) of the run's space; its card.

    With ``superclass``, :func:`export_superclass` (any structure; one the front lacks is calibrated first,
    unless ``bn_stats`` are given); without, the structure must be a calibrated subnet of the front
    (:func:`export_candidate`).
    """
    key = structure.key if isinstance(structure, Structure) else str(structure)
    if superclass is None:
        if bn_stats is not None:
            raise ValueError("bn_stats go with a superclass export; a plain export takes the front's")
        return export_candidate(run_dir, key, out_dir, check=check, trained=trained, selection=selection,
                                superclasses=superclasses)
    return export_superclass(run_dir, superclass, out_dir, structure=structure, superclasses=superclasses, check=check,
                             trained=trained, selection=selection, bn_stats=bn_stats, chosen_by=chosen_by)


def _all_class_candidate(evaluator: SubnetEvaluator, s: Structure, stats: Mapping[str, torch.Tensor],
                         costs: dict[str, float]) -> dict[str, Any]:
    """A front-like candidate of ``s`` with given BN statistics: all-class validation and test accuracy, costs."""
    evaluator.calibrator.load(dict(stats))
    val = evaluator.calibrator.measure(s, evaluator.val_batches())
    test = evaluator.calibrator.measure(s, evaluator.test_batches()) if evaluator.data.has_test else None
    return {"structure": s.to_json(), "key": s.key, "accuracy": val.value, "validation": val.to_json(),
            "test": None if test is None else test.to_json(), "costs": dict(costs)}


def _superclass_data(trained: TrainedRun, target: SuperclassTarget) -> DataBundle | None:
    """The run's data, to measure accuracy on the superclass's images; None (with a note) when they cannot be read."""
    try:
        return load_data(trained.cfg, create=False)
    except PssError as exc:
        warnings.warn(f"cannot read the run's data ({one_line(exc)}), so the subnet for {target.name} is chosen by all-class "
                      "validation accuracy and the card has no superclass test accuracy", stacklevel=2)
        return None


def onnx_bytes(program: torch.export.ExportedProgram, example: torch.Tensor) -> bytes:
    """The exported program (dynamic batch) as an ONNX model, opset :data:`~pss.io.card.ONNX_OPSET`, serialised.

    Translated from the same ``torch.export`` program as ``model.pt2``, without the exporter's graph
    optimisation (it halves the export time; ONNX runtimes optimise when they load a model).
    """
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates its steps
        warnings.simplefilter("ignore")
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                                         opset_version=ONNX_OPSET, optimize=False, verbose=False)
    return onnx_program.model_proto.SerializeToString()


@torch.no_grad()
def slice_difference(supernet: Supernet, dense: DenseNet, structure: Structure, bn_stats, in_channels: int, batch: int = 8,
                     classes: Sequence[int] | None = None) -> float:
    """max |dense(x_r) - supernet(x, phi)| with the supernet using the same calibrated statistics.

    With ``classes``, against the supernet's logits of those classes (``dense`` keeps only them).
    """
    ref = copy.deepcopy(supernet).eval()
    state = ref.state_dict()
    for key, value in bn_stats.items():
        state[key][: value.shape[0]] = value
    ref.load_state_dict(state)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_channels, max(structure.resolution, 32), max(structure.resolution, 32), generator=gen)
    a = ref(x, structure)
    if classes is not None:
        a = a[:, list(classes)]
    b = dense.eval()(resize(x, structure.resolution))
    return float((a - b).abs().max())


def load_subnet(directory: str | Path) -> DenseNet:
    """Rebuild an exported subnet from ``card.json`` and ``state_dict.pt`` (weights_only)."""
    d = Path(directory).expanduser()
    card = read_card(d)
    superclass = card.get("superclass")  # a superclass export keeps only those classes' outputs
    spec = spec_for_classes(build_spec(**card["model"]), None if superclass is None else superclass["classes"])
    model = DenseNet(spec, Structure.from_json(card["structure"]))
    state = load_tensors(d / STATE_FILE, "subnet weights")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PssError(f"weights in {d / STATE_FILE} do not match {d / 'card.json'}: {one_line(exc)}") from None
    return model.eval()


def export_name(key: str) -> str:
    """A file-system friendly folder name for an export of subnet ``key``."""
    s = Structure.from_key(key)
    return f"pss-subnet-r{s.resolution}-{s.short_id}"
