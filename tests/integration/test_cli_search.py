"""`pss search` from the command line: a searched front that export, info and compare use unchanged."""

from __future__ import annotations

import json

import pytest

from pss.cli import main
from pss.io.run import subnet_for_budget


@pytest.mark.slow
def test_search_cli_random_then_export_info_compare(run_copy, tmp_path, capsys):
    run_json = json.loads((run_copy / "run.json").read_text())
    theta = run_json["budgets"][1]["value"]
    argv = ["search", str(run_copy), "--method", "random", "--evaluations", "2", "--images", "64", "--top-k", "1",
            "--budgets", f"{theta:.0f}", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "random search" in out
    front = json.loads((run_copy / "calibration" / "front.json").read_text())
    assert front["method"] == "random" and len(front["pools"]) == 1
    pool = front["pools"][0]
    best = pool["candidates"][pool["best"]]
    assert abs(best["costs"]["macs"] - pool["budget"]["value"]) <= pool["budget"]["tolerance"]
    assert main(["export", str(run_copy), "--budget", f"{theta:.0f}", "--nearest-pool", "--out", str(tmp_path / "subnet")]) == 0
    assert json.loads((tmp_path / "subnet" / "card.json").read_text())["key"] == best["key"]
    assert main(["export", str(run_copy), "--budget", f"{theta:.0f}", "--out", str(tmp_path / "ceiling")]) == 0
    card = json.loads((tmp_path / "ceiling" / "card.json").read_text())
    assert card["costs"]["macs"] <= float(f"{theta:.0f}") and card["key"] == subnet_for_budget(front, float(f"{theta:.0f}"))[1]["key"]
    assert main(["info", str(run_copy)]) == 0
    assert main(["compare", str(run_copy), "--budgets", f"{theta * 1.2:.0f}"]) == 0


def test_search_cli_errors_are_one_line(run_copy, capsys, tree_state):
    before = tree_state(run_copy)
    assert main(["search", str(run_copy), "--budgets", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    import pytest

    with pytest.raises(SystemExit) as info:  # argparse misuse: exit code 2, one line
        main(["search", str(run_copy), "--method", "annealing"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert tree_state(run_copy) == before
