"""Time to the dashboard's first page in a real browser: `streamlit run app/main.py` on the bundled runs.

Starts a fresh server (no $PSS_RUNS: the default runs root, which opens on the
shipped study), then opens its address in headless chromium (Playwright,
Debian's /usr/bin/chromium) ``--visits`` times and prints, for each visit, the
seconds from the request to the page's heading and to its first two plotly
charts drawn. The first visit pays the script's first imports; later ones show
a warm server. Target (issue 12): the first page ready in <= 3 s after the server
starts. One run on a noisy machine; nothing is checked.

    python bench/first_page.py [--visits 3] [--page study] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import socket
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=3)
    ap.add_argument("--page", default="study", choices=sorted(HEADINGS),
                    help="the page to open (default: the default page); 'floor': a bare page with two tiny plotly charts")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PSS_RUNS"}
    script = REPO / "app" / "main.py"
    if args.page == "floor":
        script = Path(tempfile.mkdtemp()) / "floor.py"
        script.write_text(FLOOR_SCRIPT)
    with sync_playwright() as p:
        # The reader's browser is already open: launch it before the server, so its start is not counted.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
                                   "--server.headless", "true", "--server.address", "localhost", "--browser.gatherUsageStats", "false"],
                                  cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1)
                    break
                except OSError:
                    if server.poll() is not None:
                        print("the server exited before it was healthy")
                        return 1
                    time.sleep(0.05)
            print(f"server healthy {time.perf_counter() - started:.1f} s after start")
            url = f"http://localhost:{port}/" + ("" if args.page in ("study", "floor") else f"?page={args.page}")
            for visit in range(1, args.visits + 1):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t0 = time.perf_counter()
                page.goto(url)
                page.get_by_role("heading", name=HEADINGS[args.page]).first.wait_for(timeout=120_000)
                heading = time.perf_counter() - t0
                charts = "no chart on this page"
                if args.page != "start-here":
                    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2", timeout=120_000)
                    charts = f"first charts drawn {time.perf_counter() - t0:.1f} s"
                note = f" ({time.perf_counter() - started:.1f} s after the server started)" if visit == 1 else ""
                print(f"visit {visit}: heading {heading:.1f} s, {charts} after the request{note}")
                page.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
