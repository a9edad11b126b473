"""Detection evaluation: hardex_nb vs pycocotools and faster-coco-eval, time and peak memory.

Cases (seeded): ``standard``: 5,000 images, ~7 ground-truth boxes and 100 predictions each,
80 labels; ``crowded``: the same plus one image holding 2,000 objects and 2,000 predictions
of one label. Each library runs in its own process, so its peak RSS is its own: the table
prints seconds (evaluate + accumulate + summarize for the COCO libraries, the whole call
for ours), the peak RSS of the process and how much evaluation added to it (building the
COCO index from the same boxes counts for the COCO libraries), the speed-up over
pycocotools and the mAP / mAP50 / AR100 of each (they must agree).

    python bench/bench_eval.py [--images 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def make_case(
    n_images: int,
    labels: int = 80,
    gt_per_image: int = 7,
    preds_per_image: int = 100,
    seed: int = 0,
    crowded: int = 0,
):
    rng = np.random.default_rng(seed)
    n_gt = n_images * gt_per_image
    gimg = np.repeat(np.arange(n_images), gt_per_image)
    gx, gy = rng.uniform(0, 560, n_gt), rng.uniform(0, 400, n_gt)
    gw, gh = rng.uniform(10, 80, n_gt), rng.uniform(10, 80, n_gt)
    glab = rng.integers(0, labels, n_gt)
    gt = pd.DataFrame(
        {
            "image_id": gimg,
            "label": [f"c{k}" for k in glab],
            "x0": gx,
            "y0": gy,
            "x1": gx + gw,
            "y1": gy + gh,
        }
    )
    n_pred = n_images * preds_per_image
    pimg = np.repeat(np.arange(n_images), preds_per_image)
    # 40% of predictions jitter a ground-truth box of the same image, the rest are random
    src = pimg * gt_per_image + rng.integers(0, gt_per_image, n_pred)
    near = rng.uniform(size=n_pred) < 0.4
    px = np.where(near, gx[src] + rng.normal(0, 5, n_pred), rng.uniform(0, 560, n_pred))
    py = np.where(near, gy[src] + rng.normal(0, 5, n_pred), rng.uniform(0, 400, n_pred))
    pw = np.where(near, gw[src] * rng.uniform(0.8, 1.2, n_pred), rng.uniform(10, 80, n_pred))
    ph = np.where(near, gh[src] * rng.uniform(0.8, 1.2, n_pred), rng.uniform(10, 80, n_pred))
    plab = np.where(
        near & (rng.uniform(size=n_pred) < 0.9), glab[src], rng.integers(0, labels, n_pred)
    )
    pred = pd.DataFrame(
        {
            "image_id": pimg,
            "label": [f"c{k}" for k in plab],
            "x0": px,
            "y0": py,
            "x1": px + pw,
            "y1": py + ph,
            "score": np.round(rng.uniform(size=n_pred), 3),
        }
    )
    if crowded:  # one more image: a crowd of small objects of one label, each detected
        cx, cy = rng.uniform(0, 4000, crowded), rng.uniform(0, 3000, crowded)
        cw, ch = rng.uniform(8, 30, crowded), rng.uniform(8, 30, crowded)
        gt = pd.concat(
            [
                gt,
                pd.DataFrame(
                    {
                        "image_id": n_images,
                        "label": "c0",
                        "x0": cx,
                        "y0": cy,
                        "x1": cx + cw,
                        "y1": cy + ch,
                    }
                ),
            ],
            ignore_index=True,
        )
        j = rng.normal(0, 2, (crowded, 2))
        pred = pd.concat(
            [
                pred,
                pd.DataFrame(
                    {
                        "image_id": n_images,
                        "label": "c0",
                        "x0": cx + j[:, 0],
                        "y0": cy + j[:, 1],
                        "x1": cx + j[:, 0] + cw,
                        "y1": cy + j[:, 1] + ch,
                        "score": np.round(rng.uniform(size=crowded), 3),
                    }
                ),
            ],
            ignore_index=True,
        )
        n_images += 1
    return gt, pred, [f"c{k}" for k in range(labels)], list(range(n_images))


def coco_dicts(gt, pred, labels, images):
    cid = {n: i + 1 for i, n in enumerate(labels)}
    g = gt.assign(w=gt.x1 - gt.x0, h=gt.y1 - gt.y0)
    p = pred.assign(w=pred.x1 - pred.x0, h=pred.y1 - pred.y0)
    data = {
        "images": [{"id": int(i), "width": 4000, "height": 3000} for i in images],
        "categories": [{"id": i, "name": n} for n, i in cid.items()],
        "annotations": [
            {
                "id": k + 1,
                "image_id": int(r.image_id),
                "category_id": cid[r.label],
                "bbox": [r.x0, r.y0, r.w, r.h],
                "area": r.w * r.h,
                "iscrowd": 0,
            }
            for k, r in enumerate(g.itertuples())
        ],
    }
    dets = [
        {
            "image_id": int(r.image_id),
            "category_id": cid[r.label],
            "bbox": [r.x0, r.y0, r.w, r.h],
            "score": float(r.score),
        }
        for r in p.itertuples()
    ]
    return data, dets


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def worker(library: str, case: str, images: int) -> dict:
    """Run one library on one case in this process; returns its measurements."""
    gt, pred, labels, ids = make_case(images, crowded=2000 if case == "crowded" else 0)
    if library == "hardex_nb":
        from hardex_nb import evaluate_detections

        base = _rss_mb()
        t0 = time.perf_counter()
        report = evaluate_detections(gt, pred, image_ids=ids, labels=labels)
        seconds = time.perf_counter() - t0
        stats = report.stats.to_numpy()
    else:
        if library == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval as Eval
        else:
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as Eval
        data, dets = coco_dicts(gt, pred, labels, ids)
        del gt, pred
        base = _rss_mb()
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = data
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(dets)
            t0 = time.perf_counter()
            ev = Eval(coco_gt, coco_dt, "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            seconds = time.perf_counter() - t0
        stats = np.asarray(ev.stats, dtype=float)
    peak = _rss_mb()
    return {
        "library": library,
        "case": case,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "added_mb": peak - base,
        "mAP": float(stats[0]),
        "mAP50": float(stats[1]),
        "AR100": float(stats[8]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.images)))
        return
    rows = []
    for case in ("standard", "crowded"):
        gt, pred, labels, _ = make_case(args.images, crowded=2000 if case == "crowded" else 0)
        print(
            f"{case}: {args.images + (case == 'crowded')} images, {len(gt)} ground-truth boxes, "
            f"{len(pred)} predictions, {len(labels)} labels",
            flush=True,
        )
        for library in ("hardex_nb", "pycocotools", "faster-coco-eval"):
            done = subprocess.run(
                [sys.executable, __file__, "--images", str(args.images), "--worker", library, case],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(f"  {library}: failed ({done.stderr.strip().splitlines()[-1]})")
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = pd.DataFrame(rows)
    base = table[table.library == "pycocotools"].set_index("case")["seconds"]
    table["speed-up vs pycocotools"] = base.reindex(table["case"]).to_numpy() / table["seconds"]
    with pd.option_context("display.float_format", "{:.6f}".format, "display.width", 160):
        print(table.to_string(index=False))
    for case, part in table.groupby("case"):
        ours = part[part.library == "hardex_nb"].iloc[0]
        for _, other in part[part.library != "hardex_nb"].iterrows():
            diff = max(abs(ours[c] - other[c]) for c in ("mAP", "mAP50", "AR100"))
            print(
                f"{case}: largest |difference| of mAP, mAP50, AR100 vs {other.library}: {diff:.2e}"
            )


if __name__ == "__main__":
    main()
