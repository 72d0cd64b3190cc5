"""Dashboard speed on a long run: load time and slider re-render time.

Generates (or reuses) a run of 250 epochs x 20 pools x 50 entries with
``tests/make_run.py``, then measures, in one process:

* ``pssviz.load_run`` cold (every snapshot parsed) and warm (the app's
  per-file SnapshotCache hit, as when a live run gains one epoch);
* the app under ``streamlit.testing.v1.AppTest``: the first render of the
  Front & Export page, then moves of its budget slider, and moves of the epoch
  slider on the Pools page (each a full script rerun, as in the browser).

Targets (issue 3): load <= 2 s, slider re-render <= 300 ms. Prints one line per
figure; no assert, machines here are noisy.

    python bench/dashboard_speed.py [--run DIR] [--moves 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_run(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_run", REPO / "tests" / "make_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_run(out, epochs=250, pools=20, entries=50)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing generated run (default: generate one in a temp folder)")
    parser.add_argument("--moves", type=int, default=7, help="slider moves to time per slider")
    args = parser.parse_args()

    tmp = None
    if args.run is None:
        tmp = tempfile.TemporaryDirectory(prefix="pss-dash-bench-")
        print("generating 250 epochs x 20 pools x 50 entries ...", flush=True)
        run = _make_run(Path(tmp.name) / "long-run")
    else:
        run = args.run
    size = sum(f.stat().st_size for f in run.rglob("*") if f.is_file())

    import pssviz

    colds = [_timed(lambda: pssviz.load_run(run)) for _ in range(3)]  # each parses every snapshot
    cold = statistics.median(colds)
    cache = pssviz.SnapshotCache()
    pssviz.load_run(run, cache=cache)
    warm = _timed(lambda: pssviz.load_run(run, cache=cache))
    data = pssviz.load_run(run)
    print(f"run: {len(data.epochs)} epochs, {len(data.budgets)} pools, {len(data.entries):,} entry rows, {size / 1e6:.0f} MB on disk")
    print(f"load_run cold (all snapshots parsed): median {cold:.2f} s of 3, first {colds[0]:.2f} s "
          f"(target <= 2 s, ratio {cold / 2:.2f})")
    print(f"load_run warm (per-file cache, a live run's refresh): {warm:.3f} s")

    from streamlit.testing.v1 import AppTest

    os.environ["PSS_RUNS"] = str(run)  # the run itself: find_runs lists just it
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=300)
    first = _timed(at.run)
    print(f"app first render (cold caches, Overview): {first:.2f} s")
    at.radio(key="page").set_value("Front & Export")
    page = _timed(at.run)
    assert not at.exception, at.exception
    print(f"switch to Front & Export: {page * 1000:.0f} ms")

    options = at.select_slider(key="budget_macs").options  # stops in human units, C(min)..C(max)
    times = []
    for i in range(args.moves):
        at.select_slider(key="budget_macs").set_value(options[int((len(options) - 1) * ((i * 0.37) % 1.0))])
        times.append(_timed(at.run))
        assert not at.exception, at.exception
    med, worst = statistics.median(times), max(times)
    print(f"budget slider re-render: median {med * 1000:.0f} ms, max {worst * 1000:.0f} ms over {len(times)} moves "
          f"(target <= 300 ms, ratio {med / 0.3:.2f})")

    at.radio(key="page").set_value("Pools")
    at.run()
    epochs = [int(e) for e in data.epochs["epoch"]]
    times = []
    for i in range(args.moves):
        at.select_slider(key="pools_epoch").set_value(epochs[(i * 37) % len(epochs)])
        times.append(_timed(at.run))
        assert not at.exception, at.exception
    med, worst = statistics.median(times), max(times)
    print(f"pools epoch slider re-render: median {med * 1000:.0f} ms, max {worst * 1000:.0f} ms over {len(times)} moves "
          f"(target <= 300 ms, ratio {med / 0.3:.2f})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
