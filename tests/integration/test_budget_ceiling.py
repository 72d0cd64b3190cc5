"""One meaning of "budget" everywhere: a ceiling, chosen by one library function (issue 10).

On the bundled sample run: `pss export --budget B` writes the most accurate calibrated subnet that
costs at most B (the min and max subnets count), the dashboard's table picks the same subnet for the
same B, and what is drawn as the Pareto front is exactly the non-dominated set.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import helpers
import pssviz
from pss.errors import PssError
from pss.evaluate.selection import FrontPoint, best_within, dominates, pareto_front
from pss.io.run import front_subnets, subnet_for_budget
from pss.workflows.export import choose_for_budget
from pssviz import analysis, figures

FRONT = json.loads((helpers.SAMPLE_RUN / "calibration" / "front.json").read_text())
SUBNETS = [c for _, c in front_subnets(FRONT)]


def _cost(c: dict) -> float:
    return float(c["costs"]["macs"])


def _budgets() -> list[float]:
    """Both ends, every subnet's exact cost, one MAC under it, and midpoints between neighbouring costs."""
    costs = sorted({_cost(c) for c in SUBNETS})
    mids = [(a + b) / 2 for a, b in zip(costs, costs[1:])]
    return sorted(set(costs + [c - 1 for c in costs[1:]] + mids + [costs[-1] * 1.5]))


def _brute_force(budget: float) -> dict:
    fits = [c for c in SUBNETS if _cost(c) <= budget]
    best_acc = max(c["accuracy"] for c in fits)
    return min((c for c in fits if c["accuracy"] == best_acc), key=_cost)


def test_the_references_are_candidates_and_span_the_range():
    keys = {c["key"] for c in SUBNETS}
    assert FRONT["references"]["min"]["key"] in keys and FRONT["references"]["max"]["key"] in keys
    data = pssviz.load_run(helpers.SAMPLE_RUN)
    lo, hi = analysis.budget_range(data, "macs")
    assert (lo, hi) == (_cost(FRONT["references"]["min"]), _cost(FRONT["references"]["max"]))
    assert lo == min(_cost(c) for c in SUBNETS)


def test_export_choice_never_exceeds_the_budget_and_matches_the_dashboard():
    data = pssviz.load_run(helpers.SAMPLE_RUN)
    budgets = _budgets()
    assert len(budgets) > 40
    for b in budgets:
        key, selection = choose_for_budget(FRONT, b)
        chosen = next(c for c in SUBNETS if c["key"] == key)
        assert _cost(chosen) <= b, f"{key} costs {_cost(chosen)} > budget {b}"
        assert key == _brute_force(b)["key"]
        assert selection == {"rule": "ceiling", "budget": b, "kind": "macs"}
        row = analysis.subnet_for_budget(data, b, "macs")
        assert row is not None and row["key"] == key, f"dashboard and CLI disagree at {b}"
        assert bool(row["pareto"]) and row["dominated_by"] is None
    below = min(budgets) - 1
    with pytest.raises(PssError, match="cheapest"):
        choose_for_budget(FRONT, below)
    assert analysis.subnet_for_budget(data, below, "macs") is None


def test_nearest_pool_is_kept_as_an_explicit_option_and_may_exceed():
    over = []
    for b in _budgets():
        try:
            key, sel = choose_for_budget(FRONT, b, nearest_pool=True)
        except PssError:
            continue  # outside the pools' bands
        assert sel["rule"] == "nearest_pool"
        over += [b] if _cost(next(c for c in SUBNETS if c["key"] == key)) > b else []
    assert over, "on the sample run the nearest pool's best sometimes costs more than the budget (the bug of issue 10)"


@pytest.mark.parametrize("where", ["min", "middle", "max"])
def test_pss_export_writes_a_subnet_within_the_budget(where, tmp_path, capsys):
    budgets = _budgets()
    b = {"min": budgets[0], "middle": budgets[len(budgets) // 2], "max": budgets[-1]}[where]
    out = tmp_path / "subnet"
    code, stdout, stderr = helpers.run_cli(capsys, "export", helpers.SAMPLE_RUN, "--budget", repr(b), "--out", out)
    assert code == 0, stderr
    card = json.loads((out / "card.json").read_text())
    assert card["costs"]["macs"] <= b and card["selection"]["rule"] == "ceiling"
    assert card["key"] == subnet_for_budget(FRONT, b)[1]["key"]
    assert card["dominated_by"] is None
    assert "at most" in stdout and card["key"] in stdout


def test_the_drawn_front_is_exactly_the_non_dominated_set():
    data = pssviz.load_run(helpers.SAMPLE_RUN)
    table = analysis.front_subnets(data, "macs")
    points = [FrontPoint(c["key"], c["accuracy"], {"macs": _cost(c)}) for c in SUBNETS]
    dominated = {p.key for p in points if any(dominates(q, p, "macs") for q in points)}
    assert set(table.loc[table["pareto"], "key"]) == {p.key for p in points} - dominated
    assert {p.key for p in pareto_front(points, "macs")} == {p.key for p in points} - dominated
    for _, row in table[~table["pareto"]].iterrows():
        winner = next(p for p in points if p.key == row["dominated_by"])
        assert dominates(winner, next(p for p in points if p.key == row["key"]), "macs")
    # every Pareto point is what some budget buys, and nothing else is
    bought = {best_within(points, p.costs["macs"], "macs").key for p in points}
    assert bought == set(table.loc[table["pareto"], "key"])
    fig = figures.front_figure(data.front, data.references, x="macs")
    line = next(t for t in fig.data if t.name == "Pareto front")
    assert set(line.text) == bought and list(line.x) == sorted(line.x)
    assert np.all(np.diff(np.asarray(line.y)) > 0)  # a Pareto front only goes up with cost
