"""Timing dense models and blocks on this machine: the protocol every latency number follows.

Timing protocol (LUT entries and whole-model checks alike)
    Dense modules built exactly as :class:`pss.nn.supernet.DenseNet` builds them
    (``build_blocks`` with :class:`~pss.nn.ops.ConvBNAct` and
    :class:`~pss.nn.supernet.DenseBlock`), eval mode, ``torch.no_grad``,
    channels-last weights and input when ``channels_last`` (the trainer's
    default), random input of ``batch_size`` images. ``warmup`` calls, then
    ``repeats`` timed calls (wall clock, ``time.perf_counter``;
    ``torch.cuda.synchronize`` after each on a GPU). This is done in
    ``passes`` passes over all variants (alternating order), so a burst of
    load on a shared machine spoils one pass, not the entry, and the passes'
    calls become one number by ``statistic``: ``"min"`` (default: the fastest
    call), ``"min-median"`` (the least loaded pass's median) or ``"median"``
    (the median of the per-pass medians). The default is the minimum, not the
    median, because on a machine shared with other jobs the median tracks the
    load, not the model: on the project's 2-core CPU, with two other jobs
    running, median-based tables mispredicted whole models by ~47% (table and
    check measured under different load), min-based ones by ~3% (see
    bench/lut_check.py). On a quiet machine the two differ by a
    few percent. On the CPU ``threads`` (default 1) intra-op threads are used
    and recorded. Latencies are in milliseconds throughout.
"""

from __future__ import annotations

import dataclasses
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import PssError
from ..nn.supernet import DenseNet
from ..problem.space import Structure, StructureSpace
from ..problem.spec import NetSpec
from ..sampling.marginals import generate_structure_set

ProgressFn = Callable[[int, int, str], None]
"""progress(done, total, what): called while measuring."""


@dataclass(frozen=True)
class TimingProtocol:
    """How every latency is measured (the module docstring says why): where, at which batch size,
    ``warmup`` untimed calls, ``repeats`` timed calls in each of ``passes`` passes, ``threads`` CPU threads."""

    device: str = "cpu"
    batch_size: int = 1
    warmup: int = 10
    repeats: int = 30
    passes: int = 3
    threads: int | None = 1
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise PssError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.repeats < 1 or self.warmup < 0:
            raise PssError(f"need repeats >= 1 and warmup >= 0, got repeats={self.repeats}, warmup={self.warmup}")
        if self.passes < 1:
            raise PssError(f"passes must be at least 1, got {self.passes}")

    @classmethod
    def of_lut(cls, lut: dict[str, Any]) -> "TimingProtocol":
        """The protocol a LUT document was measured with (to check it the same way)."""
        proto, dev = lut.get("protocol", {}), lut.get("device", {})
        return cls(
            device=dev.get("type", "cpu"), batch_size=int(lut["batch_size"]), warmup=int(proto.get("warmup", 10)),
            repeats=int(proto.get("repeats", 30)), passes=int(proto.get("passes", 3)), threads=dev.get("threads", 1),
            channels_last=bool(dev.get("channels_last", True)),
        )

    def with_options(self, options: dict[str, Any]) -> "TimingProtocol":
        """A copy with those of ``options`` that name protocol fields applied (and removed from ``options``)."""
        names = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: options.pop(k) for k in list(options) if k in names and options[k] is not None})

    def to_json(self) -> dict[str, int]:
        """The repetition counts as LUTs and checks record them (device and batch size are recorded apart)."""
        return {"warmup": int(self.warmup), "repeats": int(self.repeats), "passes": int(self.passes)}


class Timer:
    """Times modules by a :class:`TimingProtocol`, on its device and with its CPU threads while open."""

    def __init__(self, protocol: TimingProtocol) -> None:
        device = protocol.device
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise PssError(f"device {device!r} requested but CUDA is not available here; use device=cpu")
        if self.device.type not in ("cpu", "cuda"):
            raise PssError(f"latency tables are measured on 'cpu' or 'cuda', got {device!r}")
        self.protocol = protocol
        self.batch_size, self.warmup, self.repeats = protocol.batch_size, protocol.warmup, protocol.repeats
        self.channels_last = bool(protocol.channels_last)
        self.threads = protocol.threads
        self._saved_threads: int | None = None

    def __enter__(self) -> "Timer":
        if self.threads is not None and self.device.type == "cpu":
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(int(self.threads))
        return self

    def __exit__(self, *exc) -> None:
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def prepare(self, module: nn.Module, channels: int, size: int) -> tuple[nn.Module, torch.Tensor]:
        module = module.to(self.device).eval()
        x = torch.randn(self.batch_size, channels, size, size, device=self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return module, x

    def time(self, module: nn.Module, x: torch.Tensor) -> list[float]:
        """``repeats`` latencies of ``module(x)`` in milliseconds, after ``warmup`` calls."""
        cuda = self.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        times = []
        with torch.no_grad():
            for _ in range(self.warmup):
                module(x)
            sync()
            for _ in range(self.repeats):
                t0 = time.perf_counter()
                module(x)
                sync()
                times.append(1e3 * (time.perf_counter() - t0))
        return times

    def describe(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
        else:
            name = _cpu_name()
        return {
            "type": self.device.type,
            "name": name,
            "torch": torch.__version__,
            "threads": int(self.threads) if self.threads is not None and self.device.type == "cpu" else torch.get_num_threads(),
            "channels_last": self.channels_last,
            "dtype": "float32",
        }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


STATISTICS = {
    "min": "minimum over all timed calls",
    "min-median": "minimum of the per-pass medians",
    "median": "median of the per-pass medians",
}


def combine(runs: list[list[float]], statistic: str) -> float:
    """One latency from ``passes`` lists of timed calls (ms), by ``statistic`` (see STATISTICS)."""
    if statistic == "median":
        return float(statistics.median(statistics.median(r) for r in runs))
    if statistic == "min-median":
        return float(min(statistics.median(r) for r in runs))
    if statistic == "min":
        return float(min(min(r) for r in runs))
    raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")


def check_statistic(statistic: str) -> str:
    """``statistic`` if it is one of :data:`STATISTICS`, else a one-line PssError."""
    if statistic not in STATISTICS:
        raise PssError(f"unknown timing statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
    return statistic


def distinct_structures(
    space: StructureSpace, n: int, rng: np.random.Generator, first: Sequence[Structure] = (),
    set_size: int | None = None, rounds: int = 20,
) -> list[Structure]:
    """``first``, then distinct structures drawn like Eq. 4's set G (half uniform, half spread over the
    cost range), ``set_size`` at a time for at most ``rounds`` rounds, until there are ``n`` (fewer in a
    tiny space: every structure it has)."""
    picked: dict[str, Structure] = {s.key: s for s in first}
    size = set_size or max(4 * n, 200)
    for _ in range(rounds):
        if len(picked) >= n:
            break
        widths, res = generate_structure_set(space, size, rng)
        for w, r in zip(widths, res):
            st = Structure(tuple(w), int(r))
            picked.setdefault(st.key, st)
            if len(picked) >= n:
                break
    return list(picked.values())[:n]


def time_structure(spec: NetSpec, s: Structure, timer: Timer) -> list[float]:
    """Timed calls (ms) of the whole dense model of ``s`` (:class:`pss.nn.supernet.DenseNet`)."""
    torch.manual_seed(0)
    model, x = timer.prepare(DenseNet(spec, s), spec.in_channels, s.resolution)
    return timer.time(model, x)


@dataclass
class StructureSamples:
    """Timed calls of whole models: ``runs[i]`` holds one list (ms) per pass for ``structures[i]``."""

    structures: list[Structure]
    runs: list[list[list[float]]]
    device: dict[str, Any]
    batch_size: int
    protocol: dict[str, Any]
    seconds: float


def measure_structures(
    spec: NetSpec, structures: Sequence[Structure], protocol: TimingProtocol = TimingProtocol(), progress: ProgressFn | None = None,
) -> StructureSamples:
    """Time the dense model (:class:`~pss.nn.supernet.DenseNet`) of each structure, the LUT's protocol.

    The passes run over all structures in turn (alternating order), as for the table.
    """
    structures = list(structures)
    if not structures:
        raise PssError("need at least one structure to time")
    t0 = time.perf_counter()
    runs: list[list[list[float]]] = [[] for _ in structures]
    passes = protocol.passes
    total, done = passes * len(structures), 0
    with Timer(protocol) as timer:
        for p in range(passes):
            order = range(len(structures)) if p % 2 == 0 else range(len(structures) - 1, -1, -1)
            for i in order:
                runs[i].append(time_structure(spec, structures[i], timer))
                done += 1
                if progress is not None and (done % 10 == 0 or done == total):
                    progress(done, total, f"pass {p + 1}/{passes}: whole models")
        device_info = timer.describe()
    return StructureSamples(structures, runs, device_info, protocol.batch_size, protocol.to_json(), time.perf_counter() - t0)


