"""Point to label: one click proposes a box, from the detector or from the pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hardex_nb as hx
from hardex_nb import pointing


def _part(rng, size=128):
    """Grain and noise on a lit surface, as in bench_loop's inspection images."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 120 + 30 * (xx - 0.5) + rng.normal(0, 4, (size, size))
    return img


def test_a_click_on_a_dark_pit_a_bright_scratch_and_a_dent_gives_their_boxes():
    rng = np.random.default_rng(0)
    img = _part(rng)
    yy, xx = np.mgrid[0:128, 0:128]
    img[np.hypot(xx - 30, yy - 30) <= 4] = 20  # a pit: box 26..35
    img[90, 20:70] += 60  # a one-pixel scratch, 50 px long
    dent = np.hypot(xx - 95, yy - 40) <= 8  # bright on one side, dark on the other
    img[dent] += (((xx - 95) + (yy - 40)) / 8 * 30)[dent]
    rgb = np.repeat(img[..., None], 3, axis=2)
    pit = pointing.grow_box(rgb, 30, 30)
    assert (pit.x0, pit.y0, pit.x1, pit.y1) == (26, 26, 35, 35) and pit.source == "pixels"
    scratch = pointing.grow_box(rgb, 44, 91)  # a click a pixel off the line finds it
    assert (scratch.x0, scratch.x1, scratch.y0, scratch.y1) == (20, 70, 90, 91)
    d = pointing.grow_box(rgb, 95, 40)  # the middle is level with the surface: bridged
    assert abs(d.x0 - 87) <= 2 and abs(d.x1 - 104) <= 2 and abs(d.y1 - 49) <= 2
    assert pointing.grow_box(rgb, 60, 60) is None  # plain surface: nothing stands out


def test_a_click_in_the_middle_of_an_object_larger_than_the_first_window():
    rng = np.random.default_rng(1)
    img = _part(rng, 256)
    img[40:200, 50:230] += 50  # 180 × 160 px: the first window (±32 px) lies inside it
    found = pointing.grow_box(np.repeat(img[..., None], 3, axis=2), 140, 120)
    assert (found.x0, found.y0, found.x1, found.y1) == (50, 40, 230, 200)


def test_the_detectors_box_holding_the_click_best_by_score_and_centring():
    boxes = np.array([[10, 10, 50, 50], [38, 20, 54, 40], [60, 60, 90, 90]], float)
    scores = np.array([0.6, 0.55, 0.99])
    labels = ["dent", "hole", "scratch"]
    at_centre = pointing.from_detections(boxes, scores, labels, 30, 30)
    assert at_centre.label == "dent" and at_centre.score == pytest.approx(0.6)
    # near the first box's edge, the box centred on the click ranks higher despite its score
    off = pointing.from_detections(boxes, scores, labels, 45, 30)
    assert off.label == "hole"
    assert pointing.from_detections(boxes, scores, labels, 55, 55) is None  # in no box
    low = pointing.from_detections(boxes, np.array([0.01, 0.01, 0.99]), labels, 30, 30)
    assert low is None  # under MIN_SCORE


def test_the_annotators_point_tool_asks_the_detector_then_the_pixels(tmp_path):
    from synthetic import write_image

    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["a", "b"])
    (sid,) = ds.add_images([write_image(tmp_path / "x.png", 64, 64)]).added
    calls = []

    def fixed(x):  # a box at 4..20 of the 32 px input (8..40 of the 64 px image)
        calls.append(len(x))
        out = {
            "boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]),
            "labels": torch.tensor([2]),
            "scores": torch.tensor([0.7]),
        }
        return [out] * len(x)

    run = hx.wrap_model(ds, fixed, image_size=32, name="fixed")
    w = hx.Annotator(ds, sid, run=run)
    w.handle({"action": "propose", "x": 20, "y": 20})
    p = w.proposal
    assert w.error == "" and p["source"] == "detector" and p["label"] == "b"
    assert (p["x0"], p["x1"]) == (pytest.approx(8.0), pytest.approx(40.0))
    assert "score 0.70" in w.notice and p["seq"] == 1
    checked = len(calls)
    w.handle({"action": "propose", "x": 20, "y": 20})  # the same click: the same box
    assert w.proposal["seq"] == 2 and len(calls) == checked  # its boxes were kept
    w.handle({"action": "propose", "x": 60, "y": 60})  # no box there: the pixels
    assert w.proposal.get("source") in (None, "pixels")
    w.handle({"action": "propose", "x": 99, "y": 10})
    assert "outside the 64×64 image" in w.error
    # the browser keeps it as an add_box; undo takes it away
    w.handle({"action": "add_box", "label": "b", "x0": 8, "y0": 8, "x1": 40, "y1": 40})
    assert len(ds.annotations_of(sid)) == 1
    w.handle({"action": "undo"})
    assert len(ds.annotations_of(sid)) == 0
    w.show(sid)  # a new image shown: no proposal left over
    assert w.proposal == {}


def test_without_a_detector_the_point_tool_grows_the_box_from_the_pixels(tmp_path):
    from PIL import Image

    arr = np.full((60, 80, 3), 70, np.uint8)
    arr[20:30, 40:55] = 220
    Image.fromarray(arr).save(tmp_path / "p.png")
    ds = hx.Dataset.create(tmp_path / "ds", task="detection", labels=["a"])
    (sid,) = ds.add_images([tmp_path / "p.png"]).added
    w = hx.Annotator(ds, sid)
    w.handle({"action": "propose", "x": 47, "y": 25})
    p = w.proposal
    assert p["source"] == "pixels" and (p["x0"], p["y0"], p["x1"], p["y1"]) == (40, 20, 55, 30)
    w.handle({"action": "propose", "x": 10, "y": 50})
    assert w.proposal == {} and "nothing near that point stands out" in w.notice


def test_a_pointed_box_costs_a_click_a_look_and_what_its_overlap_requires():
    from hardex_nb import review_time

    truth = [10, 10, 30, 30]
    cost = {
        "none": review_time.point_box(None, truth).seconds,
        "exact": review_time.point_box([10, 10, 30, 30], truth).seconds,
        "close": review_time.point_box([10, 10, 30, 36], truth).seconds,
        "wrong": review_time.point_box([40, 40, 60, 60], truth).seconds,
    }
    assert cost == pytest.approx({"none": 8.8, "exact": 3.4, "close": 6.4, "wrong": 10.4})
