"""The Superclasses (EAS) page under AppTest, on a real small run (CIFAR-10 subset, built-in map vehicles/animals,
superclass dropout 0.5): without a generator it says what to run; with one it shows the scenario's subnet, every
superclass at the budget, Fig. B, Table 1 and the generator's training; picking another scenario changes the subnet."""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import helpers
import pss
from pss.io.generator import read_scenarios
from pss.units import format_cost, format_quantity

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(helpers.APP)
PAGE = "Superclasses (EAS)"
SLUG = "superclasses-eas"


@pytest.fixture(scope="module")
def source_run(small_run) -> Path:
    """A 1-epoch PSS run trained with the built-in superclass map and superclass dropout 0.5, calibrated (the
    same arguments as tests/integration/test_eas.py, so a session trains it once)."""
    return small_run(calibrate=(64, 2), superclasses="builtin", superclass_dropout=0.5)


@pytest.fixture(scope="module")
def plain_root(source_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eas_plain")
    helpers.copy_run(source_run, root / "plain")
    return root


@pytest.fixture(scope="module")
def eas_root(source_run, tmp_path_factory) -> Path:
    """A runs folder holding ``eas``: the run with a generator (1 epoch) and scenarios of both superclasses at two
    budgets, by EAS and by the random baseline (2 samples each)."""
    root = tmp_path_factory.mktemp("eas_runs")
    run = helpers.copy_run(source_run, root / "eas")
    doc = pss.train_generator(run, settings=pss.settings_from(epochs=1, batch_size=64), device="cpu")
    lo, hi = doc["c_min"], doc["c_max"]
    budgets = [round(lo + 0.5 * (hi - lo), -3), round(lo + 0.9 * (hi - lo), -3)]
    for method in ("eas", "random"):
        pss.generate(run, "all", budgets, options=pss.GenerateOptions(samples=2), method=method, device="cpu")
    return root


def _app(root: Path, monkeypatch, **params) -> AppTest:
    monkeypatch.setenv("PSS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"page": SLUG, **params})
    at.run()
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _no_none(at: AppTest) -> None:
    for d in at.dataframe:
        cells = d.value.astype(str).to_numpy().ravel().tolist()
        assert "None" not in cells and "nan" not in cells, d.value


def _records(run: Path, method: str = "eas") -> dict[tuple[str, float], dict]:
    return {(r["superclass"], r["budget"]): r for r in read_scenarios(run) if r["method"] == method}


def _key(record: dict) -> str:
    s = record["structure"]
    return f"r{s['resolution']}-" + ".".join(map(str, s["widths"]))


def _shown_key(at: AppTest) -> str:
    codes = [c.value for c in at.code]
    assert codes, "the generated subnet's structure key is shown"
    return codes[0]


def _values(array) -> list:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"])).tolist()
    return list(array)


def _param(at: AppTest, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


# ---------------------------------------------------------------------------- (a) no generator
def test_a_run_without_a_generator_says_what_to_run(plain_root, monkeypatch):
    at = _app(plain_root, monkeypatch)
    _clean(at)
    assert at.header[0].value == PAGE and at.radio(key="page").value == PAGE
    assert PAGE in at.radio(key="page").options and at.radio(key="page").options[-1] == PAGE, "after Front & Export"
    assert any("no architecture generator" in i.value for i in at.info)
    run = str(plain_root / "plain")
    commands = at.code[0].value
    assert f"pss generate {run} --train" in commands and "--superclasses" not in commands, "the run's config has its map"
    assert f"pss generate {run} --superclass all --budget" in commands
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Superclass dropout"] == "0.5" and metrics["Superclasses"] == "2" and metrics["Generator"] == "none"
    assert any("Superclass dropout: 0.5" in c.value for c in at.caption)
    superclass_map = next(d.value for d in at.dataframe if "superclass" in d.value.columns)
    assert list(superclass_map["no."]) == [1, 2] and list(superclass_map["superclass"]) == ["vehicles", "animals"]
    assert superclass_map["classes"].iloc[0] == "airplane, automobile, ship, truck"
    _no_none(at)
    # the Overview names the map and the dropout rate, too
    at.radio(key="page").set_value("Overview").run()
    _clean(at)
    info = next(d.value for d in at.dataframe if "value" in d.value.columns)["value"]
    assert info["superclass map"].startswith("built-in") and info["superclass dropout"].startswith("0.5")


def test_the_next_button_leads_from_front_export_to_the_eas_page(plain_root, monkeypatch):
    at = _app(plain_root, monkeypatch, page="front-export")
    _clean(at)
    nxt = [b for b in at.button if b.label.startswith("Next:")]
    assert [b.label for b in nxt] == [f"Next: {PAGE} →"]
    nxt[0].click().run()
    _clean(at)
    assert at.header[0].value == PAGE and _param(at, "page") == SLUG


# ---------------------------------------------------------------------------- (b) generator and scenarios
def test_the_page_shows_the_scenario_its_superclasses_figure_b_and_table_1(eas_root, monkeypatch):
    run = eas_root / "eas"
    records = _records(run)
    budgets = sorted({b for _, b in records})
    at = _app(eas_root, monkeypatch)
    _clean(at)
    assert at.selectbox(key="eas_superclass").value == "vehicles"
    assert at.selectbox(key="eas_superclass").options[1].startswith("2. animals ("), "numbered from 1, with the classes"
    kind = json.loads((run / "generator" / "generator.json").read_text())["cost_kind"]
    assert at.select_slider(key="eas_budget").value == format_cost(budgets[0], kind), "opens on a generated budget"
    chosen = records[("vehicles", budgets[0])]
    assert _shown_key(at) == _key(chosen)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Superclass dropout"] == "0.5" and metrics["Scenarios generated"] == "4"
    assert metrics["Input"] == f"{chosen['structure']['resolution']} px"
    assert metrics["MACs"] == format_quantity(chosen["costs"]["macs"])
    assert metrics["Test accuracy"] == f"{100 * chosen['test']['accuracy']:.1f}%"
    assert any(f"{chosen['test']['images']:,} images" in c.value for c in at.caption), "the image count beside the interval"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    specs = {s["layout"]["title"]["text"]: s for s in charts}
    assert len(specs) == 4, list(specs)
    profile = next(s for t, s in specs.items() if t == "Width profile: the subnet for vehicles")
    assert [t["name"].endswith(" px") for t in profile["data"]] == [True, True], "the subnet and its uniform twin"
    both = next(s for t, s in specs.items() if t.startswith("Width profile o<sub>"))
    assert sorted(t["name"].split(",")[0] for t in both["data"]) == ["animals", "vehicles"]
    similarity = next(s for t, s in specs.items() if "EAS Fig. B" in t)
    assert sorted(t["name"] for t in similarity["data"]) == ["EAS (generator)", "random"]
    assert all(len(_values(t["x"])) == 2 and all(0 <= y <= 1 for y in _values(t["y"])) for t in similarity["data"])
    training = next(s for t, s in specs.items() if t == "Generator training")
    assert len(training["data"]) == 3
    table = next(d.value for d in at.dataframe if "mean cost" in d.value.columns)
    assert list(table.columns) == ["budget", "method", "vehicles", "animals", "mean", "mean cost"]
    assert len(table) == 4 and list(table["method"]) == ["random", "EAS (generator)"] * 2
    assert table["vehicles"].str.contains(r"^\d+\.\d \(\d+\.\d–\d+\.\d\)$").all()
    methods = next(d.value for d in at.dataframe if "candidates" in d.value.columns)
    assert list(methods["method"]) == ["random", "EAS (generator)"], "the same scenario by each recorded method"
    channels = next(d.value for d in at.dataframe if "subnet" in d.value.columns)
    assert list(channels["superclass"]) == ["vehicles", "animals", ""] and channels["subnet"].iloc[-1] == "o_max"
    _no_none(at)
    assert _param(at, "superclass") == "vehicles" and pss.parse_quantity(_param(at, "budget")) == pytest.approx(budgets[0], rel=1e-3)
    assert at.button(key="eas_export_button") is not None, "a calibrated run can export the generated subnet"


# ---------------------------------------------------------------------------- (c) another scenario
def test_another_superclass_or_budget_changes_the_shown_subnet(eas_root, monkeypatch):
    run = eas_root / "eas"
    records = _records(run)
    budgets = sorted({b for _, b in records})
    kind = json.loads((run / "generator" / "generator.json").read_text())["cost_kind"]
    at = _app(eas_root, monkeypatch)
    shown = {}
    for superclass in ("vehicles", "animals"):
        at.selectbox(key="eas_superclass").set_value(superclass).run()
        for budget in budgets:
            at.select_slider(key="eas_budget").set_value(format_cost(budget, kind)).run()
            _clean(at)
            shown[superclass, budget] = _shown_key(at)
            assert shown[superclass, budget] == _key(records[superclass, budget]), (superclass, budget)
            assert at.subheader[0].value == f"Generated subnet: {superclass}, budget {format_cost(budget, kind)}"
            assert _param(at, "superclass") == superclass
    assert len(set(shown.values())) > 1, "different scenarios, different subnets"
    # the link reopens the same scenario
    again = _app(eas_root, monkeypatch, superclass="animals", budget=format_quantity(budgets[1]))
    _clean(again)
    assert again.selectbox(key="eas_superclass").value == "animals"
    assert _shown_key(again) == _key(records["animals", budgets[1]])
    odd = _app(eas_root, monkeypatch, superclass="no-such-superclass", budget="a lot")
    _clean(odd)
    assert odd.selectbox(key="eas_superclass").value == "vehicles", "an unreadable link falls back to the defaults"


def test_a_scenario_not_generated_yet_is_generated_from_the_page(eas_root, tmp_path, monkeypatch):
    run = helpers.copy_run(eas_root / "eas", tmp_path / "runs" / "eas")
    at = _app(tmp_path / "runs", monkeypatch)
    recorded = {b for _, b in _records(run)}
    slider = at.select_slider(key="eas_budget")
    kind = json.loads((run / "generator" / "generator.json").read_text())["cost_kind"]
    fresh = next(o for o in reversed(slider.options) if all(o != format_cost(b, kind) for b in recorded))
    slider.set_value(fresh).run()
    _clean(at)
    assert any(i.value.startswith("No architecture of **vehicles**") for i in at.info)
    assert any("Not generated at this budget" in e.value or "No superclass has" in e.value for e in [*at.info, *at.caption])
    at.button(key="eas_generate").click().run(timeout=300)
    _clean(at)
    new = [r for (s, b), r in _records(run).items() if s == "vehicles" and b not in recorded]
    assert len(new) == 1 and format_cost(new[0]["budget"], kind) == fresh
    if new[0]["structure"]:
        assert _shown_key(at) == _key(new[0])
    else:
        assert any("nothing it drew fits" in w.value for w in at.warning)


@pytest.mark.slow
def test_the_generated_subnet_is_exported_for_download(eas_root, tmp_path, monkeypatch):
    run = helpers.copy_run(eas_root / "eas", tmp_path / "runs" / "eas")
    at = _app(tmp_path / "runs", monkeypatch)
    at.button(key="eas_export_button").click().run(timeout=600)
    _clean(at)
    held = at.session_state["eas_export"]
    with zipfile.ZipFile(io.BytesIO(held["zip"])) as zf:
        names = zf.namelist()
        card = json.loads(zf.read(f"{held['name']}/card.json"))
    assert {f"{held['name']}/{f}" for f in ("card.json", "model.pt2", "model.onnx", "state_dict.pt")} <= set(names)
    assert card["superclass"]["name"] == "vehicles" and card["selection"]["rule"] == "generator"
    assert [b.label for b in at.get("download_button")] == ["Download the exported model (.zip)"]
    assert _shown_key(at) == card["key"], "the card shows the exported subnet (the export records it)"
    assert held["name"].endswith("-vehicles")
    shutil.rmtree(run)
