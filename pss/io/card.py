"""An exported subnet's directory: ``model.pt2``, ``model.onnx``, ``state_dict.pt`` and ``card.json`` (what the
model is, and the input it expects). The export workflow writes the models; this module owns the names and the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import CARD_DOC, SCHEMA_VERSION, atomic_write_json, read_document
from ..evaluate.selection import FrontPoint, dominated_by
from ..problem.inputs import MAX_PIXEL_VALUE, ORDER, interpolate_arguments
from .run import RunDir, candidate_validation, front_points, reference_name

CARD_FILE = "card.json"
PROGRAM_FILE = "model.pt2"
STATE_FILE = "state_dict.pt"
ONNX_FILE = "model.onnx"
ONNX_OPSET = 18
ONNX_INPUT, ONNX_OUTPUT = "images", "logits"
PARTIAL_PROGRAM_FILE = f".partial.{PROGRAM_FILE}"
"""What versions before 0.1.0's atomic export could leave after a crash; an export removes it."""
EXPORT_FILES = (CARD_FILE, PROGRAM_FILE, STATE_FILE, ONNX_FILE, PARTIAL_PROGRAM_FILE)


def card_document(run: RunDir, run_json: dict, front: dict, pool: dict | None, candidate: dict,
                  selection: dict[str, Any] | None = None, superclass: dict[str, Any] | None = None,
                  points: Sequence[FrontPoint] | None = None) -> dict[str, Any]:
    """card.json (kind ``pss-subnet-card``) of a calibrated subnet of ``run``'s front.

    ``pool`` is None for the min and max reference subnets (and a structure the front lacks). ``accuracy``
    is the validation accuracy that chose the subnet; ``test`` (None without a test split) is the figure to
    report. ``selection`` says how it was chosen (``rule`` ceiling | nearest_pool | key, ``budget``,
    ``kind``); ``dominated_by`` names a subnet among ``points`` (default: the front's) that costs no more and
    is more accurate, when there is one.

    ``superclass`` (an export restricted to one superclass's classes) becomes the card's ``superclass``
    object, and ``class_names`` are then the kept classes' names, in output order; ``candidate`` then holds
    the restricted model's costs and its accuracies on that superclass's images.
    """
    ds = run_json["dataset"]
    s = candidate["structure"]
    kind = (selection or {}).get("kind") or front["constraint"]
    points = front_points(front) if points is None else points
    better = dominated_by(FrontPoint(candidate["key"], float(candidate["accuracy"]), candidate["costs"]), points, kind)
    validation = candidate_validation(candidate, front)
    card = {
        "schema_version": SCHEMA_VERSION,
        "kind": CARD_DOC,
        "pss_version": __version__,
        "exported": utc_timestamp(),
        "structure": s,
        "key": candidate["key"],
        "costs": candidate["costs"],
        "macs": candidate["costs"].get("macs"),
        "params": candidate["costs"].get("params"),
        "accuracy": candidate["accuracy"],
        "validation": None if validation is None else validation.to_json(),
        "test": candidate.get("test"),
        "test_split": front.get("test_split", "none"),
        "constraint": front["constraint"],
        "budget": None if pool is None else pool["budget"],
        "selection": selection or {"rule": "key", "budget": None, "kind": kind},
        "dominated_by": None if better is None else {"key": better.key, "accuracy": better.accuracy, "costs": better.costs},
        "source": {"run": str(run.path.resolve()), "epoch": front["epoch"],
                   "pool_index": None if pool is None else pool["index"], "reference": reference_name(front, candidate["key"])},
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
            **pipeline_fields(ds.get("native_resolution")),
            "resize": _resize_rule(ds.get("native_resolution"), s["resolution"]),
        },
        "class_names": ds["class_names"],
        "files": {"program": PROGRAM_FILE, "state_dict": STATE_FILE, "onnx": ONNX_FILE},
        "onnx": {"opset": ONNX_OPSET, "input": ONNX_INPUT, "output": ONNX_OUTPUT, "dynamic_batch": True},
        "dataset": ds.get("name"),
    }
    if superclass is not None:
        card["superclass"] = superclass
        card["class_names"] = list(superclass["class_names"])
    return card


PIPELINE_KEYS = ("max_pixel_value", "native_resolution", "order", "interpolate")
"""The card's ``input`` fields that hold the input pipeline as data (:func:`pipeline_fields`)."""


def pipeline_fields(native: int | None) -> dict[str, Any]:
    """The input pipeline of :func:`pss.inputs.subnet_input` as data a deployer applies without pss.

    With ``input``'s ``mean``, ``std`` and ``resolution``: ``x = (pixels / max_pixel_value - mean) / std`` per
    channel on the ``native_resolution`` images, then, unless they already have ``resolution``,
    ``torch.nn.functional.interpolate(x, size=(resolution, resolution), **interpolate)``; ``order`` says so.
    """
    return {
        "max_pixel_value": MAX_PIXEL_VALUE,
        "native_resolution": None if native is None else int(native),
        "order": list(ORDER),
        "interpolate": interpolate_arguments(),
    }


def input_pipeline(card: dict[str, Any]) -> dict[str, Any]:
    """The input pipeline of any card, old or new: its ``input`` with every :data:`PIPELINE_KEYS` field.

    Cards written before these fields existed were made by code that applied the same rule (normalise, then
    bilinear, align_corners=False, no antialias), so they get its values; their native resolution is not
    recorded (None: the images are taken at the resolution they come in).
    """
    inp = dict(card["input"])
    for key, value in pipeline_fields(None).items():
        inp.setdefault(key, value)
    return inp


def _resize_rule(native: int | None, resolution: int) -> str:
    """How the dataset's images reach the subnet's input size, as the supernet saw them in training and testing."""
    if native is None or int(native) == int(resolution):
        return "none: the dataset's images are already this size"
    how = interpolate_arguments()
    return (f"normalise the {native}x{native} images first, then resize to {resolution}x{resolution} with {how['mode']} "
            f"interpolation, align_corners={how['align_corners']}, {'with' if how['antialias'] else 'no'} antialiasing "
            "(torch.nn.functional.interpolate)")


def check_export_dir(out: Path) -> Path:
    """``out`` as a directory an export may write: new, empty, or holding only an earlier export."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise PssError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(p.name not in EXPORT_FILES for p in out.iterdir()):
        raise PssError(f"--out {out} holds other files; export into an empty or new directory")
    return out


def write_card(out: Path, card: dict[str, Any]) -> None:
    atomic_write_json(Path(out) / CARD_FILE, card)


def read_card(directory: str | Path) -> dict[str, Any]:
    return read_document(Path(directory).expanduser() / CARD_FILE, "subnet card")
