"""`pss lut build` and `pss lut check`: latency lookup tables for a model's structure space (PSS-Net Sec. 4.2, Fig. 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig, load_config
from ..errors import PssError
from ..io.files import atomic_write_bytes, atomic_write_json
from ..io.lut import load_lut, write_lut
from ..io.run import RunDir
from ..latency.build import build_lut_from_config
from ..latency.check import LutCheck, check_html, check_lut
from ..problem.models import build_spec
from ..problem.space import StructureSpace
from .progress import Progress

#: classes and channels of the built-in datasets, for building a LUT without loading data
DATASET_SHAPES = {"cifar10": (10, 3), "cifar100": (100, 3), "fashion-mnist": (10, 1), "npz": (10, 3), "synthetic": (10, 3)}


def lut_source(source: str, overrides: dict[str, Any]) -> tuple[TrainConfig, int, int]:
    """(config, classes, channels) of a preset, a config file or a run directory, with ``overrides`` applied."""
    run = RunDir(source)
    if run.is_run():
        run_json = run.read_run()
        cfg = run.read_config(run_json).update(overrides, "--set")
        return cfg, int(run_json["dataset"]["num_classes"]), int(run_json["dataset"]["in_channels"])
    cfg = load_config(source, overrides)
    if cfg.dataset not in DATASET_SHAPES:
        raise PssError(f"cannot tell the classes of dataset {cfg.dataset!r} without loading it; build the LUT from a run directory instead")
    return (cfg, *DATASET_SHAPES[cfg.dataset])


def build_lut_file(source: str, out: str | Path, overrides: dict[str, Any] | None = None, device: str = "cpu",
                   batch_size: int = 1, progress: bool = True, **knobs: Any) -> Path:
    """Time every block variant of ``source``'s structure space and write the LUT to ``out``."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise PssError(f"--out {out} is a directory; give a file name such as {out / 'lut.json'}")
    cfg, classes, channels = lut_source(source, overrides or {})
    with Progress(0, "timing blocks", unit="variant", bar=progress) as bar:
        table = build_lut_from_config(cfg, classes, channels, device=device, batch_size=batch_size, progress=bar.update, **knobs)
    return write_lut(out, table)


def check_lut_file(lut: str | Path, n: int = 200, seed: int = 0, progress: bool = True,
                   json_out: str | Path | None = None, html_out: str | Path | None = None) -> LutCheck:
    """Time ``n`` random structures of the LUT's own space end to end and compare with its predictions (Fig. 3)."""
    table = load_lut(lut)
    data = table.data
    spec = build_spec(**{k: v for k, v in data["model"].items() if k != "family"})
    sp = data["space"]
    space = StructureSpace.for_spec(spec, sp["resolutions"], lower_bound=sp["lower_bound"], divisor=sp["divisor"])
    with Progress(0, "timing subnets", bar=progress) as bar:
        result = check_lut(table, spec, space, n=n, seed=seed, progress=bar.update)
    if json_out:
        atomic_write_json(Path(json_out).expanduser(), result.to_json())
    if html_out:
        atomic_write_bytes(Path(html_out).expanduser(), check_html(result).encode())
    return result
