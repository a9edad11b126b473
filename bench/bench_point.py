"""Point to label: how often one click gives the object's box, and the seconds a box costs.

On held-out inspection images (``bench_loop.inspection_images``: textured surfaces with
scratches, dents, holes and stains, and look-alikes that are not defects), a simulated
person clicks once on each object, near the middle of its box (a normal jitter of
``--jitter`` px). Each click's proposal is scored against the object:

- ``pixels``: `hardex_nb.pointing.grow_box` alone (no model: the tool's fallback);
- ``detector, then pixels``: what the Annotator's point tool does once a detector exists:
  the detector's box holding the click (`pointing.from_detections`), else the pixels. The
  detector trains on ``--labeled`` hand-labeled images of the same kind (``hx.train``,
  ``--epochs``, from scratch: no weights can be downloaded here), or is a stored run
  (``--dataset`` and ``--version``).

Printed per defect kind and in all: the share of clicks whose box overlaps the object at
IoU ≥ 0.7 and ≥ 0.5, and the seconds per box in the reviewer-time model
(``hardex_nb.review_time``: a click 1.8 s and a look 1.6 s, plus an adjustment or a box
drawn by hand as the overlap requires) against drawing every box by hand (7.0 s).

    python bench/bench_point.py [--test 100] [--labeled 60] [--epochs 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_loop import DEFECTS, inspection_images

import hardex_nb as hx
from hardex_nb import pointing, review_time
from hardex_nb.evaluation import box_iou
from hardex_nb.jobs.run import Run

# what the tables print per group of clicks
SCORES = {
    "clicks": ("iou", "size"),
    "iou_07": ("iou", lambda v: (v >= 0.7).mean()),
    "iou_05": ("iou", lambda v: (v >= 0.5).mean()),
    "s_per_box": ("seconds", "mean"),
}


def detector(args, root: Path) -> Run:
    if args.dataset:
        return Run.load(hx.Dataset.open(args.dataset), args.version, device="cpu")
    paths, objects = inspection_images(root / "train", args.labeled, seed=1)
    ds = hx.Dataset.create(root / "ds", task="detection", labels=list(DEFECTS))
    for sid, objs in zip(ds.add_images(paths).added, objects):
        for k, x0, y0, x1, y1 in objs:
            ds.add_box(sid, DEFECTS[k], x0, y0, x1, y1)
        ds.set_status(sid, "labeled")
    t = time.perf_counter()
    run = hx.train(ds, epochs=args.epochs, batch_size=8, image_size=128, seed=0,
                   progress=False, val_fraction=0, weights=None, weights_backbone=None)  # fmt: skip
    print(f"detector {run.version}: {args.labeled} images, {args.epochs} epochs, "
          f"{time.perf_counter() - t:.0f} s")  # fmt: skip
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--labeled", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--jitter", type=float, default=1.5)
    ap.add_argument("--dataset", help="a dataset holding a trained detector")
    ap.add_argument("--version", help="that detector's run version")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hardex-bench-point-"))
    run = detector(args, root)
    paths, objects = inspection_images(root / "test", args.test, seed=10_000)
    rng = np.random.default_rng(0)
    rows = []
    t_pixels = t_detector = 0.0
    for path, objs in zip(paths, objects):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        (raw,) = run.predict_raw([path])
        found = (np.asarray(raw["boxes"]), np.asarray(raw["scores"]),
                 [run.labels[int(k)] for k in np.asarray(raw["labels"])])  # fmt: skip
        for k, *box in objs:
            x = (box[0] + box[2]) / 2 + rng.normal(0, args.jitter)
            y = (box[1] + box[3]) / 2 + rng.normal(0, args.jitter)
            for source in ("pixels", "detector, then pixels"):
                t = time.perf_counter()
                p = pointing.propose_box(rgb, x, y, found if source != "pixels" else None)
                spent = time.perf_counter() - t
                if source == "pixels":
                    t_pixels += spent
                else:
                    t_detector += spent
                xyxy = None if p is None else [p.x0, p.y0, p.x1, p.y1]
                iou = 0.0 if p is None else float(box_iou(np.array([xyxy]), np.array([box]))[0, 0])
                rows.append({
                    "source": source, "kind": DEFECTS[k], "iou": iou,
                    "from": "none" if p is None else p.source,
                    "seconds": review_time.point_box(xyxy, box).seconds,
                })  # fmt: skip
    frame = pd.DataFrame(rows)
    table = frame.groupby(["source", "kind"]).agg(**SCORES).reset_index()
    overall = frame.groupby("source").agg(**SCORES).reset_index().assign(kind="all")
    table = pd.concat([table, overall], ignore_index=True)
    table["saved vs drawing (7.0 s)"] = 1 - table["s_per_box"] / review_time.PRICES.draw
    used = frame[frame["source"] != "pixels"]["from"].value_counts().to_dict()
    print(f"\npoint to label on {args.test} held-out inspection images "
          f"({len(frame) // 2} objects, click jitter {args.jitter} px)")  # fmt: skip
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"the detector's box was used for {used.get('detector', 0)} clicks, the pixels for "
          f"{used.get('pixels', 0)}, nothing for {used.get('none', 0)}")  # fmt: skip
    n = len(frame) // 2
    print(f"per click: pixels {1000 * t_pixels / n:.1f} ms, detector then pixels "
          f"{1000 * t_detector / n:.1f} ms (the detector's prediction not counted)")  # fmt: skip


if __name__ == "__main__":
    main()
