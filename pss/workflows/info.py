"""Summaries of a run directory for `pss info` and `pss calibrate`."""

from __future__ import annotations

from typing import Any

from ..evaluate.selection import pareto_front
from ..io.run import candidate_test, front_points, open_run
from ..units import format_cost, format_quantity


def _same_budget(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.get("kind") == b.get("kind") and abs(float(a["value"]) - float(b["value"])) <= 1e-9 * max(1.0, abs(float(a["value"])))


def _best(pool: dict[str, Any]) -> dict[str, Any] | None:
    if pool.get("best") is None:
        return None
    c = pool["candidates"][pool["best"]]
    return {"key": c["key"], "accuracy": c["accuracy"], "test": c.get("test"), "costs": c["costs"]}


def test_text(candidate: dict[str, Any]) -> str:
    """``test 62.1% [57.8, 66.2] (509)`` or ``no test split``."""
    test = candidate_test(candidate)
    if test is None:
        return "no test split"
    lo, hi = test.interval
    return f"test {test.value:.1%} [{100 * lo:.1f}, {100 * hi:.1f}] ({test.images:,})"


def test_split_line(front: dict[str, Any]) -> str:
    """What the test split is, or why there is none (a front written before test splits)."""
    n = int(front.get("test_images") or 0)
    if n:
        return f"test split {front.get('test_split')} ({n:,} images; reports only, never selects); 95% Wilson intervals"
    return ("no test split: the accuracies are on the validation split that also chose the subnets, so they are "
            "optimistic (runs made before pss 0.2, or test_split=false)")


def run_summary(run_dir) -> dict[str, Any]:
    run = open_run(run_dir)
    meta = run.read_run()
    cfg = run.read_config(meta)
    snapshots = run.snapshot_paths()
    readable = run.read_snapshots()  # a damaged snapshot is skipped and counted, as the dashboard does
    last = readable[-1] if readable else None
    front = run.read_front() if run.has_front() else None
    pools = []
    for t, b in enumerate(meta["budgets"]):
        entry: dict[str, Any] = {"index": t, "budget": b}
        if last is not None and t < len(last["pools"]):  # strategies other than pss keep no pools
            p = last["pools"][t]
            entry.update(size=p["size"], capacity=p["capacity"], best_m=(p["entries"][0]["m"] if p["entries"] else None), p=p["p"], eta=p["eta"])
        # a front's pools are matched by budget, not index: `pss search --budgets` may use other ones
        match = [fp for fp in (front or {}).get("pools", []) if _same_budget(fp["budget"], b)]
        if match and _best(match[0]) is not None:
            entry["calibrated"] = _best(match[0])
        pools.append(entry)
    searched = [
        {"budget": fp["budget"], "calibrated": _best(fp)}
        for fp in (front or {}).get("pools", [])
        if not any(_same_budget(fp["budget"], b) for b in meta["budgets"])
    ]
    return {
        "run": str(run.path),
        "schema_version": meta["schema_version"],
        "pss_version": meta.get("pss_version"),
        "model": meta["model"],
        "dataset": {k: meta["dataset"].get(k) for k in ("name", "num_classes", "num_train", "num_val", "num_test", "test_split")},
        "constraint": meta["constraint"],
        "epochs_done": last["epoch"] if last else 0,
        "epochs": cfg.epochs,
        "finished": bool(last and last["epoch"] >= cfg.epochs),
        "snapshots": len(snapshots),
        "damaged_snapshots": len(snapshots) - len(readable),
        "last": None if last is None else {"epoch": last["epoch"], "lr": last["lr"], "losses": last["losses"], "val_acc": last["val_acc"]},
        "reference_subnets": meta["reference_subnets"],
        "calibrated": front is not None,
        "front_method": (front or {}).get("method", "calibrate") if front else None,
        "test_split": None if front is None else test_split_line(front),
        "pareto": None if front is None else pareto_summary(front),
        "strategy": cfg.strategy,
        "pools": pools,
        "other_budgets": searched,
    }


def format_summary(s: dict[str, Any]) -> str:
    unit = s["constraint"]
    m = s["model"]
    lines = [
        f"run        {s['run']}",
        f"model      {m['model']} x{m['width_mult']} ({m['stem']} stem), {s['dataset']['name']} "
        f"({s['dataset']['num_classes']} classes, {s['dataset']['num_train']} train / {s['dataset']['num_val']} val"
        f" / {s['dataset'].get('num_test') or 0} test)",
        f"progress   {s['epochs_done']}/{s['epochs']} epochs" + (" (finished)" if s["finished"] else " (training or stopped)"),
    ]
    if s.get("damaged_snapshots"):
        lines.append(f"note       {s['damaged_snapshots']} damaged snapshot(s) skipped (half-written or edited files)")
    if s["last"]:
        acc = s["last"]["val_acc"]
        lines.append(f"last epoch val acc max {acc['max']:.4f}  min {acc['min']:.4f}; loss max {s['last']['losses']['max']:.4f}")
    ref = s["reference_subnets"]
    if s.get("strategy", "pss") != "pss":
        lines.append(f"strategy   {s['strategy']} (no pools; `pss search` finds and calibrates subnets per budget)")
    kinds = list(dict.fromkeys(p["budget"]["kind"] for p in s["pools"])) or [unit]
    for kind in kinds:  # one line per kind: a multi-constraint run (extra_constraints) has several
        if kind in ref["min"]["costs"] and kind in ref["max"]["costs"]:
            label = "range" if len(kinds) == 1 else f"range {kind}"
            lines.append(f"{label:<10} {format_cost(ref['min']['costs'][kind], kind)} .. {format_cost(ref['max']['costs'][kind], kind)}")
    lines.append(f"{'pool':>4}  {'budget':>26}  {'kind':>7}  {'entries':>8}  {'best m':>8}  {'val acc':>8}  {'cost':>14}  test acc [95% CI] (images)")

    def band(b: dict[str, Any]) -> str:
        return f"{format_cost(b['value'], b['kind'])} +/- {format_quantity(b['tolerance'])}"

    def cost_of(cal: dict[str, Any] | None, kind: str) -> str:
        return format_cost(cal["costs"][kind], kind) if cal and kind in cal["costs"] else "-"

    for p in s["pools"]:
        b = p["budget"]
        size = f"{p.get('size', 0)}/{p.get('capacity', '?')}"
        best_m = f"{p['best_m']:.4f}" if p.get("best_m") is not None else "-"
        cal = p.get("calibrated")
        acc = f"{cal['accuracy']:.2%}" if cal else "-"
        test = test_text(cal) if cal else ""
        lines.append(
            f"{p['index']:>4}  {band(b):>26}  {b['kind']:>7}  {size:>8}  {best_m:>8}  {acc:>8}  {cost_of(cal, b['kind']):>14}  {test}"
        )
    for p in s.get("other_budgets", []):
        b, cal = p["budget"], p["calibrated"]
        acc = f"{cal['accuracy']:.2%}" if cal else "-"
        test = test_text(cal) if cal else ""
        lines.append(f"{'srch':>4}  {band(b):>26}  {b['kind']:>7}  {'':>8}  {'':>8}  {acc:>8}  {cost_of(cal, b['kind']):>14}  {test}")
    if s.get("test_split"):
        lines.append(s["test_split"])
    if s.get("pareto"):
        lines.append(s["pareto"])
    if not s["calibrated"]:
        lines.append(f"not calibrated yet: pss calibrate {s['run']}" + ("" if s.get("strategy", "pss") == "pss" else f" or pss search {s['run']}"))
    elif s.get("front_method") not in (None, "calibrate"):
        lines.append(f"front from `pss search --method {s['front_method']}`")
    return "\n".join(lines)


def pareto_summary(front: dict[str, Any]) -> str:
    """One line: how many calibrated subnets are on the Pareto front of the front's constraint."""
    kind = front["constraint"]
    points = [p for p in front_points(front) if kind in p.costs]
    on = pareto_front(points, kind)
    return (f"Pareto front ({kind}, validation accuracy): {len(on)} of {len(points)} calibrated subnets; "
            "`pss export --budget B` takes the most accurate one costing at most B")


def format_front(front: dict[str, Any]) -> str:
    unit = front["constraint"]
    what = "pool" if front.get("method", "calibrate") == "calibrate" else f"budget ({front['method']} search)"
    by = " chosen by re-measured -CE (--rescore)" if (front.get("selection") or {}).get("metric") == "fresh" else ""
    lines = [f"calibrated top-{front['top_k']} of each {what}{by} on {front['calibration_images']} images (epoch {front['epoch']}), "
             f"validated on {front['validation_images']:,} images:"]
    pareto = {p.key for p in pareto_front(front_points(front), unit)}
    for p in front["pools"]:
        if p["best"] is None:
            lines.append(f"  pool {p['index']}: empty")
            continue
        best = p["candidates"][p["best"]]
        accs = " ".join(f"{c['accuracy']:.3f}" for c in p["candidates"])
        kind = p["budget"].get("kind", unit)  # the pool's own kind (several with extra_constraints)
        mark = "" if best["key"] in pareto or kind != unit else "  (dominated)"
        lines.append(
            f"  pool {p['index']} ({p['budget']['label']}): best val {best['accuracy']:.2%} at "
            f"{format_cost(best['costs'][kind], kind)}, {test_text(best)}{mark}  [top-k val: {accs}]"
        )
    for name, r in front["references"].items():
        lines.append(f"  {name} subnet: val {r['accuracy']:.2%} at {format_cost(r['costs'][unit], unit)}, {test_text(r)}")
    lines.append(test_split_line(front))
    lines.append(pareto_summary(front))
    return "\n".join(lines)


def format_export(card: dict[str, Any], out: Any) -> str:
    """What `pss export` did, in a few lines: why this subnet, what it costs, how accurate, which files."""
    sel = card.get("selection") or {}
    kind = sel.get("kind") or card["constraint"]
    cost = format_cost(card["costs"][kind], kind) if kind in card["costs"] else "?"
    sc = card.get("superclass")
    on = f" on the images of {sc['name']}" if sc and sc.get("chosen_by") in ("superclass_validation", "generator") else ""
    if sel.get("rule") == "ceiling":
        why = f"the most accurate calibrated subnet{on} costing at most {format_cost(sel['budget'], kind)}"
    elif sel.get("rule") == "nearest_pool":
        why = f"the best{on} of the pool nearest {format_cost(sel['budget'], kind)} ({card['budget']['label']})"
    elif sel.get("rule") == "generator":
        why = (f"the best{on} of the EAS generator's architectures costing at most {format_cost(sel['budget'], kind)}, "
               f"each calibrated on those images")
    else:
        why = "the subnet asked for by --key"
    source = card["source"].get("reference")
    pool_index = card["source"].get("pool_index")
    origin = f"the {source} subnet" if source else f"pool {pool_index}" if pool_index is not None else "calibrated now"
    val = card.get("validation")
    val_text = f"{'superclass ' if on else ''}validation {card['accuracy']:.2%}" + (f" ({val['images']:,} images)" if val else "")
    others = [format_cost(card["costs"][k], k) for k in ("macs", "params", "latency") if k != kind and card["costs"].get(k) is not None]
    lines = [
        f"exported {card['key']} to {out}",
        f"  why      {why}: {origin}",
        f"  cost     {', '.join([cost, *others])}; input {card['input']['resolution']} px",
        f"  accuracy {val_text} chose it; "
        + (test_text(card) if card.get("test") else "no test split, so that figure is optimistic (runs made before pss 0.2)"),
    ]
    if sc:
        lines[3] = f"  accuracy {val_text} chose it; " + (
            f"{test_text(card)} on the test images of {sc['name']}, among its classes" if card.get("test")
            else f"no test accuracy on the images of {sc['name']} (see the note above)")
        kept = ", ".join(f"{n} ({c})" for n, c in zip(sc["class_names"], sc["classes"]))
        lines.insert(1, f"  classes  {sc['name']}: outputs 0..{len(sc['classes']) - 1} are classes {kept}; "
                        f"{len(sc['classes'])} of {card['model']['num_classes']} kept")
    if sel.get("rule") == "nearest_pool" and sel.get("budget") is not None and card["costs"].get(kind, 0) > sel["budget"]:
        lines.append(f"  note     it costs more than {format_cost(sel['budget'], kind)}: drop --nearest-pool for a budget ceiling")
    if card.get("dominated_by"):
        d = card["dominated_by"]
        lines.append(f"  note     dominated by {d['key']}: {format_cost(d['costs'][kind], kind)} at validation {d['accuracy']:.2%}")
    lines.append(f"  files    {', '.join(card['files'].values())}, card.json")
    return "\n".join(lines)
