"""One JupyterLab server and one Chromium for every browser test.

JupyterLab runs on 127.0.0.1 with an empty token, serving a temp folder; Playwright drives
Debian's chromium (``/usr/bin/chromium``). Screenshots land in ``$HARDEX_SCREENSHOTS`` (a temp
folder by default).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from lab_driver import ARGS, CHROMIUM, serve_lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    with serve_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
            "(apt-get install chromium)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots():
    folder = Path(os.environ.get("HARDEX_SCREENSHOTS") or tempfile.mkdtemp(prefix="hardex-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# a browser whose user already took the Annotator's first-run tour (its own test has none)
TOUR_TAKEN = "try { localStorage.setItem('hardex_nb.tour.annotator', 'done'); } catch (e) {}"


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    if "first_run" not in request.keywords:
        context.add_init_script(TOUR_TAKEN)
    pg = context.new_page()
    seen: list[str] = []
    pg.on("pageerror", lambda e: str(e) not in FRONT_END_NOISE and seen.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and _ours(m) and seen.append(m.text))
    yield pg
    context.close()
    assert not seen, f"errors in the browser: {seen}"


# What Notebook 7 itself raises on these pages (not the widgets; seen in every run)
FRONT_END_NOISE = {
    "Command 'filebrowser:open-path' not registered.",
    "Cannot read properties of undefined (reading 'schema')",
}


def _ours(message) -> bool:
    """A console error from the widgets' code: anywidget loads it from a blob: URL."""
    url = (message.location or {}).get("url", "")
    return url.startswith("blob:") or "hardex" in message.text.lower()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, keep a screenshot of the page next to the others."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "page" in item.funcargs:
        folder = item.funcargs.get("shots") or Path(tempfile.mkdtemp(prefix="hardex-shots-"))
        path = Path(folder) / f"FAILED-{item.name}.png"
        try:
            item.funcargs["page"].screenshot(path=str(path))
            report.sections.append(("screenshot", str(path)))
        except Exception as exc:  # the page may be gone; the failure itself matters more
            report.sections.append(("screenshot", f"none: {exc}"))
