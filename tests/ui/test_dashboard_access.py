"""Who may see the dashboard, and what it may browse (issue 9, defect 8).

* `pss dashboard`, started from another working directory, listens on localhost only: a connection to
  the machine's own network address is refused.
* Started with plain `streamlit run /abs/app/main.py` from another folder (no project config, so
  Streamlit listens on every interface), the app itself answers a client from another address with a
  refusal, and answers localhost as usual.
* The runs-folder box cannot leave the runs root chosen at start, unless $PSS_ANY_FOLDER=1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import helpers

CHROMIUM = "/usr/bin/chromium"


def _own_address() -> str | None:
    """This machine's address on its network (not loopback), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def _start(argv: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_pss_dashboard_listens_on_localhost_only_from_any_folder(tmp_path, child_env):
    ip = _own_address()
    helpers.require(ip is not None, "this machine has no network address besides loopback to test from")
    port, elsewhere = helpers.free_port(), tmp_path / "elsewhere"
    elsewhere.mkdir()  # no .streamlit/config.toml here
    proc = _start([str(Path(sys.executable).with_name("pss")), "dashboard", "--runs", str(helpers.SAMPLE_RUN.parent), "--port", str(port)],
                  elsewhere, child_env, tmp_path / "log.txt")
    try:
        helpers.wait_healthy(proc, port, tmp_path / "log.txt")
        with pytest.raises(OSError):  # refused: nothing listens on the network address
            socket.create_connection((ip, port), timeout=5).close()
    finally:
        _stop(proc)
    # stopping `pss dashboard` stops the server: nothing is left listening (a child server would outlive it)
    with pytest.raises(OSError):
        socket.create_connection(("localhost", port), timeout=5).close()


@pytest.mark.slow
def test_the_app_refuses_other_machines_however_it_is_started(tmp_path, child_env):
    ip = _own_address()
    helpers.require(ip is not None, "this machine has no network address besides loopback to test from")
    helpers.require(Path(CHROMIUM).is_file(), "chromium is not installed")
    from playwright.sync_api import sync_playwright

    port, elsewhere = helpers.free_port(), tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in child_env.items() if k not in ("PSS_ALLOW_REMOTE", "PSS_ANY_FOLDER")}
    proc = _start([sys.executable, "-m", "streamlit", "run", str(helpers.APP), "--server.port", str(port),
                   "--server.address", "0.0.0.0", "--server.headless", "true", "--browser.gatherUsageStats", "false",
                   "--server.fileWatcherType", "none"], elsewhere, env, tmp_path / "log.txt")
    try:
        helpers.wait_healthy(proc, port, tmp_path / "log.txt")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(f"http://{ip}:{port}/", timeout=60_000)
            page.wait_for_selector("text=answers only the machine it runs on", timeout=60_000)
            assert page.locator("text=Runs folder").count() == 0  # nothing of the server is shown
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.wait_for_selector("text=Runs folder", timeout=60_000)
            assert page.locator("text=answers only the machine it runs on").count() == 0
            browser.close()
    finally:
        _stop(proc)


def test_the_runs_folder_box_stays_inside_the_runs_root(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(helpers.SAMPLE_RUN, root / "sample")
    monkeypatch.setenv("PSS_RUNS", str(root))
    monkeypatch.delenv("PSS_ANY_FOLDER", raising=False)
    at = AppTest.from_file(str(helpers.APP), default_timeout=120)
    at.run()
    assert not at.exception and not at.warning
    at.text_input(key="runs_root").set_value("/").run()
    assert any("outside the runs root" in w.value for w in at.warning)
    assert not at.selectbox  # no run listed from outside
    at.text_input(key="runs_root").set_value(str(root / "sample" / "..")).run()  # `..` that stays inside is fine
    assert not at.warning and at.selectbox(key="run").options

    monkeypatch.setenv("PSS_ANY_FOLDER", "1")
    at = AppTest.from_file(str(helpers.APP), default_timeout=120)
    at.run()
    at.text_input(key="runs_root").set_value(str(helpers.SAMPLE_RUN.parent)).run()
    assert not at.warning and at.selectbox(key="run").options
