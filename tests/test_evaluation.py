"""evaluate_detections equals pycocotools COCOeval; classification equals scikit-learn."""

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from hardex_nb import ValidationError, evaluate_classification, evaluate_detections


def cocoeval_stats(gt, pred, labels, images):
    cid = {n: i + 1 for i, n in enumerate(labels)}
    data = {"images": [{"id": int(i)} for i in images],
            "categories": [{"id": i, "name": n} for n, i in cid.items()],
            "annotations": [{"id": k + 1, "image_id": int(r.image_id), "category_id": cid[r.label],
                             "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0],
                             "area": (r.x1 - r.x0) * (r.y1 - r.y0), "iscrowd": 0}
                            for k, r in enumerate(gt.itertuples())]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = data
        coco_gt.createIndex()
        dets = [{"image_id": int(r.image_id), "category_id": cid[r.label],
                 "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0], "score": float(r.score)}
                for r in pred.itertuples()]
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


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
                pred.append((img, plab, x + j[0], y + j[1], x + j[0] + max(w + j[2], 1),
                             y + j[1] + max(h + j[3], 1), score))
        for _ in range(rng.integers(0, 4)):  # background boxes
            x, y = rng.uniform(0, 200, 2)
            pred.append((img, str(rng.choice(labels)), x, y, x + 12, y + 9,
                         rng.integers(0, 5) / 4 if quantized else rng.uniform()))
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
    gt = pd.DataFrame({"image_id": 0, "label": "a", "x0": np.arange(50) * 10.0, "y0": 0.0,
                       "x1": np.arange(50) * 10.0 + 8, "y1": 8.0})
    x = rng.uniform(0, 500, 180)
    pred = pd.DataFrame({"image_id": 0, "label": "a", "x0": x, "y0": 0.0, "x1": x + 8, "y1": 8.0,
                         "score": rng.uniform(size=180)})
    report = evaluate_detections(gt, pred, labels=["a"])
    stats = cocoeval_stats(gt, pred, ["a"], [0])
    assert report.map == pytest.approx(stats[0], abs=1e-6)


def test_empty_and_edge_cases():
    gt = pd.DataFrame({"image_id": [0], "label": ["a"], "x0": [0.], "y0": [0.], "x1": [10.], "y1": [10.]})
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
    gt = pd.DataFrame([(0, "cat", 0, 0, 10, 10), (0, "dog", 20, 20, 30, 30), (1, "cat", 0, 0, 10, 10)],
                      columns=["image_id", "label", "x0", "y0", "x1", "y1"])
    pred = pd.DataFrame([(0, "cat", 0, 0, 10, 10, 0.9),      # tp
                         (0, "cat", 20, 20, 30, 30, 0.8),    # dog seen as cat
                         (1, "cat", 50, 50, 60, 60, 0.7),    # false box on background
                         (1, "cat", 1, 1, 10, 10, 0.2)],     # below the score threshold
                        columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    r = evaluate_detections(gt, pred, labels=["cat", "dog"])
    t = r.per_label.set_index("label")
    assert t.loc["cat", "detection_rate"] == 0.5 and t.loc["cat", "precision"] == pytest.approx(1 / 3)
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
    np.testing.assert_allclose(r.per_label["detection_rate"],
                               recall_score(y, p, labels=names, average=None))
    np.testing.assert_allclose(r.per_label["precision"],
                               precision_score(y, p, labels=names, average=None))
    np.testing.assert_array_equal(r.confusion().to_numpy(), confusion_matrix(y, p, labels=names))
    assert r.accuracy == pytest.approx((y == p).mean())
    wrong = r.errors("a")
    assert (wrong["true"] == "a").all() and (wrong["predicted"] != "a").all()
