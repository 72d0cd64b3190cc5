"""Time to the dashboard's first page in a real browser: `streamlit run app/main.py` on the bundled runs.

Starts a fresh server (no $PSS_RUNS: the default runs root, which opens on the
shipped study), then opens its address in headless chromium (Playwright,
Debian's /usr/bin/chromium) ``--visits`` times and prints, for each visit, the
seconds from the request to the page's heading and to its first two charts
drawn (the Study page's first tab: static SVG from pssviz.svgchart; plotly on
the other pages). The first visit pays the script's first imports; later ones
show a warm server. ``--servers N`` repeats it with N fresh servers and prints
the median and range of the first visit. Target (issue 12): the first page
ready in <= 3 s after the server starts. Nothing is checked.

    python bench/first_page.py [--visits 3] [--servers 1] [--page study] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADINGS = {"study": "Study", "start-here": "Start here", "overview": "Overview", "front-export": "Front & Export",
            "floor": "Study"}
FLOOR_SCRIPT = """import plotly.graph_objects as go
import streamlit as st

st.title("Study")
for i in range(2):
    st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])), key=f"chart{i}")
"""
"""``--page floor``: the same server and browser on a page with nothing but a heading and two three-point
plotly charts -- what any Streamlit page with plotly charts costs on this machine."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _first_page(browser, script: Path, page_slug: str, visits: int, root: Path = REPO) -> list[tuple[float, float | None, float]]:
    """One fresh server of ``root``'s app: per visit (heading, charts or None, seconds from server start to request)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PSS_RUNS"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])  # that checkout's pss and pssviz
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
                               "--server.headless", "true", "--server.address", "localhost", "--browser.gatherUsageStats", "false"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = []
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the server exited before it was healthy")
                time.sleep(0.05)
        print(f"server healthy {time.perf_counter() - started:.1f} s after start")
        url = f"http://localhost:{port}/" + ("" if page_slug in ("study", "floor") else f"?page={page_slug}")
        for visit in range(1, visits + 1):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_role("heading", name=HEADINGS[page_slug]).first.wait_for(timeout=120_000)
            heading = time.perf_counter() - t0
            charts = None
            if page_slug != "start-here":
                page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg, svg.pss-chart').length >= 2",
                                       timeout=120_000)
                charts = time.perf_counter() - t0
            out.append((heading, charts, t0 - started))
            shown = "no chart on this page" if charts is None else f"first charts drawn {charts:.1f} s"
            note = f" ({t0 - started + (charts or heading):.1f} s after the server started)" if visit == 1 else ""
            print(f"visit {visit}: heading {heading:.1f} s, {shown} after the request{note}")
            page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=3)
    ap.add_argument("--servers", type=int, default=1,
                    help="fresh servers to start one after the other; more than one prints the median and range of the "
                    "first visit (this machine is noisy: a single start varies by about ±0.3 s)")
    ap.add_argument("--page", default="study", choices=sorted(HEADINGS),
                    help="the page to open (default: the default page); 'floor': a bare page with two tiny plotly charts")
    ap.add_argument("--compare", type=Path, metavar="CHECKOUT",
                    help="another checkout of this repository (e.g. `git worktree add /tmp/base HEAD~3`): its app is "
                    "started in turn with this one, server for server, and both medians are printed")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    apps = {"this checkout": (REPO, REPO / "app" / "main.py")}
    if args.compare:
        apps[f"{args.compare}"] = (args.compare.resolve(), args.compare.resolve() / "app" / "main.py")
    if args.page == "floor":
        floor = Path(tempfile.mkdtemp()) / "floor.py"
        floor.write_text(FLOOR_SCRIPT)
        apps = {"floor": (REPO, floor)}
    firsts: dict[str, list] = {name: [] for name in apps}
    with sync_playwright() as p:
        # The reader's browser is already open: launch it before the server, so its start is not counted.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            for _ in range(args.servers):
                for name, (root, script) in apps.items():  # interleaved: the machine's slow minutes hit both
                    if len(apps) > 1:
                        print(f"-- {name}")
                    heading, charts, wait = _first_page(browser, script, args.page, args.visits, root)[0]
                    firsts[name].append((wait + heading, None if charts is None else wait + charts))
        finally:
            browser.close()
    if args.servers > 1 or len(apps) > 1:
        for app, values in firsts.items():
            for what, times in (("heading", [h for h, _ in values]), ("first two charts", [c for _, c in values if c is not None])):
                if times:
                    print(f"{app}: {what} median {statistics.median(times):.1f} s after the server started "
                          f"(min {min(times):.1f}, max {max(times):.1f}; {len(times)} fresh servers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
