"""`pss dashboard`: start the Streamlit dashboard bound to this machine, on a chosen runs root.

The dashboard can calibrate and export, and it reads the server's files, so by
default it listens on localhost only and browses only the runs root chosen at
start. Both are explicit opt-ins (``--allow-remote``, ``--any-folder``). The
app (``app/main.py``) reads the same environment variables, and refuses
clients from other machines however Streamlit was started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import PssError

RUNS_ENV = "PSS_RUNS"
"""The runs root the dashboard may browse (default: the bundled sample runs)."""
ANY_FOLDER_ENV = "PSS_ANY_FOLDER"
"""=1: the runs-folder box may point anywhere on the server."""
ALLOW_REMOTE_ENV = "PSS_ALLOW_REMOTE"
"""=1: answer clients on other machines (listening on every interface)."""

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def dashboard_command(port: int = 8501, allow_remote: bool = False) -> list[str]:
    """The streamlit command line: localhost only unless ``allow_remote``; no file watcher, no usage stats."""
    if not APP.is_file():
        raise PssError(f"the dashboard ships with the pss-explorer repository ({APP} is missing); "
                       "run `pss dashboard` from a checkout installed with `pip install -e`")
    if not 1 <= port <= 65535:
        raise PssError(f"--port must be in 1..65535, got {port}")
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", "0.0.0.0" if allow_remote else "localhost", "--server.port", str(port),
        "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]


def dashboard_env(runs: str | Path | None = None, any_folder: bool = False, allow_remote: bool = False) -> dict[str, str]:
    """The environment the app reads: the runs root and the two opt-ins."""
    env = dict(os.environ)
    if runs is not None:
        root = Path(runs).expanduser()
        if not root.is_dir():
            raise PssError(f"--runs {root} is not a folder; give the folder that holds your run directories")
        env[RUNS_ENV] = str(root.resolve())
    for name, on in ((ANY_FOLDER_ENV, any_folder), (ALLOW_REMOTE_ENV, allow_remote)):
        if on:
            env[name] = "1"
        else:
            env.pop(name, None)
    return env


def run_dashboard(runs=None, port: int = 8501, any_folder: bool = False, allow_remote: bool = False) -> int:
    """Start the dashboard (Ctrl+C stops it).

    On POSIX this process *becomes* the Streamlit server (exec), so a signal that stops `pss dashboard`
    (Ctrl+C, a service manager's SIGTERM) stops the server too; a child process would outlive it. Elsewhere
    the server runs as a child and streamlit's exit code is returned.
    """
    command, env = dashboard_command(port, allow_remote), dashboard_env(runs, any_folder, allow_remote)
    host = "0.0.0.0 (every interface)" if allow_remote else "localhost"
    print(f"pss dashboard: http://localhost:{port} (listening on {host}; runs root {env.get(RUNS_ENV, 'the bundled sample runs')}); Ctrl+C stops it",
          file=sys.stderr, flush=True)
    if os.name == "posix":
        os.execve(command[0], command, env)  # does not return
    return subprocess.call(command, env=env)
