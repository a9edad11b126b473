"""Write a notebook into the JupyterLab root and run it in the browser."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = os.environ.get("HARDEX_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def wait_until(check, timeout: float = 30.0, what: str = "condition", step: float = 0.25):
    """Poll ``check()`` every ``step`` s until it returns something true (returned), or raise
    after ``timeout`` s naming ``what``."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        result = check()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_lab(root: Path):
    """A JupyterLab server on 127.0.0.1 (empty token) serving ``root``, for as long as the
    ``with`` block lasts: yields ``{"base": url, "root": root}``."""
    port = _free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(root / ".jupyter-runtime"),
        PYTHONPATH=str(Path(__file__).parents[2]),
    )
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--allow-root",
            "--ServerApp.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            # window.jupyterapp: the tests wait for the notebook's kernel and run its cells
            # through the app's own commands instead of guessing from the page
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                text = (root / "lab.log").read_text()[-2000:]
                raise RuntimeError(f"JupyterLab exited: {text}") from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("JupyterLab did not start within 120 s")
    try:
        yield {"base": base, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def write_notebook(root: Path, name: str, cells: list[str]) -> str:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for src in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / name).write_text(json.dumps(nb))
    return name


# the notebook in the main area has its kernel connected and idle
KERNEL_READY = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session?.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
# a prompt shows the cells queued or run
STARTED = """() => [...document.querySelectorAll('.jp-InputArea-prompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def run_notebook(
    page,
    lab: dict,
    name: str,
    cells: list[str],
    *,
    wait_for: str,
    timeout: float = 90_000,
    ui: str = "lab",
):
    """Open a notebook in JupyterLab (``ui="lab"``) or Notebook 7 (``ui="notebook"``, served
    by the same server), run all its cells, wait for ``wait_for`` to appear."""
    write_notebook(lab["root"], name, cells)
    if ui == "lab":
        # a workspace of its own, reset: no tabs restored from earlier tests
        page.goto(f"{lab['base']}/lab/workspaces/{name.split('.')[0]}/tree/{name}?reset")
    else:
        page.goto(f"{lab['base']}/notebooks/{name}")
    page.wait_for_selector(".jp-Notebook", timeout=timeout)
    page.wait_for_function(KERNEL_READY, timeout=timeout)
    for _ in range(3):
        # not awaited: the command's promise lasts until the last cell has run
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        try:
            page.wait_for_function(STARTED, timeout=5_000)
            break
        except PlaywrightTimeout:  # a kernel that restarted as it connected: ask again
            page.wait_for_function(KERNEL_READY, timeout=timeout)
    page.wait_for_selector(wait_for, timeout=timeout)
    return page
