"""Two teaching pages: *Start here* (what a resource-adaptive supernet is, the training loop, the symbols, a guided
tour) and the *Sampling playground* (Eq. 3 and Eq. 6 on a toy pool you can edit).

main.py registers them like the run pages, but they need no run::

    import teach
    # names: teach.START_PAGE first, teach.PLAYGROUND_PAGE after "Sampling"
    if page == teach.START_PAGE:
        teach.start_here(names)
    elif page == teach.PLAYGROUND_PAGE:
        teach.sampling_playground()
    ...
    teach.next_page_button(page, names)   # at the bottom of every page

Other pages can show a symbol's meaning on hover: ``st.slider(..., help=teach.symbol_help("p"))``.
The numbers come from the library through :mod:`pssviz.teach` (Eq. 3, Eq. 6, Alg. 3 lines 1-7).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st


if TYPE_CHECKING:
    import pandas as pd

START_PAGE = "Start here"
PLAYGROUND_PAGE = "Sampling playground"
EAS_PAGE = "Superclasses (EAS)"  # a run page (app/eas.py), after Front & Export
LOOP_SVG = Path(__file__).resolve().parents[1] / "docs" / "images" / "pss-loop.svg"
PLOT_CONFIG = {"displaylogo": False}
PAGE_KEY = "page"  # main.py's page radio

# ---------------------------------------------------------------------------- the symbols
#: (symbol, name, where in the paper, where in this dashboard, plain-words definition)
_SYMBOLS = [
    ("θ", "budget", "Eq. 1, Alg. 1", "Overview, Pools, Front & Export",
     "A resource budget θᵗ: how much a subnet may cost, in multiply-adds (MACs), parameters or milliseconds of "
     "latency. PSS-Net trains for T budgets at once; together they are Θ."),
    ("δ", "tolerance", "Eq. 1", "Overview, Pools",
     "How far from a budget a subnet's cost may lie: a subnet serves θᵗ when its cost is within θᵗ ± δ."),
    ("π", "subnet pool", "Alg. 1, Alg. 3", "Pools, Sampling",
     "The pool πᵗ of one budget θᵗ: the best subnets (at most M) met so far whose cost fits θᵗ ± δ, each with "
     "its score m, best first. Π is the set of all T pools."),
    ("m", "performance metric", "Alg. 3 l. 15", "Pools, Sampling",
     "A pool entry's score: minus its training loss, averaged over the batches in which it was trained "
     "(a moving average with weight λ). Higher is better."),
    ("p", "exploration probability", "Eq. 3", "Sampling, Sampling playground",
     "The chance that a batch's medium subnet is a fresh one from the whole space S instead of one from the pool "
     "(1 − p). It is 1 until the pool is full, then shrinks towards p_end."),
    ("η", "temperature", "Eq. 6", "Sampling, Sampling playground",
     "How evenly the pool's entries are picked: a large η picks them almost alike, a small η almost always "
     "picks the best m. It shrinks from 1 towards η_end during training."),
    ("q", "pool probabilities", "Eq. 6", "Pools, Sampling, Sampling playground",
     "The chance of picking each pool entry when a batch samples from the pool: "
     "q_j = exp(m_j / η) / Σᵢ exp(m_i / η), a softmax of the scores m; the q of a pool add up to 1."),
    ("S", "structure space", "Sec. 3.1", "Sampling",
     "Every subnet the supernet holds: every choice of channels oᵢ per layer (multiples of 8 between oᵢᵐⁱⁿ and "
     "oᵢᵐᵃˣ) and of input resolution r."),
    ("C(·)", "cost", "Eq. 1", "Pools, Front & Export",
     "C(φ) is what subnet φ consumes (multiply-adds, parameters or latency): the quantity a budget θ limits."),
    ("t, T", "budget index, number of budgets", "Eq. 1", "Overview, Pools, Widths",
     "t numbers the budgets and their pools (θᵗ, πᵗ for t = 1 … T); T is how many budgets are trained at once."),
    ("e, E", "epoch, epochs", "Eq. 3", "Overview, Sampling",
     "Training runs for E epochs and e is the current one; (e − 1)/E, the training progress from 0 to 1, drives "
     "the schedules of p and η."),
    ("o", "channels (width)", "Sec. 3.1", "Widths",
     "oᵢ is how many output channels layer i of a subnet keeps; the subnet uses the first oᵢ channels of the "
     "supernet's layer, between oᵢᵐⁱⁿ and oᵢᵐᵃˣ."),
    ("r", "input resolution", "Sec. 3.1", "Front & Export",
     "The size in pixels of the images a subnet reads; smaller images make every layer cheaper."),
    ("M", "pool size", "Alg. 3", "Pools",
     "How many subnets a pool keeps at most (50 in the paper). When a full pool gets a new subnet, the worst "
     "by m is dropped."),
    ("φ", "subnet structure", "Sec. 3.1", "Pools, Widths, Front & Export",
     "A subnet's shape: the width oᵢ of every layer plus the resolution r. φᵐᵃˣ is the whole supernet, φᵐⁱⁿ the "
     "smallest subnet."),
    ("W", "shared weights", "Sec. 3.1", "Front & Export",
     "The supernet's one set of weights. Every subnet uses a slice of it, so training any subnet trains the "
     "weights all of them share."),
    ("λ", "metric smoothing", "Alg. 3 l. 15", "Pools",
     "How slowly m forgets: when an entry is trained again, m ← λ·m + (1 − λ)·(−loss of this batch)."),
    ("p_end", "final exploration", "Eq. 3", "Sampling, Sampling playground",
     "The value p reaches at the end of training (0.01 in the paper): p = p_end^((e−1)/E) once the pool is full."),
    ("η_end", "final temperature", "Eq. 6", "Sampling, Sampling playground",
     "The value η reaches at the end of training (0.01 in the paper), shrinking the same way as p."),
    ("k", "candidates per budget", "Alg. 1 l. 11-17", "Front & Export",
     "After training, the k best entries of each pool by m get their batch-norm statistics re-estimated and are "
     "validated; the most accurate one becomes that budget's subnet."),
]
GLOSSARY: dict[str, str] = {sym: text for sym, _name, _paper, _pages, text in _SYMBOLS}
#: other spellings accepted by :func:`symbol_help` (ASCII names, capitals, the single letters of "t, T" and "e, E")
ALIASES: dict[str, str] = {
    "theta": "θ", "Θ": "θ", "delta": "δ", "pi": "π", "Π": "π", "eta": "η", "C": "C(·)", "C()": "C(·)",
    "t": "t, T", "T": "t, T", "e": "e, E", "E": "e, E", "phi": "φ", "lambda": "λ", "lam": "λ",
    "eta_end": "η_end", "o_i": "o",
}


def _symbol(name: str) -> str:
    if name in GLOSSARY:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise KeyError(f"no glossary entry for {name!r}; known: {', '.join(GLOSSARY)}")


def symbol_help(*symbols: str) -> str:
    """The plain-words definitions of ``symbols``, one paragraph each: for Streamlit's ``help=`` tooltips.

    ``symbol_help("p", "η")`` -> "**p** (exploration probability, Eq. 3): ...\\n\\n**η** ...". Aliases such as
    "eta" or "theta" work; an unknown symbol raises KeyError (a typo should fail a test, not hide a tooltip).
    """
    out = []
    for key in dict.fromkeys(_symbol(s) for s in symbols):
        _sym, name, paper, _pages, text = next(row for row in _SYMBOLS if row[0] == key)
        out.append(f"**{key}** ({name}, {paper}): {text}")
    return "\n\n".join(out)


def glossary_table() -> pd.DataFrame:
    """The glossary as the Start page shows it: symbol, name, meaning, where in the paper and in the dashboard."""
    import pandas as pd  # here: Start here's text goes out before pandas is imported

    return pd.DataFrame(
        [(sym, name, text, paper, pages) for sym, name, paper, pages, text in _SYMBOLS],
        columns=["symbol", "name", "meaning", "paper", "dashboard"],
    )


# ---------------------------------------------------------------------------- the guided tour
#: the pages in the order a newcomer should read them, with what each shows
GUIDED_PATH: dict[str, str] = {
    START_PAGE: "What a resource-adaptive supernet is, the training loop, the symbols.",
    "Overview": "One run at a glance: the training curves of the max, medium and min subnets and the budgets "
    "θ ± δ it trained for.",
    "Pools": "Every pool πᵗ at one epoch: its entries' costs C(φ) against their score m inside θᵗ ± δ, and what "
    "Alg. 3 did (new entries, evictions).",
    PLAYGROUND_PAGE: "A toy pool to play with: move p and η and watch q and the draws change.",
    "Sampling": "The same quantities in the real run: p and η per pool over the epochs, and q against how often "
    "each entry was really trained.",
    "Widths": "Which layers the best subnet of each budget keeps wide (oᵢ / oᵢᵐᵃˣ), against shrinking every layer "
    "alike.",
    "Front & Export": "After training: calibrate each pool's top-k, read the accuracy–cost front and download the "
    "subnet a budget buys.",
    EAS_PAGE: "One supernet for many deployments: the subnet an architecture generator picks for a superclass and a "
    "budget (EAS), how alike the superclasses' subnets are, and their accuracy per superclass.",
    "Study": "Several strategies and seeds compared on the test split: does prioritized sampling pay off?",
}


def slug(page: str) -> str:
    """The page's name in a link (?page=front-export, ?page=superclasses-eas): lower case, words joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", page.lower()).strip("-")


def tour_order(pages: list[str]) -> list[str]:
    """``pages`` in the guided order (:data:`GUIDED_PATH`); pages the tour does not know go last, in their order."""
    return [p for p in GUIDED_PATH if p in pages] + [p for p in pages if p not in GUIDED_PATH]


def next_page(current: str, pages: list[str]) -> str | None:
    """The page after ``current`` on the guided tour among ``pages`` (None after the last or for an unknown page)."""
    order = tour_order(list(pages))
    if current not in order:
        return None
    i = order.index(current)
    return order[i + 1] if i + 1 < len(order) else None


def _go(page: str) -> None:
    """Button callback: runs before main.py draws its page radio, so the radio opens on ``page``."""
    st.session_state[PAGE_KEY] = page


def next_page_button(current: str, pages: list[str]) -> str | None:
    """Draw "Next: X →" (X: the next page of the tour among ``pages``); on the last page, "Back to Start here".

    Clicking sets ``st.session_state["page"]`` (main.py's page radio). Returns the page the button leads to,
    or None when it draws nothing. Call it once per page run (its key is ``next_page_<slug of current>``).
    """
    target = next_page(current, pages)
    label = f"Next: {target} →" if target else None
    if target is None and START_PAGE in pages and current != START_PAGE:
        target, label = START_PAGE, f"Back to {START_PAGE} ↺"
    if target is None:
        return None
    st.divider()
    st.button(label, key=f"next_page_{slug(current)}", type="primary", on_click=_go, args=(target,),
              help=GUIDED_PATH.get(target))
    return target


# ---------------------------------------------------------------------------- Start here
WHAT = """
### One network, every size
Phones, laptops and servers can afford very different amounts of computation. The usual answer is to train one
network per device: a small one for the phone, a big one for the server. A **resource-adaptive supernet** is a
single network that holds a working **subnet** for every budget: keep only the first channels of each layer (and
feed it smaller images) and you get a smaller, faster network; keep everything and you get the full one.

### Weight sharing
The subnets are not copies. They are slices of one set of weights **W**: a small subnet uses the first few
channels of each layer, a bigger one uses the same channels and more. Training any subnet improves the weights they
all share, and you store one network instead of one per budget.

### Why you would want one
Train once, deploy anywhere. Given a device's budget **θ** (in multiply-adds, parameters or milliseconds), pick the
subnet that fits and export it as an ordinary model: no retraining, no separate search per device.

### The hard part
The supernet holds an astronomical number of subnets (every width of every layer times every input resolution:
the space **S**), and each training batch can afford only a few. Which ones? Earlier methods shrink every layer by
the same factor (US-Net, MutualNet) or pick subnets at random (one-shot NAS), then have to *search* for the best
subnet of each budget after training.

### What PSS-Net adds
1. **A pool of good subnets per budget.** For each budget θᵗ it keeps a pool **πᵗ** of the **M** best subnets it
   has met whose cost lies within θᵗ ± **δ**, each with a running score **m** (minus its training loss).
2. **Prioritized sampling.** Every batch trains the largest subnet, the smallest one and one medium subnet (the
   *sandwich rule*). The medium one is a fresh subnet from **S** with probability **p** (exploring), otherwise an
   entry of the pool (exploiting), better-scoring entries being likelier (probabilities **q**, temperature **η**).
   As training goes, p and η shrink: less exploring, more training of the best.
3. **No search afterwards.** When training ends each pool already holds the candidates: calibrate the top few,
   keep the most accurate per budget, export it.
"""

LOOP_CAPTION = (
    "One training batch. Left: subnets come from the structure space S (Eq. 4 draws one whose cost fits the budget) "
    "or from the pool πᵗ of the budget (Eq. 6). Middle: Alg. 3 picks the medium subnet — from S with probability p "
    "(Eq. 3), else from πᵗ with probabilities q. Right: the max subnet learns from the labels, the medium and min "
    "subnets from the max subnet's predictions, all in one step on the shared weights W. Dashed: the medium subnet's "
    "score m goes back into its pool, which keeps the best M."
)


def _chart(fig, key: str, text: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config=PLOT_CONFIG)
    if text:
        st.caption(text)


def _loop_picture() -> None:
    if LOOP_SVG.is_file():
        st.image(str(LOOP_SVG), width="stretch")
        st.caption(LOOP_CAPTION)
    else:
        st.info(f"The training-loop picture is missing ({LOOP_SVG.name}); in words: {LOOP_CAPTION}")


def _hover_symbols(per_row: int = 10) -> None:
    syms = list(GLOSSARY)
    for start in range(0, len(syms), per_row):
        cols = st.columns(per_row)
        for col, sym in zip(cols, syms[start:start + per_row]):
            col.markdown(f"**{sym}**", help=symbol_help(sym))


def _tour(pages: list[str]) -> None:
    for page in tour_order(pages):
        if page == START_PAGE:
            continue
        left, right = st.columns([1, 3], vertical_alignment="center")
        left.button(f"{page} →", key=f"tour_{slug(page)}", on_click=_go, args=(page,), width="stretch")
        right.markdown(GUIDED_PATH.get(page, ""))


def start_here(pages: list[str] | None = None) -> None:
    """The *Start here* page body (below main.py's header). ``pages``: the pages the tour may lead to
    (main.py's radio options; default: every page of :data:`GUIDED_PATH`). It draws no Next button itself."""
    pages = list(GUIDED_PATH) if pages is None else list(pages)
    st.markdown(
        "New to PSS-Net? This page explains the idea in plain words, shows one training step as a picture, lists the "
        "symbols the other pages use, and suggests an order to read them in. Nothing here needs a run."
    )
    st.markdown(WHAT)
    st.subheader("One training step, as a picture")
    _loop_picture()
    st.subheader("The symbols")
    st.caption("Hover a symbol for its meaning; the same text appears as hover help wherever the dashboard uses it.")
    _hover_symbols()
    table = glossary_table().rename(columns={"paper": "in the paper", "dashboard": "seen on"})
    st.table(table, hide_index=True, border="horizontal")
    st.subheader("A guided tour")
    st.caption("The pages in the order they build on each other; every page ends with a Next button along this path.")
    _tour(pages)


# ---------------------------------------------------------------------------- Sampling playground
PLAYGROUND_INTRO = (
    "Each batch, PSS-Net trains one **medium** subnet for a budget θᵗ and has to choose it (Alg. 3, lines 1-7): "
    "with probability **p** (Eq. 3) it **explores** — a fresh subnet from the whole space S — otherwise it "
    "**exploits** the pool πᵗ, picking entry j with probability **q_j** = softmax(m / η) (Eq. 6). Below is a toy pool: "
    "edit its scores m, move p and η, and watch q and a batch of simulated draws change. Every number is computed by "
    "the library's own functions (`pss.sampling.prioritized`)."
)
MODE_HAND, MODE_SCHEDULE = "By hand", "From the training schedule"
END_VALUES = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]

PLAYGROUND_CHARTS = {
    "q": "Bars: q, the chance that a draw from the pool picks each entry (Eq. 6) at the current η; black ticks: q "
    "at η = 1, where training starts; dotted: 1/M, every entry alike. Lower η and the best entries take over — at "
    "η = 0.01 (the paper's η_end) the best entry is drawn almost every time; raise it and q flattens.",
    "draws": "Where the simulated medium subnets came from: the green bar counts fresh subnets drawn from S "
    "(probability p), the blue bars the draws of each pool entry (probability (1 − p)·q_j). Diamonds: the counts "
    "expected on average; a new seed gives another sample around them.",
    "schedule_hand": "During training nobody moves these sliders: p and η follow Eq. 3 — 1 while the pool is still "
    "filling, then p_end^((e−1)/E) and η_end^((e−1)/E), here with the default p_end = η_end = {end}. Dotted: your "
    "hand-set values; where a curve crosses its line is when training would use them.",
    "schedule": "p and η over training (Eq. 3): 1 while the pool is still filling (before the jump), then "
    "p_end^((e−1)/E) and η_end^((e−1)/E). The red dots are the values used above at the chosen moment.",
}


def _toy_pool() -> pd.DataFrame:
    from pssviz import teach as toy  # on first use: the other pages need no playground

    c1, c2 = st.columns(2)
    n = c1.slider("Entries M", 4, 16, 10, key="teach_n", help=symbol_help("M"))
    seed = c2.number_input("Pool seed", 0, 9999, 0, key="teach_pool_seed", help="Another seed draws other scores m.")
    edited = st.data_editor(
        toy.toy_pool(int(n), int(seed)), key=f"teach_pool_{n}_{seed}", hide_index=True, disabled=["entry"],
        width="stretch", column_config={
            "entry": st.column_config.TextColumn("entry φ", help=symbol_help("φ")),
            "m": st.column_config.NumberColumn("m = −loss", format="%.3f", step=0.001, help=symbol_help("m")),
        },
    )
    st.caption("Scores m are minus a cross-entropy (2.30 is chance for 10 classes); higher is better. Edit any m: "
               "the pool re-sorts, best first, as a real pool does.")
    import pandas as pd

    pool = pd.DataFrame(edited).dropna(subset=["m"])
    return pool.sort_values("m", ascending=False, kind="stable").reset_index(drop=True)


def _settings() -> dict:
    """p and η, and how to simulate them: by hand (progress 1, p_end = p) or from the schedule of Eq. 3."""
    from pssviz import teach as toy  # on first use: the other pages need no playground

    mode = st.radio("Set p and η", [MODE_HAND, MODE_SCHEDULE], key="teach_mode", horizontal=True,
                    help="By hand: any p and η. From the schedule: p and η as Eq. 3 sets them at a moment of training.")
    if mode == MODE_HAND:
        p = st.slider("p — probability of drawing from S (Eq. 3)", 0.0, 1.0, 0.3, 0.01, key="teach_p", help=symbol_help("p"))
        eta = st.slider("η — temperature of q (Eq. 6)", 0.01, 2.0, 0.5, 0.01, key="teach_eta", help=symbol_help("η"))
        # At progress 1 Eq. 3 gives p = p_end and eta = eta_end exactly: the library simulates hand-set values as such.
        return dict(mode=mode, p=float(p), eta=float(eta), p_end=float(p), eta_end=float(eta), progress=1.0, full=True,
                    fills_at=0.0, schedule=toy.schedule_table(toy.DEFAULT_P_END, toy.DEFAULT_ETA_END))
    c1, c2 = st.columns(2)
    ends = sorted({*END_VALUES, toy.DEFAULT_P_END, toy.DEFAULT_ETA_END})
    p_end = c1.select_slider("p_end", ends, value=toy.DEFAULT_P_END, key="teach_p_end", help=symbol_help("p_end"))
    eta_end = c2.select_slider("η_end", ends, value=toy.DEFAULT_ETA_END, key="teach_eta_end", help=symbol_help("η_end"))
    fills = st.slider("The pool is full from … % of training", 0, 100, 5, key="teach_fills",
                      help="Until the pool πᵗ holds M subnets, every draw explores S: p = η = 1. Real pools fill "
                      "within the first epoch or so.")
    progress = st.slider("Training progress (e − 1)/E", 0, 100, 50, key="teach_progress", format="%d%%",
                         help=symbol_help("e, E"))
    full = progress >= fills
    p, eta = toy.schedule_point(p_end, eta_end, progress / 100, full)
    return dict(mode=mode, p=p, eta=eta, p_end=float(p_end), eta_end=float(eta_end), progress=progress / 100,
                full=full, fills_at=fills / 100, schedule=toy.schedule_table(p_end, eta_end, fills / 100))


def sampling_playground() -> None:
    """The *Sampling playground* page body (below main.py's header): Eq. 3 and Eq. 6 on a toy pool."""
    from pssviz import teach as toy  # on first use: the other pages need no playground

    st.markdown(PLAYGROUND_INTRO)
    left, right = st.columns([2, 3])
    with left:
        st.subheader("A toy pool π")
        pool = _toy_pool()
    with right:
        st.subheader("Explore or exploit")
        s = _settings()
        if not s["full"]:
            st.info("The pool is not full yet at this point of training, so Eq. 3 gives p = 1 and η = 1: every "
                    "medium subnet is a fresh one from S.")
    if pool.empty:
        st.warning("The pool has no entry with a score m: type a number into the m column.")
        return
    q = toy.pool_probabilities(pool["m"], s["eta"])
    with st.container(horizontal=True, wrap=True, gap="large"):
        st.metric("p: explore S", f"{s['p']:.1%}", help=symbol_help("p", "S"), width="content")
        st.metric("1 − p: exploit π", f"{1 - s['p']:.1%}", help=symbol_help("π"), width="content")
        st.metric("η", f"{s['eta']:.3g}", help=symbol_help("η"), width="content")
        st.metric("Entries in play", f"{toy.effective_entries(q):.1f} of {len(pool)}", width="content",
                  help="1 / Σ q_j²: M when q is uniform, 1 when one entry takes every draw from the pool.")
    _chart(toy.q_figure(pool, s["eta"]), "teach_q_chart", PLAYGROUND_CHARTS["q"])

    st.subheader("Simulated draws")
    c1, c2 = st.columns(2)
    draws = int(c1.number_input("Draws (batches)", 10, 2000, 200, step=10, key="teach_draws"))
    seed = int(c2.number_input("Seed", 0, 9999, 0, key="teach_seed", help="The same seed gives the same draws."))
    drawn = toy.simulate_draws(pool["m"], draws, s["p_end"], s["eta_end"], s["progress"], s["full"], seed)
    from_space = int((drawn["source"] == toy.SPACE).sum())
    with st.container(horizontal=True, wrap=True, gap="large"):
        st.metric("From S (explore)", f"{from_space} of {draws}", f"{from_space / draws:.1%}", delta_color="off",
                  delta_arrow="off", width="content")
        st.metric("From the pool π (exploit)", f"{draws - from_space} of {draws}", f"{(draws - from_space) / draws:.1%}",
                  delta_color="off", delta_arrow="off", width="content")
    _chart(toy.draws_figure(pool, drawn, s["p"], s["eta"]), "teach_draws_chart", PLAYGROUND_CHARTS["draws"])

    st.subheader("Where p and η come from during training")
    if s["mode"] == MODE_HAND:
        fig = toy.schedule_figure(s["schedule"], p=s["p"], eta=s["eta"])
        text = PLAYGROUND_CHARTS["schedule_hand"].format(end=f"{toy.DEFAULT_P_END:g}")
    else:
        fig = toy.schedule_figure(s["schedule"], progress=s["progress"], p=s["p"], eta=s["eta"])
        text = PLAYGROUND_CHARTS["schedule"]
    _chart(fig, "teach_schedule_chart", text)
