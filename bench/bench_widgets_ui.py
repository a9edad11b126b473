"""Widget response times in a real JupyterLab and Chromium, as a labeler feels them.

Starts JupyterLab on a temporary folder, opens notebooks with an Annotator on 640×480
photos-sized images and on a 4000×3000 image, and a Gallery of 10,000 samples, then times
(wall clock, from the browser action to what shows on screen and on disk):

- a box drawn with the mouse: mouse-up → the box drawn from the kernel's answer, and → on disk;
- the next image (→): key press → the new name shown and its image loaded;
- zoomed to 800 % on 4000×3000: the last wheel notch → native pixels shown;
- the Gallery's next page: click → the page's thumbnails shown.

    python bench/bench_widgets_ui.py [--repeat 10]

Needs what `make test` installs (jupyterlab, playwright, Debian's chromium).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from bench_widgets import build  # noqa: E402  (this folder: the 10,000-row gallery dataset)
from lab_driver import wait_until  # noqa: E402  (the browser tests' driver)

import hardex_nb as hx  # noqa: E402

# the crop shown covers the view at the zoom reached (its width in image px matches)
FINAL_CROP = """() => {
  const c = document.querySelector('.hx-annotator img[data-role=crop]');
  const v = document.querySelector('.hx-annotator .viewport');
  const st = document.querySelector('.hx-annotator .stage');
  if (!c || c.hidden || !c.complete || !c.naturalWidth) return false;
  const k = 4000 / st.getBoundingClientRect().width;
  return Math.abs((+c.dataset.x1 - +c.dataset.x0) - Math.min(4000, v.clientWidth * k)) < 3;
}"""
SHOWN = """(n) => {
  const r = document.querySelector('.hx-annotator [data-role=name]');
  const i = document.querySelector('.hx-annotator .stage img');
  return r && r.textContent === n && i.complete && i.naturalWidth > 0;
}"""


def photos(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        path = folder / f"p{i:03d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        out.append(path)
    return out


def wait(done, what: str) -> None:
    """Until ``done()``: polled every 3 ms, fine enough for the times measured."""
    wait_until(done, what=what, step=0.003)


def timed(action, done, what: str = "the answer") -> float:
    """Seconds from ``action()`` until ``done()`` holds."""
    start = time.perf_counter()
    action()
    wait(done, what)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    from lab_driver import ARGS, CHROMIUM, run_notebook, serve_lab  # the browser tests' driver
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hardex-bench-ui-") as name:
        tmp = Path(name)
        (tmp / "lab").mkdir()
        with serve_lab(tmp / "lab") as lab:
            rows = measure(lab, tmp, args.repeat, sync_playwright, run_notebook, CHROMIUM, ARGS)
    print(f"\n{'action':62s} {'median s':>9s} {'p90 s':>7s} {'n':>3s}")
    for what, values in rows:
        p90 = sorted(values)[max(0, round(0.9 * len(values)) - 1)]
        print(f"{what:62s} {statistics.median(values):9.3f} {p90:7.3f} {len(values):3d}")


def measure(lab, tmp, repeat, sync_playwright, run_notebook, chromium, chromium_args):
    root = lab["root"]
    small = hx.Dataset.create(root / "small", task="detection", labels=["defect"])
    small.add_images(photos(tmp / "p640", repeat + 2, (640, 480)))
    big = hx.Dataset.create(root / "big", task="detection", labels=["defect"])
    big.add_images(photos(tmp / "p4000", 2, (4000, 3000)))
    many = build(root / "many", 10_000, photos(tmp / "one", 1, (640, 480))[0])  # bench_widgets
    rows: list[tuple[str, list[float]]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=chromium_args, headless=True)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()

        def opened(name: str, ds, widget: str, wait_for: str) -> None:
            cell = f"import hardex_nb as hx\nds = hx.Dataset.open(r'{ds.path}')\nw = hx.{widget}(ds)\nw"
            run_notebook(page, lab, f"{name}.ipynb", [cell], wait_for=wait_for, timeout=180_000)
            time.sleep(1.0)

        # -- boxes and next image on 640×480 -------------------------------------------------
        opened("bench_small", small, "Annotator", ".hx-annotator svg[data-role=overlay]")
        overlay = page.locator(".hx-annotator svg[data-role=overlay]")
        draw_shown, draw_disk, nexts = [], [], []
        for k in range(repeat):
            box = overlay.bounding_box()
            sx, sy = box["width"] / 640, box["height"] / 480
            before = page.locator(".hx-annotator svg [data-ann]").count()
            page.mouse.move(box["x"] + 100 * sx, box["y"] + 100 * sy)
            page.mouse.down()
            page.mouse.move(box["x"] + 300 * sx, box["y"] + 250 * sy, steps=5)
            n_disk = len(hx.Dataset.open(small.path).annotations)
            t0 = time.perf_counter()
            page.mouse.up()
            shapes = page.locator(".hx-annotator svg [data-ann]")
            wait(lambda s=shapes, b=before: s.count() > b, "the box drawn")
            draw_shown.append(time.perf_counter() - t0)
            on_disk = lambda n=n_disk: len(hx.Dataset.open(small.path).annotations) > n  # noqa: E731
            wait(on_disk, "the box on disk")
            draw_disk.append(time.perf_counter() - t0)
            name = f"p{k + 1:03d}.jpg"
            page.locator(".hx-annotator").first.focus()
            nexts.append(
                timed(
                    lambda: page.keyboard.press("ArrowRight"),
                    lambda name=name: page.evaluate(SHOWN, name),
                )
            )
        rows += [
            ("box: mouse-up → drawn from the kernel's answer (640×480)", draw_shown),
            ("box: mouse-up → on disk", draw_disk),
            ("next image → name and image shown (640×480)", nexts),
        ]
        # -- 4000×3000: next image, and native pixels at 800 % -------------------------------
        opened("bench_big", big, "Annotator", ".hx-annotator svg[data-role=overlay]")
        page.locator(".hx-annotator").first.focus()
        big_next, crops = [], []
        for k in range(min(repeat, 6)):
            name = ["p000.jpg", "p001.jpg"][(k + 1) % 2]
            big_next.append(
                timed(
                    lambda: page.keyboard.press("ArrowRight"),
                    lambda name=name: page.evaluate(SHOWN, name),
                )
            )
            box = overlay.bounding_box()
            page.mouse.move(box["x"] + 60, box["y"] + 60)
            page.keyboard.down("Control")
            for _ in range(19):
                page.mouse.wheel(0, -100)
            # the last notch reaches 800 %: done when the crop of that view is shown
            crops.append(
                timed(lambda: page.mouse.wheel(0, -100), lambda: page.evaluate(FINAL_CROP))
            )
            page.keyboard.up("Control")
            page.keyboard.press("f")
        rows += [
            ("next image → shown (4000×3000)", big_next),
            ("zoom to 800 % → native pixels shown (4000×3000)", crops),
        ]
        # -- Gallery of 10,000: next page ----------------------------------------------------
        opened("bench_many", many, "Gallery", ".hx-gallery .card img[src^=blob]")
        pages = []
        for k in range(repeat):
            want = f"page {k + 2} of"
            pages.append(
                timed(
                    lambda: page.locator(".hx-gallery [data-action=next-page]").click(),
                    lambda want=want: page.evaluate(
                        "(w) => { const p = document.querySelector('.hx-gallery [data-role=page]');"
                        " const imgs = [...document.querySelectorAll('.hx-gallery .card img')];"
                        " return p && p.textContent.startsWith(w) && imgs.length > 0"
                        " && imgs.every((i) => i.src.startsWith('blob') && i.complete); }",
                        want,
                    ),
                )
            )
        rows.append(("Gallery of 10,000: next page → 48 thumbnails shown", pages))
        browser.close()
    return rows


if __name__ == "__main__":
    main()
