"""The `pss` command: train, inspect, calibrate and export PSS supernets.

Every user error is one line on stderr and exit code 2; nothing half-written
is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

import pss as api  # the lazy public API: `pss --help` answers before torch is imported

from .config import SEARCH_METHODS, config_keys_help, parse_set_options
from .errors import PssError
from .io.files import describe_os_error
from .units import COST_KINDS, parse_quantities
from .version import __version__

EPILOG_TRAIN = """\
examples:
  pss train smoke --out runs/smoke                 # 2 tiny epochs, < 1 min on a laptop CPU
  pss train cifar10-mbv2 --out runs/mbv2 --epochs 60
  pss train cifar10-resnet20 --out runs/r20 --set pool_size=20 --set p_end=0.1
  pss train my.yaml --out runs/mine --resume       # continue after an interruption
  pss train sample --out runs/pse --set strategy=pse   # PSE-Net parallel subnets (also uniform, mutual, random)
  pss train sample --out runs/lat --set constraint=latency --set latency_lut=lut.json   # see `pss lut`

Config keys (--set key=value; YAML values, `null` for none):
"""


#: what a resumed run may change: its length, its learning rate (after a divergence) and the progress bars
RESUME_KEYS = {"epochs", "lr", "progress"}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage stays in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pss",
        description="Train, inspect, calibrate and export resource-adaptive supernets with Prioritized Subnet Sampling (PSS-Net).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="typical session:\n  pss train smoke --out /tmp/r && pss calibrate /tmp/r && pss info /tmp/r\n"
        "  pss export /tmp/r --budget 5M --out /tmp/subnet\n  streamlit run app/main.py   # the dashboard\n\nRun `pss COMMAND --help` for each command's options.",
    )
    p.add_argument("--version", action="version", version=f"pss-explorer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    for add in (_add_train, _add_presets_and_info, _add_calibrate, _add_export, _add_pack, _add_search, _add_lut, _add_compare, _add_study,
                _add_generate, _add_dashboard):
        add(sub)
    return p


def _add_dashboard(sub) -> None:
    """pss dashboard"""
    d = sub.add_parser(
        "dashboard",
        help="open the dashboard on this machine (localhost only, on one runs root)",
        description="Start the Streamlit dashboard (app/main.py) listening on localhost only, browsing only the runs "
        "root given by --runs (default: $PSS_RUNS, else the bundled sample runs). Works from any folder.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  pss dashboard                      # the bundled sample runs\n"
        "  pss dashboard --runs runs --port 8502",
    )
    d.add_argument("--runs", metavar="DIR", help="the runs root the dashboard may browse")
    d.add_argument("--port", type=int, default=8501, help="port on localhost (default 8501)")
    d.add_argument("--any-folder", action="store_true", help="let the runs-folder box point anywhere on this machine")
    d.add_argument("--allow-remote", action="store_true",
                   help="listen on every interface and answer other machines (only on a network you trust)")


def _calibration_options(p: argparse.ArgumentParser, top_k_help: str) -> None:
    """--top-k, --images, --device and --quiet: how `pss calibrate` and `pss search` evaluate subnets."""
    p.add_argument("--top-k", type=int, metavar="K", help=top_k_help)
    p.add_argument("--images", type=int, metavar="N", help="training images for BN re-estimation (default: the run's calib_images, 8192 in the paper)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train(sub) -> None:
    """pss train"""
    t = sub.add_parser(
        "train",
        help="train a supernet; writes a snapshot of every pool after every epoch",
        description="Train a PSS supernet (Alg. 1-3 of the paper) into RUN_DIR: run.json, one snapshot per epoch "
        "(pools, sampling probabilities, losses, accuracies) and a checkpoint per epoch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_TRAIN + config_keys_help(),
    )
    t.add_argument("config", metavar="CONFIG_OR_PRESET", help="a preset name (see `pss presets`) or a .yaml/.json config file")
    t.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (must be new or empty)")
    t.add_argument("--epochs", type=int, metavar="N", help="total epochs (overrides the config; with --resume, extends the run)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", default=[], help="override a config key; repeatable")
    t.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint (uses the run's own config)")
    t.add_argument("--force", action="store_true", help="overwrite RUN_DIR if it already holds files")
    t.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_presets_and_info(sub) -> None:
    """pss presets, pss info"""
    sub.add_parser("presets", help="list the built-in presets", description="List the built-in presets with one line each.")

    i = sub.add_parser("info", help="summarise a run: budgets, pools, accuracies", description="Summarise a run directory.")
    i.add_argument("run", metavar="RUN_DIR")
    i.add_argument("--json", action="store_true", help="machine-readable output (includes each pool's budget)")


def _add_calibrate(sub) -> None:
    """pss calibrate"""
    c = sub.add_parser(
        "calibrate",
        help="re-estimate BN statistics of each pool's top-k subnets and pick the best",
        description="Alg. 1 lines 11-17: per pool, reset and re-estimate the BN statistics of the top-k entries by m "
        "on N training images (on a copy of the supernet), evaluate each on the validation split and keep the best; "
        "the min and max subnets too. The kept subnets are then measured once on the test split, which reports and "
        "never chooses. Writes RUN_DIR/calibration/front.json and bn_stats.pt.",
    )
    c.add_argument("run", metavar="RUN_DIR")
    _calibration_options(c, "entries per pool to calibrate (default: the run's calib_top_k, 5 in the paper)")
    c.add_argument("--rescore", action=argparse.BooleanOptionalAction, default=None,
                   help="choose each pool's top-k by -CE re-measured with the final weights on fixed training images, "
                   "instead of the stored m (a moving average from when each entry was sampled, which goes stale); "
                   "default: the run's calib_rescore")


def _add_export(sub) -> None:
    """pss export"""
    e = sub.add_parser(
        "export",
        help="export the best calibrated subnet within a budget as a standalone model (.pt2 + ONNX)",
        description="Write the most accurate calibrated subnet whose cost is at most --budget (a ceiling; the same "
        "choice as the dashboard's slider; the min and max subnets count too) to --out: model.pt2 (torch.export, "
        "dynamic batch; loads with plain torch.export.load), model.onnx (opset 18, dynamic batch), state_dict.pt "
        "(torch.load(weights_only=True); pss.load_subnet(DIR) rebuilds it) and card.json (costs, validation accuracy "
        "that chose it, test accuracy with its 95%% interval, input preprocessing).",
        epilog="examples:\n  pss export RUN --budget 8.4M --out subnet/          # at most 8.4M MACs\n"
        "  pss export RUN --budget 600K --constraint params --out subnet/\n"
        "  pss export RUN --key r28-24.40.48... --out subnet/    # a subnet `pss info RUN` or the dashboard lists\n"
        "  pss export RUN --superclass vehicles --budget 8.4M --out vehicles/   # only that superclass's classes\n\n"
        "--superclass NAME keeps only NAME's classes in the classifier (output j is class classes[j] of card.json's\n"
        "superclass), chooses among the subnets within the budget by validation accuracy on NAME's images, and\n"
        "reports test accuracy on NAME's test images among its classes. The map is the run's config key\n"
        "superclasses (train with --set superclasses=builtin or a file); --superclasses builtin|FILE gives one\n"
        "for a run trained without (or overrides it).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("run", metavar="RUN_DIR")
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument("--budget", metavar="VALUE", help="resource ceiling with an optional unit: 30M, 1.2G, 450K, 3.2ms")
    which.add_argument("--key", metavar="KEY", help="export this calibrated subnet (its structure key) instead of choosing by budget")
    e.add_argument("--out", required=True, metavar="DIR", help="directory to write (new or empty)")
    e.add_argument("--constraint", choices=list(COST_KINDS), default=None,
                   help="cost kind of --budget (macs, params or latency); default: the run's constraint")
    e.add_argument("--nearest-pool", action="store_true",
                   help="the paper's per-pool view instead of a ceiling: the best subnet of the pool whose theta is nearest "
                   "--budget, which may cost more than --budget")
    e.add_argument("--superclass", metavar="NAME",
                   help="keep only this superclass's classes (a physically smaller classifier); chosen and tested on its images")
    e.add_argument("--superclasses", metavar="MAP",
                   help="the superclass map for --superclass: builtin (the dataset's) or a file; default: the run's config")


def _add_pack(sub) -> None:
    """pss pack"""
    k = sub.add_parser(
        "pack",
        help="shrink a finished run for sharing (fp16 weights, no optimizer state)",
        description="Rewrite RUN_DIR/checkpoint.pt with float16 weights and without optimizer state (about 4x smaller). "
        "The run can still be viewed, calibrated and exported, but not resumed. Calibrate after packing, so the "
        "front's accuracies are those of the packed weights.",
    )
    k.add_argument("run", metavar="RUN_DIR")


def _add_search(sub) -> None:
    """pss search"""
    r = sub.add_parser(
        "search",
        help="search each budget for better subnets (random, or PSE-Net's prior-guided evolution)",
        description="Search the structure space of a trained supernet under each budget theta +- delta: every "
        "evaluated subnet gets its BN statistics re-estimated and is validated (Eq. 5); the top-k per budget are "
        "written as RUN_DIR/calibration/front.json + bn_stats.pt, like `pss calibrate`, so `pss export`, "
        "`pss compare` and the dashboard use them unchanged. Needed for strategies without pools "
        "(uniform, mutual, random, pse); also a check of what the pools found. Only the configurations the run's "
        "strategy trained are searched (US-Net: uniform widths at the largest resolution; MutualNet: uniform widths; "
        "PSE-Net: the largest resolution).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  pss search runs/uniform --evaluations 20          # uniform widths, what US-Net trained\n"
        "  pss search runs/pse --method evolution --budgets 6M,8M,10M --tolerance 400K",
    )
    r.add_argument("run", metavar="RUN_DIR")
    r.add_argument("--method", choices=list(SEARCH_METHODS), default=None,
                   help="random: uniform draws from S within the band; evolution: PSE-Net Eq. 15-20 (the default for "
                   "runs that trained layer-wise widths); uniform: uniform-width subnets only (the default, and the "
                   "only method, for US-Net/MutualNet runs)")
    r.add_argument("--budgets", metavar="B1,B2,...", help="budgets with optional units (default: the run's own theta)")
    r.add_argument("--constraint", choices=list(COST_KINDS), help="cost of the budgets (default: the run's)")
    r.add_argument("--tolerance", metavar="DELTA", help="half-width of each budget band, e.g. 400K (default: the run's delta)")
    r.add_argument("--evaluations", type=int, metavar="N", help="distinct subnets calibrated and validated per budget (default 512)")
    r.add_argument("--population", type=int, metavar="P", help="evolution: seeds per generation (default 128)")
    r.add_argument("--parents", type=int, metavar="K", help="evolution: parents kept (default 64)")
    r.add_argument("--mutation-prob", type=float, metavar="P", help="evolution: chance each gene mutates (default 0.2)")
    r.add_argument("--generations", type=int, metavar="G", help="evolution: at most this many generations (default 20)")
    r.add_argument("--seed", type=int, default=0)
    _calibration_options(r, "candidates kept per budget (default: the run's calib_top_k)")


def _add_lut(sub) -> None:
    """pss lut build / check"""
    lut = sub.add_parser(
        "lut",
        help="build or check a latency lookup table (PSS-Net Sec. 4.2)",
        description="Latency lookup tables: the latency of a subnet is predicted as the sum of the measured latencies "
        "of its blocks (plus a constant overhead). Train with them via --set constraint=latency --set latency_lut=FILE.",
    )
    lsub = lut.add_subparsers(dest="lut_command", metavar="ACTION", parser_class=_Parser)
    lb = lsub.add_parser(
        "build",
        help="time every block variant of a model's structure space and write a LUT (JSON)",
        description="Time each block variant reachable in the structure space (warm-up, repeats, several passes, "
        "the minimum by default) on this machine and write a LUT. The model and space come from a preset, a config "
        "file or a run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  pss lut build cifar10-mbv1 --out luts/mbv1-cpu-b1.json\n"
        "  pss lut build cifar10-mbv1 --out luts/mbv1-cpu-b32.json --batch-size 32\n"
        "  pss lut build runs/r20 --device cuda --out luts/r20-gpu.json",
    )
    lb.add_argument("source", metavar="PRESET_CONFIG_OR_RUN", help="a preset, a .yaml/.json config or a run directory")
    lb.add_argument("--out", required=True, metavar="FILE", help="LUT file to write (.json)")
    lb.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    lb.add_argument("--batch-size", type=int, default=1, metavar="N", help="batch size to time at (default 1)")
    lb.add_argument("--set", action="append", metavar="KEY=VALUE", default=[], help="override a config key (model, width_mult, ...)")
    lb.add_argument("--warmup", type=int, metavar="N", help="untimed calls before timing (default 10)")
    lb.add_argument("--repeats", type=int, metavar="N", help="timed calls per variant and pass (default 30)")
    lb.add_argument("--threads", type=int, metavar="N", help="torch threads while timing (default 1)")
    lb.add_argument("--quiet", action="store_true", help="no progress bar")
    lc = lsub.add_parser(
        "check",
        help="time random subnets end to end and compare with the LUT's predictions (Fig. 3)",
        description="Time N random structures of the LUT's space end to end with the LUT's own protocol and report "
        "RMSE and relative error of predicted vs measured latency; --html writes the Fig. 3-like scatter.",
    )
    lc.add_argument("lut", metavar="LUT_FILE")
    lc.add_argument("-n", type=int, default=200, metavar="N", help="structures to time (default 200)")
    lc.add_argument("--seed", type=int, default=0)
    lc.add_argument("--html", metavar="FILE", help="write the predicted-vs-measured scatter (Fig. 3) as a self-contained HTML page")
    lc.add_argument("--json", metavar="FILE", help="write every predicted/measured pair as JSON")
    lc.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_compare(sub) -> None:
    """pss compare"""
    m = sub.add_parser(
        "compare",
        help="compare calibrated runs (PSS vs baselines) at the same budgets",
        description="For each budget, each run's most accurate calibrated subnet whose cost is at most the budget "
        "(Eq. 5 over the run's calibrated front). Prints a table and writes a comparison file (default: "
        "FIRST_RUN/comparisons/NAMES.json) that the dashboard overlays on the front.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  pss compare runs/pss runs/uniform runs/random --budgets 6M,8M,10M,12M",
    )
    m.add_argument("runs", nargs="+", metavar="RUN_DIR", help="calibrated run directories (`pss calibrate` or `pss search`)")
    m.add_argument("--budgets", metavar="B1,B2,...", help="budgets with optional units, e.g. 6M,8M (default: the first run's theta + delta)")
    m.add_argument("--constraint", choices=list(COST_KINDS), help="cost to compare on (default: the first run's)")
    m.add_argument("--names", metavar="N1,N2,...", help="labels for the runs (default: folder names)")
    m.add_argument("--out", metavar="FILE", help="comparison file to write (default: FIRST_RUN/comparisons/NAMES.json)")
    m.add_argument("--json", action="store_true", help="print the comparison as JSON instead of a table")


STUDY_EPILOG = """built-in study (run it by name):
  fashion-mnist   pss and random x 5 seeds, uniform, mutual, pse x 3 seeds on the full Fashion-MNIST (offline
                  through the Debian package dataset-fashion-mnist), MobileNetV1 x0.25, widths 0.25-1.0 at
                  20/24/28 px, 20 epochs (the file says why; wall time measured in README):
                  pss study fashion-mnist --out runs/study --workers 2

a study file (YAML):
  description: PSS vs baselines on Fashion-MNIST
  recipe: fashion-mnist-mbv1              # a preset or a config file, as `pss train` takes
  set: {epochs: 10, lower_bound: 0.25}    # config overrides for every run
  strategies: [pss, uniform, mutual, random, pse]
  seeds: [0, 1, 2]                        # or per strategy: {pss: [0, 1, 2, 3, 4], uniform: [0, 1, 2], ...}
  budgets: [1.5M, 2M, 2.5M]               # ceilings; omit for the pools' upper edges theta + delta
  evaluations: 16                         # calibrated subnets per budget band, the same for every strategy
  equivalence_margin: 0.5                 # points: 'equivalent' rules out larger differences (TOST)
  selection: {random: evolution}          # optional; defaults: pss calibrate (its pools), uniform and
                                          # mutual uniform-width search, random and pse evolution
  pack: true                              # optional: store finished runs as `pss pack` does, before selection
writes STUDY_DIR/study.yaml, runs/<strategy>-s<seed>/ (ordinary runs: the dashboard opens them),
study.json (every number), report.md and report.html (figures; open it in a browser, no network needed),
with PSS-Net Table 6 (pool subnets vs evolutionary search on the same supernet) and Table 8 (top-1/5/20
calibration) from the same runs. Each strategy's subnets are searched, and compared, only among the
configurations it trained (US-Net: uniform widths at the largest resolution); a ceiling where a strategy
has none is 'not comparable' and never counted as a win or a loss. Every verdict is 'different',
'equivalent within the margin' or 'inconclusive' (Holm-adjusted over all tests), with the difference the
study could have detected at 80% power. Run the same command again to continue an interrupted study;
changing budgets, evaluations or selection re-selects without retraining."""


def _add_study(sub) -> None:
    """pss study"""
    s = sub.add_parser(
        "study",
        help="compare training strategies over seeds with paired statistics on the test split",
        description="Train every (strategy, seed) of a study file as an ordinary run (finished runs are skipped, "
        "interrupted ones resumed), give each its per-budget subnets with the same number of calibrated evaluations, "
        "then report per budget each strategy's test accuracy (mean over seeds, 95%% interval from the seeds' spread and "
        "the test images) and pss minus each baseline on the same test images (interval, Holm-adjusted verdict, "
        "equivalence test, detectable difference, McNemar's exact test per seed pair).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=STUDY_EPILOG,
    )
    s.add_argument("study", metavar="STUDY.yaml", help="a study file, or the name of a built-in study (fashion-mnist)")
    s.add_argument("--out", required=True, metavar="STUDY_DIR", help="directory of the study (new, empty, or this study's)")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="train and select N runs at once, each in its own process with its share of the CPU threads "
                        "(e.g. 2 on a 2-core machine; default 1)")
    s.add_argument("--quiet", action="store_true", help="no progress lines")


EPILOG_GENERATE = """\
examples:
  pss train fashion-mnist-mbv1 --out runs/fm --set superclasses=builtin --set superclass_dropout=0.6
  pss generate runs/fm --train                         # EAS Alg. 1 on the validation split (minutes on a CPU)
  pss generate runs/fm --superclass footwear --budget 2M
  pss generate runs/fm --superclass all --budget 1.5M 2M 2.5M --samples 20
  pss export runs/fm --superclass footwear --budget 2M --out fm-footwear   # the model, its head cut to footwear

The generator maps (superclass, budget) to the probabilities of nested binary gates that switch channel groups
and the input resolution on (EAS Sec. 3.2); generating draws architectures within the budget from them,
calibrates each (BN statistics from training images of all classes, as pss calibrate), keeps the best on the
superclass's validation images and reports its accuracy on the superclass's test images. Results go to RUN_DIR/generator/scenarios.json (generator-sS/ for --seed S; the dashboard's EAS page).
"""


def _add_generate(sub) -> None:
    """pss generate"""
    g = sub.add_parser(
        "generate",
        help="EAS: train an architecture generator, or generate a subnet for a superclass and a budget",
        description="Elastic Architecture Search (EAS): with --train, train the architecture generator of a run on its "
        "validation split with the supernet frozen; with --superclass and --budget, generate an architecture for each "
        "(superclass, budget) and report its cost and its per-superclass accuracy (validation chooses, test reports).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_GENERATE,
    )
    g.add_argument("run", metavar="RUN_DIR")
    g.add_argument("--train", action="store_true", help="train the generator (replaces an earlier one and its scenarios)")
    g.add_argument("--superclasses", metavar="MAP", help="with --train: 'builtin' or a JSON/YAML map file "
                   "(default: the run's config key superclasses)")
    g.add_argument("--epochs", type=int, help="with --train: passes over the validation split (default 20)")
    g.add_argument("--lr", type=float, help="with --train: Adam's learning rate (default 5e-3)")
    g.add_argument("--constraint-weight", type=float, dest="constraint_weight",
                   help="with --train: lambda of EAS Eq. 4, the weight of the cost loss (default 2)")
    g.add_argument("--batch-size", type=int, dest="batch_size", help="with --train: validation images per step (default 128)")
    g.add_argument("--superclass", metavar="NAME", help="a superclass of the generator's map, or 'all'")
    g.add_argument("--budget", nargs="+", metavar="B", help="ceilings in the generator's cost kind: 2M, 1.5e6, ...")
    g.add_argument("--samples", type=int, default=10, help="older name of --evaluations (default 10)")
    g.add_argument("--method", default="eas", choices=("eas", "random", "ofa-t", "ofa-v"),
                   help="eas: the generator (default); the baselines: random (uniform draws within the budget, as many as "
                   "--samples), ofa-t (an evolutionary search per superclass), ofa-v (one search over all classes per budget, "
                   "its architecture used for every superclass)")
    g.add_argument("--evaluations", type=int, help="N calibrated evaluations per scenario, the same for every method "
                   "(default: --samples)")
    g.add_argument("--seed", type=int, default=0, help="the replicate: generator seed (RUN_DIR/generator-sS/ for S > 0) "
                   "and the seed of the draws and searches")
    g.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    g.add_argument("--quiet", action="store_true", help="no progress lines")


def _cmd_generate(args) -> int:
    if args.train == (args.superclass is not None):
        raise PssError("say what to do: --train (train the generator) or --superclass NAME --budget B (generate)")
    if args.train:
        if args.budget:
            raise PssError("--budget is for generating; train with --train alone, then generate with --superclass NAME --budget B")
        settings = api.settings_from(epochs=args.epochs, lr=args.lr, constraint_weight=args.constraint_weight,
                                     batch_size=args.batch_size, seed=args.seed)

        def progress(epoch, epochs, stats):
            if not args.quiet:
                print(f"epoch {epoch}/{epochs}: cross-entropy {stats['ce']:.3f}, cost loss {stats['constraint']:.3f}", file=sys.stderr)

        doc = api.train_generator(args.run, superclasses=args.superclasses, settings=settings, device=args.device, progress=progress)
        t = doc["training"]
        print(f"generator trained in {t['seconds']:.0f} s on {doc['validation_images']:,} validation images "
              f"({len(doc['superclasses']['superclasses'])} superclasses, {doc['cost_kind']} "
              f"{api.format_quantity(doc['c_min'])}-{api.format_quantity(doc['c_max'])}); "
              f"written to {Path(args.run) / 'generator'}")
        return 0
    if args.superclasses:
        raise PssError("--superclasses is for --train; generating uses the map the generator was trained with")
    if not args.budget:
        raise PssError("give --budget B (one or more ceilings, e.g. --budget 2M)")
    if args.samples < 1:
        raise PssError(f"--samples must be at least 1, got {args.samples}")
    records = api.generate(args.run, args.superclass, [q for b in args.budget for q in parse_quantities(b)],
                           api.GenerateOptions(samples=args.samples, seed=args.seed, evaluations=args.evaluations),
                           device=args.device, method=args.method)
    print(api.format_generated(records))
    return 0


def _cmd_study(args) -> int:
    doc = api.run_study(args.study, args.out, device=args.device, progress=not args.quiet, workers=args.workers)
    print(api.format_report(doc))
    out = Path(args.out).expanduser()
    extra = " and report.html" if (out / "report.html").is_file() else ""
    print(f"study written to {out / 'study.json'}, report.md{extra}", file=sys.stderr)
    return 0


def _cmd_search(args) -> int:
    knobs = {k: v for k, v in (("population", args.population), ("parents", args.parents),
                               ("mutation_prob", args.mutation_prob), ("generations", args.generations)) if v is not None}
    extra = {"evaluations_per_budget": args.evaluations} if args.evaluations is not None else {}
    front = api.search(
        args.run, method=args.method, budgets=parse_quantities(args.budgets), constraint=args.constraint,
        tolerance=api.parse_quantity(args.tolerance) if args.tolerance else None, top_k=args.top_k, images=args.images,
        device=args.device, seed=args.seed, progress=not args.quiet, **extra, **knobs,
    )
    print(api.format_front(front))
    return 0


def _cmd_lut(args) -> int:
    if args.lut_command is None:
        raise PssError("say what to do: `pss lut build ...` or `pss lut check ...` (see `pss lut --help`)")
    if args.lut_command == "build":
        knobs = {k: v for k, v in (("warmup", args.warmup), ("repeats", args.repeats), ("threads", args.threads)) if v is not None}
        out = api.build_lut_file(args.source, args.out, parse_set_options(args.set), device=args.device,
                                 batch_size=args.batch_size, progress=not args.quiet, **knobs)
        print(f"latency LUT written to {out}; train with: --set constraint=latency --set latency_lut={out}")
        return 0
    result = api.check_lut_file(args.lut, n=args.n, seed=args.seed, progress=not args.quiet, json_out=args.json, html_out=args.html)
    print(result.summary())
    if args.html:
        print(f"figure written to {Path(args.html).expanduser()}")
    return 0


def _cmd_compare(args) -> int:
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()] if args.budgets else None
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    comparison = api.compare_runs(args.runs, budgets, args.constraint, names)
    path = api.write_comparison(comparison, args.out)
    print(json.dumps(comparison, indent=1) if args.json else api.format_comparison(comparison))
    print(f"comparison written to {path}", file=sys.stderr)
    return 0


def _cmd_pack(args) -> int:
    before, after = api.pack_checkpoint(args.run)
    if before == after:
        print(f"{args.run}: checkpoint already packed ({after / 1e6:.1f} MB)")
    else:
        print(f"{args.run}: checkpoint packed {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB (float16 weights; no longer resumable)")
    return 0


def _cmd_train(args) -> int:
    overrides = parse_set_options(args.set)
    if args.quiet:
        overrides["progress"] = False
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.resume:
        run = api.RunDir(args.out)
        if not run.is_run():
            raise PssError(f"cannot resume: {run.path} is not a pss run directory (no run.json)")
        if set(overrides) - RESUME_KEYS:
            raise PssError("--set can change only lr of a run being resumed (and --epochs extend it); start a new run for other keys")
        cfg = run.read_config()
        cfg.update(overrides, "--set")
    else:
        cfg = api.load_config(args.config, overrides)
    run = api.train(cfg, args.out, resume=args.resume, force=args.force)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line from the first process
        print(f"run written to {run.path}; next: pss calibrate {run.path}")
    return 0


def _cmd_presets(args) -> int:
    presets = api.list_presets()
    width = max(len(n) for n in presets)
    for name, desc in presets.items():
        print(f"{name:<{width}}  {desc}")
    return 0


def _cmd_info(args) -> int:
    summary = api.run_summary(args.run)
    print(json.dumps(summary, indent=1) if args.json else api.format_summary(summary))
    return 0


def _cmd_calibrate(args) -> int:
    front = api.calibrate(args.run, top_k=args.top_k, images=args.images, device=args.device, progress=not args.quiet,
                          rescore=args.rescore)
    print(api.format_front(front))
    return 0


def _cmd_export(args) -> int:
    if args.key is not None and args.nearest_pool:
        raise PssError("--nearest-pool chooses by --budget; drop it when exporting a --key")
    if args.key is not None:
        card = api.export_candidate(args.run, args.key, args.out, superclass=args.superclass, superclasses=args.superclasses)
    else:
        card = api.export_subnet(args.run, args.budget, args.out, kind=args.constraint, nearest_pool=args.nearest_pool,
                                 superclass=args.superclass, superclasses=args.superclasses)
    print(api.format_export(card, args.out))
    return 0


def _cmd_dashboard(args) -> int:
    return api.run_dashboard(args.runs, args.port, args.any_folder, args.allow_remote)


COMMANDS = {"train": _cmd_train, "presets": _cmd_presets, "info": _cmd_info, "calibrate": _cmd_calibrate, "export": _cmd_export, "pack": _cmd_pack, "compare": _cmd_compare, "search": _cmd_search, "lut": _cmd_lut, "dashboard": _cmd_dashboard, "study": _cmd_study, "generate": _cmd_generate}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    # Library warnings (e.g. a dataset fallback) become one-line notes.
    warnings.showwarning = lambda message, *a, **k: print(f"pss {args.command}: note: {message}", file=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except PssError as exc:
        print(f"pss {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `pss info RUN --json | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # a full or read-only disk: one line, exit 1 (nothing half-written is left)
        print(f"pss {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pss {args.command}: interrupted; a run can be continued with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
