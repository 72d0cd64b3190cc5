"""Peak memory of a training run, epoch by epoch: does it stay flat after warm-up?

Runs ``pss train`` as a child process and samples its resident set size from
``/proc/PID/status`` every 0.2 s; the epoch of each sample is the number of
snapshots written so far. Prints, per epoch, the peak RSS and the process's
high-water mark, then the growth from the end of warm-up to the end.

    python bench/memory.py [--preset sample] [--epochs 20] [--out DIR]

Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NPZ = REPO.parent / "shared" / "data" / "cifar10-train-subset.npz"


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in bytes (empty when it has gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="sample")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--warmup-epochs", type=int, default=3, help="epochs counted as warm-up (default 3)")
    ap.add_argument("--out", help="run directory (default: a temp folder)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="pss-mem-")
    out = Path(args.out or tmp.name) / "run"
    sets = [f"epochs={args.epochs}", *([f"npz_path={NPZ}"] if NPZ.is_file() else []), *args.set]
    cmd = [sys.executable, "-m", "pss.cli", "train", args.preset, "--out", str(out), "--quiet", "--force"]
    cmd += [a for s in sets for a in ("--set", s)]
    print(f"{' '.join(cmd[2:])}")
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    peaks: dict[int, int] = {}
    hwm = 0
    while proc.poll() is None:
        st = _status(proc.pid)
        epoch = len(list((out / "snapshots").glob("epoch_*.json"))) + 1 if out.exists() else 1
        if "VmRSS" in st:
            peaks[epoch] = max(peaks.get(epoch, 0), st["VmRSS"])
            hwm = max(hwm, st.get("VmHWM", 0))
        time.sleep(0.2)
    if proc.returncode != 0:
        sys.exit(f"training failed with exit code {proc.returncode}")
    print(f"{args.epochs} epochs in {time.time() - t0:.0f} s; peak RSS per epoch (GB):")
    for e in sorted(peaks):
        if e <= args.epochs:
            print(f"  epoch {e:3d}: {peaks[e] / 1e9:.3f}")
    warm = peaks.get(args.warmup_epochs)
    last = peaks.get(args.epochs)
    if warm and last:
        print(f"after warm-up (epoch {args.warmup_epochs}) {warm / 1e9:.3f} GB -> epoch {args.epochs} {last / 1e9:.3f} GB: "
              f"ratio {last / warm:.3f}; high-water mark {hwm / 1e9:.3f} GB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
