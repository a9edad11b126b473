"""Write a notebook into the JupyterLab root and run it in the browser."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout


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
        page.wait_for_selector(".jp-Notebook", timeout=timeout)
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle'], #jp-main-statusbar :text('Idle')",
            timeout=timeout,
        )
    else:
        page.goto(f"{lab['base']}/notebooks/{name}")
        page.wait_for_selector(".jp-Notebook", timeout=timeout)
        page.wait_for_selector(".jp-NotebookKernelStatus, .jp-KernelStatus", timeout=timeout)
    # the first notebook of a fresh server can swallow the command while its kernel
    # connects: run again until a prompt shows the cells queued or run
    started = (
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
        ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"
    )
    for attempt in range(5):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=15_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    page.wait_for_selector(wait_for, timeout=timeout)
    return page
