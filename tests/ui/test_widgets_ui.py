"""Widgets in a real JupyterLab, driven by real clicks, drags and keys in Chromium.

Each test prepares a dataset on disk, opens a notebook that shows a widget on it, acts in
the browser, then reads the dataset back from disk in this process.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lab_driver import run_notebook, wait_until
from PIL import Image

import hardex_nb as hx
from hardex_nb import annotation_rules, ingest


def laid_out(overlay) -> dict:
    """The overlay's box once the image is laid out and its size has stopped changing (the
    widget fits the panel's width when it first sees it)."""
    last = {"box": None}

    def steady():
        box = overlay.bounding_box()
        same = box is not None and box["width"] > 100 and box == last["box"]
        last["box"] = box
        if not same:
            time.sleep(0.3)
        return box if same else None

    return wait_until(steady, what="the image to lay out")


def show(page, lab, ds, name: str, widget: str, wait_for: str, **options) -> None:
    """Run a notebook of one cell that shows ``hx.<widget>(ds)``."""
    cell = head(ds.path) + f"w = hx.{widget}(ds)\nw"
    run_notebook(page, lab, f"{name}.ipynb", [cell], wait_for=wait_for, **options)


def drag(page, box, start, end, *, size=(320, 240), steps: int = 8) -> None:
    """Press at image point ``start``, move to ``end`` and release: image px of a ``size``
    image shown in the screen rectangle ``box``."""
    sx, sy = box["width"] / size[0], box["height"] / size[1]
    page.mouse.move(box["x"] + start[0] * sx, box["y"] + start[1] * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * sx, box["y"] + end[1] * sy, steps=steps)
    page.mouse.up()


def make_images(folder: Path, n: int, size=(320, 240)) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        arr = (rng.integers(40, 90, (size[1], size[0], 3))).astype(np.uint8)
        arr[60:120, 80 + 10 * i : 160 + 10 * i] = [200, 60, 60]
        Image.fromarray(arr).save(folder / f"img{i:02d}.png")
        paths.append(folder / f"img{i:02d}.png")
    return paths


def head(path: Path) -> str:
    return f"import hardex_nb as hx\nds = hx.Dataset.open(r'{path}')\n"


def test_draw_a_box_with_the_mouse(lab, page, shots, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "draw_ds", task="detection", labels=["defect", "scratch"])
    ds.add_images(make_images(tmp_path / "img", 3))
    show(page, lab, ds, "draw", "Annotator", ".hx-annotator svg[data-role=overlay]")
    page.locator(".hx-annotator [data-label=scratch]").click()
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)
    sx, sy = box["width"] / 320, box["height"] / 240  # screen px per image px
    page.mouse.move(box["x"] + 40 * sx, box["y"] + 50 * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + 100 * sx, box["y"] + 80 * sy, steps=8)
    page.mouse.move(box["x"] + 160 * sx, box["y"] + 130 * sy, steps=8)
    page.mouse.up()
    page.wait_for_selector(".hx-annotator [data-ann] rect")
    page.screenshot(path=str(shots / "annotator_draw.png"))
    wait_until(lambda: len(hx.Dataset.open(ds.path).annotations) == 1, what="the box on disk")
    reopened = hx.Dataset.open(ds.path)
    row = reopened.annotations.iloc[0]
    assert row["label"] == "scratch" and row["kind"] == "box"
    np.testing.assert_allclose([row.x0, row.y0, row.x1, row.y1], [40, 50, 160, 130], atol=3)
    assert reopened.samples.loc[0, "status"] == "labeled"


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_one_number_key_per_image_labels_it_and_shows_the_next(lab, page, tmp_path, ui):
    folder = tmp_path / "img"
    folder.mkdir()
    for name, (size, rgb) in PAINTED.items():
        Image.new("RGB", size, rgb).save(folder / name)
    ds = hx.Dataset.create(
        lab["root"] / f"keys_ds_{ui}", task="classification", labels=["cat", "dog", "fox"]
    )
    ids = ds.add_images([folder / name for name in PAINTED]).added
    cells = [head(ds.path) + "hx.Annotator(ds)", "hx.Annotator(ds, advance=False)"]
    run_notebook(page, lab, f"keys_{ui}.ipynb", cells, wait_for=".hx-annotator", ui=ui)
    annotator = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".hx-annotator")
    assert_shows(annotator, "red.png")
    annotator.focus()
    page.keyboard.press("3")  # fox, and the next image's own pixels
    assert_shows(annotator, "blue.png")
    page.keyboard.press("2")
    assert_shows(annotator, "green.png")
    page.keyboard.press("1")  # the last image: labeled, and it stays, saying so
    annotator.locator("[data-role=notice]:has-text('last image')").wait_for()
    assert_shows(annotator, "green.png")

    def labels():
        frame = hx.Dataset.open(ds.path).samples.set_index("sample_id")["label"]
        return frame.astype(str).loc[ids].tolist()

    wait_until(lambda: labels() == ["fox", "dog", "cat"], what="one label per key on disk")
    page.keyboard.press("Control+z")  # undo: the last label goes, on its image
    wait_until(lambda: labels()[2] != "cat", what="the last label undone")
    # advance=False: the key labels the image shown and stays on it
    still = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".hx-annotator")
    assert_shows(still, "red.png")
    still.focus()
    page.keyboard.press("2")
    still.locator("[data-role=class]:text('dog')").wait_for()
    assert_shows(still, "red.png")
    wait_until(lambda: labels()[0] == "dog", what="the relabel on disk")


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_multilabel_keys_and_clicks_give_and_take_labels_and_review_confirms(
    lab, page, tmp_path, ui
):
    folder = tmp_path / "img"
    folder.mkdir()
    for name, (size, rgb) in PAINTED.items():
        Image.new("RGB", size, rgb).save(folder / name)
    ds = hx.Dataset.create(
        lab["root"] / f"multi_ds_{ui}", task="multilabel", labels=["cat", "dog", "fox"]
    )
    ids = ds.add_images([folder / name for name in PAINTED]).added
    # a model's proposal waiting for review on the second image
    ingest.insert_rows(
        ds,
        annotations=pd.DataFrame(
            [annotation_rules.annotation_row(ids[1], "tag", "fox", None, score=0.62, origin="V1")]
        ),
        sample_updates=pd.DataFrame({"status": ["to_confirm"]}, index=[ids[1]]),
    )
    cells = [head(ds.path) + "hx.Annotator(ds)"]
    run_notebook(page, lab, f"multi_{ui}.ipynb", cells, wait_for=".hx-annotator", ui=ui)
    annotator = page.locator(".hx-annotator").first
    assert_shows(annotator, "red.png")
    annotator.focus()
    page.keyboard.press("1")  # cat, and the image stays: several labels, one key each
    page.keyboard.press("3")
    annotator.locator("[data-role=labels] [data-label=fox]").wait_for()
    assert_shows(annotator, "red.png")

    def labels(sid):
        return hx.Dataset.open(ds.path).labels_of(sid)

    wait_until(lambda: labels(ids[0]) == ["cat", "fox"], what="two labels on disk")
    annotator.locator(".labels button[data-label=cat]").click()  # a click takes it away
    wait_until(lambda: labels(ids[0]) == ["fox"], what="cat taken away")
    annotator.locator(".labels button[data-label=cat]:not(.on)").wait_for()
    annotator.locator(".labels button[data-label=fox].on").wait_for()
    annotator.focus()
    page.keyboard.press("Control+z")
    wait_until(lambda: labels(ids[0]) == ["cat", "fox"], what="the click undone")
    # the model's proposal shows with its score; the reviewer adds dog and confirms
    annotator.locator("[data-action=next]").click()
    assert_shows(annotator, "blue.png")
    annotator.locator("[data-role=labels] [data-label=fox]:has-text('62%')").wait_for()
    annotator.focus()
    page.keyboard.press("2")
    wait_until(lambda: labels(ids[1]) == ["dog", "fox"], what="dog added to the proposal")
    after = hx.Dataset.open(ds.path)
    assert set(after.annotations_of(ids[1])["origin"]) == {"human"}  # the reviewer's now
    assert str(after.sample(ids[1])["status"]) == "labeled"


@pytest.mark.slow
@pytest.mark.parametrize(("ui", "widget"), [("lab", "Gallery"), ("notebook", "Annotator")])
def test_the_train_button_trains_in_the_background_and_shows_the_new_runs_rate(
    lab, page, tmp_path, ui, widget
):
    from synthetic import bars_dataset

    ds, _, _ = bars_dataset(lab["root"] / f"train_{ui}", n=40, n_labeled=30)
    hx.train(ds, epochs=3, image_size=32, progress=False)
    css = f".hx-{widget.lower()}"
    cells = [head(ds.path) + f"w = hx.{widget}(ds)\nw"]
    run_notebook(page, lab, f"train_{ui}.ipynb", cells, wait_for=css, ui=ui)
    shown = page.locator(css).first
    shown.locator("[data-action=train]").click()
    done = shown.locator("[data-role=train][data-state=done]")
    done.wait_for(timeout=120_000)
    assert "V2 trained: avg detection rate" in done.inner_text()
    assert "val images" in done.inner_text()  # with its interval and what it rests on
    runs = hx.Dataset.open(ds.path).runs
    assert runs["version"].tolist() == ["V1", "V2"] and runs["status"].iloc[-1] == "succeeded"
    assert runs["params"].iloc[-1]["epochs"] == 3  # the last run's options


def test_confirm_in_the_review_queue_hardest_first(lab, page, shots, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "review_ds", task="detection", labels=["defect"])
    ids = ds.add_images(make_images(tmp_path / "img", 3)).added
    for sid, score in zip(ids, (0.2, 0.9, 0.5)):
        ds.add_box(sid, "defect", 80, 60, 160, 120, score=0.8, origin="V1")
        ds.set_status(sid, "to_confirm")
        ds.mark_hard(sid, score >= 0.5, reasons=[1] if score >= 0.5 else [], score=score)
    ds.update_annotation(int(ds.annotations.ann_id.iloc[1]), hard_type="false_positive")
    show(page, lab, ds, "review", "Review", ".hx-annotator [data-role=queue]")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")  # hardest first
    assert "low confidence" in page.locator(".hx-annotator [data-role=hard]").inner_text()
    page.screenshot(path=str(shots / "review.png"))
    page.locator(".hx-annotator [data-action=confirm]").click()
    page.wait_for_selector(".hx-annotator [data-role=queue]:text('1 of 2')")
    page.locator(".hx-annotator").first.focus()
    page.keyboard.press("c")
    page.wait_for_selector(".hx-annotator [data-role=queue]:text('1 of 1')")

    def statuses():
        return hx.Dataset.open(ds.path).samples.set_index("sample_id")["status"]

    wait_until(
        lambda: statuses().loc[[ids[1], ids[2]]].eq("labeled").all(), what="confirmed on disk"
    )
    assert statuses().loc[ids[0]] == "to_confirm"


WIDTH_OF_TEXT = """(el) => {
  const c = document.createElement('canvas').getContext('2d');
  c.font = getComputedStyle(el).font;
  return [c.measureText(el.selectedOptions[0].textContent).width, el.clientWidth];
}"""


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_review_calls_a_models_boxes_by_what_they_are_and_a_badge_only_what_is_hard(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"words_{ui}", task="detection", labels=["defect"])
    first, second = ds.add_images(make_images(tmp_path / "img", 2)).added
    unsure = ds.add_box(first, "defect", 20, 20, 80, 70, score=0.35, origin="V1")
    doubtful = ds.add_box(first, "defect", 200, 40, 300, 120, score=0.9, origin="V1")
    mine = ds.add_box(first, "defect", 120, 150, 180, 220)
    ds.update_annotation(unsure, hard_type="missed")
    ds.update_annotation(doubtful, hard_type="false_positive")
    ds.update_annotation(mine, hard_type="missed")  # a person's mark keeps its word
    ds.add_box(second, "defect", 80, 60, 160, 120, score=0.95, origin="V1")
    ds.set_status([first, second], "to_confirm")
    ds.mark_hard(first, True, reasons=[4], score=0.0)
    show(page, lab, ds, f"words_{ui}", "Review", ".hx-annotator [data-ann] rect", ui=ui)
    annotator = page.locator(".hx-annotator")
    texts = annotator.locator("svg[data-role=overlay] text")
    wait_until(lambda: texts.count() == 3, what="three labels")
    said = " | ".join(texts.all_text_contents())
    assert "possible object" in said and "doubtful" in said, said
    assert said.count("missed") == 1, said  # only on the person's own box
    hard = annotator.locator("[data-role=hard]")
    assert "inconsistent across augmented views" in hard.inner_text()
    assert "score" not in hard.inner_text()  # a hard image never shows "score 0.00"
    # the objects list says the same words, and its select shows them whole
    for ann, word in ((unsure, "possible object"), (doubtful, "doubtful"), (mine, "missed")):
        page.mouse.click(*_centre_of(annotator, ann))
        select = annotator.locator(f"select[data-hard-type='{ann}']")
        select.wait_for()
        assert select.evaluate("(el) => el.selectedOptions[0].textContent") == word
        text_width, width = select.evaluate(WIDTH_OF_TEXT)
        assert width >= text_width + 16, (word, text_width, width)
    # the next image is not hard: no badge
    annotator.locator("[data-action=skip]").click()
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    assert hard.count() == 0


def _centre_of(annotator, ann_id) -> tuple[float, float]:
    b = annotator.locator(f"svg [data-ann='{ann_id}'] rect").first.bounding_box()
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


def test_confusion_cell_shows_its_samples(lab, page, shots, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "cm_ds", task="classification", labels=["cat", "dog"])
    ids = ds.add_images(make_images(tmp_path / "img", 6)).added
    cells = [
        head(ds.path)
        + (
            f"ids = {ids}\n"
            "report = hx.evaluate_classification(['cat','cat','cat','dog','dog','dog'],"
            " ['cat','dog','dog','dog','dog','cat'], label_names=['cat','dog'], image_ids=ids)\n"
            "w = hx.ConfusionMatrix(report, ds=ds)\nw"
        ),
        "hx.ReportView(report, ds=ds)",
    ]
    run_notebook(page, lab, "cm.ipynb", cells, wait_for=".hx-report")
    page.locator(".hx-confusion td[data-true=cat][data-predicted=dog]").click()
    page.wait_for_selector(".hx-confusion [data-role=cell-title]")
    cards = page.locator(".hx-confusion .card")
    wait_until(lambda: cards.count() == 2, what="two samples in the cell")
    shown = sorted(int(cards.nth(i).get_attribute("data-sample")) for i in range(2))
    assert shown == [ids[1], ids[2]]
    assert (
        "2 image(s): true cat, predicted dog" in page.locator("[data-role=cell-title]").inner_text()
    )
    page.screenshot(path=str(shots / "confusion.png"))
    # thumbnails in the cell, each opens in an Annotator below the matrix
    page.wait_for_selector(f".hx-confusion .card[data-sample='{ids[2]}'] img[src^=blob]")
    page.locator(f".hx-confusion .card[data-sample='{ids[2]}']").click()
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img02.png')")
    # the report lists only the images with an error for the label, in one number format
    # the report's header may still be drawing while the Annotator above it opens
    accuracy = page.locator(".hx-report [data-summary=accuracy]")
    wait_until(lambda: accuracy.inner_text() == "accuracy 0.500", what="the report's accuracy")
    page.locator(".hx-report tr[data-label=dog]").click()
    title = page.locator(".hx-report [data-role=errors-title]")
    title.wait_for()
    assert title.inner_text().startswith("1 image(s) with errors for dog")
    figures = page.locator(".hx-report figure[data-sample]")
    assert [int(f.get_attribute("data-sample")) for f in figures.all()] == [ids[5]]
    figures.first.click()
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img05.png')")
    page.screenshot(path=str(shots / "report_errors_open.png"))


def test_gallery_of_10000_shows_its_first_page_and_marks_hard(lab, page, shots, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "big_ds", task="classification", labels=["a", "b"])
    src = make_images(tmp_path / "img", 1)[0]
    n = 10_000
    ingest.insert_rows(
        ds,
        pd.DataFrame(
            {
                "path": str(src),
                "name": [f"s{i:05d}.png" for i in range(n)],
                "width": 320,
                "height": 240,
                "status": "unlabeled",
                "hard": 0,
                "hard_reasons": "",
                "added_at": time.time(),
                "source": "upload",
                "split": "train",
            }
        ),
    )
    run_notebook(
        page,
        lab,
        "gallery.ipynb",
        [head(ds.path) + "w = hx.Gallery(ds)\nw"],
        wait_for=".hx-gallery .card img[src^=blob]",
    )
    assert page.locator(".hx-gallery .card").count() == 48
    assert "of 209 · 10000 images" in page.locator("[data-role=page]").inner_text()
    assert page.locator("[data-role=page-jump]").input_value() == "1"
    page.screenshot(path=str(shots / "gallery.png"))
    # jump to a page by typing it; then 96 a page keeps its first image in view
    jump = page.locator(".hx-gallery [data-role=page-jump]")
    jump.fill("150")
    jump.press("Enter")
    first = page.locator(".hx-gallery .card .name").first
    wait_until(lambda: first.inner_text() == "s07152.png", what="page 150's first image")
    page.locator(".hx-gallery [data-role=page-size]").select_option("96")
    wait_until(lambda: page.locator(".hx-gallery .card").count() == 96, what="96 a page")
    assert "of 105 · 10000 images" in page.locator("[data-role=page]").inner_text()
    assert jump.input_value() == str(7152 // 96 + 1)
    page.locator(".hx-gallery [data-role=page-size]").select_option("48")
    jump.fill("1")
    jump.press("Enter")
    wait_until(
        lambda: jump.input_value() == "1" and page.locator(".hx-gallery .card").count() == 48,
        what="back to the first page",
    )
    page.locator(".hx-gallery .card").nth(0).click()
    page.locator(".hx-gallery .card").nth(2).click(modifiers=["Shift"])
    page.wait_for_selector(".hx-gallery :text('3 selected')")
    page.locator(".hx-gallery [data-action=mark-hard]").click()
    page.wait_for_selector(".hx-gallery .card .badge")
    # the badge says why in words
    assert page.locator(".hx-gallery .card .badge").first.get_attribute("title") == (
        "marked hard by hand"
    )
    wait_until(lambda: len(hx.Dataset.open(ds.path).query(hard=True)) == 3, what="hard on disk")
    hard = hx.Dataset.open(ds.path).query(hard=True)
    assert hard["name"].tolist() == ["s00000.png", "s00001.png", "s00002.png"]
    assert (hard["hard_reasons"] == "100").all()


def test_turn_a_box_draw_an_ignore_polygon_hide_all_and_zoom_to_original(
    lab, page, shots, tmp_path
):
    ds = hx.Dataset.create(lab["root"] / "turn_ds", task="detection", labels=["ship"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    ann = ds.add_box(sid, "ship", 100, 100, 200, 140)  # centre (150, 120)
    show(page, lab, ds, "turn", "Annotator", ".hx-annotator [data-ann] rect")
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)

    def at(x, y):
        return box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240

    page.mouse.click(*at(180, 130))  # select the box
    knob = page.locator(".hx-annotator [data-handle=rotate]")
    knob.wait_for()
    assert laid_out(overlay) == box  # selecting leaves the image where it was
    k = knob.bounding_box()
    page.mouse.move(k["x"] + k["width"] / 2, k["y"] + k["height"] / 2)
    page.mouse.down()
    page.mouse.move(*at(200, 120), steps=6)  # straight right of the centre
    page.mouse.move(*at(250, 120), steps=6)
    page.mouse.up()

    def angle():
        return hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[ann, "angle"]

    wait_until(
        lambda: angle() == angle() and abs(angle() - 90) < 3,
        what="the box turned 90°",
    )
    page.wait_for_selector(".hx-annotator [data-ann] g[data-angle]")
    page.keyboard.press("]")  # +5° from the keyboard
    wait_until(lambda: abs(angle() - 95) < 3, what="the box turned 5° more")
    page.screenshot(path=str(shots / "annotator_rotated.png"))

    page.keyboard.press("u")  # ignore polygon tool
    for x, y in [(20, 20), (70, 25), (40, 70)]:
        page.mouse.click(*at(x, y))
    page.keyboard.press("Enter")
    wait_until(
        lambda: (hx.Dataset.open(ds.path).annotations["kind"] == "ignore").any(),
        what="the ignore polygon on disk",
    )
    ignore = hx.Dataset.open(ds.path).annotations.query("kind == 'ignore'").iloc[0]
    np.testing.assert_allclose(ignore["points"], [[20, 20], [70, 25], [40, 70]], atol=3)
    assert hx.Dataset.open(ds.path).samples.loc[0, "status"] == "labeled"

    shapes = page.locator(".hx-annotator svg[data-role=overlay] [data-ann]")
    wait_until(lambda: shapes.count() == 2, what="two shapes drawn")
    page.keyboard.press("v")
    wait_until(lambda: shapes.count() == 0, what="every annotation hidden")
    page.keyboard.press("v")
    wait_until(lambda: shapes.count() == 2, what="annotations shown again")
    page.keyboard.press("o")  # one image px per screen px
    wait_until(lambda: abs(overlay.bounding_box()["width"] - 320) < 2, what="1:1 zoom")
    page.keyboard.press("f")
    wait_until(lambda: abs(overlay.bounding_box()["width"] - box["width"]) < 2, what="fit again")


def _cells(page) -> tuple[int, int]:
    """(cells, markdown cells) in the open notebook."""
    return (
        page.locator(".jp-Notebook .jp-Cell").count(),
        page.locator(".jp-Notebook .jp-MarkdownCell").count(),
    )


def _keys_stay_and_undo_returns(page, lab, tmp_path, ui: str, shots):
    ds = hx.Dataset.create(lab["root"] / f"leak_{ui}", task="detection", labels=["defect"])
    ids = ds.add_images(make_images(tmp_path / "img", 2)).added
    gone = ds.add_box(ids[0], "defect", 40, 40, 140, 120)
    run_notebook(
        page,
        lab,
        f"leak_{ui}.ipynb",
        [head(ds.path) + "w = hx.Annotator(ds)\nw", "x = 1", "y = 2"],
        wait_for=".hx-annotator [data-ann] rect",
        ui=ui,
    )
    before = _cells(page)
    page.locator(".hx-annotator").first.focus()
    # notebook commands in command mode: insert above, to Markdown, delete twice, cut
    for key in ["a", "b", "m", "d", "d", "x", "z", "Shift+m"]:
        page.keyboard.press(key)
    page.wait_for_timeout(500)
    assert _cells(page) == before, "a key typed in the widget reached the notebook"
    # the widget's own keys work in this front end: select, delete, next, undo
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)
    sx, sy = box["width"] / 320, box["height"] / 240
    page.mouse.click(box["x"] + 90 * sx, box["y"] + 80 * sy)  # select the box
    page.wait_for_selector(".hx-annotator .ann-row.sel")
    page.keyboard.press("Delete")
    wait_until(lambda: hx.Dataset.open(ds.path).annotations.empty, what="the box deleted")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    page.keyboard.press("Control+z")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img00.png')")
    wait_until(
        lambda: hx.Dataset.open(ds.path).annotations["sample_id"].tolist() == [ids[0]],
        what="the box back on its own image",
    )
    assert _cells(page) == before
    page.screenshot(path=str(shots / f"annotator_keys_{ui}.png"))
    del gone


def test_keys_stay_in_the_widget_and_undo_returns_to_its_image_in_jupyterlab(
    lab, page, shots, tmp_path
):
    _keys_stay_and_undo_returns(page, lab, tmp_path, "lab", shots)


def test_keys_stay_in_the_widget_and_undo_returns_to_its_image_in_notebook7(
    lab, page, shots, tmp_path
):
    _keys_stay_and_undo_returns(page, lab, tmp_path, "notebook", shots)


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_a_restarted_kernel_shows_disconnected_and_refuses_edits(lab, page, shots, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"restart_ds_{ui}", task="detection", labels=["defect"])
    ds.add_images(make_images(tmp_path / "img", 1))
    cells = [head(ds.path) + "w = hx.Annotator(ds)\nw"]
    if ui == "lab":  # a busy kernel (a long cell below) is not a lost one
        cells.append("import time\ntime.sleep(12)")
    run_notebook(page, lab, f"restart_{ui}.ipynb", cells, wait_for=".hx-annotator svg[data-role=overlay]", ui=ui)  # fmt: skip
    banner = page.locator(".hx-annotator [data-role=disconnected]")
    if ui == "lab":
        banner.wait_for(state="visible", timeout=20_000)
        assert "busy running a cell" in banner.inner_text()
        banner.wait_for(state="hidden", timeout=30_000)
        overlay = page.locator(".hx-annotator svg[data-role=overlay]")
        drag(page, laid_out(overlay), (40, 50), (160, 130))
        wait_until(lambda: len(hx.Dataset.open(ds.path).annotations) == 1, what="the box on disk")
        # drawn from the kernel's answer first: else its deletion could pass for done before
        # the answer draws it (seen on a loaded machine)
        page.locator(".hx-annotator [data-ann]").wait_for()
        ds.delete_annotations(list(hx.Dataset.open(ds.path).annotations["ann_id"]))
        page.locator(".hx-annotator [data-ann]").wait_for(state="detached", timeout=15_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    if ui == "lab":
        page.wait_for_selector("#jp-main-statusbar :text('Idle')", timeout=60_000)
    else:  # Notebook 7 has no status bar: its kernel indicator says when it is back
        page.wait_for_selector(".jp-NotebookKernelStatus-fade, .jp-KernelStatus", timeout=60_000)
        page.wait_for_timeout(2000)
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)
    drag(page, box, (40, 50), (160, 130))
    page.wait_for_selector(".hx-annotator [data-role=disconnected]:visible", timeout=20_000)
    page.screenshot(path=str(shots / f"annotator_disconnected_{ui}.png"))
    assert hx.Dataset.open(ds.path).annotations.empty
    # a second box is refused at once (no drawing on a dead widget)
    drag(page, box, (200, 50), (260, 120), steps=4)
    assert page.locator(".hx-annotator [data-ann]").count() == 0


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_label_for_new_shapes_leaves_the_selection_and_shift_starts_a_box_inside_a_box(
    lab, page, shots, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"newlabel_ds_{ui}", task="detection", labels=["a", "b"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    big = ds.add_box(sid, "a", 20, 20, 300, 220, score=0.9, origin="V1")
    show(page, lab, ds, f"newlabel_{ui}", "Annotator", ".hx-annotator [data-ann] rect", ui=ui)
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)
    sx, sy = box["width"] / 320, box["height"] / 240
    page.mouse.click(box["x"] + 60 * sx, box["y"] + 60 * sy)  # select the big box
    page.wait_for_selector(".hx-annotator .ann-row.sel")
    page.locator(".hx-annotator [data-label=b]").click()  # label for NEW shapes
    # a drag inside the big box moves it; Shift+drag draws a new box inside it
    page.keyboard.press("Escape")
    page.keyboard.down("Shift")
    drag(page, box, (100, 100), (150, 140))
    page.keyboard.up("Shift")
    wait_until(lambda: len(hx.Dataset.open(ds.path).annotations) == 2, what="a new box")
    ann = hx.Dataset.open(ds.path).annotations.set_index("ann_id")
    assert ann.loc[big, "label"] == "a" and ann.loc[big, "origin"] == "V1"
    assert ann.loc[big, ["x0", "y0", "x1", "y1"]].tolist() == [20, 20, 300, 220]
    new = ann.drop(index=big).iloc[0]
    assert new["label"] == "b" and new["origin"] == "human"
    np.testing.assert_allclose([new.x0, new.y0, new.x1, new.y1], [100, 100, 150, 140], atol=3)
    # relabeling is its own control, on the selected object's row
    page.mouse.click(box["x"] + 40 * sx, box["y"] + 200 * sy)  # inside the big box only
    page.locator(f".hx-annotator select[data-relabel='{big}']").select_option("b")
    wait_until(
        lambda: hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[big, "label"] == "b",
        what="the explicit relabel on disk",
    )


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_a_press_on_any_shape_drags_it_and_polygon_vertices_are_added_and_removed(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"gesture_{ui}", task="detection", labels=["a"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    b = ds.add_box(sid, "a", 20, 20, 120, 100)
    square = [[180, 120], [280, 120], [280, 220], [180, 220]]
    poly = ds.add_polygon(sid, "a", square)
    show(page, lab, ds, f"gesture_{ui}", "Annotator", ".hx-annotator [data-ann] path", ui=ui)
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    page.locator(".hx-annotator").first.focus()
    box = laid_out(overlay)

    def at(x, y):
        return box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240

    def row(ann_id):
        return _ann(ds).set_index("ann_id").loc[ann_id]

    # one gesture: a press on the box that nobody selected, dragged, moves it
    assert page.locator(".hx-annotator .ann-row.sel").count() == 0
    drag(page, box, (60, 60), (90, 80))
    wait_until(lambda: abs(row(b)["x0"] - 50) < 3, what="the box moved in one drag")
    np.testing.assert_allclose(
        row(b)[["x0", "y0", "x1", "y1"]].tolist(), [50, 40, 150, 120], atol=3
    )
    assert len(_ann(ds)) == 2  # moved, not drawn over
    page.wait_for_selector(f".hx-annotator .ann-row.sel[data-row='{b}']")
    # select the polygon: each edge has a midpoint handle; dragging one adds a vertex there
    page.mouse.click(*at(230, 170))
    mid = page.locator(".hx-annotator [data-handle=midpoint][data-index='1']")
    mid.wait_for()
    m = mid.bounding_box()
    page.mouse.move(m["x"] + m["width"] / 2, m["y"] + m["height"] / 2)
    page.mouse.down()
    page.mouse.move(*at(230, 100), steps=8)
    page.mouse.up()
    wait_until(lambda: len(row(poly)["points"]) == 5, what="a fifth vertex on disk")
    np.testing.assert_allclose(row(poly)["points"][1], [230, 100], atol=3)
    np.testing.assert_allclose(np.delete(np.array(row(poly)["points"]), 1, 0), square, atol=0.5)
    # Alt+click on that vertex removes it: the square again
    vertex = page.locator(".hx-annotator [data-handle=vertex][data-index='1']")
    wait_until(
        lambda: page.locator(".hx-annotator [data-handle=vertex]").count() == 5,
        what="five vertex handles",
    )
    v = vertex.bounding_box()
    page.keyboard.down("Alt")
    page.mouse.click(v["x"] + v["width"] / 2, v["y"] + v["height"] / 2)
    page.keyboard.up("Alt")
    wait_until(lambda: len(row(poly)["points"]) == 4, what="the vertex removed on disk")
    np.testing.assert_allclose(row(poly)["points"], square, atol=0.5)

    # a polygon keeps three points: Alt+click a triangle's vertex says so and removes nothing
    def alt_click_vertex(count):
        handles = page.locator(".hx-annotator [data-handle=vertex]")
        wait_until(lambda: handles.count() == count, what=f"{count} vertex handles")
        v = handles.first.bounding_box()
        page.keyboard.down("Alt")
        page.mouse.click(v["x"] + v["width"] / 2, v["y"] + v["height"] / 2)
        page.keyboard.up("Alt")

    alt_click_vertex(4)
    wait_until(lambda: len(row(poly)["points"]) == 3, what="a triangle")
    alt_click_vertex(3)
    page.wait_for_selector(".hx-annotator [data-role=notice]:has-text('3 points or more')")
    assert len(row(poly)["points"]) == 3


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_object_attributes_toggle_on_the_selected_row_and_undo(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"attrs_{ui}", task="detection", labels=["a"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    first = ds.add_box(sid, "a", 20, 20, 120, 100, difficult=True)
    second = ds.add_box(sid, "a", 180, 120, 300, 220)
    show(page, lab, ds, f"attrs_{ui}", "Annotator", ".hx-annotator [data-ann] rect", ui=ui)
    annotator = page.locator(".hx-annotator")
    # an unselected row names what is set
    row = annotator.locator(f".ann-row[data-row='{first}'] [data-role=attributes]")
    assert row.inner_text() == "difficult"
    annotator.locator(f".ann-row[data-row='{second}']").click()
    toggles = annotator.locator(f".ann-row[data-row='{second}'] [data-attr]")
    assert toggles.all_inner_texts() == ["difficult", "truncated", "occluded"]
    annotator.locator(f".ann-row[data-row='{second}'] [data-attr=occluded]").click()

    def occluded():
        return bool(_ann(ds).set_index("ann_id").loc[second, "occluded"])

    wait_until(occluded, what="occluded on disk")
    pressed = annotator.locator(f".ann-row[data-row='{second}'] [data-attr=occluded]")
    wait_until(lambda: pressed.get_attribute("aria-pressed") == "true", what="shown pressed")
    page.keyboard.press("Control+z")  # the keys stayed with the widget after the click
    wait_until(lambda: not occluded(), what="occluded undone")


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_gallery_sets_one_label_on_the_selected_and_colours_thumbnail_boxes_by_label(
    lab, page, tmp_path, ui
):
    cds = hx.Dataset.create(
        lab["root"] / f"relabel_{ui}", task="classification", labels=["cat", "dog"]
    )
    cids = cds.add_images(make_images(tmp_path / "c", 4)).added
    cds.set_label(cids, "cat")
    dds = hx.Dataset.create(
        lab["root"] / f"colours_{ui}", task="detection", labels=["scratch", "dent"]
    )
    (sid,) = dds.add_images(make_images(tmp_path / "d", 1)).added
    dds.add_box(sid, "scratch", 10, 10, 100, 100)
    dds.add_box(sid, "dent", 150, 100, 300, 200)
    cells = [
        head(cds.path) + "hx.Gallery(ds)",
        f"dds = hx.Dataset.open(r'{dds.path}')\nhx.Gallery(dds)",
    ]
    run_notebook(
        page, lab, f"relabel_{ui}.ipynb", cells, wait_for=".hx-gallery svg[data-boxes] rect", ui=ui
    )
    gallery = page.locator(".jp-Notebook .jp-Cell").nth(0).locator(".hx-gallery")
    cards = gallery.locator(".card")
    cards.nth(1).click()
    cards.nth(3).click()
    gallery.locator(":text('2 selected')").wait_for()
    menu = gallery.locator("select[data-action=set-label]")
    assert menu.locator("option").first.inner_text() == "Set label of 2 images…"
    menu.select_option("dog")

    def labels():
        return hx.Dataset.open(cds.path).samples.set_index("sample_id")["label"].loc[cids].tolist()

    wait_until(lambda: labels() == ["cat", "dog", "cat", "dog"], what="two relabeled on disk")
    gallery.locator("[data-role=notice]:has-text(\"2 images labeled 'dog'\")").wait_for()
    # thumbnails draw each label in the Annotator's colour for it
    thumbs = page.locator(".jp-Notebook .jp-Cell").nth(1).locator("svg[data-boxes] rect")
    strokes = {r.get_attribute("data-label"): r.get_attribute("stroke") for r in thumbs.all()}
    assert strokes == {"scratch": "#2563eb", "dent": "#16a34a"}


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_gallery_gives_and_takes_one_label_of_the_selected_multilabel_images(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"give_{ui}", task="multilabel", labels=["cat", "dog"])
    ids = ds.add_images(make_images(tmp_path / "m", 4)).added
    ds.set_labels(ids[:2], ["cat"])
    run_notebook(
        page,
        lab,
        f"give_{ui}.ipynb",
        [head(ds.path) + "hx.Gallery(ds)"],
        wait_for=".hx-gallery .card",
        ui=ui,
    )
    gallery = page.locator(".hx-gallery").first
    cards = gallery.locator(".card")
    cards.nth(1).click()
    cards.nth(2).click()
    gallery.locator(":text('2 selected')").wait_for()
    give = gallery.locator("select[data-action=give-label]")
    assert give.locator("option").first.inner_text() == "Give 2 images a label…"
    give.select_option("dog")

    def labels():
        return [hx.Dataset.open(ds.path).labels_of(i) for i in ids]

    wait_until(
        lambda: labels() == [["cat"], ["cat", "dog"], ["dog"], []], what="dog given to two on disk"
    )
    gallery.locator("[data-role=notice]:has-text(\"2 images given 'dog'\")").wait_for()
    take = gallery.locator("select[data-action=take-label]")
    assert take.locator("option").first.inner_text() == "Take a label from 2 images…"
    take.select_option("cat")
    wait_until(lambda: labels() == [["cat"], ["dog"], ["dog"], []], what="cat taken from one")


PLACEHOLDER_FITS = """(el) => {
  const c = document.createElement('canvas').getContext('2d');
  const st = getComputedStyle(el);
  c.font = st.font;
  const room = el.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
  return [c.measureText(el.placeholder).width, room];
}"""


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_clear_all_asks_with_the_count_and_the_gallerys_filters_read_whole(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"clear_{ui}", task="detection", labels=["a"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    for x in (10, 110, 210):
        ds.add_box(sid, "a", x, 20, x + 60, 80)
    cells = [head(ds.path) + "hx.Annotator(ds)", "hx.Gallery(ds)"]
    run_notebook(page, lab, f"clear_{ui}.ipynb", cells, wait_for=".hx-gallery", ui=ui)
    annotator = page.locator(".hx-annotator")
    annotator.locator("[data-action=clear]").click()
    question = annotator.locator("[data-role=clear-question]")
    assert question.inner_text().startswith("Delete all 3 objects?")
    annotator.locator("[data-action=clear-no]").click()
    assert question.count() == 0 and len(_ann(ds)) == 3
    annotator.locator("[data-action=clear]").click()
    page.keyboard.press("Escape")  # Esc says no too
    wait_until(lambda: question.count() == 0, what="Esc: no")
    annotator.locator("[data-action=clear]").click()
    annotator.locator("[data-action=clear-yes]").click()
    wait_until(lambda: len(_ann(ds)) == 0, what="all cleared on disk")
    page.keyboard.press("Control+z")  # one step brings all three back
    wait_until(lambda: len(_ann(ds)) == 3, what="the clear undone")
    # every filter box of the Gallery shows its whole placeholder
    for field in page.locator(".hx-gallery input[placeholder]").all():
        text, room = field.evaluate(PLACEHOLDER_FITS)
        assert room >= text, (field.get_attribute("placeholder"), text, room)


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_review_confirm_at_a_threshold_stores_no_hidden_box(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"thr_ds_{ui}", task="detection", labels=["defect"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    ds.add_box(sid, "defect", 80, 60, 160, 120, score=0.95, origin="V1")
    ds.add_box(sid, "defect", 200, 150, 260, 200, score=0.55, origin="V1")
    ds.set_status(sid, "to_confirm")
    show(page, lab, ds, f"threshold_{ui}", "Review", ".hx-annotator [data-role=queue]", ui=ui)
    shapes = page.locator(".hx-annotator svg[data-role=overlay] [data-ann]")
    wait_until(lambda: shapes.count() == 2, what="both boxes shown")
    rows = page.locator(".hx-annotator .ann-row")
    assert rows.count() == 2
    page.locator(".hx-annotator [data-role=threshold]").fill("0.8")
    wait_until(lambda: shapes.count() == 1, what="the 0.55 box hidden")
    # the objects list shows what the overlay shows, and counts the rest
    wait_until(lambda: rows.count() == 1, what="one object listed")
    assert page.locator(".hx-annotator [data-role=below-threshold]").inner_text() == (
        "1 below the score threshold"
    )
    page.locator(".hx-annotator [data-action=confirm]").click()
    wait_until(
        lambda: hx.Dataset.open(ds.path).sample(sid)["status"] == "labeled", what="confirmed"
    )
    assert hx.Dataset.open(ds.path).annotations["score"].tolist() == [0.95]


CONTRAST = """(el) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const st = getComputedStyle(el);
  let bgEl = el, bg = st.backgroundColor;
  while (bgEl && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) { bgEl = bgEl.parentElement; bg = bgEl ? getComputedStyle(bgEl).backgroundColor : "rgb(255, 255, 255)"; }
  const a = lum(rgb(st.color)), b = lum(rgb(bg));
  return { contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), background: b };
}"""


WIDTHS = (900, 1400, 1900)  # window widths every widget is shot and checked at
VIEWPORT = {"width": 1400, "height": 1000}  # the page fixture's


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_every_widget_in_light_and_dark_theme(lab, page, shots, tmp_path, ui):
    """Screenshots of each widget in both themes and both front ends for a person to look
    at; in the dark theme the widgets' buttons and text are light on dark with readable
    contrast."""
    ds = hx.Dataset.create(lab["root"] / f"theme_{ui}", task="detection", labels=["cat", "dog"])
    ids = ds.add_images(make_images(tmp_path / "img", 4)).added
    ds.add_box(ids[0], "cat", 80, 60, 160, 120, score=0.9, origin="V1")
    ds.set_status(ids[0], "to_confirm")
    ds.mark_hard(ids[0], reasons=[1], score=0.7)
    cells = [
        head(ds.path) + "hx.Annotator(ds)",
        "hx.Review(ds)",
        "hx.Gallery(ds)",
        "cls = hx.evaluate_classification(['cat','cat','dog','dog'], ['cat','dog','dog','dog'],"
        " label_names=['cat','dog'], image_ids=" + str(ids) + ")\nhx.ConfusionMatrix(cls, ds=ds)",
        "hx.ReportView(cls, ds=ds)",
        "import pandas as pd\n"
        f"gt = pd.DataFrame({{'image_id': {ids}, 'label': ['cat', 'cat', 'dog', 'dog'],"
        " 'x0': 10.0, 'y0': 10.0, 'x1': 60.0, 'y1': 60.0})\n"
        "pred = gt.assign(score=[0.9, 0.4, 0.8, 0.2], x1=[60.0, 60.0, 20.0, 60.0])\n"
        "hx.ReportView(hx.evaluate_detections(gt, pred), ds=ds)",
    ]
    run_notebook(page, lab, f"themes_{ui}.ipynb", cells, wait_for=".hx-report >> nth=1", ui=ui)
    widgets = {
        "annotator": ".hx-annotator >> nth=0",
        "review": ".hx-annotator >> nth=1",
        "gallery": ".hx-gallery",
        "confusion": ".hx-confusion",
        "report": ".hx-report >> nth=0",
        "report_curves": ".hx-report >> nth=1",
    }
    page.wait_for_selector(".hx-gallery .card img[src^=blob]")
    # the detection report draws each label's PR curve with its two marks, and the
    # reliability diagram; the mark's tooltip names the threshold
    curves = page.locator(".hx-report >> nth=1").locator("svg[data-curve]")
    wait_until(lambda: curves.count() == 2, what="both labels' PR curves")
    cat = page.locator(".hx-report >> nth=1").locator("svg[data-curve=cat]")
    assert cat.locator("path.plot-line").get_attribute("d").startswith("M")
    tip = cat.locator("[data-mark=at] title").text_content()
    assert tip.startswith("the report's threshold 0.400: precision 1.000, recall 1.000"), tip
    report = page.locator(".hx-report >> nth=1")
    assert report.locator("svg[data-calibration] rect.plot-bar").count()
    # TIDE: dog's 0.8 box is off (IoU 0.2): one localization error, whose count opens it
    report.locator("[data-role=tide] [data-tide=loc] button").click()
    title = report.locator("[data-role=errors-title]")
    expected = "1 image(s) with errors for localization errors (TIDE)"
    wait_until(
        lambda: title.count() and title.inner_text().startswith(expected),
        what="the TIDE error's image",
    )
    # by label: dog's row has the localization error (cat's none), and its count opens it
    by_label = report.locator("[data-role=tide-labels]")
    assert by_label.locator("[data-tide-label=cat] [data-tide-type=loc] button").count() == 0
    by_label.locator("[data-tide-label=dog] [data-tide-type=loc] button").click()
    expected = "1 image(s) with errors for localization errors of dog (TIDE)"
    wait_until(lambda: title.inner_text().startswith(expected), what="dog's TIDE error's image")

    def shoot(theme: str) -> None:
        """Each widget at three window widths: saved, nothing wider than its cell, and the
        Annotator's image at least half of its width (the side panel goes under it)."""
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(400)
            for name, where in widgets.items():
                el = page.locator(where)
                el.scroll_into_view_if_needed()
                el.screenshot(path=str(shots / f"{name}_{theme}_{width}_{ui}.png"))
                over = el.evaluate("(e) => e.scrollWidth - e.clientWidth")
                assert over <= 1, (name, width, over)
            annotator = page.locator(widgets["annotator"])
            shown = annotator.locator(".stage > img").first.bounding_box()
            assert shown["width"] >= 0.5 * annotator.bounding_box()["width"], (width, shown)
        page.set_viewport_size(VIEWPORT)

    def choose(theme: str) -> None:
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
        page.locator(".lm-Menu-itemLabel", has_text=theme).first.click()
        light = theme == "JupyterLab Light"
        page.wait_for_function(
            f"() => document.body.dataset.jpThemeLight === '{str(light).lower()}'", timeout=30_000
        )
        page.wait_for_timeout(500)

    shoot("light")
    try:
        choose("JupyterLab Dark")
        shoot("dark")
        for where in (
            ".hx-annotator [data-action=next]",
            ".hx-annotator button.on",
            ".hx-gallery button >> nth=0",
        ):
            seen = page.locator(where).first.evaluate(CONTRAST)
            assert seen["background"] < 0.3, (where, seen)  # a dark button, not a white one
            assert seen["contrast"] >= 4.5, (where, seen)
        text = page.locator(".hx-annotator [data-role=name]").first.evaluate(CONTRAST)
        assert text["contrast"] >= 4.5, text
        chip = page.locator(".hx-annotator .ann-row .chip").first.evaluate(CONTRAST)
        assert chip["contrast"] >= 4.5, chip  # a label's chip in the objects list
    finally:
        choose("JupyterLab Light")  # the setting lives on the server: leave it as found


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_type_ocr_text_with_a_click_and_drag_the_score_slider_in_one_go(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"ocr_ds_{ui}", task="detection", labels=["plate"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    sure = ds.add_box(sid, "plate", 80, 60, 160, 120, score=0.9, origin="V1")
    ds.add_box(sid, "plate", 200, 150, 260, 200, score=0.3, origin="V1")
    show(page, lab, ds, f"ocr_{ui}", "Annotator", ".hx-annotator [data-ann] rect", ui=ui)
    field = page.locator(f".hx-annotator input[data-text='{sure}']")
    field.click()  # one click puts the caret in the field
    page.keyboard.type("AB")
    # another writer adds an object while the labeler types: the overlay shows it, the typing stays
    typing = ds.add_box(sid, "plate", 250, 20, 300, 50, score=0.95, origin="V1")
    page.wait_for_selector(f".hx-annotator svg [data-ann='{typing}']", timeout=15_000)
    page.keyboard.type(" 123")
    page.keyboard.press("Enter")
    field.blur()

    def stored():
        return hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[sure]

    wait_until(lambda: stored()["text"] == "AB 123", what="the OCR text on disk")
    assert stored()["kind"] == "text"  # the same kind the imports give a box with text
    page.wait_for_selector(".hx-annotator svg[data-role=overlay] text:has-text('AB 123')")
    shapes = page.locator(".hx-annotator svg[data-role=overlay] [data-ann]")
    assert shapes.count() == 3
    slider = page.locator(".hx-annotator [data-role=threshold]")
    s = slider.bounding_box()
    page.mouse.move(s["x"] + 2, s["y"] + s["height"] / 2)
    page.mouse.down()
    page.mouse.move(s["x"] + s["width"] * 0.5, s["y"] + s["height"] / 2, steps=10)
    # another writer adds an object mid-drag: the overlay shows it, the slider stays held
    other = ds.add_box(sid, "plate", 20, 20, 60, 50, score=0.95, origin="V1")
    page.wait_for_selector(f".hx-annotator svg [data-ann='{other}']", timeout=15_000)
    page.mouse.move(s["x"] + s["width"] * 0.8, s["y"] + s["height"] / 2, steps=10)
    page.mouse.up()
    assert float(slider.input_value()) >= 0.7  # one drag, not one 0.05 step
    wait_until(lambda: shapes.count() == 3, what="the 0.3 box hidden")
    page.wait_for_selector(f".hx-annotator [data-row='{other}']")  # the list, redrawn once let go


def test_a_4000x3000_image_at_800_percent_shows_the_files_own_pixels(lab, page, shots, tmp_path):
    """The widget gets a 1600 px copy; zoomed in to 800 % it asks for the region in view and
    shows it at native resolution: the displayed crop equals the file's pixels."""
    rng = np.random.default_rng(5)
    big = (rng.integers(0, 256, (3000, 4000, 3))).astype(np.uint8)  # detail only natives show
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path, compress_level=1)
    ds = hx.Dataset.create(lab["root"] / "big_px_ds", task="detection", labels=["defect"])
    ds.add_images([path])
    show(
        page,
        lab,
        ds,
        "native",
        "Annotator",
        ".hx-annotator svg[data-role=overlay]",
        timeout=120_000,
    )
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    box = laid_out(overlay)
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.keyboard.down("Control")
    for _ in range(32):  # ×1.15 per notch, up to 800 % of the photo's own pixels
        page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_selector(".hx-annotator [data-role=zoom]:text('zoom 800%')")
    # 8 screen px per image px: the 4000 px wide photo is 32,000 px wide on screen
    assert overlay.bounding_box()["width"] == pytest.approx(8 * 4000, rel=0.01)
    crop = page.locator(".hx-annotator img[data-role=crop]")
    crop.wait_for(state="visible", timeout=30_000)
    page.screenshot(path=str(shots / "annotator_native_800.png"))
    seen = assert_native_crop(crop, big)
    assert seen["x1"] - seen["x0"] < 1000  # a region, not the whole image


GRAB_CROP = """(el) => new Promise((done) => {
      if (!el.src || !el.complete || !el.naturalWidth) { done(null); return; }
      const c = document.createElement("canvas");
      c.width = el.naturalWidth; c.height = el.naturalHeight;
      const g = c.getContext("2d"); g.drawImage(el, 0, 0);
      const d = g.getImageData(0, 0, Math.min(40, c.width), Math.min(40, c.height));
      done({ src: el.src, w: c.width, h: c.height, data: Array.from(d.data), ...el.dataset,
             pw: d.width, ph: d.height });
    })"""


def assert_native_crop(crop, pixels: np.ndarray) -> dict:
    """Once the crop shown over the image has settled (the same twice in a row: zoom and
    scroll have come to rest), assert it is the file's own pixels of its region."""
    last: dict = {}

    def settled():
        now = crop.evaluate(GRAB_CROP)
        same = now is not None and last.get("src") == now["src"]
        last.clear()
        last.update(now or {})
        if not same:
            time.sleep(0.5)
        return now if same else None

    seen = wait_until(settled, what="the native crop to settle")
    x0, y0, x1, y1 = (int(seen[k]) for k in ("x0", "y0", "x1", "y1"))
    assert seen["native"] == "true" and (seen["w"], seen["h"]) == (x1 - x0, y1 - y0)
    shown = np.array(seen["data"], dtype=np.uint8).reshape(seen["ph"], seen["pw"], 4)[..., :3]
    np.testing.assert_array_equal(shown, pixels[y0 : y0 + seen["ph"], x0 : x0 + seen["pw"]])
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_show_original_puts_a_classified_image_at_its_own_size_and_pixels(lab, page, tmp_path, ui):
    rng = np.random.default_rng(6)
    big = rng.integers(0, 256, (1800, 2400, 3)).astype(np.uint8)  # sent as a 1600 px copy
    path = tmp_path / "photo.png"
    Image.fromarray(big).save(path, compress_level=1)
    ds = hx.Dataset.create(lab["root"] / f"original_{ui}", task="multilabel", labels=["cat", "dog"])
    ds.add_images([path])
    cells = [head(ds.path) + "hx.Annotator(ds)"]
    run_notebook(page, lab, f"original_{ui}.ipynb", cells, wait_for=".hx-annotator", ui=ui)
    annotator = page.locator(".hx-annotator").first
    overlay = annotator.locator("svg[data-role=overlay]")
    fitted = laid_out(overlay)["width"]
    assert fitted < 1400  # fitted to the panel
    annotator.locator("[data-action=show-original]").click()
    annotator.locator("[data-action=show-original][aria-pressed=true]:text('Fit (f)')").wait_for()
    wait_until(lambda: abs(overlay.bounding_box()["width"] - 2400) < 2, what="one pixel per pixel")
    crop = annotator.locator("img[data-role=crop]")
    crop.wait_for(state="visible", timeout=30_000)
    assert_native_crop(crop, big)
    annotator.focus()
    page.keyboard.press("f")  # and back
    wait_until(lambda: abs(overlay.bounding_box()["width"] - fitted) < 2, what="fitted again")
    annotator.locator("[data-action=show-original][aria-pressed=false]").wait_for()


def _ann(ds) -> pd.DataFrame:
    return hx.Dataset.open(ds.path).annotations


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_polygon_vertices_copy_paste_lock_hide_zoom_at_the_pointer_pan_and_minimap(
    lab, page, shots, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"depth_ds_{ui}", task="detection", labels=["part"])
    first, second = ds.add_images(make_images(tmp_path / "img", 2)).added
    kept = ds.add_box(first, "part", 200, 20, 300, 80)
    show(page, lab, ds, f"depth_{ui}", "Annotator", ".hx-annotator [data-ann] rect", ui=ui)
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    page.locator(".hx-annotator").first.focus()  # (focus may scroll the page: measure after)
    box = laid_out(overlay)

    def at(x, y):
        return box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240

    # a polygon: three clicks and a double-click close it, without a doubled last point
    page.keyboard.press("g")
    for x, y in [(20, 120), (100, 120), (100, 200)]:
        page.mouse.click(*at(x, y))
    page.mouse.dblclick(*at(20, 200))
    wait_until(lambda: (_ann(ds)["kind"] == "polygon").any(), what="the polygon on disk")
    polygon = _ann(ds).query("kind == 'polygon'").iloc[0]
    np.testing.assert_allclose(
        polygon["points"], [[20, 120], [100, 120], [100, 200], [20, 200]], atol=3
    )
    # on disk is not yet in the browser: a click selects only what the widget has been sent
    page.wait_for_selector(f".hx-annotator svg [data-ann='{polygon.ann_id}']")
    # switching tool half way leaves no stray point
    page.mouse.click(*at(150, 150))
    page.keyboard.press("b")
    assert page.locator(".hx-annotator svg[data-role=overlay] > circle").count() == 0
    # select the polygon, drag one vertex handle: only that vertex moves
    page.mouse.click(*at(60, 160))
    handle = page.locator(".hx-annotator [data-handle=vertex][data-index='2']")
    handle.wait_for()
    h = handle.bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(*at(120, 215), steps=8)
    page.mouse.up()
    wait_until(
        lambda: (
            abs(_ann(ds).set_index("ann_id").loc[int(polygon.ann_id), "points"][2][0] - 120) < 3
        ),
        what="the dragged vertex on disk",
    )
    moved = _ann(ds).set_index("ann_id").loc[int(polygon.ann_id)]
    np.testing.assert_allclose(
        moved["points"], [[20, 120], [100, 120], [120, 215], [20, 200]], atol=3
    )
    assert moved["x1"] == pytest.approx(120, abs=3)  # the box around it follows
    # lock the box: Delete leaves it; hide it: it leaves the overlay (and stays on disk)
    page.mouse.click(*at(250, 50))
    page.wait_for_selector(f".hx-annotator .ann-row.sel[data-row='{kept}']")
    page.locator(f".hx-annotator [data-lock='{kept}']").click()
    page.keyboard.press("Delete")
    page.wait_for_timeout(400)
    assert kept in set(_ann(ds)["ann_id"])
    page.locator(f".hx-annotator [data-hide='{kept}']").click()
    wait_until(
        lambda: page.locator(f".hx-annotator svg [data-ann='{kept}']").count() == 0,
        what="the hidden box gone from the overlay",
    )
    page.locator(f".hx-annotator [data-hide='{kept}']").click()
    page.locator(f".hx-annotator [data-lock='{kept}']").click()
    # copy the box, paste it on the next image: the same place, on disk
    page.mouse.click(*at(250, 50))
    page.wait_for_selector(f".hx-annotator .ann-row.sel[data-row='{kept}']")
    layout_y = page.locator(".hx-annotator .layout").bounding_box()["y"]
    page.keyboard.press("Control+c")
    page.wait_for_selector(".hx-annotator [data-role=notice]:has-text('copied')")
    # a notice floats over the widget: nothing below it moves
    assert page.locator(".hx-annotator .layout").bounding_box()["y"] == layout_y
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    page.keyboard.press("Control+v")
    wait_until(lambda: (_ann(ds)["sample_id"] == second).sum() == 1, what="the pasted box on disk")
    pasted = _ann(ds).query(f"sample_id == {second}").iloc[0]
    assert [pasted.x0, pasted.y0, pasted.x1, pasted.y1] == [200, 20, 300, 80]
    assert pasted["label"] == "part"
    # the notice goes away by itself
    page.wait_for_selector(".hx-annotator [data-role=notice]", state="detached", timeout=15_000)

    # zoom with Ctrl+wheel: the image point under the pointer stays under it
    box = laid_out(overlay)
    px, py = box["x"] + 0.7 * box["width"], box["y"] + 0.6 * box["height"]
    page.mouse.move(px, py)
    page.keyboard.down("Control")
    for _ in range(5):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(50)
    page.keyboard.up("Control")
    page.wait_for_timeout(300)
    zoomed = overlay.bounding_box()
    assert zoomed["width"] > 1.9 * box["width"]
    assert (px - zoomed["x"]) / zoomed["width"] == pytest.approx(0.7, abs=0.01)
    assert (py - zoomed["y"]) / zoomed["height"] == pytest.approx(0.6, abs=0.01)
    # zoomed in, a minimap shows where the view is; a click there moves the view
    minimap = page.locator(".hx-annotator [data-role=minimap]")
    minimap.wait_for(state="visible")
    page.screenshot(path=str(shots / f"annotator_minimap_{ui}.png"))
    m = minimap.bounding_box()
    page.mouse.click(m["x"] + 3, m["y"] + 3)
    page.wait_for_timeout(200)
    scrolled = overlay.bounding_box()
    assert scrolled["x"] > zoomed["x"] and scrolled["y"] >= zoomed["y"]  # went to the top left
    # space held down, a drag pans instead of drawing
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.keyboard.down(" ")
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 120, steps=6)
    page.mouse.up()
    page.keyboard.up(" ")
    panned = overlay.bounding_box()
    assert panned["x"] < scrolled["x"] - 50 and panned["y"] < scrolled["y"] - 30
    assert (_ann(ds)["sample_id"] == second).sum() == 1  # nothing drawn


def test_labels_stay_inside_the_image_apart_and_a_13th_label_by_type_ahead(
    lab, page, shots, tmp_path
):
    names = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    names += ["eleven", "a very long label name for a defect"]
    ds = hx.Dataset.create(lab["root"] / "many_ds", task="detection", labels=names)
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    for dy in (0, 4):  # two boxes at nearly one place by the right edge, long labels
        ds.add_box(sid, names[-1], 250, 30 + dy, 318, 90 + dy)
    show(page, lab, ds, "many", "Annotator", ".hx-annotator [data-ann] rect")
    overlay = page.locator(".hx-annotator svg[data-role=overlay]")
    laid_out(overlay)
    texts = page.locator(".hx-annotator svg[data-role=overlay] text")
    wait_until(lambda: texts.count() == 2, what="two labels")
    frame = overlay.bounding_box()
    boxes = [texts.nth(i).bounding_box() for i in range(2)]
    for b in boxes:  # inside the image
        assert b["x"] >= frame["x"] - 1 and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1
        assert b["y"] >= frame["y"] - 1
    a, b = boxes
    apart = a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1
    assert apart, boxes
    # same-label objects are told apart: numbered in the list and on the image
    rows = page.locator(".hx-annotator .ann-row .chip").all_inner_texts()
    assert rows == [f"{names[-1]} 1", f"{names[-1]} 2"]
    page.screenshot(path=str(shots / "annotator_labels_apart.png"))
    # "/" finds a label past the ninth by typing; Enter chooses it for new shapes
    page.locator(".hx-annotator").first.focus()
    page.keyboard.press("/")
    page.keyboard.type("elev")
    assert page.locator(".hx-annotator .labels button:visible").all_inner_texts() == ["eleven"]
    page.keyboard.press("Enter")
    page.wait_for_selector(".hx-annotator .labels button.on[data-label=eleven]")
    box = laid_out(overlay)
    drag(page, box, (20, 120), (80, 180), steps=6)
    wait_until(lambda: "eleven" in set(_ann(ds)["label"]), what="a box labeled eleven")


def test_gallery_filters_with_enter_says_why_nothing_matches_sorts_and_selects_every_match(
    lab, page, shots, tmp_path
):
    ds = hx.Dataset.create(lab["root"] / "gfilter_ds", task="detection", labels=["defect"])
    ids = ds.add_images(make_images(tmp_path / "img", 6)).added
    ds.add_box(ids[0], "defect", 80, 60, 160, 120)
    ds.mark_hard(ids[4], reasons=[1], score=0.9)
    cell = head(ds.path) + "g = hx.Gallery(ds, page_size=4)\ng"
    run_notebook(page, lab, "gfilter.ipynb", [cell], wait_for=".hx-gallery .card")
    gallery = page.locator(".hx-gallery")
    # boxes drawn on the thumbnail, and gone with the toggle
    page.wait_for_selector(f".hx-gallery svg[data-boxes='{ids[0]}'] rect")
    page.locator(".hx-gallery [data-role=show-boxes]").uncheck()
    assert page.locator(".hx-gallery svg[data-boxes] rect").count() == 0
    # a width no image has: Enter applies, and the empty state names the filter
    page.locator(".hx-gallery [data-filter=min_width]").fill("1e9")
    page.locator(".hx-gallery [data-filter=min_width]").press("Enter")
    empty = page.locator(".hx-gallery [data-role=empty]")
    empty.wait_for()
    assert "min_width=1000000000 matches no image (the largest is 320 px)" in empty.inner_text()
    gallery.screenshot(path=str(shots / "gallery_empty.png"))
    # min above max: a message, and the filters in force stay
    page.locator(".hx-gallery [data-filter=min_width]").fill("300")
    page.locator(".hx-gallery [data-filter=max_width]").fill("100")
    page.locator(".hx-gallery [data-action=filter]").click()
    page.wait_for_selector(".hx-gallery [data-role=error]:has-text('swap them')")
    assert empty.is_visible()
    # the message covers none of the filters it asks to change, nor takes their clicks
    message = page.locator(".hx-gallery [data-role=message]").bounding_box()
    for field in page.locator(".hx-gallery [data-filter]").all():
        f = field.bounding_box()
        assert f["y"] >= message["y"] + message["height"] or f["y"] + f["height"] <= message["y"]
    page.locator(".hx-gallery [data-filter=min_width]").click(timeout=5000)
    page.locator(".hx-gallery [data-role=empty] [data-action=clear-filters]").click()
    page.wait_for_selector(".hx-gallery [data-role=page]:has-text('6 images')")
    assert page.locator(".hx-gallery [data-filter=min_width]").input_value() == ""
    # a date-time range (UTC): reversed is refused, one around now keeps every image
    after, before = (
        page.locator(f".hx-gallery [data-filter={k}]") for k in ("added_after", "added_before")
    )
    after.fill("2031-01-01T00:00")
    before.fill("2030-01-01T00:00")
    before.press("Enter")
    page.wait_for_selector(".hx-gallery [data-role=error]:has-text('later than')")
    now = pd.Timestamp.now(tz="UTC")
    after.fill((now - pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    before.fill((now + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    before.press("Enter")
    page.wait_for_selector(".hx-gallery [data-filter=added_before][data-active]")
    page.wait_for_selector(".hx-gallery [data-role=page]:has-text('6 images')")
    assert page.locator(".hx-gallery [data-role=error]").count() == 0
    # a value typed but not applied stays when a reply from the kernel redraws the filters
    height = page.locator(".hx-gallery [data-filter=min_height]")
    height.fill("5")
    page.locator(".hx-gallery [data-role=order]").click()
    page.wait_for_selector(".hx-gallery [data-role=order]:has-text('descending')")
    assert height.input_value() == "5" and height.get_attribute("data-active") is None
    height.fill("")
    after.fill((now + pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    after.press("Enter")
    page.wait_for_selector(".hx-gallery [data-role=empty]:has-text('added_after')")
    page.locator(".hx-gallery [data-action=clear-filters] >> nth=0").click()
    page.wait_for_selector(".hx-gallery [data-role=page]:has-text('6 images')")
    # sort by hard score: the hard image first; full names on hover
    page.locator(".hx-gallery [data-role=sort]").select_option("hard_score")
    page.wait_for_selector(f".hx-gallery .card >> nth=0 >> [data-thumb='{ids[4]}']")
    assert page.locator(".hx-gallery .card").first.get_attribute("title").startswith("img04.png")
    # select the page, then every match across pages
    page.locator(".hx-gallery [data-action=select-page]").click()
    page.wait_for_selector(".hx-gallery [data-role=selected-count]:text('4 selected')")
    page.locator(".hx-gallery [data-action=select-all]").click()
    page.wait_for_selector(".hx-gallery [data-role=selected-count]:text('6 selected')")
    page.locator(".hx-gallery [data-action=mark-hard]").click()
    wait_until(
        lambda: hx.Dataset.open(ds.path).samples["hard"].all(), what="all six marked hard on disk"
    )


def _every_shortcut(page, lab, tmp_path, ui: str, shots) -> None:
    """Each key the widgets list under "Keys" does what it says, in this front end."""
    det = hx.Dataset.create(lab["root"] / f"allkeys_{ui}", task="detection", labels=["a", "b"])
    first, second = det.add_images(make_images(tmp_path / "det", 2)).added
    box_id = det.add_box(first, "a", 200, 40, 280, 100)
    cls = hx.Dataset.create(lab["root"] / f"allkeys_cls_{ui}", task="classification",
                            labels=["red", "blue"])  # fmt: skip
    ids = cls.add_images(make_images(tmp_path / "cls", 13)).added
    for k, sid in enumerate(ids[:10]):
        cls.set_label(sid, "red" if k % 2 else "blue")
    cells = [
        head(det.path) + "w = hx.Annotator(ds)\nw",
        f"cls = hx.Dataset.open(r'{cls.path}')\n"
        "run = hx.train(cls, epochs=1, batch_size=8, image_size=32, progress=False)\n"
        "hx.auto_label(cls, run, progress=False)\nr = hx.Review(cls)\nr",
    ]
    run_notebook(page, lab, f"allkeys_{ui}.ipynb", cells, wait_for="[data-role=probabilities]",
                 ui=ui, timeout=150_000)  # fmt: skip
    ann = page.locator(".hx-annotator").first
    # on a busy machine the training cell can outlast the Annotator's patience: it says so,
    # then answers again once the cell is done
    ann.locator("[data-role=disconnected]").wait_for(state="hidden", timeout=30_000)
    overlay = ann.locator("svg[data-role=overlay]")
    box = laid_out(overlay)

    def at(x, y):
        return box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240

    def on_disk():
        return hx.Dataset.open(det.path).annotations

    ann.focus()
    for key, shown in [
        ("n", "img01"),
        ("p", "img00"),
        ("ArrowRight", "img01"),
        ("ArrowLeft", "img00"),
    ]:
        page.keyboard.press(key)
        ann.locator(f"[data-role=name]:text('{shown}.png')").wait_for()
    page.keyboard.press("2")
    ann.locator(".labels button.on[data-label=b]").wait_for()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.dataset.role") == "label-find"
    page.keyboard.type("a")
    page.keyboard.press("Enter")
    ann.locator(".labels button.on[data-label=a]").wait_for()
    assert page.evaluate("document.activeElement.classList.contains('hx-annotator')")
    texts, shapes = overlay.locator("text"), overlay.locator("[data-ann]")
    for key, check in [("l", lambda: texts.count() == 0), ("l", lambda: texts.count() == 1),
                       ("v", lambda: shapes.count() == 0), ("v", lambda: shapes.count() == 1)]:  # fmt: skip
        page.keyboard.press(key)
        wait_until(check, what=f"key {key}")
    page.keyboard.press("o")
    wait_until(lambda: abs(overlay.bounding_box()["width"] - 320) < 2, what="o: 1:1")
    page.keyboard.press("f")
    wait_until(lambda: abs(overlay.bounding_box()["width"] - box["width"]) < 2, what="f: fit")
    side = ann.locator(".side")

    def under() -> bool:
        o = overlay.bounding_box()
        return side.bounding_box()["y"] >= o["y"] + o["height"] - 1

    page.keyboard.press("w")  # full width: the panel goes under, the image takes the room
    wait_until(under, what="w: the panel under the image")
    wait_until(lambda: overlay.bounding_box()["width"] > box["width"] + 100, what="w: wider")
    page.keyboard.press("w")
    wait_until(lambda: not under(), what="w again: the panel beside the image")
    wait_until(lambda: abs(overlay.bounding_box()["width"] - box["width"]) < 2, what="as before")
    for key, tool in [("g", "polygon"), ("i", "ignore"), ("u", "ignore_polygon"), ("h", "pan"),
                      ("b", "box")]:  # fmt: skip
        page.keyboard.press(key)
        ann.locator(f"button.on[data-tool={tool}]").wait_for()
    box = laid_out(overlay)  # the keys above may have scrolled the notebook
    page.mouse.click(*at(240, 70))  # select the box
    ann.locator(f".ann-row.sel[data-row='{box_id}']").wait_for()

    def angle():
        return on_disk().set_index("ann_id").loc[box_id, "angle"]

    page.keyboard.press("]")
    wait_until(lambda: angle() == 5, what="]: +5°")
    overlay.locator("g[data-angle='5']").wait_for()  # the widget has it too
    page.keyboard.press("[")
    wait_until(lambda: angle() != angle() or angle() in (0, 360), what="[: back to 0°")
    page.keyboard.press("g")
    for x, y in [(20, 140), (90, 140), (60, 200)]:
        page.mouse.click(*at(x, y))
    page.keyboard.press("Enter")
    wait_until(lambda: (on_disk()["kind"] == "polygon").sum() == 1, what="Enter closes")
    page.mouse.click(*at(150, 30))
    page.keyboard.press("Escape")
    assert overlay.locator("[data-role=new-point]").count() == 0
    page.keyboard.press("b")
    overlay.locator("[data-ann] path").wait_for()  # the widget shows the polygon too
    page.mouse.click(*at(60, 160))  # select the polygon
    ann.locator(".ann-row.sel").wait_for()
    page.keyboard.press("Delete")
    wait_until(lambda: (on_disk()["kind"] == "polygon").sum() == 0, what="Delete")
    overlay.locator("[data-ann] path").wait_for(state="detached")  # the widget has it too
    page.keyboard.press("Control+z")
    wait_until(lambda: (on_disk()["kind"] == "polygon").sum() == 1, what="Ctrl+Z")
    overlay.locator("[data-ann] path").wait_for()
    page.mouse.click(*at(60, 160))
    ann.locator(".ann-row.sel").wait_for()
    page.keyboard.press("Backspace")
    wait_until(lambda: (on_disk()["kind"] == "polygon").sum() == 0, what="Backspace")
    page.mouse.click(*at(240, 70))
    ann.locator(f".ann-row.sel[data-row='{box_id}']").wait_for()
    page.keyboard.press("Control+c")
    page.keyboard.press("n")
    ann.locator("[data-role=name]:text('img01.png')").wait_for()
    page.keyboard.press("Control+v")
    wait_until(lambda: (on_disk()["sample_id"] == second).sum() == 1, what="Ctrl+C, Ctrl+V")

    # classification Review: the model's top classes; no box tools or box keys
    review = page.locator(".hx-annotator").nth(1)
    review.scroll_into_view_if_needed()
    probs = review.locator("[data-role=probabilities] [data-prob]")
    assert probs.count() == 2
    assert review.locator("[data-tool]").count() == 0
    help_text = review.locator("[data-role=keys]").inner_text()
    assert "tools" not in help_text and "close polygon" not in help_text and "confirm" in help_text
    review.screenshot(path=str(shots / f"review_classification_{ui}.png"))

    def statuses():
        return hx.Dataset.open(cls.path).samples.set_index("sample_id")["status"]

    review.focus()
    current = review.locator("[data-role=name]").inner_text()
    page.keyboard.press("2")  # the class, by number
    wait_until(
        lambda: hx.Dataset.open(cls.path).samples.set_index("name").loc[current, "label"] == "blue",
        what="2: class blue on disk",
    )
    page.keyboard.press("c")
    review.locator("[data-role=queue]:text('1 of 2')").wait_for()
    assert statuses().eq("labeled").sum() == 11
    skipped = review.locator("[data-role=name]").inner_text()
    page.keyboard.press("k")
    wait_until(lambda: review.locator("[data-role=name]").inner_text() != skipped, what="k")
    page.keyboard.press("x")
    review.locator("[data-action=delete-sample-yes]").click()
    wait_until(lambda: len(statuses()) == 12, what="x: the image deleted")
    # the clicked button went with the redraw: the keys are the widget's again
    wait_until(
        lambda: page.evaluate("document.activeElement.classList.contains('hx-annotator')"),
        what="the focus back on the widget",
    )
    page.keyboard.press("Control+z")
    wait_until(lambda: len(statuses()) == 13, what="Ctrl+Z: the image back")


def test_every_listed_shortcut_works_in_jupyterlab(lab, page, shots, tmp_path):
    _every_shortcut(page, lab, tmp_path, "lab", shots)


def test_every_listed_shortcut_works_in_notebook7(lab, page, shots, tmp_path):
    _every_shortcut(page, lab, tmp_path, "notebook", shots)


def test_the_image_fits_the_panel_at_any_width_and_small_images_stay_sharp(lab, page, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "fit_ds", task="detection", labels=["a"])
    ds.add_images(make_images(tmp_path / "img", 1, size=(640, 480)))
    small = hx.Dataset.create(lab["root"] / "fit_small", task="classification", labels=["a", "b"])
    small.add_images(make_images(tmp_path / "small", 1, size=(40, 32)))
    cells = [head(ds.path) + "hx.Annotator(ds)", f"hx.Annotator(hx.Dataset.open(r'{small.path}'))"]
    page.set_viewport_size({"width": 1500, "height": 1000})
    run_notebook(page, lab, "fit.ipynb", cells, wait_for=".hx-annotator >> nth=1")
    big = page.locator(".hx-annotator").first

    def check_fits(width: int) -> None:
        overlay = big.locator("svg[data-role=overlay]")
        shown = laid_out(overlay)
        view = big.locator(".viewport").bounding_box()
        side = big.locator(".side").bounding_box()
        assert shown["x"] >= view["x"] and shown["x"] + shown["width"] <= view["x"] + view["width"]
        assert shown["width"] >= 0.9 * (view["width"] - 2) or shown["height"] >= 600, (shown, view)
        assert side["x"] + side["width"] <= width, side
        assert shown["width"] / shown["height"] == pytest.approx(640 / 480, rel=0.01)
        # centred in the view; at fit nothing scrolls and no minimap shows
        middle = shown["x"] + shown["width"] / 2
        assert abs(middle - (view["x"] + view["width"] / 2)) <= 2, (shown, view)
        assert big.locator(".viewport").evaluate(
            "(v) => v.scrollHeight <= v.clientHeight && v.scrollWidth <= v.clientWidth"
        )
        assert big.locator("[data-role=minimap]").is_hidden()

    def stacked() -> bool:
        view = big.locator(".viewport").bounding_box()
        return big.locator(".side").bounding_box()["y"] >= view["y"] + view["height"] - 1

    check_fits(1500)
    assert not stacked() and abs(big.locator(".side").bounding_box()["width"] - 300) < 1
    page.set_viewport_size({"width": 1000, "height": 1000})
    page.wait_for_timeout(500)
    check_fits(1000)
    # a 900 px window: the side panel goes under the image, which takes the whole width
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_timeout(500)
    check_fits(900)
    assert stacked()
    whole = big.bounding_box()["width"]
    assert big.locator("svg[data-role=overlay]").bounding_box()["width"] >= 0.9 * whole
    # a 40×32 image is enlarged by a whole number, its pixels square and sharp
    tiny = page.locator(".hx-annotator").nth(1)
    tiny.scroll_into_view_if_needed()
    shown = laid_out(tiny.locator("svg[data-role=overlay]"))
    scale = shown["width"] / 40
    assert scale >= 2 and abs(scale - round(scale)) < 0.01 and shown["height"] == 32 * round(scale)
    rendering = tiny.locator(".stage img").first.evaluate(
        "(el) => getComputedStyle(el).imageRendering"
    )
    assert rendering == "pixelated"


def test_widgets_on_one_dataset_follow_a_delete_made_in_another(lab, page, tmp_path):
    ds = hx.Dataset.create(lab["root"] / "follow_ds", task="detection", labels=["a"])
    ids = ds.add_images(make_images(tmp_path / "img", 3)).added
    cells = [
        head(ds.path) + "g = hx.Gallery(ds)\ng",
        "a = hx.Annotator(ds)\na",
        "g2 = hx.Gallery(ds)\ng2",
    ]
    run_notebook(page, lab, "follow.ipynb", cells, wait_for=".hx-gallery >> nth=1")
    first = page.locator(".hx-gallery").first
    first.locator(f".card[data-sample='{ids[0]}']").click()
    first.locator("[data-action=delete]").click()
    first.locator("[data-action=delete-yes]").click()
    wait_until(lambda: len(hx.Dataset.open(ds.path).samples) == 2, what="deleted on disk")
    # the Annotator showing it moves on; the other gallery drops it (within a poll or two)
    page.locator(".hx-annotator [data-role=name]:text('img01.png')").wait_for(timeout=15_000)
    second = page.locator(".hx-gallery").nth(1)
    second.locator(f".card[data-sample='{ids[0]}']").wait_for(state="detached", timeout=15_000)
    assert second.locator(".card").count() == 2


# -- every way to another image shows that image's own pixels ---------------------------------
# three images told apart by colour and by size: a stale picture cannot pass for the next one
PAINTED = {
    "red.png": ((320, 240), (220, 40, 40)),
    "blue.png": ((200, 300), (40, 60, 220)),
    "green.png": ((400, 160), (40, 200, 80)),
}

# What an Annotator shows: the image's decoded size and its centre pixel (read back through
# a canvas), the overlay's frame, and the name in the header.
SHOWN = """(root) => {
  const img = root.querySelector('.stage > img');
  const svg = root.querySelector('svg[data-role=overlay]');
  const name = root.querySelector('[data-role=name]').textContent;
  if (!img.complete || !img.naturalWidth) return {name, natural: null};
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const p = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
  const i = img.getBoundingClientRect(), o = svg.getBoundingClientRect();
  return {name, natural: [img.naturalWidth, img.naturalHeight], rgb: [p[0], p[1], p[2]],
          viewBox: svg.getAttribute('viewBox'), image: [i.x, i.y, i.width, i.height],
          overlay: [o.x, o.y, o.width, o.height]};
}"""


def assert_shows(annotator, name: str) -> None:
    """The Annotator ``annotator`` (a locator) shows ``name``'s pixels at its size, under an
    overlay of its size and place."""
    (width, height), rgb = PAINTED[name]
    seen: dict = {}

    def right():
        seen.update(annotator.evaluate(SHOWN))
        return (
            seen["name"] == name
            and seen["natural"] == [width, height]
            and max(abs(a - b) for a, b in zip(seen["rgb"], rgb)) <= 12
        )

    try:
        wait_until(right, timeout=15, what=f"{name}'s pixels")
    except AssertionError:
        raise AssertionError(f"expected {name} ({width}×{height}, {rgb}); shown: {seen}") from None
    assert seen["viewBox"] == f"0 0 {width} {height}"
    x, y, w, h = seen["image"]
    assert abs(w / h - width / height) < 0.02, seen
    assert all(abs(a - b) <= 1 for a, b in zip(seen["overlay"], seen["image"])), seen


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_every_way_to_another_image_shows_its_pixels(lab, page, shots, tmp_path, ui):
    """Next / Prev (button and key), Review's Confirm and Skip, the Gallery's Open (twice), a
    ConfusionMatrix cell's thumbnails (twice) and a ReportView figure: each shows the new
    image's own pixels, size and overlay frame, not the first image's."""
    folder = tmp_path / "img"
    folder.mkdir()
    for name, (size, rgb) in PAINTED.items():
        Image.new("RGB", size, rgb).save(folder / name)
    paths = [folder / name for name in PAINTED]
    ds = hx.Dataset.create(lab["root"] / f"nav_{ui}", task="detection", labels=["defect"])
    ids = ds.add_images(paths).added
    for sid, score in zip(ids, (0.9, 0.5, 0.2)):
        ds.add_box(sid, "defect", 10, 10, 60, 50, score=0.8, origin="V1")
        ds.set_status(sid, "to_confirm")
        ds.mark_hard(sid, True, reasons=[1], score=score)  # Review: red, blue, green
    cds = hx.Dataset.create(
        lab["root"] / f"nav_cls_{ui}", task="classification", labels=["cat", "dog"]
    )
    cids = cds.add_images(paths).added
    cells = [
        head(ds.path) + "hx.Annotator(ds)",
        "hx.Review(ds)",
        "hx.Gallery(ds)",
        f"cds = hx.Dataset.open(r'{cds.path}')\n"
        "report = hx.evaluate_classification(['cat', 'cat', 'dog'], ['dog', 'dog', 'cat'],"
        f" label_names=['cat', 'dog'], image_ids={cids})\n"
        "hx.ConfusionMatrix(report, ds=cds)",
        "hx.ReportView(report, ds=cds)",
    ]
    run_notebook(page, lab, f"nav_{ui}.ipynb", cells, wait_for=".hx-report", ui=ui)
    cell = page.locator(".jp-Notebook .jp-Cell")

    annotator = cell.nth(0).locator(".hx-annotator")
    assert_shows(annotator, "red.png")
    annotator.locator("[data-action=next]").click()
    assert_shows(annotator, "blue.png")
    annotator.focus()
    page.keyboard.press("ArrowRight")
    assert_shows(annotator, "green.png")
    annotator.locator("[data-action=prev]").click()
    assert_shows(annotator, "blue.png")
    page.screenshot(path=str(shots / f"nav-annotator-{ui}.png"))

    review = cell.nth(1).locator(".hx-annotator")
    assert_shows(review, "red.png")  # hardest first
    review.locator("[data-action=confirm]").click()
    assert_shows(review, "blue.png")
    review.locator("[data-action=skip]").click()
    assert_shows(review, "green.png")

    gallery = cell.nth(2).locator(".hx-gallery")
    gallery.locator(".card img[src^=blob]").first.wait_for()
    cards = gallery.locator(".card")
    cards.nth(2).click()
    gallery.locator("[data-action=open]").click()
    assert_shows(cell.nth(2).locator(".hx-annotator"), "green.png")
    cards.nth(2).click()  # unselect
    cards.nth(0).click()
    gallery.locator("[data-action=open]").click()
    assert_shows(cell.nth(2).locator(".hx-annotator"), "red.png")

    matrix = cell.nth(3).locator(".hx-confusion")
    matrix.locator("td[data-true=cat][data-predicted=dog]").click()
    for sid, name in ((cids[1], "blue.png"), (cids[0], "red.png")):
        card = matrix.locator(f".card[data-sample='{sid}']")
        card.locator("img[src^=blob]").wait_for()
        card.click()
        assert_shows(cell.nth(3).locator(".hx-annotator"), name)

    report_view = cell.nth(4).locator(".hx-report")
    # rates of exactly 0 read as rates (0.000), counts as counts (2), shares as the manual's
    # percentages; a cell that warns has its icon, the message on hover
    cat = [td.inner_text() for td in report_view.locator("tr[data-label=cat] td").all()]
    assert cat[1:5] == ["0.000 ⚠", "0.000", "2 ⚠", "66.7%"], cat
    icon = report_view.locator("tr[data-label=cat] [data-warning=count]")
    assert icon.get_attribute("title").startswith("too few annotations (2 < 30)")
    report_view.locator("tr[data-label=dog]").click()
    report_view.locator("figure[data-sample]").first.click()
    assert_shows(cell.nth(4).locator(".hx-annotator"), "green.png")
    page.screenshot(path=str(shots / f"nav-opened-{ui}.png"))


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_keys_keep_working_after_the_objects_list_and_the_ocr_field_and_redo(
    lab, page, tmp_path, ui
):
    """After ×, hide or lock in the objects list the keys still reach the Annotator; Enter
    in an OCR field keeps the text and Esc drops it, and both hand the keys back; Ctrl+Z,
    Ctrl+Shift+Z and Ctrl+Y undo and redo."""
    ds = hx.Dataset.create(lab["root"] / f"focus_{ui}", task="detection", labels=["a"])
    ids = ds.add_images(make_images(tmp_path / "img", 2)).added
    first = ds.add_box(ids[0], "a", 20, 20, 80, 80)
    second = ds.add_box(ids[0], "a", 150, 100, 220, 180)
    show(page, lab, ds, f"focus_{ui}", "Annotator", f".hx-annotator [data-row='{second}']", ui=ui)
    annotator = page.locator(".hx-annotator")

    def boxes():
        return len(hx.Dataset.open(ds.path).annotations_of(ids[0]))

    annotator.locator(f"[data-row='{first}'] button.danger").click()  # ×
    wait_until(lambda: boxes() == 1, what="the box deleted")
    page.keyboard.press("Control+z")
    wait_until(lambda: boxes() == 2, what="Ctrl+Z after × brings it back")
    page.keyboard.press("Control+Shift+z")
    wait_until(lambda: boxes() == 1, what="Ctrl+Shift+Z deletes it again")
    page.keyboard.press("Control+z")
    wait_until(lambda: boxes() == 2, what="undone once more")
    page.keyboard.press("Control+y")
    wait_until(lambda: boxes() == 1, what="Ctrl+Y redoes")
    annotator.locator(f"[data-hide='{second}']").click()
    annotator.locator(f"[data-lock='{second}']").click()
    page.keyboard.press("n")  # the keys still reach the widget
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    page.keyboard.press("p")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img00.png')")

    def text():
        return hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[second, "text"]

    field = annotator.locator(f"input[data-text='{second}']")
    field.click()
    page.keyboard.type("AB")
    page.keyboard.press("Enter")
    wait_until(lambda: text() == "AB", what="the text saved on Enter")
    page.keyboard.press("n")  # a key for the widget, not a letter for the field
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    page.keyboard.press("p")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img00.png')")
    field = annotator.locator(f"input[data-text='{second}']")
    field.click()
    page.keyboard.type("zz")
    page.keyboard.press("Escape")
    assert field.input_value() == "AB"
    page.keyboard.press("n")
    page.wait_for_selector(".hx-annotator [data-role=name]:text('img01.png')")
    assert text() == "AB"


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_a_shaky_press_on_a_box_selects_it_and_a_number_key_relabels_it(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"jitter_{ui}", task="detection", labels=["a", "b"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    ann = ds.add_box(sid, "a", 40, 40, 200, 180, score=0.9, origin="V1")
    show(page, lab, ds, f"jitter_{ui}", "Annotator", ".hx-annotator [data-ann] rect", ui=ui)
    box = laid_out(page.locator(".hx-annotator svg[data-role=overlay]"))
    x, y = box["x"] + 100 * box["width"] / 320, box["y"] + 100 * box["height"] / 240
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 4, y + 3, steps=3)  # a hand's jitter, in screen px
    page.mouse.up()
    page.wait_for_selector(f".hx-annotator .ann-row.sel[data-row='{ann}']")
    time.sleep(1.0)  # a drawn box would have reached the dataset by now
    assert len(hx.Dataset.open(ds.path).annotations) == 1
    page.keyboard.press("2")  # a number key relabels the selected object
    wait_until(
        lambda: hx.Dataset.open(ds.path).annotations.set_index("ann_id").loc[ann, "label"] == "b",
        what="the selected box relabeled",
    )
    assert page.locator(".hx-annotator .labels button.on[data-label=a]").count() == 1


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_review_asks_before_deleting_esc_says_no_enter_says_yes_and_a_short_polygon_stays(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"ask_{ui}", task="detection", labels=["a"])
    ids = ds.add_images(make_images(tmp_path / "img", 2)).added
    for sid in ids:
        ds.add_box(sid, "a", 80, 60, 160, 120, score=0.9, origin="V1")
        ds.set_status(sid, "to_confirm")
    show(page, lab, ds, f"ask_{ui}", "Review", ".hx-annotator [data-role=queue]", ui=ui)
    annotator = page.locator(".hx-annotator")
    annotator.focus()
    # a polygon of two points: Enter keeps them and says why; Esc drops them
    page.keyboard.press("g")
    box = laid_out(annotator.locator("svg[data-role=overlay]"))
    for x, y in ((20, 20), (60, 20)):
        page.mouse.click(box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240)
        page.wait_for_timeout(600)  # two clicks, not a double-click
    page.keyboard.press("Enter")
    page.wait_for_selector(".hx-annotator [data-role=notice]:has-text('3 points or more')")
    assert annotator.locator("[data-role=new-point]").count() == 2
    page.keyboard.press("Escape")
    assert annotator.locator("[data-role=new-point]").count() == 0
    page.keyboard.press("x")
    page.wait_for_selector(".hx-annotator :text('Delete this image?')")
    page.keyboard.press("Escape")
    page.wait_for_selector(".hx-annotator [data-action=delete-sample]")
    assert len(hx.Dataset.open(ds.path).samples) == 2
    page.keyboard.press("x")
    page.wait_for_selector(".hx-annotator :text('Delete this image?')")
    page.keyboard.press("Enter")
    wait_until(lambda: len(hx.Dataset.open(ds.path).samples) == 1, what="the image deleted")
    assert len(hx.Dataset.open(ds.path).annotations) == 1


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_an_upload_names_every_file_it_did_not_add_and_a_batch_delete_is_undone(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"upload_{ui}", task="detection", labels=["a"])
    ids = ds.add_images(make_images(tmp_path / "img", 3)).added
    ds.add_box(ids[0], "a", 10, 10, 90, 90)
    files = tmp_path / "chosen"
    files.mkdir()
    good = files / "new.png"
    Image.new("RGB", (64, 48), (10, 200, 90)).save(good)
    (files / "notes.txt").write_text("not an image")
    bad = [files / f"broken{k}.png" for k in range(5)]
    for b in bad:
        b.write_bytes(b"\x89PNG but not really")
    run_notebook(page, lab, f"upload_{ui}.ipynb", [head(ds.path) + "hx.Gallery(ds)"],
                 wait_for=".hx-gallery .card", ui=ui)  # fmt: skip
    gallery = page.locator(".hx-gallery")
    gallery.locator("input[data-role=upload]").set_input_files([good, files / "notes.txt", *bad])
    notice = gallery.locator("[data-role=notice]:has-text('1 image added, 1 skipped, 5 rejected')")
    notice.wait_for()
    items = notice.locator("[data-role=details] li")
    assert items.count() == 6
    texts = items.all_inner_texts()
    assert {t.split(":")[0] for t in texts} == {"notes.txt", *(b.name for b in bad)}
    if ui == "lab":  # the same script in both front ends: one wait shows it
        time.sleep(6.5)  # a plain notice fades after 6 s; one with details stays
        assert notice.is_visible()
    notice.locator("[data-action=dismiss]").click()
    notice.wait_for(state="detached")
    # a batch delete, then Undo: both images and the box come back, on disk
    gallery.locator(f".card[data-sample='{ids[0]}']").click()
    gallery.locator(f".card[data-sample='{ids[1]}']").click(modifiers=["Shift"])
    gallery.locator("[data-action=delete]").click()
    gallery.locator("[data-action=delete-yes]").click()
    wait_until(lambda: len(hx.Dataset.open(ds.path).samples) == 2, what="two deleted on disk")
    gallery.locator("[data-action=undo]:text('Undo delete of 2 images')").click()
    wait_until(lambda: len(hx.Dataset.open(ds.path).samples) == 4, what="both back on disk")
    back = hx.Dataset.open(ds.path)
    assert sorted(back.samples["name"]) == ["img00.png", "img01.png", "img02.png", "new.png"]
    assert len(back.annotations) == 1
    gallery.locator("[data-role=notice]:has-text('2 images added back')").wait_for()
    gallery.locator("[data-action=undo]").wait_for(state="detached")


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_undo_in_one_annotator_keeps_a_later_label_given_in_another(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(
        lab["root"] / f"two_undo_{ui}", task="classification", labels=["cat", "dog"]
    )
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    cells = [head(ds.path) + "hx.Annotator(ds, advance=False)", "hx.Annotator(ds, advance=False)"]
    run_notebook(page, lab, f"two_undo_{ui}.ipynb", cells, wait_for=".hx-annotator >> nth=1", ui=ui)
    first, second = page.locator(".hx-annotator").nth(0), page.locator(".hx-annotator").nth(1)

    def label():
        return hx.Dataset.open(ds.path).sample(sid)["label"]

    first.focus()
    page.keyboard.press("1")
    wait_until(lambda: label() == "cat", what="cat on disk")
    second.locator("[data-role=class]:text('cat')").wait_for(timeout=15_000)  # its poll
    second.focus()
    page.keyboard.press("2")
    wait_until(lambda: label() == "dog", what="dog on disk")
    first.focus()
    page.keyboard.press("Control+z")
    first.locator("[data-role=notice]:has-text(\"label was set to 'dog' since\")").wait_for()
    assert label() == "dog"  # the later edit is kept
    second.focus()
    page.keyboard.press("Control+z")  # the other one's own undo still works
    wait_until(lambda: label() == "cat", what="the second Annotator's undo on disk")


WRAPPED_DETECTOR = """import torch
def fixed(x):  # a sure box at 4..20 px of the 32 px input, and a doubtful one
    out = {"boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0], [24.0, 2.0, 30.0, 8.0]]),
           "labels": torch.tensor([1, 2]), "scores": torch.tensor([0.83, 0.2])}
    return [out] * len(x)
run = hx.wrap_model(ds, fixed, image_size=32, name="fixed")
report = hx.evaluate(ds, run, progress=False)
hx.Annotator(ds, threshold=0.5)"""


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_a_test_image_shows_the_models_predictions_with_their_scores(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"tested_{ui}", task="detection", labels=["a", "b"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added
    ds.add_box(sid, "a", 40, 30, 200, 150)
    ds.set_split(sid, "test")
    run_notebook(page, lab, f"tested_{ui}.ipynb", [head(ds.path) + WRAPPED_DETECTOR],
                 wait_for=".hx-annotator [data-role=predicted]", ui=ui)  # fmt: skip
    ann = page.locator(".hx-annotator")
    panel = ann.locator("[data-role=predicted]")
    assert panel.locator("h4").text_content() == "Test predictions (V1)"
    assert "1 at or above the threshold, dotted (m); 1 below" in panel.inner_text()
    drawn = ann.locator("svg[data-role=overlay] [data-predicted]")
    assert drawn.count() == 1 and drawn.locator("text").text_content() == "a 0.83"
    # where the model put it: 4..20 of 32 px is 40..200 of the image's 320 px width
    overlay = laid_out(ann.locator("svg[data-role=overlay]"))
    rect = drawn.locator("rect").bounding_box()
    per_px = overlay["width"] / 320
    assert abs(rect["x"] - overlay["x"] - 40 * per_px) < 2
    assert abs(rect["width"] - 160 * per_px) < 2
    ann.focus()
    page.keyboard.press("m")  # off, and on again
    drawn.first.wait_for(state="detached")
    assert not panel.locator("[data-role=show-predicted]").is_checked()
    page.keyboard.press("m")
    drawn.first.wait_for()


@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_point_to_label_proposes_the_box_under_one_click_and_enter_keeps_it(
    lab, page, tmp_path, ui
):
    ds = hx.Dataset.create(lab["root"] / f"point_{ui}", task="detection", labels=["a", "b"])
    (sid,) = ds.add_images(make_images(tmp_path / "img", 1)).added  # red block 80..160 × 60..120
    run_notebook(page, lab, f"point_{ui}.ipynb", [head(ds.path) + "hx.Annotator(ds)"],
                 wait_for=".hx-annotator svg[data-role=overlay]", ui=ui)  # fmt: skip
    ann = page.locator(".hx-annotator")
    overlay = ann.locator("svg[data-role=overlay]")
    laid_out(overlay)

    def at(x, y):  # read each time: the notebook may scroll between clicks
        box = overlay.bounding_box()
        return box["x"] + x * box["width"] / 320, box["y"] + y * box["height"] / 240

    ann.focus()  # scrolls the widget's top into view: clicks wait for it to settle
    page.keyboard.press("a")
    ann.locator("[data-tool=point].on").wait_for()
    laid_out(overlay)
    # a drawing tool shows a crosshair at the pointer, across the whole image
    page.mouse.move(*at(200, 50))
    cross = ann.locator("svg [data-role=crosshair]")
    assert cross.get_attribute("visibility") == "visible"
    assert overlay.evaluate("el => el.style.cursor") == "crosshair"
    across, down = (
        {k: float(line.get_attribute(k)) for k in ("x1", "y1", "x2", "y2")}
        for line in cross.locator("line").all()
    )
    assert abs(across["y1"] - 50) < 1 and (across["x1"], across["x2"]) == (0, 320)
    assert abs(down["x1"] - 200) < 1 and (down["y1"], down["y2"]) == (0, 240)
    page.mouse.click(*at(118, 92))  # the middle of the block: it outsizes the first window
    proposal = ann.locator("svg [data-role=proposal]")
    proposal.wait_for()
    assert proposal.get_attribute("data-source") == "pixels"
    ann.locator("[data-role=notice]:has-text('proposed from the pixels')").wait_for()
    drawn, frame = proposal.bounding_box(), overlay.bounding_box()
    assert abs(drawn["x"] - at(80, 60)[0]) < 3
    assert abs(drawn["width"] - 80 * frame["width"] / 320) < 3
    page.keyboard.press("Enter")  # kept: a box of the first label, on disk
    proposal.wait_for(state="detached")

    def boxes():
        return hx.Dataset.open(ds.path).annotations[["label", "x0", "y0", "x1", "y1"]]

    wait_until(lambda: len(boxes()) == 1, what="the pointed box on disk")
    assert boxes().iloc[0].tolist() == ["a", 80, 60, 160, 120]
    # a click on the plain surface proposes nothing, and says so
    page.mouse.click(*at(20, 220))
    ann.locator("[data-role=notice]:has-text('nothing near that point stands out')").wait_for()
    # a second proposal dropped with Esc adds nothing; a click inside a proposal keeps it
    page.mouse.click(*at(118, 92))
    proposal.wait_for()
    page.keyboard.press("Escape")
    proposal.wait_for(state="detached")
    page.mouse.click(*at(118, 92))
    proposal.wait_for()
    page.mouse.click(*at(120, 90))
    wait_until(lambda: len(boxes()) == 2, what="the second pointed box on disk")


@pytest.mark.first_run
@pytest.mark.parametrize("ui", ["lab", "notebook"])
def test_a_first_annotator_shows_a_short_tour_once_and_tour_shows_it_again(lab, page, tmp_path, ui):
    ds = hx.Dataset.create(lab["root"] / f"tour_{ui}", task="detection", labels=["a"])
    ds.add_images(make_images(tmp_path / "img", 1))
    cells = [head(ds.path) + "hx.Annotator(ds)"]
    run_notebook(page, lab, f"tour_{ui}.ipynb", cells, wait_for=".hx-annotator", ui=ui)
    tour = page.locator(".hx-annotator [data-role=tour]")
    tour.wait_for()
    steps = []
    while True:
        steps.append(tour.locator("b").inner_text())
        if tour.locator("[data-action=tour-done]").count():
            break
        tour.locator("[data-action=tour-next]").click()
        page.wait_for_function(
            "n => document.querySelector('.hx-annotator [data-role=tour]')?.dataset.step == n",
            arg=str(len(steps) + 1),
        )
    assert steps == ["Tour 1 / 3 · Draw", "Tour 2 / 3 · Edit", "Tour 3 / 3 · Move on"]
    tour.locator("[data-action=tour-done]").click()
    tour.wait_for(state="detached")
    # remembered: the next Annotator in this browser opens without it; Tour brings it back
    run_notebook(page, lab, f"tour_{ui}.ipynb", cells, wait_for=".hx-annotator", ui=ui)
    page.locator(".hx-annotator [data-action=tour]").wait_for()
    assert tour.count() == 0
    page.locator(".hx-annotator [data-action=tour]").click()
    tour.wait_for()
    tour.locator("[data-action=tour-skip]").click()
    tour.wait_for(state="detached")
