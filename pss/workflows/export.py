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
from pathlib import Path
from typing import Any

import torch

from ..errors import PssError, one_line
from ..io.card import ONNX_FILE, ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUT, PARTIAL_PROGRAM_FILE, PROGRAM_FILE, STATE_FILE, card_document, check_export_dir, read_card, write_card
from ..io.checkpoint import read_bn_stats
from ..io.files import atomic_write_bytes, ensure_writable
from ..io.run import RunDir, find_candidate, front_kinds, open_run, subnet_for_budget
from ..io.tensors import load_tensors, save_tensors
from ..nn.supernet import DenseNet, Supernet, extract_subnet, resize_batch
from ..problem.budgets import Budget
from ..problem.models import build_spec
from ..problem.space import Structure
from ..units import COST_UNITS, format_quantity, parse_quantity
from .loaded import TrainedRun, load_trained


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
                  nearest_pool: bool = False) -> dict[str, Any]:
    """`pss export`: write the calibrated subnet chosen for ``budget`` to ``out_dir``; returns its card.

    The most accurate calibrated subnet whose cost is at most ``budget`` (:func:`choose_for_budget`);
    ``kind`` picks the cost kind (``--constraint``; default: the run's primary constraint).
    """
    run = open_run(run_dir)
    value = parse_quantity(budget) if isinstance(budget, str) else float(budget)
    front = run.read_front()
    key, selection = choose_for_budget(front, value, kind, nearest_pool)
    return export_candidate(run, key, out_dir, check=check, front=front, selection=selection)


def export_candidate(
    run_dir: str | Path | RunDir, key: str, out_dir, check: bool = True, front: dict[str, Any] | None = None,
    trained: TrainedRun | None = None, selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the calibrated candidate ``key`` of a run's front to ``out_dir``; returns its card.

    ``trained`` is the run already loaded (:func:`~pss.workflows.loaded.load_trained`),
    so a long-lived caller (the dashboard) loads the checkpoint once. The
    supernet is only read, never modified: slices are copies and the
    self-check runs on a deep copy.
    """
    run = trained.run if trained is not None else run_dir if isinstance(run_dir, RunDir) else open_run(run_dir)
    front = run.read_front() if front is None else front
    pool, candidate = find_candidate(front, key)
    structure = Structure.from_json(candidate["structure"])
    out = ensure_writable(check_export_dir(Path(out_dir)))
    trained = load_trained(run) if trained is None else trained
    if trained.epoch != int(front["epoch"]):
        raise PssError(
            f"the calibrated front is from epoch {front['epoch']} but the checkpoint is from epoch {trained.epoch}; "
            f"rerun `pss calibrate {run.path}`"
        )
    all_stats = read_bn_stats(run)
    if structure.key not in all_stats:
        raise PssError(f"calibrated BN statistics for {structure.key} are missing; rerun `pss calibrate {run.path}`")
    stats = all_stats[structure.key]
    model, in_channels = trained.supernet, trained.problem.spec.in_channels
    dense = extract_subnet(model, structure, stats)
    card = card_document(run, trained.run_json, front, pool, candidate, selection)
    if check:
        card["check"] = {"max_abs_diff_vs_supernet": slice_difference(model, dense, structure, stats, in_channels)}
    example = torch.randn(2, in_channels, structure.resolution, structure.resolution)
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
    return card


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
def slice_difference(supernet: Supernet, dense: DenseNet, structure: Structure, bn_stats, in_channels: int, batch: int = 8) -> float:
    """max |dense(x_r) - supernet(x, phi)| with the supernet using the same calibrated statistics."""
    ref = copy.deepcopy(supernet).eval()
    state = ref.state_dict()
    for key, value in bn_stats.items():
        state[key][: value.shape[0]] = value
    ref.load_state_dict(state)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_channels, max(structure.resolution, 32), max(structure.resolution, 32), generator=gen)
    a = ref(x, structure)
    b = dense.eval()(resize_batch(x, structure.resolution))
    return float((a - b).abs().max())


def load_subnet(directory: str | Path) -> DenseNet:
    """Rebuild an exported subnet from ``card.json`` and ``state_dict.pt`` (weights_only)."""
    d = Path(directory).expanduser()
    card = read_card(d)
    spec = build_spec(**card["model"])
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
