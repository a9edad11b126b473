"""evaluate_detections equals pycocotools COCOeval; classification equals scikit-learn."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from hardex_nb import (
    ValidationError,
    coco_kernels,
    evaluate_classification,
    evaluate_detections,
    evaluation,
)
from hardex_nb.evaluation import AREA_RANGES, MAX_DETS
from hardex_nb.evaluation import COCO_STATS as STATS

FIXTURES = Path(__file__).parent / "fixtures"


class IgnoreFlagCOCOeval(COCOeval):
    """COCOeval that honours a ground-truth ``difficult`` flag as its ``ignore`` flag
    (pycocotools' ``_prepare`` overwrites ``ignore`` with ``iscrowd``)."""

    def _prepare(self):
        super()._prepare()
        for gts in self._gts.values():
            for g in gts:
                g["ignore"] = int(bool(g["iscrowd"]) or bool(g.get("difficult", 0)))


def run_cocoeval(gt, pred, labels, images):
    """COCOeval on hardex-style frames (x0..y1, optional iscrowd / ignore / area)."""
    cid = {n: i + 1 for i, n in enumerate(labels)}
    anns = []
    for k, r in enumerate(gt.itertuples()):
        w, h = r.x1 - r.x0, r.y1 - r.y0
        anns.append(
            {
                "id": k + 1,
                "image_id": int(r.image_id),
                "category_id": cid[r.label],
                "bbox": [r.x0, r.y0, w, h],
                "area": getattr(r, "area", w * h),
                "iscrowd": int(getattr(r, "iscrowd", 0)),
                "difficult": int(getattr(r, "ignore", 0)),
            }
        )
    data = {
        "images": [{"id": int(i)} for i in images],
        "categories": [{"id": i, "name": n} for n, i in cid.items()],
        "annotations": anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        dets = [
            {
                "image_id": int(r.image_id),
                "category_id": cid[r.label],
                "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0],
                "score": float(r.score),
            }
            for r in pred.itertuples()
        ]
        coco_dt = coco_gt.loadRes(dets) if dets else COCO()
        ev = IgnoreFlagCOCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def cocoeval_stats(gt, pred, labels, images):
    return run_cocoeval(gt, pred, labels, images).stats


def coco_per_label(ev) -> np.ndarray:
    """(K, 12) COCOeval statistics per category, NaN where COCOeval has -1."""
    prec, rec = ev.eval["precision"], ev.eval["recall"]
    out = []
    for _, t, area, max_det in STATS:
        a, m = list(AREA_RANGES).index(area), MAX_DETS.index(max_det)
        if _.startswith("ap"):
            s = prec[:, :, :, a, m] if t is None else prec[[t], :, :, a, m]
            per = [s[:, :, k] for k in range(s.shape[2])]
        else:
            s = rec[:, :, a, m]
            per = [s[:, k] for k in range(s.shape[1])]
        out.append([x[x > -1].mean() if (x > -1).any() else np.nan for x in per])
    return np.array(out).T


def assert_equal_stats(report, ev):
    ref = np.where(ev.stats == -1, np.nan, ev.stats)
    np.testing.assert_allclose(report.stats.to_numpy(), ref, atol=1e-6, rtol=0, equal_nan=True)
    np.testing.assert_allclose(
        report.coco.to_numpy(), coco_per_label(ev), atol=1e-6, rtol=0, equal_nan=True
    )


def random_case(seed: int, n_images=25, labels=("a", "b", "c", "d"), quantized=False):
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for img in range(n_images):
        for _ in range(rng.integers(0, 7)):
            x, y = rng.uniform(0, 200, 2)
            w, h = rng.uniform(3, 60, 2)
            if quantized:  # integer boxes and few score values: many exact ties
                x, y, w, h = np.round([x, y, w, h]) + [0, 0, 1, 1]
            lab = str(rng.choice(labels))
            gt.append((img, lab, x, y, x + w, y + h))
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 4, 4)
                if quantized:
                    j = np.round(j)
                score = rng.integers(0, 5) / 4 if quantized else rng.uniform()
                plab = str(rng.choice(labels)) if rng.uniform() < 0.15 else lab
                pred.append(
                    (
                        img,
                        plab,
                        x + j[0],
                        y + j[1],
                        x + j[0] + max(w + j[2], 1),
                        y + j[1] + max(h + j[3], 1),
                        score,
                    )
                )
        for _ in range(rng.integers(0, 4)):  # background boxes
            x, y = rng.uniform(0, 200, 2)
            pred.append(
                (
                    img,
                    str(rng.choice(labels)),
                    x,
                    y,
                    x + 12,
                    y + 9,
                    rng.integers(0, 5) / 4 if quantized else rng.uniform(),
                )
            )
    gt = pd.DataFrame(gt, columns=["image_id", "label", "x0", "y0", "x1", "y1"])
    pred = pd.DataFrame(pred, columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    return gt, pred, list(labels), list(range(n_images))


@pytest.mark.parametrize("seed", range(30))
def test_map_equals_pycocotools(seed):
    gt, pred, labels, images = random_case(seed, quantized=seed % 2 == 1)
    report = evaluate_detections(gt, pred, image_ids=images, labels=labels)
    stats = cocoeval_stats(gt, pred, labels, images)
    assert report.map == pytest.approx(stats[0], abs=1e-6)
    assert report.map50 == pytest.approx(stats[1], abs=1e-6)


def test_more_than_100_detections_per_image_and_label():
    rng = np.random.default_rng(3)
    gt = pd.DataFrame(
        {
            "image_id": 0,
            "label": "a",
            "x0": np.arange(50) * 10.0,
            "y0": 0.0,
            "x1": np.arange(50) * 10.0 + 8,
            "y1": 8.0,
        }
    )
    x = rng.uniform(0, 500, 180)
    pred = pd.DataFrame(
        {
            "image_id": 0,
            "label": "a",
            "x0": x,
            "y0": 0.0,
            "x1": x + 8,
            "y1": 8.0,
            "score": rng.uniform(size=180),
        }
    )
    report = evaluate_detections(gt, pred, labels=["a"])
    stats = cocoeval_stats(gt, pred, ["a"], [0])
    assert report.map == pytest.approx(stats[0], abs=1e-6)


def test_empty_and_edge_cases():
    gt = pd.DataFrame(
        {"image_id": [0], "label": ["a"], "x0": [0.0], "y0": [0.0], "x1": [10.0], "y1": [10.0]}
    )
    none = pd.DataFrame(columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    r = evaluate_detections(gt, none, labels=["a", "b"])
    assert r.map == 0.0 and np.isnan(r.per_label.set_index("label").loc["b", "ap"])
    assert r.errors()["kind"].tolist() == ["missed"]
    perfect = gt.assign(score=0.9)
    assert evaluate_detections(gt, perfect).map == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="missing column"):
        evaluate_detections(gt, gt)
    with pytest.raises(ValidationError, match="NaN"):
        evaluate_detections(gt, perfect.assign(score=np.nan))


def test_per_label_rates_errors_and_confusion():
    gt = pd.DataFrame(
        [(0, "cat", 0, 0, 10, 10), (0, "dog", 20, 20, 30, 30), (1, "cat", 0, 0, 10, 10)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    pred = pd.DataFrame(
        [
            (0, "cat", 0, 0, 10, 10, 0.9),  # tp
            (0, "cat", 20, 20, 30, 30, 0.8),  # dog seen as cat
            (1, "cat", 50, 50, 60, 60, 0.7),  # false box on background
            (1, "cat", 1, 1, 10, 10, 0.2),
        ],  # below the score threshold
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    r = evaluate_detections(gt, pred, labels=["cat", "dog"])
    t = r.per_label.set_index("label")
    assert t.loc["cat", "detection_rate"] == 0.5 and t.loc["cat", "precision"] == pytest.approx(
        1 / 3
    )
    assert t.loc["dog", "detection_rate"] == 0.0 and t.loc["cat", "count"] == 2
    assert t.loc["cat", "share"] == pytest.approx(2 / 3)
    assert "too few annotations" in t.loc["cat", "warning"]
    e = r.errors("cat")
    assert sorted(e["kind"]) == ["false", "false", "missed", "tp"]
    c = r.confusion()
    assert c.loc["cat", "cat"] == 1 and c.loc["dog", "cat"] == 1 and c.loc["cat", "background"] == 1
    assert c.loc["background", "cat"] == 1
    assert r.samples_in_cell("dog", "cat") == [0] and r.samples_in_cell("cat", "background") == [1]


def test_classification_equals_scikit_learn():
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    y = rng.choice(names, 300)
    p = np.where(rng.uniform(size=300) < 0.7, y, rng.choice(names, 300))
    r = evaluate_classification(y, p, label_names=names)
    np.testing.assert_allclose(
        r.per_label["detection_rate"], recall_score(y, p, labels=names, average=None)
    )
    np.testing.assert_allclose(
        r.per_label["precision"], precision_score(y, p, labels=names, average=None)
    )
    np.testing.assert_array_equal(r.confusion().to_numpy(), confusion_matrix(y, p, labels=names))
    assert r.accuracy == pytest.approx((y == p).mean())
    wrong = r.errors("a")
    assert (wrong["true"] == "a").all() and (wrong["predicted"] != "a").all()


# -- COCO-complete: crowd, ignore, difficult, twelve statistics ----------------------------------
def regions_case(seed: int, n_images=20, labels=("a", "b", "c"), quantized=False, objects=(0, 8)):
    """Objects of all three COCO area ranges, crowd regions holding detections, difficult
    boxes, and a segmentation-like ``area`` that differs from the box's."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for img in range(n_images):
        for _ in range(rng.integers(*objects)):
            x, y = rng.uniform(0, 300, 2)
            w, h = np.exp(rng.uniform(np.log(4), np.log(180), 2))
            if quantized:
                x, y, w, h = np.round([x, y, w, h]) + [0, 0, 1, 1]
            lab = str(rng.choice(labels))
            crowd = rng.uniform() < 0.12
            difficult = not crowd and rng.uniform() < 0.15
            area = w * h * rng.uniform(0.5, 1.0)  # a polygon inside its box
            gt.append((img, lab, x, y, x + w, y + h, crowd, difficult, area))
            for _ in range(rng.integers(0, 5 if crowd else 3)):
                j = rng.normal(0, 3, 4) * (np.array([w, h, w, h]) / 40)
                if quantized:
                    j = np.round(j)
                if crowd:  # detections somewhere inside the crowd region
                    cw, ch = w * rng.uniform(0.2, 0.5), h * rng.uniform(0.2, 0.5)
                    cx, cy = x + rng.uniform(0, w - cw), y + rng.uniform(0, h - ch)
                    box = (cx, cy, cx + cw, cy + ch)
                else:
                    box = (
                        x + j[0],
                        y + j[1],
                        x + j[0] + max(w + j[2], 1),
                        y + j[1] + max(h + j[3], 1),
                    )
                score = rng.integers(0, 5) / 4 if quantized else rng.uniform()
                plab = str(rng.choice(labels)) if rng.uniform() < 0.1 else lab
                pred.append((img, plab, *box, score))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 300, 2)
            pred.append((img, str(rng.choice(labels)), x, y, x + 15, y + 11, rng.uniform()))
    gt = pd.DataFrame(
        gt, columns=["image_id", "label", "x0", "y0", "x1", "y1", "iscrowd", "ignore", "area"]
    )
    pred = pd.DataFrame(pred, columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    return gt, pred, list(labels), list(range(n_images))


@pytest.mark.parametrize("seed", range(16))
def test_twelve_stats_with_crowd_difficult_and_areas_equal_cocoeval(seed):
    gt, pred, labels, images = regions_case(seed, quantized=seed % 2 == 1)
    assert gt["iscrowd"].any() and gt["ignore"].any()
    report = evaluate_detections(gt, pred, image_ids=images, labels=labels)
    assert_equal_stats(report, run_cocoeval(gt, pred, labels, images))


@pytest.mark.parametrize("seed", range(4))
def test_crowded_images_swept_by_x_equal_cocoeval(seed):
    """Images of 100-200 objects of one or two labels (more than coco_kernels.SWEEP_FROM in
    a group: each prediction looks only at the ground truth its x-range can overlap), with
    crowd regions, difficult boxes and every size."""
    gt, pred, labels, images = regions_case(
        seed, n_images=3, labels=("a", "b"), quantized=seed % 2 == 1, objects=(100, 200)
    )
    assert gt.groupby(["image_id", "label"]).size().max() > coco_kernels.SWEEP_FROM
    report = evaluate_detections(gt, pred, image_ids=images, labels=labels)
    assert_equal_stats(report, run_cocoeval(gt, pred, labels, images))


def test_real_coco_val2014_with_real_detections_equals_cocoeval():
    """100 COCO val2014 images (9 crowd regions) and cocoapi's real detection results."""
    folder = FIXTURES / "coco_val2014_100"
    data = json.loads((folder / "instances_val2014_100_boxes.json").read_text())
    dets = json.loads((folder / "instances_val2014_fakebbox100_results.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cats = {c["id"]: c["name"] for c in data["categories"]}
    g = pd.DataFrame(
        [
            {
                "image_id": a["image_id"],
                "label": cats[a["category_id"]],
                **dict(zip("xywh", a["bbox"])),
                "iscrowd": a["iscrowd"],
                "area": a["area"],
            }
            for a in data["annotations"]
        ]
    )
    p = pd.DataFrame(
        [
            {
                "image_id": d["image_id"],
                "label": cats[d["category_id"]],
                **dict(zip("xywh", d["bbox"])),
                "score": d["score"],
            }
            for d in dets
        ]
    )
    assert g["iscrowd"].sum() == 9
    report = evaluate_detections(
        g,
        p,
        image_ids=[i["id"] for i in data["images"]],
        labels=[cats[c] for c in sorted(cats)],
        box_format="xywh",
    )
    assert_equal_stats(report, ev)
    # the values faster_coco_eval's tests publish for this pair
    assert report.map == pytest.approx(0.5045806987249628, abs=1e-12)
    assert report.map75 == pytest.approx(0.5729816669904824, abs=1e-12)
    # error details at IoU 0.5 and no confidence floor count what COCOeval's evaluateImg counts
    counts = {"tp": 0, "missed": 0, "false": 0, "ignored": 0}
    for e in ev.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        matched, ignored = e["dtMatches"][0] > 0, e["dtIgnore"][0].astype(bool)
        found = int((e["gtMatches"][0][~e["gtIgnore"].astype(bool)] > 0).sum())
        counts["tp"] += found
        counts["missed"] += int((~e["gtIgnore"].astype(bool)).sum()) - found
        counts["false"] += int((~matched & ~ignored).sum())
        counts["ignored"] += int(ignored.sum())
    low = evaluate_detections(
        g,
        p,
        image_ids=[i["id"] for i in data["images"]],
        labels=[cats[c] for c in sorted(cats)],
        box_format="xywh",
        score_threshold=0.0,
    )
    kinds = low.errors()["kind"].value_counts()
    assert {k: int(kinds.get(k, 0)) for k in counts} == counts
    assert counts["tp"] + counts["missed"] == 830  # 839 objects less the 9 crowd regions


def test_one_crowd_case():
    gt = pd.DataFrame(
        [(0, "person", 10, 10, 60, 110, 0), (0, "person", 100, 0, 300, 200, 1)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "iscrowd"],
    )
    pred = pd.DataFrame(
        [
            (0, "person", 11, 10, 60, 110, 0.9),
            (0, "person", 150, 50, 190, 120, 0.8),  # inside the crowd
            (0, "person", 120, 20, 160, 90, 0.7),
        ],  # inside the crowd too
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    report = evaluate_detections(gt, pred)
    assert report.map50 == pytest.approx(1.0)
    assert_equal_stats(report, run_cocoeval(gt, pred, ["person"], [0]))
    kinds = report.errors()["kind"].tolist()
    assert kinds.count("tp") == 1 and kinds.count("ignored") == 2 and "false" not in kinds
    row = report.per_label.iloc[0]
    assert row["detection_rate"] == 1.0 and row["precision"] == 1.0 and row["count"] == 1
    assert report.confusion().loc["background", "person"] == 0


def test_unlabeled_ignore_region_covers_every_label():
    gt = pd.DataFrame(
        [(0, "cat", 0, 0, 20, 20, False), (0, None, 50, 50, 150, 150, True)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "iscrowd"],
    )
    pred = pd.DataFrame(
        [
            (0, "cat", 0, 0, 20, 20, 0.9),
            (0, "dog", 60, 60, 90, 90, 0.9),
            (0, "cat", 100, 100, 140, 140, 0.8),
            (0, "dog", 200, 200, 230, 230, 0.9),
        ],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    e = evaluate_detections(gt, pred, labels=["cat", "dog"]).errors()
    assert sorted(e.loc[e["kind"] == "ignored", "label"]) == ["cat", "dog"]
    assert e.loc[e["kind"] == "false", ["label", "x0"]].values.tolist() == [["dog", 200.0]]
    with pytest.raises(ValidationError, match="no label"):
        evaluate_detections(gt.assign(iscrowd=False), pred)


def test_difficult_box_is_neither_missed_nor_counted():
    gt = pd.DataFrame(
        [
            (0, "dog", 0, 0, 40, 40, 0),
            (0, "dog", 100, 100, 120, 115, 1),
            (1, "dog", 0, 0, 40, 40, 1),
        ],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "ignore"],
    )
    pred = pd.DataFrame(
        [(0, "dog", 1, 1, 40, 40, 0.9), (1, "dog", 0, 0, 39, 40, 0.8)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    report = evaluate_detections(gt, pred)
    assert_equal_stats(report, run_cocoeval(gt, pred, ["dog"], [0, 1]))
    assert report.map50 == pytest.approx(1.0)
    e = report.errors()
    assert sorted(e["kind"]) == ["difficult", "difficult", "ignored", "tp"]
    row = report.per_label.iloc[0]
    assert row["detection_rate"] == 1.0 and row["precision"] == 1.0
    assert report.confusion().loc["dog", "background"] == 0


def test_iou_exactly_at_a_threshold_as_cocoeval():
    """COCOeval scores this pair exactly 0.8 from (x, y, w, h); through x1 = x + w and back it
    is 0.7999999999999997, which would miss the 0.8 threshold."""
    g, d = [487.96, 365.1, 123.29, 147.25], [487.96, 365.1, 98.632, 147.25]
    from pycocotools import mask

    assert mask.iou([d], [g], [0])[0, 0] == 0.8
    gt = pd.DataFrame([dict(image_id=0, label="a", x=g[0], y=g[1], w=g[2], h=g[3])])
    pred = pd.DataFrame([dict(image_id=0, label="a", x=d[0], y=d[1], w=d[2], h=d[3], score=0.9)])
    report = evaluate_detections(gt, pred, box_format="xywh", iou_threshold=0.8)
    data = {
        "images": [{"id": 0}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": g, "area": g[2] * g[3], "iscrowd": 0}
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        ev = COCOeval(
            coco_gt,
            coco_gt.loadRes([{"image_id": 0, "category_id": 1, "bbox": d, "score": 0.9}]),
            "bbox",
        )
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # matched at IoU 0.5 ... 0.8 (7 of 10 thresholds), as COCOeval does
    assert ev.stats[0] == pytest.approx(0.7, abs=1e-12)
    assert report.map == pytest.approx(ev.stats[0], abs=1e-12)
    assert report.errors()["kind"].tolist() == ["tp"]
    # the same boxes given as corners lose the last bit: that is why box_format="xywh" exists
    corners = evaluate_detections(
        gt.assign(x0=gt.x, y0=gt.y, x1=gt.x + gt.w, y1=gt.y + gt.h),
        pred.assign(x0=pred.x, y0=pred.y, x1=pred.x + pred.w, y1=pred.y + pred.h),
    )
    assert corners.map == pytest.approx(0.6, abs=1e-12)


def test_matching_visits_only_groups_holding_both_and_equals_cocoeval_on_a_crowd(monkeypatch):
    """One image with 2,000 boxes among 300 small ones and 50 images holding predictions
    only: each matching pass visits the groups with both boxes and predictions (the
    crowded one once), and the twelve stats equal COCOeval's."""
    rng = np.random.default_rng(0)
    gt, pred = [], []
    for img in range(301):
        n = 2000 if img == 0 else int(rng.integers(1, 6))
        x, y = rng.uniform(0, 1000, n), rng.uniform(0, 1000, n)
        gt.append(
            pd.DataFrame(
                {"image_id": img, "label": "a", "x0": x, "y0": y, "x1": x + 20, "y1": y + 20}
            )
        )
        j = rng.normal(0, 2, n)
        pred.append(
            pd.DataFrame(
                {
                    "image_id": img,
                    "label": "a",
                    "x0": x + j,
                    "y0": y,
                    "x1": x + j + 20,
                    "y1": y + 20,
                    "score": rng.uniform(size=n),
                }
            )
        )
    for img in range(301, 351):  # predictions only: false boxes, never matched
        pred.append(
            pd.DataFrame(
                {"image_id": [img], "label": "a", "x0": 1.0, "y0": 1.0, "x1": 9.0, "y1": 9.0}
            ).assign(score=0.5)
        )
    gt, pred = pd.concat(gt, ignore_index=True), pd.concat(pred, ignore_index=True)
    visited: list[np.ndarray] = []

    real = coco_kernels.greedy_match

    def counting(d_rows, d_start, d_count, g_rows, g_start, g_count, *rest):
        visited.append(np.asarray(d_count) * np.asarray(g_count))
        return real(d_rows, d_start, d_count, g_rows, g_start, g_count, *rest)

    monkeypatch.setattr(coco_kernels, "greedy_match", counting)
    report = evaluate_detections(gt, pred)
    # COCO's pass and the threshold's; the error details and the confusion (matched without
    # labels) wait until they are asked for
    assert len(visited) == 2
    assert report.confusion().loc["a", "a"] > 0 and len(visited) == 4
    report.errors()
    assert len(visited) == 4
    assert len(visited[0]) == 301  # the 50 images of predictions alone are not visited
    assert all(len(cells) <= 301 and cells.min() > 0 for cells in visited)
    assert visited[0].max() == 100 * 2000  # COCO keeps the 100 best of the crowded image
    expected = cocoeval_stats(gt, pred, ["a"], range(351))
    np.testing.assert_allclose(
        np.nan_to_num(report.stats.to_numpy(), nan=-1.0), expected, rtol=0, atol=1e-12
    )


def test_rate_interval_widens_with_few_images():
    from hardex_nb.evaluation import rate_interval

    few, many = rate_interval(8, 8), rate_interval(200, 200)
    # Agresti–Coull: (8 + 2) / 12 = 0.833, 1.96 * sqrt(0.833 * 0.167 / 12) = 0.211
    assert few == pytest.approx(0.211, abs=1e-3) and many < 0.02
    assert rate_interval(40, 50) < rate_interval(8, 10)
    assert np.isnan(rate_interval(0, 0))


# The platform manual's example report (confidence threshold 0.3): per label AP, share of
# annotations and count, and which of those three cells carries a warning icon.
MANUAL_TABLE = [
    (0.991, 0.317, 280, ""),
    (0.985, 0.130, 115, ""),
    (0.981, 0.365, 322, ""),
    (0.941, 0.080, 71, ""),
    (0.846, 0.025, 22, "ap count"),
    (0.809, 0.023, 20, "ap count"),
    (0.824, 0.042, 37, "ap"),
    (0.663, 0.007, 6, "ap share count"),
    (0.300, 0.010, 9, "ap share count"),
]


@pytest.mark.parametrize("ap, share, count, icons", MANUAL_TABLE)
def test_warning_rules_reproduce_the_manuals_report_cell_by_cell(ap, share, count, icons):
    from hardex_nb.evaluation import cell_warnings, label_warning

    notes = cell_warnings(count, share, ap)
    assert sorted(notes) == sorted(icons.split())
    assert label_warning(count, share, ap) == "; ".join(notes.values())
    for column, message in notes.items():  # each message names the value and what to do
        shown = {"ap": f"{ap:.3f}", "share": f"{share:.1%}", "count": str(count)}[column]
        assert shown in message and ":" in message


def test_the_report_marks_each_warned_cell_and_shows_shares_as_percentages():
    """A report whose labels have the manual's counts: its warned cells and html icons."""
    rows, n = [], 0
    for k, (_, _, count, _) in enumerate(MANUAL_TABLE):
        for _ in range(count):
            rows.append((n, f"l{k}", 0, 0, 10, 10))
            n += 1
    gt = pd.DataFrame(rows, columns=["image_id", "label", "x0", "y0", "x1", "y1"])
    pred = gt.assign(score=0.9)
    r = evaluate_detections(gt, pred)
    cells = r.cell_warnings()
    assert list(cells.columns) == ["detection_rate", "ap", "share", "count"]
    for k, (_, share, _, icons) in enumerate(MANUAL_TABLE):
        # the manual's shares are its counts over their sum, 882
        assert r.per_label.loc[k, "share"] == pytest.approx(share, abs=5e-4)
        warned = {c for c in cells.columns if cells.loc[f"l{k}", c]}
        # perfect predictions: no AP or rate warning; count and share as in the manual
        assert warned == set(icons.split()) - {"ap"}
    page = r._repr_html_()
    assert page.count("⚠") == int((cells != "").to_numpy().sum()) > 0
    assert "31.7%" in page and "title='too few annotations (6 &lt; 30)" in page


def test_the_average_detection_rate_is_pooled_over_objects():
    """90 objects of a (all found) and 10 of b (half found): 95 / 100, not (1 + 0.5) / 2."""
    gt = pd.DataFrame(
        [(i, "a" if i < 90 else "b", 0, 0, 10, 10) for i in range(100)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    pred = gt[(gt["label"] == "a") | (gt["image_id"] >= 95)].assign(score=0.9)
    r = evaluate_detections(gt, pred)
    assert r.tally == (95, 100)
    assert r.avg_detection_rate == pytest.approx(0.95)
    assert r.mean_detection_rate == pytest.approx(0.75)
    assert "avg detection rate 0.950" in r.header() and "mean per label 0.750" in r.header()
    c = evaluate_classification(["a"] * 90 + ["b"] * 10, ["a"] * 90 + ["b"] * 5 + ["a"] * 5)
    assert c.avg_detection_rate == pytest.approx(0.95) == c.accuracy
    assert c.mean_detection_rate == pytest.approx(0.75)
    assert c.rate_interval() < r.rate_interval() + 1e-12  # same tally, same interval


def test_pr_curve_and_the_f1_threshold_on_a_hand_checked_case():
    """Four objects of a; predictions right at 0.9, 0.7, 0.6 and false at 0.8, 0.5:
    precision 1, 1/2, 2/3, 3/4, 3/5 at recall 1/4, 1/4, 2/4, 3/4, 3/4; F1 is best (0.75) at 0.6."""
    gt = pd.DataFrame(
        [(i, "a", 0, 0, 10, 10) for i in range(4)],
        columns=["image_id", "label", "x0", "y0", "x1", "y1"],
    )
    pred = pd.DataFrame(
        [
            (0, "a", 0, 0, 10, 10, 0.9),
            (1, "a", 30, 30, 40, 40, 0.8),
            (1, "a", 0, 0, 10, 10, 0.7),
            (2, "a", 0, 0, 10, 10, 0.6),
            (3, "a", 30, 30, 40, 40, 0.5),
        ],
        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"],
    )
    r = evaluate_detections(gt, pred)
    c = r.pr_curve("a")
    assert c["threshold"].tolist() == [0.9, 0.8, 0.7, 0.6, 0.5]
    np.testing.assert_allclose(c["precision"], [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
    np.testing.assert_allclose(c["recall"], [1 / 4, 1 / 4, 2 / 4, 3 / 4, 3 / 4])
    np.testing.assert_allclose(c["f1"], [0.4, 1 / 3, 4 / 7, 0.75, 2 / 3])
    best = r.best_thresholds().loc["a"]
    assert best["threshold"] == 0.6 and best["f1"] == pytest.approx(0.75)
    assert best["f1_at_report_threshold"] == pytest.approx(2 / 3)  # 0.3 keeps all five


def test_every_point_of_the_pr_curve_is_the_report_at_that_threshold():
    """Random crowded boxes: the curve's precision and recall at a score are the per-label
    precision and detection rate of a report at that confidence threshold."""
    rng = np.random.default_rng(3)
    rows, preds = [], []
    for img in range(30):
        for _ in range(rng.integers(1, 5)):
            x, y = rng.uniform(0, 80, 2)
            label = str(rng.choice(["a", "b"]))
            rows.append((img, label, x, y, x + 20, y + 20, rng.random() < 0.1))
            if rng.random() < 0.8:
                dx, dy = rng.normal(0, 4, 2)
                preds.append((img, label, x + dx, y + dy, x + dx + 20, y + dy + 20, rng.random()))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 80, 2)
            preds.append((img, str(rng.choice(["a", "b"])), x, y, x + 15, y + 15, rng.random()))
    gt = pd.DataFrame(rows, columns=["image_id", "label", "x0", "y0", "x1", "y1", "ignore"])
    pred = pd.DataFrame(preds, columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    curve = evaluate_detections(gt, pred).pr_curve()
    for label in ("a", "b"):
        points = curve[curve["label"] == label]
        for t in points["threshold"].to_numpy()[[0, len(points) // 3, -1]]:
            at = evaluate_detections(gt, pred, score_threshold=t).per_label.set_index("label")
            point = points[points["threshold"] == t].iloc[0]
            assert point["recall"] == pytest.approx(at.loc[label, "detection_rate"])
            assert point["precision"] == pytest.approx(at.loc[label, "precision"])


def test_calibration_of_scores_and_probabilities():
    from hardex_nb.evaluation import calibration_table

    # two bins used: 0.95 (half right: gap 0.45) and 0.15 (none right: gap 0.15)
    table, ece = calibration_table([1, 0, 0, 0], [0.95, 0.95, 0.15, 0.15])
    assert ece == pytest.approx((2 * 0.45 + 2 * 0.15) / 4)
    assert table["count"].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert table.loc[9, "accuracy"] == 0.5 and table.loc[1, "confidence"] == pytest.approx(0.15)
    assert calibration_table([1, 1], [1.0, 1.0])[1] == 0.0  # a score of 1 is in the last bin
    c = evaluate_classification(["a", "b", "a"], ["a", "a", "a"], scores=[0.9, 0.6, 0.7])
    table, ece = c.calibration(bins=5)
    # bins [0.6, 0.8): 0.6 wrong and 0.7 right; [0.8, 1]: 0.9 right
    assert ece == pytest.approx((2 * abs(0.5 - 0.65) + abs(1 - 0.9)) / 3)
    with pytest.raises(ValidationError, match="scores="):
        evaluate_classification(["a"], ["a"]).calibration()
    gt = pd.DataFrame([(0, "a", 0, 0, 10, 10)], columns=["image_id", "label", *evaluation.BOX])
    pred = pd.DataFrame(
        [(0, "a", 0, 0, 10, 10, 0.8), (0, "a", 50, 50, 60, 60, 0.8)],
        columns=["image_id", "label", *evaluation.BOX, "score"],
    )
    table, ece = evaluate_detections(gt, pred).calibration()
    assert table.loc[8, "count"] == 2 and ece == pytest.approx(0.3)  # 0.8 sure, half right


@pytest.mark.parametrize("seed", range(3))
def test_the_kernels_sorts_equal_numpys_stable_sorts(seed):
    """The radix sort of scores and the counting sort of keys give numpy's stable order,
    ties (many, and 0.0 against -0.0), negatives and extremes included."""
    rng = np.random.default_rng(seed)
    scores = np.r_[
        np.round(rng.uniform(-1, 1, 5000), 2),
        [0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300, 1.0, 1.0],
        rng.normal(size=100),
    ]
    rng.shuffle(scores)
    expected = np.argsort(-scores, kind="stable")
    np.testing.assert_array_equal(coco_kernels.by_falling_score(scores), expected)
    keys = rng.integers(0, 50, len(scores))
    rows = rng.permutation(len(scores))[:3000]
    np.testing.assert_array_equal(
        coco_kernels.stable_by_key(rows, keys, 50), rows[np.argsort(keys[rows], kind="stable")]
    )
