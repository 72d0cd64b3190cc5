"""The Streamlit app under streamlit.testing.v1.AppTest: every page, with the sample and a generated run."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

import helpers
from pss.io.run import subnet_for_budget
from pss.units import format_cost
import pssviz
from pssviz import analysis

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = helpers.REPO_ROOT
APP = str(REPO / "app" / "main.py")
SAMPLE = helpers.SAMPLE_RUN
PAGES = ["Overview", "Pools", "Sampling", "Widths", "Front & Export"]  # the run pages
TEACH = ("Start here", "Sampling playground")


def _menu(study: bool = False) -> list[str]:
    """The page radio's options: Start here, the Study page when there is one, the run pages with the playground."""
    return ["Start here", *(["Study"] if study else []), "Overview", "Pools", "Sampling", "Sampling playground", "Widths", "Front & Export",
            "Superclasses (EAS)"]


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory, make_run_module) -> Path:
    root = tmp_path_factory.mktemp("generated")
    make_run_module.make_run(root / "gen", epochs=12, pools=6, entries=12, seed=1, front=True)
    return root


def _app(runs_root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("PSS_RUNS", str(runs_root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _goto(at: AppTest, page: str) -> AppTest:
    at.radio(key="page").set_value(page).run()
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_the_sample_run(page, monkeypatch):
    at = _app(SAMPLE, monkeypatch)
    _goto(at, page)
    _assert_clean(at)
    assert at.header[0].value == page
    assert _charts(at) >= 1
    assert at.caption, "every chart has an explanation"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_a_generated_run(page, generated_root, monkeypatch):
    at = _app(generated_root, monkeypatch)
    _goto(at, page)
    _assert_clean(at)
    assert _charts(at) >= 1


def _chosen_key(at: AppTest) -> str:
    codes = [c.value for c in at.code]
    assert codes, "the chosen subnet's key is shown"
    return codes[0]


def test_budget_slider_changes_the_chosen_subnet(monkeypatch):
    """The slider spans C(min)..C(max) in human units and picks what `pss export --budget` picks."""
    at = _goto(_app(SAMPLE, monkeypatch), "Front & Export")
    front = json.loads((SAMPLE / "calibration" / "front.json").read_text())
    refs = front["references"]
    slider = at.select_slider(key="budget_macs")
    assert slider.options[0] == format_cost(refs["min"]["costs"]["macs"], "macs")  # e.g. "4.508M MACs"
    assert slider.options[-1] == format_cost(refs["max"]["costs"]["macs"], "macs")
    lo, hi = refs["min"]["costs"]["macs"], refs["max"]["costs"]["macs"]
    stops = analysis.budget_stops(pssviz.load_run(SAMPLE), "macs")
    assert list(stops) == slider.options
    chosen = {}
    for b in (lo, (lo + hi) / 2, hi):
        label = min(stops, key=lambda o: abs(stops[o] - b))
        at.select_slider(key="budget_macs").set_value(label).run()
        _assert_clean(at)
        chosen[b] = _chosen_key(at)
        assert chosen[b] == subnet_for_budget(front, stops[label])[1]["key"], f"dashboard and `pss export` disagree at {label}"
    assert chosen[lo] == refs["min"]["key"]
    every = [c for p in front["pools"] for c in p["candidates"]] + list(refs.values())
    assert max(every, key=lambda c: c["accuracy"])["accuracy"] == next(c for c in every if c["key"] == chosen[hi])["accuracy"]
    assert any("Download" in b.label for b in at.get("download_button")) or at.get("download_button")


def test_generated_run_cannot_be_exported_and_says_why(generated_root, monkeypatch):
    at = _goto(_app(generated_root, monkeypatch), "Front & Export")
    _assert_clean(at)
    assert any("checkpoint.pt" in i.value for i in at.info)


def test_missing_runs_folder_is_a_friendly_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PSS_ANY_FOLDER", "1")  # the sample folder below lies outside the (missing) runs root
    at = _app(tmp_path / "nowhere", monkeypatch)
    _assert_clean(at)
    assert any("No runs under" in w.value for w in at.warning)
    _goto(at, "Pools")
    _assert_clean(at)
    at.text_input(key="runs_root").set_value(str(SAMPLE.parent)).run()
    _assert_clean(at)
    assert _charts(at) >= 1, "the rest of the app still works"


def test_corrupt_snapshot_is_skipped_and_reported(generated_root, tmp_path, monkeypatch):
    run = shutil.copytree(generated_root / "gen", tmp_path / "runs" / "damaged")
    (run / "snapshots" / "epoch_0003.json").write_text('{"schema_version": 1, "kind": "pss-snap')
    at = _goto(_app(tmp_path / "runs", monkeypatch), "Pools")
    _assert_clean(at)
    assert any("epoch_0003.json" in w.value for w in at.warning)
    assert _charts(at) >= 1


def test_corrupt_run_file_is_an_error_and_the_app_survives(generated_root, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(generated_root / "gen", runs / "good")
    bad = runs / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{ not json")
    import os
    import time

    os.utime(bad / "run.json", (time.time() + 60, time.time() + 60))  # newest: selected first
    at = _app(runs, monkeypatch)
    assert not at.exception
    assert any("Cannot open this run" in e.value and "not valid JSON" in e.value for e in at.error)
    at.selectbox(key="run").set_value(str(runs / "good")).run()
    _assert_clean(at)
    assert _charts(at) >= 1


def test_empty_run_says_training_has_not_finished_an_epoch(generated_root, tmp_path, monkeypatch):
    run = tmp_path / "runs" / "fresh"
    run.mkdir(parents=True)
    shutil.copy(generated_root / "gen" / "run.json", run / "run.json")
    at = _app(tmp_path / "runs", monkeypatch)
    for page in PAGES:
        _goto(at, page)
        assert not at.exception
        assert any("No epoch" in i.value or "not been calibrated" in i.value for i in at.info), page


@pytest.mark.slow
def test_uncalibrated_run_offers_calibration_and_runs_it(uncalibrated_run_copy, monkeypatch):
    at = _goto(_app(uncalibrated_run_copy.parent, monkeypatch), "Front & Export")
    _assert_clean(at)
    assert any("not been calibrated" in i.value for i in at.info)
    at.button(key="calibrate").click().run(timeout=300)
    assert not at.exception
    assert (uncalibrated_run_copy / "calibration" / "front.json").is_file()
    at.run()
    _assert_clean(at)
    assert at.select_slider(key="budget_macs") is not None
    assert _charts(at) >= 1


def test_new_epochs_of_a_training_run_show_on_the_next_rerun(generated_root, tmp_path, monkeypatch):
    run = shutil.copytree(generated_root / "gen", tmp_path / "runs" / "live", ignore=shutil.ignore_patterns("calibration"))
    held = (run / "snapshots" / "epoch_0012.json").read_bytes()
    (run / "snapshots" / "epoch_0012.json").unlink()
    at = _app(tmp_path / "runs", monkeypatch)
    _assert_clean(at)
    assert at.metric[1].value == "11 / 12"
    assert at.toggle(key="follow").value and any("Watching" in c.value for c in at.sidebar.caption)
    (run / "snapshots" / "epoch_0012.json").write_bytes(held)
    at.run()  # what the watcher fragment triggers when the run's signature changes
    _assert_clean(at)
    assert at.metric[1].value == "12 / 12"


def test_pools_over_all_epochs_view(monkeypatch):
    at = _goto(_app(SAMPLE, monkeypatch), "Pools")
    assert at.select_slider(key="pools_epoch").value == 40
    at.button_group(key="pools_view").set_value("Over all epochs").run()
    _assert_clean(at)
    assert _charts(at) == 1
    assert any("evicted" in c.value for c in at.caption)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len({t["legendgroup"] for t in spec["data"]}) == 8, "all eight pools by default"
    at.multiselect(key="evolution_pools").set_value([at.multiselect(key="evolution_pools").options[2]]).run()
    _assert_clean(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["legendgroup"] for t in spec["data"]} == {"pool2"}, "one pool picked: only its lines"


def test_pools_play_view_and_a_readable_table(monkeypatch):
    at = _goto(_app(SAMPLE, monkeypatch), "Pools")
    table = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert table["pool"].min() == 1 and table["rank"].min() == 1, "pools and ranks are numbered from 1"
    assert "None" not in table.astype(str).to_numpy().ravel().tolist() and "nan" not in table.astype(str).to_numpy().ravel().tolist()
    calibrated = table[table["val. accuracy"] != ""]
    assert len(calibrated) and calibrated["val. accuracy"].str.endswith("%").all()
    assert (table["chosen"] == "✓").sum() == 8, "one chosen subnet per pool"
    at.button_group(key="pools_view").set_value("Play over epochs").run()
    _assert_clean(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(spec["frames"]) == 40 and spec["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ play"
    assert any("dot size" in a.get("text", "") for a in spec["layout"]["annotations"])


def test_widths_page_shows_channels_and_resolution(monkeypatch):
    at = _goto(_app(SAMPLE, monkeypatch), "Widths")
    _assert_clean(at)
    table = next(d.value for d in at.dataframe if "subnet" in d.value.columns)
    assert list(table.columns[:5]) == ["pool", "budget θ", "subnet", "r (px)", "cost"]
    assert table.iloc[-1]["subnet"] == "o_max" and set(table["subnet"][:-1]) >= {"best"}
    assert table["cost"].iloc[0].endswith("MACs")
    names = [t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert all(n.endswith(" px") for n in names)


def test_comparison_file_is_overlaid_on_the_front(tmp_path, monkeypatch):
    from pss.io.comparison import write_comparison
    from pss.workflows.compare import compare_runs

    run = shutil.copytree(SAMPLE, tmp_path / "runs" / "sample")
    twin = shutil.copytree(SAMPLE, tmp_path / "elsewhere" / "twin")
    write_comparison(compare_runs([run, twin]))
    at = _goto(_app(tmp_path / "runs", monkeypatch), "Front & Export")
    _assert_clean(at)
    overlay = at.multiselect(key="comparisons_macs")
    assert overlay.value == ["sample-vs-twin"]
    front = at.get("plotly_chart")[0]
    spec = json.loads(front.proto.spec)
    assert sum("best ≤ budget" in (t.get("name") or "") for t in spec["data"]) == 2


@pytest.fixture(scope="module")
def baseline_root(small_run, tmp_path_factory) -> Path:
    """A folder holding ``pse``: a real 1-epoch run of a strategy without pools (PSE-Net parallel subnets)."""
    root = tmp_path_factory.mktemp("baseline")
    helpers.copy_run(small_run(strategy="pse"), root / "pse")
    return root


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_a_run_without_pools(page, baseline_root, monkeypatch):
    at = _goto(_app(baseline_root, monkeypatch), page)
    _assert_clean(at)
    if page in ("Pools", "Sampling", "Widths"):
        assert any("keeps no subnet pools" in i.value for i in at.info)
    if page == "Pools":
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert len(spec["data"][0]["x"]) > 0, "the subnets pse trained are drawn"


@pytest.mark.slow
def test_a_run_without_pools_is_searched_from_the_app(baseline_root, tmp_path, monkeypatch):
    run = shutil.copytree(baseline_root / "pse", tmp_path / "runs" / "pse")
    at = _goto(_app(tmp_path / "runs", monkeypatch), "Front & Export")
    at.number_input(key="search_evaluations").set_value(1)
    at.button(key="calibrate").click().run(timeout=300)
    assert not at.exception
    front = json.loads((run / "calibration" / "front.json").read_text())
    # PSE-Net trains r^max only: the search stays there, so bands no r^max subnet reaches have no best
    assert front["method"] == "random" and any(p["best"] is not None for p in front["pools"])
    r_max = front["trained_family"]["resolutions"] == [max(front["trained_family"]["resolutions"])]
    assert r_max and all(c["key"].startswith(f"r{front['trained_family']['resolutions'][0]}-")
                         for p in front["pools"] for c in p["candidates"])
    at.run()
    _assert_clean(at)
    assert _charts(at) >= 1


# ---------------------------------------------------------------------------- a study in the runs folder
@pytest.fixture(scope="module")
def study_root(tmp_path_factory) -> Path:
    """A runs root with a real tiny study directly below it (trained once per session, shared with test_pssviz_study)."""
    from test_pssviz_study import build_tiny_study

    return build_tiny_study(tmp_path_factory).parent


def test_a_study_in_the_runs_folder_opens_on_the_study_page(study_root, monkeypatch):
    from pssviz import study as studies

    study = studies.load_study_dir(studies.find_study(study_root))
    at = _app(study_root, monkeypatch)
    _assert_clean(at)
    assert at.radio(key="page").options == _menu(study=True) and at.header[0].value == "Study"
    # the first tab: the two figures as inline SVG (drawn with the text); the hidden tabs are not even computed
    svgs = [m.value for m in at.markdown if 'class="pss-chart"' in m.value]
    assert len(svgs) == 2, "accuracy, differences"
    assert 'data-name="pss"' in svgs[0] and 'data-name="random"' in svgs[0] and 'data-name="pss − random"' in svgs[1]
    assert not at.get("plotly_chart") and not at.dataframe, "the hidden tabs' charts and tables are not sent"
    assert [t.label for t in at.tabs] == ["Accuracy per budget", "Pareto fronts", "Tables 6 & 8", "Cost & method"]
    texts = [m.value for m in at.markdown]
    reading = next(i for i, t in enumerate(texts) if t.startswith("**Reading.** "))
    assert reading < next(i for i, t in enumerate(texts) if t.startswith("Recipe `smoke`")), "the conclusion first"
    assert all(any(s in t for t in texts) for s in study.doc["reading"]), "study.json's own sentences"
    assert any(t.startswith("| budget | pss | random |") for t in texts), "the numbers as report.md's tables"
    assert any(t.startswith("| budget | compared with | difference [95% CI] | verdict (Holm) |") for t in texts)
    assert at.get("download_button"), "report.html can be downloaded"
    at.session_state["study_view"] = "Pareto fronts"
    at.run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 1 and not [m for m in at.markdown if 'class="pss-chart"' in m.value]
    assert sorted(t["meta"] for t in specs[0]["data"]) == ["pss-s0", "pss-s1", "random-s0", "random-s1"]
    at.session_state["study_view"] = "Tables 6 & 8"
    at.run()
    assert [s.value for s in at.subheader][1:3] == list(studies.TABLES.values()), "Tables 6 and 8"
    assert len(at.dataframe) == 4, "two tables each for Tables 6 and 8"
    at.session_state["study_view"] = "Cost & method"
    at.run()
    assert len(at.dataframe) == 1 and any("Method" in m.value for m in at.markdown)
    _assert_clean(at)
    # the run pages work on the study's runs
    _goto(at, "Front & Export")
    _assert_clean(at)
    assert Path(at.selectbox(key="run").value).parent.name == "runs" and _charts(at) >= 1
    # a runs folder without a study: the Study page goes, the run pages stay
    _goto(at, "Study")
    at.text_input(key="runs_root").set_value(str(study_root / "study" / "runs")).run()
    _assert_clean(at)
    assert at.radio(key="page").options == _menu() and at.header[0].value == "Overview"


def test_a_damaged_study_warns_where_it_matters_and_never_crashes(study_root, tmp_path, monkeypatch):
    """report.md gone: one warning at the top (not again in each tab); a run's front unreadable: the first tab is
    whole and the fronts tab names the run; study.json without its comparison: a one-line error, no traceback."""
    root = tmp_path / "root"
    shutil.copytree(study_root, root)
    study = root / "study"
    (study / "report.md").unlink()
    front = next(study.glob("runs/*/calibration/front.json"))
    front.write_text("{not json")
    at = _app(root, monkeypatch)
    assert not at.exception and at.header[0].value == "Study"
    assert [w.value for w in at.warning] == ["report.md is missing; rerun `pss study` to write it"]
    assert len([m for m in at.markdown if 'class="pss-chart"' in m.value]) == 2
    at.session_state["study_view"] = "Pareto fronts"
    at.run()
    warnings = [w.value for w in at.warning]
    assert warnings[0].startswith("report.md is missing") and len(warnings) == 2, warnings
    assert front.parent.parent.name in warnings[1] and at.get("plotly_chart")
    doc = json.loads((study / "study.json").read_text())
    doc["comparison"] = [{"budget": 1.0}]  # an entry without its label and strategies
    (study / "study.json").write_text(json.dumps(doc))
    at = _app(root, monkeypatch)
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("Cannot open this study:") and "lacks a required field" in at.error[0].value
    assert "\n" not in at.error[0].value


def test_the_study_page_follows_study_json(study_root, tmp_path, monkeypatch):
    """Change numbers in a copy of study.json (a cell made not comparable, a difference made a clear win; its stored
    reading dropped, as after a hand edit): the page's sentences, figures and tables change with it."""
    from pss.io.study import reading_sentences
    from test_pssviz_study import NOT_COMPARABLE, with_a_not_comparable_cell

    root = tmp_path / "root"
    shutil.copytree(study_root, root, ignore=shutil.ignore_patterns("*.pt", "report.html"))
    path = root / "study" / "study.json"
    doc = with_a_not_comparable_cell(json.loads(path.read_text()))
    last = doc["comparison"][-1]
    last["vs_pss"]["random"].update(comparable=True, verdict="different", significant=True, mean_difference=0.0789,
                                      ci95=[0.05, 0.1], p_holm=0.001)
    path.write_text(json.dumps(doc))
    at = _app(root, monkeypatch)
    _assert_clean(at)
    texts = [m.value for m in at.markdown]
    sentences = reading_sentences(doc)
    assert all(any(s in t for t in texts) for s in sentences)
    assert any(f"pss ahead at {last['label']} (+7.89 points)" in t for t in texts), "the changed number is in the reading"
    assert any(f"not comparable at {doc['comparison'][0]['label']}" in t for t in texts)
    accuracy_svg, difference_svg = [t for t in texts if 'class="pss-chart"' in t]
    assert accuracy_svg.count('<g class="gap"') == 1 and html.escape(NOT_COMPARABLE) in accuracy_svg, "a mark with its reason"
    assert difference_svg.count('<g class="gap"') == 1 and difference_svg.count('data-filled="true"') >= 1
    table = next(t for t in texts if t.startswith("| budget | pss | random |"))
    assert f"| ≤ {doc['comparison'][0]['label']} | " in table and " | — |" in table
    differences = next(t for t in texts if t.startswith("| budget | compared with |"))
    assert f"| ≤ {doc['comparison'][0]['label']} | random | — | not comparable | – | – | – |" in differences
    assert any(NOT_COMPARABLE in t for t in texts if t.startswith("**Not comparable**"))


def test_the_default_runs_root_opens_on_the_shipped_study(monkeypatch):
    """A fresh clone's `streamlit run app/main.py` (no $PSS_RUNS) shows the bundled default study first."""
    from pssviz import study as studies

    monkeypatch.delenv("PSS_RUNS", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    _assert_clean(at)
    assert at.header[0].value == "Study"
    shipped = studies.load_study_dir(helpers.REPO_ROOT / "sample_checkpoints" / "fashion-mnist-study")
    accuracy_svg = next(m.value for m in at.markdown if 'class="pss-chart"' in m.value)
    positions = [accuracy_svg.index(f'<g class="series" data-name="{arm}">') for arm in ("pss", "uniform", "mutual", "random", "pse")]
    assert positions == sorted(positions), "every strategy, in the study's order"
    assert all(any(s in m.value for m in at.markdown) for s in studies.reading(shipped.doc))
    at.session_state["study_view"] = "Pareto fronts"
    at.run()
    assert len(json.loads(at.get("plotly_chart")[0].proto.spec)["data"]) >= 10, "every shipped run's front, overlaid"
    runs = at.selectbox(key="run").options
    assert sum("fashion-mnist-study" in r for r in runs) == 10 and any("cifar10-subset-mbv1" in r for r in runs)


def test_without_a_study_the_app_is_unchanged(monkeypatch):
    at = _app(SAMPLE, monkeypatch)
    _assert_clean(at)
    assert at.radio(key="page").options == _menu() and at.header[0].value == "Overview"
    assert not any("Study" in c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------------------- teaching pages, links
@pytest.mark.parametrize("page", TEACH)
def test_teaching_pages_need_no_run_and_lead_on(page, monkeypatch):
    at = _goto(_app(SAMPLE, monkeypatch), page)
    _assert_clean(at)
    assert at.header[0].value == page and _charts(at) + len(at.get("image")) >= 1
    nxt = [b for b in at.button if b.label.startswith("Next:")]
    assert len(nxt) == 1
    nxt[0].click().run()
    _assert_clean(at)
    assert at.radio(key="page").value != page and at.header[0].value == at.radio(key="page").value


def test_the_link_holds_folder_run_page_epoch_and_budget(monkeypatch):
    """A shared link reopens the same view: runs folder, run, page, epoch and budget all come from the URL."""
    monkeypatch.setenv("PSS_RUNS", str(SAMPLE.parent))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"folder": str(SAMPLE.parent), "run": SAMPLE.name, "page": "pools", "epoch": "12"})
    at.run()
    _assert_clean(at)
    assert at.header[0].value == "Pools" and Path(at.selectbox(key="run").value).name == SAMPLE.name
    assert at.select_slider(key="pools_epoch").value == 12
    _goto(at, "Widths")
    assert at.select_slider(key="widths_epoch").value == 12, "the epoch travels between pages through the link"
    at.select_slider(key="widths_epoch").set_value(30).run()
    assert at.query_params["epoch"] in ("30", ["30"])
    _goto(at, "Front & Export")
    slider = at.select_slider(key="budget_macs")
    slider.set_value(slider.options[10]).run()
    budget = at.query_params["budget"]
    budget = budget[0] if isinstance(budget, list) else budget
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params.update({"folder": str(SAMPLE.parent), "run": SAMPLE.name, "page": "front-export", "budget": budget})
    again.run()
    _assert_clean(again)
    assert again.select_slider(key="budget_macs").value == slider.options[10]
    assert _chosen_key(again) == _chosen_key(at)


def test_a_linked_run_that_is_missing_says_so(monkeypatch):
    monkeypatch.setenv("PSS_RUNS", str(SAMPLE.parent))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"run": "no-such-run", "page": "overview"})
    at.run()
    _assert_clean(at)
    assert any("no-such-run" in w.value and "not in" in w.value for w in at.warning)
    assert at.header[0].value == "Overview" and _charts(at) >= 1


def test_overview_overlays_the_compared_runs_and_lists_what_differs(monkeypatch):
    root = helpers.REPO_ROOT / "sample_checkpoints" / "fashion-mnist-study" / "runs"
    at = _goto(_app(root, monkeypatch), "Overview")
    folder = Path(at.selectbox(key="run").value).parent  # options are shown by name; values are paths
    at.selectbox(key="run").set_value(str(folder / "pss-s0")).run()
    at.multiselect(key="compare").set_value([str(folder / "uniform-s0"), str(folder / "pss-s1")]).run()
    _assert_clean(at)
    spec = json.loads(next(c.proto.spec for c in at.get("plotly_chart") if "selected runs" in c.proto.spec))
    assert sorted(t["name"] for t in spec["data"] if t.get("showlegend")) == ["pss-s0", "pss-s1", "uniform-s0"]
    diff = next(d.value for d in at.dataframe if "pss-s1" in d.value.columns)
    assert {"seed", "strategy"} <= set(diff.index) and "epochs" not in diff.index
    at.slider(key="smoothing").set_value(0.5).run()
    _assert_clean(at)
    assert any("smoothed" in c.proto.spec for c in at.get("plotly_chart"))


# ---------------------------------------------------------------------------- the first page stays light
FIRST_PAGE_PROBE = """
import os, sys, time
from streamlit.testing.v1 import AppTest
os.environ.pop("PSS_RUNS", None)
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
assert not at.exception, [e.value for e in at.exception]
assert at.header[0].value == "Study", at.header[0].value
heavy = ["views", "eas", "pandas", "pssviz.figures", "pssviz.analysis", "pssviz.eas", "pssviz.teach", "torch"]
print("LOADED", [m for m in heavy if m in sys.modules])
at.session_state["study_view"] = "Pareto fronts"
at.run()
print("AFTER", [m for m in heavy if m in sys.modules])
"""


def test_the_first_page_imports_none_of_the_run_pages(tmp_path):
    """Opening the dashboard (the shipped study's first tab) imports no run page, no plotly figure module, no
    pandas and no torch: what keeps the first page within its time (bench/first_page.py). A top-level import of
    views, eas, pandas or pssviz.figures in main.py, state.py, study_page.py or pssviz's first-page modules would
    fail this; opening the fronts tab then loads the figures."""
    import subprocess
    import sys

    probe = tmp_path / "probe.py"
    probe.write_text(FIRST_PAGE_PROBE)
    out = subprocess.run([sys.executable, str(probe), APP], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith(("LOADED", "AFTER"))}
    assert lines["LOADED"] == "[]", lines
    assert "pssviz.figures" in lines["AFTER"] and "torch" not in lines["AFTER"] and "views" not in lines["AFTER"], lines
