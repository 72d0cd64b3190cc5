"""pssviz.study: a real tiny study (`pss study`, two strategies x two seeds) as frames, figures and report.html.

The study is trained once per test session (:func:`build_tiny_study`, shared with test_app.py) with the
suite's small-run settings; every check compares what pssviz draws with study.json and the runs' own
front.json, which `pss study` wrote. Cases the tiny study may not produce on its own (a not-comparable cell,
seeds that differ per strategy, a study.json written before verdicts) are made by editing a copy of its
study.json the way `pss study` (or an older version of it) writes them (:func:`with_a_not_comparable_cell`).
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import helpers
import pssviz
from pss.io.run import find_candidate
from pss.io.study import reading_sentences
from pssviz import analysis
from pssviz import study as studies
from pssviz.studydoc import verdict_text

TINY = {**helpers.SMALL_RUN, "pool_size": 4, "calib_images": 64, "eval_batch_size": 64}
STUDY = {"recipe": "smoke", "set": TINY, "strategies": ["pss", "random"], "seeds": [0, 1], "evaluations": 2,
         "description": "tiny viz"}


def build_tiny_study(tmp_path_factory) -> Path:
    """The study directory of one real tiny study, made once per session: <basetemp>/tiny-study/study.

    Its parent is a runs root holding a study directly below it (what the dashboard looks for).
    """
    from pss.cli import main

    out = tmp_path_factory.getbasetemp() / "tiny-study" / "study"
    if not (out / "study.json").is_file():
        file = out.parent / "study.yaml"
        out.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(yaml.safe_dump(STUDY))
        assert main(["study", str(file), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    return build_tiny_study(tmp_path_factory)


@pytest.fixture(scope="module")
def doc(study_dir) -> dict:
    return json.loads((study_dir / "study.json").read_text())


@pytest.fixture(scope="module")
def data(study_dir) -> studies.StudyData:
    return studies.load_study_dir(study_dir)


NOT_COMPARABLE = "seed 0 ships 20 px: random trains 28 px inputs only (a test's edit)"


def with_a_not_comparable_cell(doc: dict, arm: str = "random", j: int = 0) -> dict:
    """A copy of ``doc`` whose ``arm`` cell at budget ``j`` is not comparable, as `pss study` writes one (its mean
    stays in study.json; its difference is untested, without numbers), and without ``reading`` (so the sentences
    are made from the numbers, as for a study.json edited by hand)."""
    doc = copy.deepcopy(doc)
    entry = doc["comparison"][j]
    entry["strategies"][arm].update(comparable=False, reason=NOT_COMPARABLE)
    entry["strategies"][arm]["per_seed"][0].update(trained=False, untrained_because="random trains 28 px inputs only")
    entry["vs_pss"][arm] = {"comparable": False, "verdict": "not comparable", "reason": NOT_COMPARABLE, "significant": False}
    doc.pop("reading", None)
    return doc


def _arm_results(doc: dict, table: str | None):
    """(budget, label, arm, result or None) from study.json, read directly."""
    section = doc["comparison"] if table is None else doc["tables"][table]["comparison"]
    key = "strategies" if table is None else "arms"
    for e in section:
        for arm, r in e[key].items():
            yield e["budget"], e["label"], arm, r


# ---------------------------------------------------------------------------- frames
def _check_accuracy_frame(frame, doc: dict, table: str | None) -> None:
    """Every row of the accuracy frame against its study.json cell: numbers where comparable, NaN and the reason where
    not; the resolution shipped and the selection effort for every cell."""
    expected = list(_arm_results(doc, table))
    assert len(frame) == len(expected) > 0
    for (_, row), (budget, label, arm, r) in zip(frame.iterrows(), expected):
        assert (row["budget"], row["label"], row["arm"]) == (budget, label, arm)
        assert row["resolution"] == "/".join(map(str, sorted({p["resolution"] for p in r["per_seed"]})))
        assert (row["evaluations"], row["evaluations_max"]) == (min(r["evaluations"]), max(r["evaluations"]))
        if r["comparable"]:
            assert (row["mean"], row["lo"], row["hi"], row["n_seeds"]) == (r["mean_test_accuracy"], *r["ci95"], len(r["per_seed"]))
            assert row["comparable"] and row["reason"] == ""
            for p in r["per_seed"]:
                assert row[f"test_s{p['seed']}"] == p["test"]["accuracy"]
        else:  # no numbers, even where study.json keeps a mean: it is neither a win nor a loss
            assert not row["comparable"] and row["reason"] == r["reason"] and row["n_seeds"] == 0
            assert np.isnan([row["mean"], row["lo"], row["hi"], *(row[f"test_s{p['seed']}"] for p in r["per_seed"])]).all()
    assert frame["comparable"].dtype == bool


@pytest.mark.parametrize("table", [None, "pools_vs_search", "top_k"])
def test_accuracy_frame_holds_the_numbers_of_study_json(doc, table):
    frame = studies.accuracy_frame(doc, table)
    _check_accuracy_frame(frame, doc, table)
    if table is None:
        assert list(dict.fromkeys(frame["arm"])) == STUDY["strategies"]


def _check_difference_frame(frame, doc: dict, table: str | None) -> None:
    section = doc["comparison"] if table is None else doc["tables"][table]["comparison"]
    key = "vs_pss" if table is None else "vs_reference"
    reference = "pss" if table is None else doc["tables"][table]["reference"]
    expected = [(e, other, d) for e in section for other, d in e[key].items()]
    assert len(frame) == len(expected) > 0
    for (_, row), (e, other, d) in zip(frame.iterrows(), expected):
        assert (row["budget"], row["label"], row["reference"], row["other"]) == (e["budget"], e["label"], reference, other)
        assert (row["comparable"], row["verdict"], row["significant"]) == (d["comparable"], d["verdict"], d["verdict"] == "different")
        if d["comparable"]:
            assert (row["difference"], row["lo"], row["hi"]) == (d["mean_difference"], *d["ci95"])
            assert (row["p_holm"], row["tost_p_holm"], row["mdd80"], row["margin"]) == (d["p_holm"], d["tost_p_holm"], d["mdd80"], d["margin"])
            assert [row[f"mcnemar_p_s{p['seed']}"] for p in d["per_seed"]] == [p["mcnemar_p"] for p in d["per_seed"]]
            assert [row[f"difference_s{p['seed']}"] for p in d["per_seed"]] == [p["difference"] for p in d["per_seed"]]
        else:
            assert row["reason"] == d["reason"] and np.isnan([row["difference"], row["lo"], row["hi"], row["p_holm"]]).all()
    assert frame["significant"].dtype == bool and frame["comparable"].dtype == bool


@pytest.mark.parametrize("table", [None, "pools_vs_search", "top_k"])
def test_difference_frame_holds_the_paired_differences_of_study_json(doc, table):
    _check_difference_frame(studies.difference_frame(doc, table), doc, table)


def test_a_not_comparable_cell_has_no_numbers_in_the_frames_and_a_dash_in_the_tables(doc):
    edited = with_a_not_comparable_cell(doc)
    accuracy, differences = studies.accuracy_frame(edited), studies.difference_frame(edited)
    _check_accuracy_frame(accuracy, edited, None)
    _check_difference_frame(differences, edited, None)
    label = edited["comparison"][0]["label"]
    cell = accuracy[(accuracy["arm"] == "random") & (accuracy["label"] == label)].iloc[0]
    assert not cell["comparable"] and np.isnan(cell["mean"]) and cell["reason"] == NOT_COMPARABLE
    assert studies.accuracy_table(accuracy).loc[f"≤ {label}", "random"] == "—"
    assert studies.accuracy_table(accuracy).loc[f"≤ {label}", "pss"] != "—"
    row = studies.difference_table(differences).iloc[0]
    assert list(row) == [f"≤ {label}", "random", "—", "not comparable", "–", "–", "–"]
    assert studies.not_comparable_notes(studies.accuracy_rows(edited)) == [f"random at ≤ {label}: {NOT_COMPARABLE}"]
    # the plotly figures: a "×" with the reason at that budget, no point there
    fig = studies.study_accuracy_figure(accuracy, dodge=0)
    marks = [a for a in fig.layout.annotations if a.text == "×"]
    assert [(a.x, NOT_COMPARABLE in a.hovertext) for a in marks] == [(edited["comparison"][0]["budget"], True)]
    random = next(t for t in fig.data if t.name == "random")
    assert edited["comparison"][0]["budget"] not in [x for x, y in zip(random.x, random.y) if np.isfinite(y)]


def test_seeds_may_differ_per_strategy(doc):
    """study.json's seeds as a mapping strategy -> seeds: per-seed columns over their union, the recipe per strategy."""
    edited = copy.deepcopy(doc)
    edited["study"]["seeds"] = {"pss": [0, 1], "random": [1, 7]}
    assert studies.accuracy_columns(edited)[-3:] == ["test_s0", "test_s1", "test_s7"]
    assert studies.difference_columns(edited)[-3:] == ["mcnemar_p_s0", "mcnemar_p_s1", "mcnemar_p_s7"]
    assert studies.seeds_by_strategy(edited) == {"pss": [0, 1], "random": [1, 7]}
    assert "strategies pss, random; pss 2 seeds (0, 1), random 2 seeds (1, 7);" in studies.recipe_markdown(edited)
    assert "seeds 0, 1;" in studies.recipe_markdown(doc)
    frame = studies.accuracy_frame(edited)
    assert frame["test_s7"].isna().all() and len(frame) == len(studies.accuracy_frame(doc))


def test_an_older_study_json_without_verdicts_still_reads(doc):
    """A study.json written before cells were flagged and tested with Holm (no comparable, verdict, reading, a null
    cell where nothing fit) gives frames, figures and sentences, and no 'significant' without a verdict."""
    old = copy.deepcopy(doc)
    for key in ("reading", "trained_families", "plateau"):
        old.pop(key, None)
    for e in old["comparison"]:
        for cell in e["strategies"].values():
            for k in ("comparable", "reason", "evaluations"):
                cell.pop(k, None)
        for d in e["vs_pss"].values():
            for k in ("comparable", "verdict", "p_holm", "tost_p_holm", "mdd80", "margin", "p_value", "tost_p"):
                d.pop(k, None)
            d["significant"] = True  # an unadjusted bootstrap flag of that time
    old["comparison"][0]["strategies"]["random"] = None
    accuracy, differences = studies.accuracy_frame(old), studies.difference_frame(old)
    assert not accuracy["comparable"].iloc[1] and np.isnan(accuracy["mean"].iloc[1]) and accuracy["comparable"].iloc[2:].all()
    assert (differences["verdict"] == "").all() and not differences["significant"].any()
    assert studies.reading(old) == reading_sentences(old)
    assert studies.plateau_sentence(old) is None and studies.families_sentence(old) is None
    svg = studies.study_difference_svg(differences)
    assert "predates verdicts" in svg and 'data-filled="true"' not in svg
    studies.study_accuracy_figure(accuracy)
    assert set(studies.difference_table(differences)["verdict (Holm)"]) == {"–"}


def test_load_study_dir_reads_every_table_and_the_cost(data, doc, study_dir):
    assert data.path == study_dir and data.constraint == "macs" and data.title == "Study: tiny viz"
    assert set(data.tables) == {"pools_vs_search", "top_k"} and not data.problems
    assert data.report_md == (study_dir / "report.md").read_text()
    costs = data.costs.set_index("strategy")
    assert list(costs.index) == STUDY["strategies"]
    for strategy in STUDY["strategies"]:
        rows = [r for r in doc["runs"] if r["strategy"] == strategy]
        assert costs.loc[strategy, "runs"] == len(rows) == 2
        assert costs.loc[strategy, "train_seconds"] == pytest.approx(np.mean([r["train_seconds"] for r in rows]))
        assert costs.loc[strategy, "selection_seconds"] == pytest.approx(np.mean([r["selection_seconds"] for r in rows]))


def test_find_study_at_or_directly_below_a_runs_root(study_dir, tmp_path):
    assert studies.find_study(study_dir) == study_dir
    assert studies.find_study(study_dir.parent) == study_dir
    assert studies.find_study(study_dir.parent.parent) is None, "only one level down"
    assert studies.find_study(helpers.SAMPLE_RUN) is None, "a run directory holds no study"
    assert studies.find_study(helpers.SAMPLE_RUN.parent) == helpers.SAMPLE_RUN.parent / "fashion-mnist-study", "the shipped one"
    assert studies.find_study(tmp_path / "missing") is None
    # the study's runs are ordinary runs, found by find_runs from the runs root
    found = {p.name for p in pssviz.find_runs(study_dir.parent)}
    assert found == {"pss-s0", "pss-s1", "random-s0", "random-s1"}


def test_a_damaged_study_json_is_a_one_line_error(study_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "study.json").write_text('{"schema_version": 1, "kind": "pss-st')
    with pytest.raises(studies.StudyLoadError, match="not valid JSON") as err:
        studies.load_study_dir(broken)
    assert "\n" not in str(err.value)
    with pytest.raises(studies.StudyLoadError):
        studies.report_html(broken)


# ---------------------------------------------------------------------------- figures
def test_accuracy_figure_draws_each_strategy_with_its_interval(data):
    fig = studies.study_accuracy_figure(data.accuracy, data.constraint)
    assert [t.name for t in fig.data] == STUDY["strategies"]
    for trace in fig.data:
        rows = data.accuracy[data.accuracy["arm"] == trace.name].sort_values("budget")
        np.testing.assert_allclose(trace.y, 100 * rows["mean"])
        np.testing.assert_allclose(np.asarray(trace.y) + np.asarray(trace.error_y.array), 100 * rows["hi"])
        np.testing.assert_allclose(np.asarray(trace.y) - np.asarray(trace.error_y.arrayminus), 100 * rows["lo"])
        # nudged sideways by at most 1% of the budget span per arm, so each point stays nearest its budget
        span = rows["budget"].max() - rows["budget"].min()
        assert np.all(np.abs(np.asarray(trace.x) - rows["budget"].to_numpy()) <= 0.01 * span)
    assert fig.layout.xaxis.title.text == "budget (MACs, ceiling)" and fig.layout.xaxis.tickformat == "~s"
    assert fig.layout.yaxis.ticksuffix == "%"
    exact = studies.study_accuracy_figure(data.accuracy, data.constraint, dodge=0)
    np.testing.assert_allclose(exact.data[0].x, data.accuracy[data.accuracy["arm"] == "pss"]["budget"])


def _symbols(trace) -> list[str]:
    return list(trace.marker.symbol)


def test_difference_figure_fills_exactly_the_different_verdicts(data):
    frames = [data.differences]
    flipped = data.differences.copy()
    flipped["verdict"] = ["different" if i % 2 == 0 else "equivalent" for i in range(len(flipped))]  # both kinds
    flipped["significant"] = flipped["verdict"] == "different"
    frames.append(flipped)
    for frame in frames:
        fig = studies.study_difference_figure(frame, data.constraint)
        assert [t.name for t in fig.data] == [f"pss − {o}" for o in dict.fromkeys(frame["other"])]
        for trace in fig.data:
            rows = frame[frame["other"] == trace.name.split(" − ")[1]].sort_values("budget")
            filled = [s == "circle" for s in _symbols(trace)]
            assert filled == list(rows["verdict"] == "different")
            assert all(s in ("circle", "circle-open") for s in _symbols(trace))
            np.testing.assert_allclose(trace.y, 100 * rows["difference"])
            np.testing.assert_allclose(np.asarray(trace.y) + np.asarray(trace.error_y.array), 100 * rows["hi"])
            first = rows.iloc[0]
            hover = trace.hovertext[0]
            assert f"verdict: {verdict_text(first)}" in hover and f"p (Holm) {first['p_holm']:.2g}" in hover
            assert f"detectable at 80% power: {100 * first['mdd80']:.2f} points" in hover
            assert f"s1 {100 * first['difference_s1']:+.2f} ({first['mcnemar_p_s1']:.2g})" in hover
            assert "significant" not in hover
        assert any(s.type == "line" and s.y0 == 0 == s.y1 for s in fig.layout.shapes), "a zero line"


def test_the_reading_is_study_json_s_own_sentences_or_made_from_its_numbers(doc):
    """One wording: study.json's ``reading`` (what report.md opens with); without it, the same function pss study
    used, so a changed number changes the sentence."""
    assert studies.reading(doc) == doc["reading"] == reading_sentences(doc)
    edited = copy.deepcopy(doc)
    edited.pop("reading")
    d = edited["comparison"][-1]["vs_pss"]["random"]
    d.update(comparable=True, verdict="different", significant=True, mean_difference=0.0789, ci95=[0.05, 0.1], p_holm=0.001)
    sentences = studies.reading(edited)
    assert sentences == reading_sentences(edited) != doc["reading"]
    assert f"pss ahead at {edited['comparison'][-1]['label']} (+7.89 points)" in sentences[1]
    d["mean_difference"] = -0.0312
    assert f"random ahead at {edited['comparison'][-1]['label']} (-3.12 points)" in studies.reading(edited)[1]


def test_fronts_figure_has_one_front_per_run_with_its_test_accuracies(data, doc, study_dir):
    fig = studies.study_fronts_figure(data)
    runs = {Path(r["path"]).name: r for r in doc["runs"]}
    assert sorted(t.meta for t in fig.data) == sorted(runs), "one front per run"
    for trace in fig.data:
        run = runs[trace.meta]
        assert trace.legendgroup == run["strategy"] and trace.name == f"seed {run['seed']}"
        front = json.loads((study_dir / run["path"] / "calibration" / "front.json").read_text())
        # the points are the run's Pareto front as the dashboard's Front page computes it
        table = analysis.front_subnets(pssviz.load_run(study_dir / run["path"]), "macs")
        assert set(trace.text) == set(table.loc[table["pareto"], "key"])
        for key, x, y, up, down in zip(trace.text, trace.x, trace.y, trace.error_y.array, trace.error_y.arrayminus):
            test = find_candidate(front, key)[1]["test"]
            assert y == pytest.approx(100 * test["accuracy"]) and x == find_candidate(front, key)[1]["costs"]["macs"]
            assert (y + up, y - down) == pytest.approx((100 * test["ci95"][1], 100 * test["ci95"][0]))
        assert list(trace.x) == sorted(trace.x)
    colors = {t.legendgroup: t.line.color for t in fig.data}
    assert len(set(colors.values())) == 2, "one colour per strategy"
    assert {t.line.dash for t in fig.data if t.legendgroup == "pss"} == {"solid", "dash"}, "one dash per seed"


def test_empty_inputs_give_no_data_figures(data):
    assert studies.study_accuracy_figure(data.accuracy.iloc[:0]).layout.annotations[0].text == "no data yet"
    assert studies.study_difference_figure(data.differences.iloc[:0]).layout.annotations[0].text == "no data yet"
    empty = studies.StudyData(data.path, data.doc, data.accuracy, data.differences, data.fronts.iloc[:0], data.costs)
    assert studies.study_fronts_figure(empty).layout.annotations[0].text == "no data yet"


# ---------------------------------------------------------------------------- report.html
def test_pss_study_writes_a_self_contained_report_html(study_dir, doc):
    path = study_dir / "report.html"
    assert path.is_file(), "`pss study` calls the pss.study_reports entry point after study.json"
    assert path.stat().st_mtime_ns >= (study_dir / "study.json").stat().st_mtime_ns
    page = path.read_text(encoding="utf-8")
    assert page.count("* plotly.js v") == 1, "the plotly.js bundle is inlined once"
    assert not re.search(r"<script[^>]*\bsrc=", page), "no script is fetched"
    assert not re.search(r"<link[^>]*https?:", page)
    assert page.count('class="plotly-graph-div"') == 3
    assert "<title>Study: tiny viz</title>" in page
    for strategy in doc["study"]["strategies"]:
        assert f"<th>{strategy}</th>" in page
    for entry in doc["comparison"]:
        assert f"&lt;= {entry['label']}" in page
    for title in studies.TABLES.values():
        assert f"<h2>{title}</h2>" in page
    assert "<h2>Method</h2>" in page and "<h2>Cost</h2>" in page
    for sentence in studies.reading(doc):  # the reading, under the difference figure and in report.md's list
        assert page.count(html.escape(sentence, quote=False)) == 2


def test_write_report_html_replaces_the_file_atomically(study_dir, tmp_path):
    copy = shutil.copytree(study_dir, tmp_path / "study", ignore=shutil.ignore_patterns("*.pt"))
    (copy / "report.html").write_text("old")
    written = studies.write_report_html(copy)
    assert written == copy / "report.html" and written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in copy.iterdir() if p.is_file()) == ["report.html", "report.md", "study.json", "study.yaml"]


def test_markdown_to_html_renders_what_report_md_uses():
    md = ("# Study: a <b>\n\nRecipe `smoke` with\nno overrides.\n\n## Table\n\n| budget | pss |\n|---|---|\n"
          "| <= 5M MACs | 12.50% [7.81, 17.97] |\n\n- one: **x**\n- two\n")
    out = studies.markdown_to_html(md)
    assert out.startswith("<h1>Study: a &lt;b&gt;</h1>\n<p>Recipe <code>smoke</code> with no overrides.</p>\n<h2>Table</h2>")
    assert "<thead><tr><th>budget</th><th>pss</th></tr></thead>" in out
    assert "<tr><td>&lt;= 5M MACs</td><td>12.50% [7.81, 17.97]</td></tr>" in out
    assert "|---|" not in out
    assert out.endswith("<ul>\n<li>one: <strong>x</strong></li>\n<li>two</li>\n</ul>")


def test_a_failing_report_writer_does_not_fail_the_study(study_dir, tmp_path, capsys):
    """report.html cannot be replaced (a folder is in its place): `pss study` still succeeds and says so."""
    out = shutil.copytree(study_dir, tmp_path / "study")
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    (out / "report.html" / "keep").write_text("x")
    code, _, err = helpers.run_cli(capsys, "study", out / "study.yaml", "--out", out, "--quiet")
    assert code == 0, err
    assert "html report was not written" in err
    assert json.loads((out / "study.json").read_text())["comparison"] == json.loads((study_dir / "study.json").read_text())["comparison"]


def test_accuracy_difference_and_effort_tables_read_like_report_md(data, study_dir):
    """Every row of the three tables is a line of report.md, cell for cell (the page's tables and report.md agree)."""
    lines = (study_dir / "report.md").read_text().splitlines()

    def line(cells) -> str:
        return ("| " + " | ".join(cells) + " |").replace("≤", "<=")

    for table in (studies.accuracy_table(data.accuracy), studies.effort_table(data.accuracy)):
        assert list(table.columns) == STUDY["strategies"]
        for label, row in table.iterrows():
            assert line([label, *row]) in lines
    table = studies.difference_table(data.differences)
    assert isinstance(table, pd.DataFrame) and len(table) == len(data.differences)
    assert list(table.columns) == studies.DIFFERENCE_TABLE_COLUMNS
    for _, r in table.iterrows():
        assert line(r) in lines
    for name in data.tables:  # Tables 6 and 8 too
        for _, r in studies.difference_table(data.tables[name][1]).iterrows():
            assert line(r) in lines
