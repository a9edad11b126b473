"""TIDE's error breakdown equals the reference implementation (tidecv) on the same boxes."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tidecv  # the reference implementation (a dev dependency)

from hardex_nb import evaluate_detections
from hardex_nb.tide import ERROR_TYPES, tide_errors, tide_of

FIXTURES = Path(__file__).parent / "fixtures"
SHORT = {"cls": "Cls", "loc": "Loc", "both": "Both", "dupe": "Dupe", "bkg": "Bkg", "missed": "Miss"}


def reference(gt: pd.DataFrame, pred: pd.DataFrame, images) -> dict:
    """tidecv on the same (x, y, w, h) boxes; crowd rows as its ignore regions."""
    gt_data, pred_data = tidecv.Data("gt", max_dets=100), tidecv.Data("pred")
    for i in images:
        gt_data.add_image(i, str(i))
    for r in gt.itertuples():
        add = gt_data.add_ignore_region if r.iscrowd else gt_data.add_ground_truth
        add(r.image_id, r.label, [r.x, r.y, r.w, r.h])
    for r in pred.itertuples():
        pred_data.add_detection(r.image_id, r.label, r.score, [r.x, r.y, r.w, r.h])
    tide = tidecv.TIDE()
    tide.evaluate(gt_data, pred_data, mode=tidecv.TIDE.BOX)
    run = tide.runs["pred"]
    return {
        "ap": run.ap,
        "main": tide.get_main_errors()["pred"],
        "special": tide.get_special_errors()["pred"],
        "counts": {k.short_name: v for k, v in run.count_errors().items()},
    }


def assert_equal_to_reference(ours, ref):
    assert ours.ap == pytest.approx(ref["ap"], abs=1e-9)
    for kind in ERROR_TYPES:
        assert ours.main[kind] == pytest.approx(ref["main"][SHORT[kind]], abs=1e-9), kind
        assert ours.counts[kind] == ref["counts"][SHORT[kind]], kind
    assert ours.special["false_pos"] == pytest.approx(ref["special"]["FalsePos"], abs=1e-9)
    assert ours.special["false_neg"] == pytest.approx(ref["special"]["FalseNeg"], abs=1e-9)


def test_tide_equals_tidecv_on_real_coco_detections():
    """100 COCO val2014 images (9 crowd regions) and cocoapi's real detection results."""
    folder = FIXTURES / "coco_val2014_100"
    data = json.loads((folder / "instances_val2014_100_boxes.json").read_text())
    dets = json.loads((folder / "instances_val2014_fakebbox100_results.json").read_text())
    gt = pd.DataFrame(
        [(a["image_id"], a["category_id"], *a["bbox"], a["iscrowd"]) for a in data["annotations"]],
        columns=["image_id", "label", "x", "y", "w", "h", "iscrowd"],
    )
    pred = pd.DataFrame(
        [(d["image_id"], d["category_id"], *d["bbox"], d["score"]) for d in dets],
        columns=["image_id", "label", "x", "y", "w", "h", "score"],
    )
    images = [im["id"] for im in data["images"]]
    ours = tide_errors(gt, pred, box_format="xywh", image_ids=images)
    ref = reference(gt, pred, images)
    assert_equal_to_reference(ours, ref)
    assert ours.counts["cls"] == 83 and ours.main["cls"] > 20  # the file's labels are shuffled
    # the report's own breakdown is the same (its IoU threshold, its images)
    report = evaluate_detections(gt, pred, box_format="xywh", image_ids=images)
    pd.testing.assert_series_equal(tide_of(report).main, ours.main)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tide_equals_tidecv_with_every_error_type(seed):
    """Made-up detections with every kind of error: boxes off by a little (loc), a wrong
    label (cls), a second box on an object (dupe), boxes on nothing (bkg), both wrong,
    objects left out (missed), crowd regions, and scores rounded so that many tie."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for img in range(40):
        for _ in range(rng.integers(0, 6)):
            x, y, w, h = *rng.uniform(0, 200, 2), *rng.uniform(10, 60, 2)
            label = int(rng.integers(1, 4))
            gt.append((img, label, x, y, w, h, rng.random() < 0.05))
            kind = rng.choice(["tp", "loc", "cls", "dupe", "both", "missed"])
            if kind == "missed":
                continue
            dx, dy = rng.normal(0, 2 if kind in ("tp", "cls", "dupe") else 12, 2)
            other = label % 3 + 1 if kind in ("cls", "both") else label
            pred.append((img, other, x + dx, y + dy, w, h, round(rng.random(), 1)))
            if kind == "dupe":
                pred.append((img, label, x - dx, y, w, h, round(rng.random(), 1)))
        for _ in range(rng.integers(0, 3)):  # background
            x, y = rng.uniform(250, 400, 2)
            pred.append((img, int(rng.integers(1, 4)), x, y, 20, 20, round(rng.random(), 1)))
    gt = pd.DataFrame(gt, columns=["image_id", "label", "x", "y", "w", "h", "iscrowd"])
    pred = pd.DataFrame(pred, columns=["image_id", "label", "x", "y", "w", "h", "score"])
    ours = tide_errors(gt, pred, box_format="xywh", image_ids=range(40))
    assert_equal_to_reference(ours, reference(gt, pred, range(40)))
    assert (ours.counts[["cls", "loc", "dupe", "bkg", "missed"]] > 0).all(), ours.counts


def test_tide_per_label_and_the_error_rows_on_a_hand_made_case():
    """Label a: one right, one box off (loc); label b: one missed and a box on nothing."""
    gt = pd.DataFrame(
        [(0, "a", 0, 0, 10, 10), (1, "a", 0, 0, 10, 10), (2, "b", 0, 0, 10, 10)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    pred = pd.DataFrame(
        [(0, "a", 0, 0, 10, 10, 0.9), (1, "a", 4, 0, 14, 10, 0.8), (2, "b", 50, 50, 60, 60, 0.7)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    r = tide_errors(gt, pred)
    assert r.errors["type"].tolist() == ["loc", "bkg", "missed"]
    loc = r.errors.iloc[0]
    assert loc["image_id"] == 1 and [loc.x0, loc.gt_x0, loc.gt_label] == [4, 0, "a"]
    # a: half its objects found at precision 1, 51 of TIDE's 101 recall points; fixing the
    # box gives 100
    assert r.per_label.loc["a", "ap"] == pytest.approx(100 * 51 / 101)
    assert r.per_label.loc["a", "d_loc"] == pytest.approx(100 * 50 / 101)
    assert r.per_label.loc["b", "n_missed"] == 1 and r.per_label.loc["b", "n_bkg"] == 1
    assert r.summary().loc["loc", "count"] == 1
