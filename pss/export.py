"""Export a calibrated subnet as a standalone dense PyTorch model.

Three files per export:

* ``model.pt2`` -- a ``torch.export`` program with a dynamic batch dimension;
  plain PyTorch runs it with ``torch.export.load(path).module()(x)`` without
  this package;
* ``state_dict.pt`` -- physically sliced weights and calibrated BN statistics,
  loadable with ``torch.load(..., weights_only=True)``; ``pss.load_subnet(dir)``
  rebuilds the module from it and the card;
* ``card.json`` -- what the model is and the input it expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import PssError
from .pools import COST_UNITS, Budget, format_quantity, parse_quantity
from .runs import utc_timestamp, SCHEMA_VERSION, RunDir, atomic_torch_save, atomic_write_json, load_tensors, open_run, read_json
from .space import Structure
from .supernet import DenseNet, extract_subnet, resize_batch

CARD_FILE = "card.json"
PROGRAM_FILE = "model.pt2"
STATE_FILE = "state_dict.pt"


def front_kinds(front: dict[str, Any]) -> list[str]:
    """The budget kinds of a front's pools, in order (one kind unless trained with extra_constraints)."""
    return list(dict.fromkeys(p["budget"]["kind"] for p in front["pools"])) or [front.get("constraint", "macs")]


def pool_for_budget(front: dict[str, Any], value: float, kind: str | None = None) -> dict[str, Any]:
    """The calibrated pool of kind ``kind`` whose constraint theta is nearest ``value``.

    ``kind`` defaults to the front's constraint (the run's primary kind); a
    multi-constraint run (PSS-Net_M) also has pools of its extra kinds.
    A budget outside [theta_1 - delta, theta_T + delta] of that kind is an
    error that states the range.
    """
    kind = kind or front.get("constraint", "macs")
    kinds = front_kinds(front)
    if kind not in kinds:
        raise PssError(f"this run has no {kind} pools; its budgets are in {', '.join(kinds)} (choose one with --constraint)")
    pools = [p for p in front["pools"] if p["best"] is not None and p["budget"]["kind"] == kind]
    if not pools:
        raise PssError(f"the calibrated front has no {kind} pools with subnets; train longer or recalibrate")
    budgets = [Budget.from_json(p["budget"]) for p in pools]
    lo = min(b.value - b.tolerance for b in budgets)
    hi = max(b.value + b.tolerance for b in budgets)
    if not lo <= value <= hi:
        unit = COST_UNITS.get(kind, kind)
        raise PssError(
            f"budget {format_quantity(value)} is outside this run's range {format_quantity(lo)}..{format_quantity(hi)} {unit}; "
            f"pick a value in that range (`pss info RUN` lists the pools)"
        )
    return min(pools, key=lambda p: abs(Budget.from_json(p["budget"]).value - value))


def build_card(run: RunDir, run_json: dict, front: dict, pool: dict, candidate: dict) -> dict[str, Any]:
    ds = run_json["dataset"]
    s = candidate["structure"]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "pss-subnet-card",
        "pss_version": __version__,
        "exported": utc_timestamp(),
        "structure": s,
        "key": candidate["key"],
        "costs": candidate["costs"],
        "macs": candidate["costs"].get("macs"),
        "params": candidate["costs"].get("params"),
        "accuracy": candidate["accuracy"],
        "constraint": front["constraint"],
        "budget": pool["budget"],
        "source": {"run": str(run.path.resolve()), "epoch": front["epoch"], "pool_index": pool["index"]},
        "calibration_images": front["calibration_images"],
        "model": run_json["model"],
        "input": {
            "resolution": s["resolution"],
            "shape": ["batch", ds["in_channels"], s["resolution"], s["resolution"]],
            "layout": "NCHW",
            "channel_order": "RGB" if ds["in_channels"] == 3 else "grayscale",
            "scale": "pixel values / 255, then (x - mean) / std",
            "mean": ds["mean"],
            "std": ds["std"],
        },
        "class_names": ds["class_names"],
        "files": {"program": PROGRAM_FILE, "state_dict": STATE_FILE},
        "dataset": ds.get("name"),
    }


def export_subnet(run_dir, budget: str | float, out_dir, check: bool = True, kind: str | None = None) -> dict[str, Any]:
    """`pss export`: write the calibrated subnet nearest ``budget`` to ``out_dir``; returns its card.

    ``kind`` picks the pools of one cost kind (``--constraint``); default: the
    run's primary constraint.
    """
    run = open_run(run_dir)
    value = parse_quantity(budget) if isinstance(budget, str) else float(budget)
    front = run.read_front()
    pool = pool_for_budget(front, value, kind)
    return export_candidate(run.path, pool["candidates"][pool["best"]]["key"], out_dir, check=check, front=front)


def find_candidate(front: dict[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pool, candidate) of the calibrated subnet with structure ``key`` in a front."""
    for pool in front["pools"]:
        for candidate in pool["candidates"]:
            if candidate["key"] == key:
                return pool, candidate
    raise PssError(f"subnet {key} is not in the calibrated front; pick one listed by `pss info RUN` or rerun `pss calibrate`")


def export_candidate(run_dir, key: str, out_dir, check: bool = True, front: dict[str, Any] | None = None, loaded=None) -> dict[str, Any]:
    """Export the calibrated candidate ``key`` of a run's front to ``out_dir``; returns its card.

    ``loaded`` is an optional ``(context, supernet, checkpoint_epoch)`` from
    :func:`pss.context.load_trained_supernet`, so a long-lived caller (the
    dashboard) loads the checkpoint once. The supernet is only read, never
    modified: slices are copies and the self-check runs on a deep copy.
    """
    from .context import load_trained_supernet

    run = open_run(run_dir)
    front = run.read_front() if front is None else front
    pool, candidate = find_candidate(front, key)
    structure = Structure.from_json(candidate["structure"])
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise PssError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(p.name not in (CARD_FILE, PROGRAM_FILE, STATE_FILE) for p in out.iterdir()):
        raise PssError(f"--out {out} holds other files; export into an empty or new directory")
    run_json = run.read_run()
    if loaded is None:
        _, ctx, model, state = load_trained_supernet(run)
        epoch = int(state["epoch"])
    else:
        ctx, model, epoch = loaded
    if epoch != int(front["epoch"]):
        raise PssError(
            f"the calibrated front is from epoch {front['epoch']} but the checkpoint is from epoch {epoch}; "
            f"rerun `pss calibrate {run.path}`"
        )
    all_stats = load_tensors(run.bn_stats_file, "calibrated BN statistics")
    if structure.key not in all_stats:
        raise PssError(f"calibrated BN statistics for {structure.key} are missing; rerun `pss calibrate {run.path}`")
    stats = all_stats[structure.key]
    dense = extract_subnet(model, structure, stats)
    card = build_card(run, run_json, front, pool, candidate)
    if check:
        card["check"] = {"max_abs_diff_vs_supernet": slice_difference(model, dense, structure, stats, ctx.spec.in_channels)}
    example = torch.randn(2, ctx.spec.in_channels, structure.resolution, structure.resolution)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(dense, (example,), dynamic_shapes=({0: batch},))
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".partial.{PROGRAM_FILE}"  # torch.export wants the .pt2 suffix
    torch.export.save(program, str(tmp))
    tmp.replace(out / PROGRAM_FILE)
    atomic_torch_save(dense.state_dict(), out / STATE_FILE)
    atomic_write_json(out / CARD_FILE, card)
    return card


@torch.no_grad()
def slice_difference(supernet, dense, structure: Structure, bn_stats, in_channels: int, batch: int = 8) -> float:
    """max |dense(x_r) - supernet(x, phi)| with the supernet using the same calibrated statistics."""
    import copy

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


def load_subnet(directory) -> DenseNet:
    """Rebuild an exported subnet from ``card.json`` and ``state_dict.pt`` (weights_only)."""
    from .models import build_spec

    d = Path(directory).expanduser()
    card = read_json(d / CARD_FILE, "subnet card")
    spec = build_spec(**card["model"])
    model = DenseNet(spec, Structure.from_json(card["structure"]))
    state = load_tensors(d / STATE_FILE, "subnet weights")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PssError(f"weights in {d / STATE_FILE} do not match {CARD_FILE}: {str(exc).splitlines()[0][:160]}") from None
    return model.eval()
