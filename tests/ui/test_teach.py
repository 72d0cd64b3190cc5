"""The teaching pages (app/teach.py: Start here, Sampling playground) and their helpers (pssviz/teach.py).

main.py does not route to them yet, so the pages run under AppTest in a small script that registers them the way
main.py is meant to: a page radio keyed "page", the header, the page body, and the Next button at the bottom.
Every number the playground shows is checked against the library's own Eq. 3 / Eq. 6 functions.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import numpy as np
import pytest

import helpers
from pss.sampling.prioritized import pool_temperature, prioritized_probs, space_sampling_probability
from pssviz import teach as toy

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP_DIR = helpers.REPO_ROOT / "app"
sys.path.insert(0, str(APP_DIR))  # app/ modules, as main.py puts them on the path
import teach  # noqa: E402

PAGES = [teach.START_PAGE, "Overview", "Pools", teach.PLAYGROUND_PAGE, "Sampling", "Widths", "Front & Export"]
PAPER_SYMBOLS = ["θ", "δ", "π", "m", "p", "η", "q", "S", "C(·)", "t, T", "o", "r", "M"]

SCRIPT = f"""
import sys
sys.path.insert(0, {str(APP_DIR)!r})
import streamlit as st
import teach

PAGES = {PAGES!r}
page = st.radio("Page", PAGES, key="page")
st.header(page)
if page == teach.START_PAGE:
    teach.start_here(PAGES)
elif page == teach.PLAYGROUND_PAGE:
    teach.sampling_playground()
else:
    st.write(f"(the {{page}} page)")
teach.next_page_button(page, PAGES)
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("teach") / "pages.py"
    path.write_text(SCRIPT)
    return str(path)


def _app(script: str, page: str = teach.START_PAGE) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.run()
    if page != teach.START_PAGE:
        at.radio(key="page").set_value(page).run()
    _assert_clean(at)
    return at


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _values(v) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (plotly >= 6)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _specs(at: AppTest) -> dict[str, dict]:
    """The playground's charts by key suffix: q, draws, schedule."""
    charts = at.get("plotly_chart")
    assert len(charts) == 3, "q, draws and the schedule"
    return dict(zip(["q", "draws", "schedule"], (json.loads(c.proto.spec) for c in charts)))


def _trace(spec: dict, meta: str) -> dict:
    found = [t for t in spec["data"] if t.get("meta") == meta]
    assert len(found) == 1, [t.get("meta") for t in spec["data"]]
    return found[0]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# ---------------------------------------------------------------------------- the glossary and its hover help
def test_the_glossary_defines_every_paper_symbol_in_a_sentence_or_two():
    assert set(PAPER_SYMBOLS) <= set(teach.GLOSSARY)
    for sym, text in teach.GLOSSARY.items():
        assert text.strip() and text.endswith("."), sym
        assert len(text) <= 320, f"{sym}: a definition is one or two sentences"
        assert text.count(". ") <= 2, f"{sym}: {text}"


def test_symbol_help_combines_definitions_for_a_tooltip():
    tip = teach.symbol_help("p", "η")
    assert tip.index(teach.GLOSSARY["p"]) < tip.index(teach.GLOSSARY["η"])
    assert tip.startswith("**p** (exploration probability, Eq. 3): ")
    assert tip.count("\n\n") == 1
    assert teach.symbol_help("eta") == teach.symbol_help("η")
    assert teach.symbol_help("t") == teach.symbol_help("T") == teach.symbol_help("t, T")
    assert teach.symbol_help("θ", "theta") == teach.symbol_help("θ"), "each definition once"
    with pytest.raises(KeyError, match="no glossary entry for 'zeta'"):
        teach.symbol_help("zeta")


# ---------------------------------------------------------------------------- Start here
def test_start_here_explains_pictures_and_lists_every_symbol(script):
    at = _app(script)
    assert at.header[0].value == teach.START_PAGE
    text = " ".join(m.value for m in at.markdown)
    for phrase in ("resource-adaptive supernet", "Weight sharing", "What PSS-Net adds", "pool"):
        assert phrase in text
    image = at.get("image")
    assert len(image) == 1 and image[0].proto.imgs[0].url.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(image[0].proto.imgs[0].url.split(",", 1)[1]) == teach.LOOP_SVG.read_bytes()
    assert any("One training batch" in c.value for c in at.caption), "the picture is explained"
    assert len(at.table) == 1
    table = at.table[0].value
    assert list(table["symbol"]) == list(teach.GLOSSARY), "the table has every symbol, in order"
    assert list(table["meaning"]) == list(teach.GLOSSARY.values())
    hover = {m.value.strip("*"): m.proto.help for m in at.markdown if m.proto.help}
    assert hover == {sym: teach.symbol_help(sym) for sym in teach.GLOSSARY}, "every symbol has its hover help"


def test_the_tour_buttons_open_their_page(script):
    at = _app(script)
    labels = [b.label for b in at.button if b.key and b.key.startswith("tour_")]
    assert labels == [f"{p} →" for p in PAGES[1:]], "every other page, in the tour's order"
    at.button(key="tour_pools").click().run()
    _assert_clean(at)
    assert at.radio(key="page").value == "Pools" and at.header[0].value == "Pools"


def test_the_tour_lists_only_the_pages_there_are(script):
    at = AppTest.from_function(_start_with_two_pages, default_timeout=60)
    at.run()
    _assert_clean(at)
    assert [b.label for b in at.button] == ["Sampling playground →"]


def _start_with_two_pages():
    import sys

    import helpers

    sys.path.insert(0, str(helpers.REPO_ROOT / "app"))
    import teach

    teach.start_here([teach.START_PAGE, teach.PLAYGROUND_PAGE])


# ---------------------------------------------------------------------------- the Next button
def test_next_page_follows_the_guided_path():
    assert teach.next_page(teach.START_PAGE, PAGES) == "Overview"
    assert teach.next_page("Pools", PAGES) == teach.PLAYGROUND_PAGE
    assert teach.next_page(teach.PLAYGROUND_PAGE, PAGES) == "Sampling"
    assert teach.next_page("Front & Export", PAGES) is None, "the last page"
    assert teach.next_page("Front & Export", [*PAGES, "Study"]) == "Study"
    assert teach.next_page("Overview", ["Study", "Overview", "Pools"]) == "Pools", "main.py's order does not matter"
    assert teach.next_page("Pools", ["Overview", "Pools", "Mystery"]) == "Mystery", "unknown pages go last"
    assert teach.next_page("Nowhere", PAGES) is None


def test_next_page_button_sets_the_page(script):
    at = _app(script)
    assert at.button(key="next_page_start-here").label == "Next: Overview →"
    at.button(key="next_page_start-here").click().run()
    _assert_clean(at)
    assert at.session_state["page"] == "Overview"
    assert at.radio(key="page").value == "Overview" and at.header[0].value == "Overview"
    at.button(key="next_page_overview").click().run()
    at.button(key="next_page_pools").click().run()
    assert at.header[0].value == teach.PLAYGROUND_PAGE
    _assert_clean(at)


def test_the_last_page_leads_back_to_the_start(script):
    at = _app(script, "Front & Export")
    button = at.button(key="next_page_front-export")
    assert button.label == f"Back to {teach.START_PAGE} ↺"
    button.click().run()
    assert at.session_state["page"] == teach.START_PAGE and at.header[0].value == teach.START_PAGE


# ---------------------------------------------------------------------------- Sampling playground
def test_the_playground_draws_its_charts_with_captions(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    specs = _specs(at)
    assert [_values(t["y"]).size for t in specs["q"]["data"]] == [10, 10]
    assert len(at.caption) >= 4, "the pool and every chart are explained"
    metrics = _metrics(at)
    assert metrics["p: explore S"] == "30.0%" and metrics["η"] == "0.5"


@pytest.mark.parametrize("eta", [2.0, 0.5, 0.1, 0.01])
def test_moving_eta_changes_q_exactly_as_eq_6(script, eta):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.slider(key="teach_eta").set_value(eta).run()
    _assert_clean(at)
    m = toy.toy_pool(10, 0)["m"].to_numpy()
    q = _values(_trace(_specs(at)["q"], "q")["y"])
    np.testing.assert_allclose(q, prioritized_probs(m, eta), rtol=1e-12)
    start = _values(_trace(_specs(at)["q"], "q_start")["y"])
    np.testing.assert_allclose(start, prioritized_probs(m, 1.0), rtol=1e-12)
    assert _metrics(at)["η"] == f"{eta:.3g}"


def test_a_lower_eta_sharpens_q(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    tops = []
    for eta in (2.0, 0.5, 0.1, 0.01):
        at.slider(key="teach_eta").set_value(eta).run()
        tops.append(float(_values(_trace(_specs(at)["q"], "q")["y"]).max()))
    assert tops == sorted(tops) and tops[0] < 0.2 < 0.9 < tops[-1]


@pytest.mark.parametrize("p, from_space", [(0.0, 0), (1.0, 200)])
def test_p_zero_draws_only_from_the_pool_and_p_one_only_from_s(script, p, from_space):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.slider(key="teach_p").set_value(p).run()
    _assert_clean(at)
    draws = _specs(at)["draws"]
    assert _values(_trace(draws, "space")["y"]).tolist() == [from_space]
    assert int(_values(_trace(draws, "pool")["y"]).sum()) == 200 - from_space
    assert _metrics(at)["From S (explore)"] == f"{from_space} of 200"
    assert _metrics(at)["From the pool π (exploit)"] == f"{200 - from_space} of 200"


def test_the_draws_are_the_librarys_alg_3_with_the_pages_seed(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.slider(key="teach_p").set_value(0.2).run()
    at.slider(key="teach_eta").set_value(0.3).run()
    at.number_input(key="teach_seed").set_value(7).run()
    m = toy.toy_pool(10, 0)["m"]
    expected = toy.draw_counts(toy.simulate_draws(m, 200, 0.2, 0.3, seed=7), 10)["drawn"].tolist()
    draws = _specs(at)["draws"]
    shown = _values(_trace(draws, "space")["y"]).tolist() + _values(_trace(draws, "pool")["y"]).tolist()
    assert shown == expected
    mean = _values(_trace(draws, "expected")["y"])
    np.testing.assert_allclose(mean, [200 * 0.2, *(200 * 0.8 * prioritized_probs(m, 0.3))])


def test_the_schedule_mode_uses_eq_3(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.radio(key="teach_mode").set_value(teach.MODE_SCHEDULE).run()
    at.select_slider(key="teach_p_end").set_value(0.05)
    at.select_slider(key="teach_eta_end").set_value(0.1)
    at.slider(key="teach_progress").set_value(60).run()
    _assert_clean(at)
    p, eta = space_sampling_probability(0.05, 0.6, True), pool_temperature(0.1, 0.6, True)
    specs = _specs(at)
    assert _values(_trace(specs["schedule"], "now_p")["y"]).tolist() == [p]
    assert _values(_trace(specs["schedule"], "now_eta")["y"]).tolist() == [eta]
    table = toy.schedule_table(0.05, 0.1, 0.05)
    np.testing.assert_allclose(_values(_trace(specs["schedule"], "p")["y"]), table["p"])
    m = toy.toy_pool(10, 0)["m"].to_numpy()
    np.testing.assert_allclose(_values(_trace(specs["q"], "q")["y"]), prioritized_probs(m, eta), rtol=1e-12)
    assert _metrics(at)["p: explore S"] == f"{p:.1%}"


def test_before_the_pool_is_full_every_draw_explores(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.radio(key="teach_mode").set_value(teach.MODE_SCHEDULE).run()
    at.slider(key="teach_fills").set_value(40)
    at.slider(key="teach_progress").set_value(20).run()
    _assert_clean(at)
    assert _metrics(at)["p: explore S"] == "100.0%" and _metrics(at)["η"] == "1"
    assert _metrics(at)["From S (explore)"] == "200 of 200"
    assert any("not full yet" in i.value for i in at.info)


def test_a_new_pool_seed_and_size_give_a_new_pool(script):
    at = _app(script, teach.PLAYGROUND_PAGE)
    at.slider(key="teach_n").set_value(6)
    at.number_input(key="teach_pool_seed").set_value(3).run()
    _assert_clean(at)
    q = _values(_trace(_specs(at)["q"], "q")["y"])
    np.testing.assert_allclose(q, prioritized_probs(toy.toy_pool(6, 3)["m"], 0.5), rtol=1e-12)
    assert _metrics(at)["Entries in play"].endswith("of 6")


# ---------------------------------------------------------------------------- pssviz.teach (pure)
def test_toy_pool_is_seeded_and_sorted_best_first():
    pool = toy.toy_pool(12, 5)
    assert list(pool["entry"]) == [f"φ{j}" for j in range(1, 13)]
    assert pool["m"].is_monotonic_decreasing and (pool["m"] < 0).all()
    assert pool.equals(toy.toy_pool(12, 5)) and not pool.equals(toy.toy_pool(12, 6))
    with pytest.raises(ValueError):
        toy.toy_pool(0)


def test_simulated_draws_follow_p_and_q():
    m = [-0.5, -0.8, -1.0, -2.0]
    assert (toy.simulate_draws(m, 300, 0.0, 0.5)["source"] == toy.POOL).all()
    assert (toy.simulate_draws(m, 300, 1.0, 0.5)["entry"] == -1).all()
    drawn = toy.simulate_draws(m, 20000, 0.25, 0.4, seed=1)
    share_space = (drawn["source"] == toy.SPACE).mean()
    assert abs(share_space - 0.25) < 0.015
    counts = toy.draw_counts(drawn, len(m))["drawn"].to_numpy()[1:]
    np.testing.assert_allclose(counts / counts.sum(), prioritized_probs(m, 0.4), atol=0.015)
    assert (toy.simulate_draws(m, 200, 0.0, 1e-4)["entry"] == 0).all(), "a tiny η draws only the best"
    assert toy.simulate_draws(m, 50, 0.3, 0.5, seed=3).equals(toy.simulate_draws(m, 50, 0.3, 0.5, seed=3))


def test_a_pool_that_is_not_full_always_explores():
    drawn = toy.simulate_draws([-0.5, -1.0], 200, 0.01, 0.01, progress=0.9, pool_full=False)
    assert (drawn["source"] == toy.SPACE).all()


def test_schedule_table_is_eq_3():
    table = toy.schedule_table(0.01, 0.05, fills_at=0.25, points=11)
    grid = np.linspace(0, 1, 11).tolist()
    assert table["progress"].tolist() == pytest.approx(sorted([*grid, 0.25, 0.25])), "the jump is drawn upright"
    assert table[table["progress"] == 0.25]["pool_full"].tolist() == [False, True]
    assert toy.schedule_table(0.01, 0.05, fills_at=0.0, points=11)["progress"].tolist() == pytest.approx(grid)
    for x, full, p, eta in table[["progress", "pool_full", "p", "eta"]].itertuples(index=False):
        assert full == (x > 0.25) or (x == 0.25 and full in (True, False))
        assert p == space_sampling_probability(0.01, x, full) and eta == pool_temperature(0.05, x, full)
    assert table["p"].iloc[0] == 1.0 and table["p"].iloc[-1] == pytest.approx(0.01)
    assert toy.schedule_point(0.01, 0.05, 1.0) == (pytest.approx(0.01), pytest.approx(0.05))


def test_effective_entries():
    assert toy.effective_entries(np.full(8, 1 / 8)) == pytest.approx(8)
    assert toy.effective_entries([1.0, 0.0, 0.0]) == 1.0
    assert toy.effective_entries([]) == 0.0


def test_figures_have_the_named_traces():
    pool = toy.toy_pool(5, 0)
    q = toy.q_figure(pool, 0.2)
    assert [t.meta for t in q.data] == ["q", "q_start"]
    np.testing.assert_allclose(q.data[0].y, prioritized_probs(pool["m"], 0.2))
    drawn = toy.simulate_draws(pool["m"], 100, 0.5, 0.2)
    fig = toy.draws_figure(pool, drawn, 0.5, 0.2)
    assert [t.meta for t in fig.data] == ["space", "pool", "expected"]
    assert sum(fig.data[0].y) + sum(fig.data[1].y) == 100
    sched = toy.schedule_table(0.01, 0.01)
    assert [t.meta for t in toy.schedule_figure(sched).data] == ["p", "eta"]
    marked = toy.schedule_figure(sched, progress=0.5, p=0.1, eta=0.1)
    assert [t.meta for t in marked.data] == ["p", "now_p", "eta", "now_eta"]
    assert len(toy.schedule_figure(sched, p=0.3, eta=0.4).layout.shapes) == 2, "hand-set values as lines"


def test_pssviz_teach_does_not_import_torch(child_env):
    code = "import sys, pssviz.teach; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=helpers.REPO_ROOT, env=child_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
