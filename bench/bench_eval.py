"""Detection evaluation: hardex_nb vs hotcoco, faster-coco-eval and pycocotools.

Cases (seeded, 80 labels, ~7 ground-truth boxes per image):

- ``small``: 100 images, 100 predictions each (10k);
- ``coco``: 5,000 images, 9 predictions each (45k, COCO val's density);
- ``standard``: 5,000 images, 100 predictions each (500k);
- ``crowded``: ``standard`` plus one image holding 2,000 objects and 2,000 predictions of
  one label.

Each library runs in its own process, so its peak RSS is its own. The table prints
``seconds`` (evaluate + accumulate + summarize for the COCO libraries, the whole
``evaluate_detections`` call for ours), ``load_s`` (building the COCO objects from the
boxes, which our frames need not: ``total_s`` counts both), the peak RSS, ``import_s`` /
``import_mb`` (what the process paid once, before the case: importing the library and
evaluating one box; for hardex_nb numba and its compiled kernels, loaded from numba's disk
cache), ``added_mb`` (what evaluation and loading added after that), and all twelve COCO
stats' largest difference from pycocotools'.

    python bench/bench_eval.py [--cases small coco standard crowded] [--repeat 5]
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


CASES = {  # name: (images, predictions per image, crowded objects)
    "small": (100, 100, 0),
    "coco": (5000, 9, 0),
    "standard": (5000, 100, 0),
    "crowded": (5000, 100, 2000),
}
LIBRARIES = ("hardex_nb", "hotcoco", "faster-coco-eval", "pycocotools")


def _case(case: str):
    images, per_image, crowded = CASES[case]
    return make_case(images, preds_per_image=per_image, crowded=crowded)


def _hotcoco(gt, pred, labels, ids):
    """hotcoco from columns (its fastest load: no dict per box); returns (load s, eval s, stats)."""
    import hotcoco

    cid = {n: i + 1 for i, n in enumerate(labels)}
    g_cat = gt.label.map(cid).to_numpy()
    g_box = np.stack([gt.x0, gt.y0, gt.x1 - gt.x0, gt.y1 - gt.y0], axis=1)
    dets = np.stack(
        [
            pred.image_id,
            pred.x0,
            pred.y0,
            pred.x1 - pred.x0,
            pred.y1 - pred.y0,
            pred.score,
            pred.label.map(cid),
        ],
        axis=1,
    ).astype(float)
    t0 = time.perf_counter()
    coco_gt = hotcoco.COCO.from_arrays(
        images=[{"id": int(i), "width": 4000, "height": 3000} for i in ids],
        categories=[{"id": i, "name": n} for n, i in cid.items()],
        image_ids=gt.image_id.to_numpy(),
        category_ids=g_cat,
        boxes=g_box,
    )
    coco_dt = coco_gt.load_res(dets)
    t1 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = hotcoco.COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, np.asarray(ev.stats, dtype=float)


def _warm_up(library: str) -> None:
    """Import the library and evaluate one box with it: what a process pays once (for
    hardex_nb, numba and its compiled kernels from the disk cache)."""
    gt, pred, labels, ids = make_case(1, labels=1, gt_per_image=1, preds_per_image=1)
    if library == "hardex_nb":
        from hardex_nb import evaluate_detections

        evaluate_detections(gt, pred, image_ids=ids, labels=labels)
    elif library == "hotcoco":
        _hotcoco(gt, pred, labels, ids)
    elif library == "pycocotools":
        from pycocotools.coco import COCO  # noqa: F401
        from pycocotools.cocoeval import COCOeval  # noqa: F401
    else:
        import faster_coco_eval  # noqa: F401


def worker(library: str, case: str, repeat: int = 1) -> dict:
    """Run one library on one case in this process (best of ``repeat``); returns its measurements."""
    gt, pred, labels, ids = _case(case)
    start = _rss_mb()
    t_import = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        _warm_up(library)
    import_s = time.perf_counter() - t_import
    import_mb = _rss_mb() - start
    load = 0.0
    if library == "hardex_nb":
        from hardex_nb import evaluate_detections

        base = _rss_mb()
        times = []
        for _ in range(repeat):
            report = None  # the previous run's report does not count in this one's peak
            t0 = time.perf_counter()
            report = evaluate_detections(gt, pred, image_ids=ids, labels=labels)
            times.append(time.perf_counter() - t0)
        seconds = min(times)
        stats = np.nan_to_num(report.stats.to_numpy(), nan=-1.0)  # COCO writes -1 for "none"
    elif library == "hotcoco":
        base = _rss_mb()
        load, seconds, stats = min(
            (_hotcoco(gt, pred, labels, ids) for _ in range(repeat)), key=lambda r: r[0] + r[1]
        )
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
            t_load = time.perf_counter()
            coco_gt = COCO()
            coco_gt.dataset = data
            coco_gt.createIndex()
            coco_dt = coco_gt.loadRes(dets)
            t0 = time.perf_counter()
            load = t0 - t_load
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
        "load_s": load,
        "total_s": seconds + load,
        "peak_rss_mb": peak,
        "import_s": import_s,
        "import_mb": import_mb,
        "added_mb": peak - base,
        "stats": [float(v) for v in stats],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs inside each process")
    ap.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, repeat=args.repeat)))
        return
    rows = []
    for case in args.cases:
        gt, pred, labels, ids = _case(case)
        print(
            f"{case}: {len(ids)} images, {len(gt)} ground-truth boxes, "
            f"{len(pred)} predictions, {len(labels)} labels",
            flush=True,
        )
        for library in args.libraries:
            repeat = 1 if library == "pycocotools" else args.repeat
            done = subprocess.run(
                [sys.executable, __file__, "--repeat", str(repeat), "--worker", library, case],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(f"  {library}: failed ({done.stderr.strip().splitlines()[-1]})")
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = pd.DataFrame(rows)
    reference = table[table.library == "pycocotools"].set_index("case")["stats"]
    table["max |Δ stats| vs pycocotools"] = [
        float(np.max(np.abs(np.subtract(s, reference[c])))) if c in reference else np.nan
        for c, s in zip(table["case"], table["stats"])
    ]
    ours = table[table.library == "hardex_nb"].set_index("case")["total_s"]
    table["total vs hardex_nb"] = table["total_s"] / ours.reindex(table["case"]).to_numpy()
    table = table.drop(columns="stats")
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 200):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
