"""Detection evaluation speed: hardex_nb vs pycocotools (and faster-coco-eval if installed).

5,000 images, ~7 ground-truth boxes and 100 predictions each, 80 labels (seeded). Prints
seconds, the speed-up over pycocotools, and the mAP / mAP50 of each (they must agree).

    python bench/bench_eval.py [--images 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from hardex_nb import evaluate_detections


def make_case(n_images: int, labels: int = 80, gt_per_image: int = 7, preds_per_image: int = 100,
              seed: int = 0):
    rng = np.random.default_rng(seed)
    n_gt = n_images * gt_per_image
    gimg = np.repeat(np.arange(n_images), gt_per_image)
    gx, gy = rng.uniform(0, 560, n_gt), rng.uniform(0, 400, n_gt)
    gw, gh = rng.uniform(10, 80, n_gt), rng.uniform(10, 80, n_gt)
    glab = rng.integers(0, labels, n_gt)
    gt = pd.DataFrame({"image_id": gimg, "label": [f"c{k}" for k in glab], "x0": gx, "y0": gy,
                       "x1": gx + gw, "y1": gy + gh})
    n_pred = n_images * preds_per_image
    pimg = np.repeat(np.arange(n_images), preds_per_image)
    # 40% of predictions jitter a ground-truth box of the same image, the rest are random
    src = pimg * gt_per_image + rng.integers(0, gt_per_image, n_pred)
    near = rng.uniform(size=n_pred) < 0.4
    px = np.where(near, gx[src] + rng.normal(0, 5, n_pred), rng.uniform(0, 560, n_pred))
    py = np.where(near, gy[src] + rng.normal(0, 5, n_pred), rng.uniform(0, 400, n_pred))
    pw = np.where(near, gw[src] * rng.uniform(0.8, 1.2, n_pred), rng.uniform(10, 80, n_pred))
    ph = np.where(near, gh[src] * rng.uniform(0.8, 1.2, n_pred), rng.uniform(10, 80, n_pred))
    plab = np.where(near & (rng.uniform(size=n_pred) < 0.9), glab[src], rng.integers(0, labels, n_pred))
    pred = pd.DataFrame({"image_id": pimg, "label": [f"c{k}" for k in plab], "x0": px, "y0": py,
                         "x1": px + pw, "y1": py + ph,
                         "score": np.round(rng.uniform(size=n_pred), 3)})
    return gt, pred, [f"c{k}" for k in range(labels)], list(range(n_images))


def coco_dicts(gt, pred, labels, images):
    cid = {n: i + 1 for i, n in enumerate(labels)}
    g = gt.assign(w=gt.x1 - gt.x0, h=gt.y1 - gt.y0)
    p = pred.assign(w=pred.x1 - pred.x0, h=pred.y1 - pred.y0)
    data = {"images": [{"id": int(i), "width": 640, "height": 480} for i in images],
            "categories": [{"id": i, "name": n} for n, i in cid.items()],
            "annotations": [{"id": k + 1, "image_id": int(r.image_id), "category_id": cid[r.label],
                             "bbox": [r.x0, r.y0, r.w, r.h], "area": r.w * r.h, "iscrowd": 0}
                            for k, r in enumerate(g.itertuples())]}
    dets = [{"image_id": int(r.image_id), "category_id": cid[r.label], "bbox": [r.x0, r.y0, r.w, r.h],
             "score": float(r.score)} for r in p.itertuples()]
    return data, dets


def run_cocoeval(module_coco, module_eval, data, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = module_coco()
        coco_gt.dataset = data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        t0 = time.perf_counter()
        ev = module_eval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return time.perf_counter() - t0, ev.stats[0], ev.stats[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    args = ap.parse_args()
    gt, pred, labels, images = make_case(args.images)
    print(f"{args.images} images, {len(gt)} ground-truth boxes, {len(pred)} predictions, "
          f"{len(labels)} labels")
    rows = []
    t0 = time.perf_counter()
    report = evaluate_detections(gt, pred, image_ids=images, labels=labels)
    rows.append(("hardex_nb", time.perf_counter() - t0, report.map, report.map50))
    data, dets = coco_dicts(gt, pred, labels, images)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    rows.append(("pycocotools", *run_cocoeval(COCO, COCOeval, data, dets)))
    try:
        from faster_coco_eval import COCO as FCOCO
        from faster_coco_eval import COCOeval_faster
        rows.append(("faster-coco-eval", *run_cocoeval(FCOCO, COCOeval_faster, data, dets)))
    except ImportError:
        print("(faster-coco-eval not installed: pip install faster-coco-eval)")
    table = pd.DataFrame(rows, columns=["library", "seconds", "mAP", "mAP50"])
    base = table.loc[table.library == "pycocotools", "seconds"].iloc[0]
    table["speed-up vs pycocotools"] = base / table["seconds"]
    with pd.option_context("display.float_format", "{:.6f}".format, "display.width", 120):
        print(table.to_string(index=False))
    ours, ref = table.iloc[0], table.iloc[1]
    print(f"mAP difference vs pycocotools: {abs(ours.mAP - ref.mAP):.2e}, "
          f"mAP50: {abs(ours.mAP50 - ref.mAP50):.2e}")


if __name__ == "__main__":
    main()
