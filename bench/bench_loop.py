"""Labeling time saved, in a person's seconds, on held-out data.

Every strategy pays the same published prices (``hardex_nb.review_time``: choose a class
3.0 s, verify a proposal 1.6 s, fix a wrong one 1.6 + 3.0 s; draw a box 7.0 s, ...), and
every model is scored on a fixed test set that is never selected, reviewed or trained on.

Classification: scikit-learn's digits as 32×32 images, 500 held out, the other 1,297 the
pool. Each seed starts from 5 hand labels per class (the same start for every strategy) and
trains a resnet18 from scratch with ``hx.train``:

- ``manual``: random images labeled by hand, up to the whole pool (what a user does today);
- ``loop`` (the package's loop): each round ``hx.auto_label`` proposes a class for every
  unlabeled image, the reviewer verifies or fixes the ``per_round`` that ``hx.next_batch``
  shows first, and the next model trains on what people labeled;
- ``loop + accept sure``: the same, and each round the auto-labels that are not ``hard``
  and at least ``ACCEPT`` (0.99) sure are accepted as they are, unseen (0 s: nobody looks
  at them; their errors stay in the data and the held-out test sees what they cost);
- ``loop, accurate``: the loop with every model trained ``mode="accurate"`` (FixMatch on
  the images nobody labeled yet; the test set is never among them).

Printed per strategy: test accuracy against cumulative seconds (mean ± std over seeds), and

- the **time ratio**: seconds a strategy needs to reach manual labeling's final accuracy
  (linear interpolation along its curve) / manual's seconds (goal ≤ 0.30: "saves more
  than 70% of labeling time");
- the **label ratio**: labels a person gave or checked by then / manual's labels (≤ 0.5);
- the wrong labels left in the training data, and the ``hard`` flag's precision and recall
  on the pool at the first round (≥ 0.7 each).

    python bench/bench_loop.py [--seeds 5] [--rounds 6] [--per-round 60] [--epochs 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_triage import digits_images, efficiency, flag_quality, split, start_dataset

import hardex_nb as hx
from hardex_nb import review_time

STRATEGIES = ("manual", "loop", "loop + accept sure", "loop, accurate")
#: the confidence from which "loop + accept sure" takes an auto-label nobody checked
ACCEPT = 0.99
SAFE = str.maketrans({" ": "_", ",": "", "+": "plus"})


def manual_sizes(start: int, pool: int, points: int) -> list[int]:
    """Label counts of the manual curve: from ``start`` to the whole pool, evenly on a log
    scale (``points`` of them)."""
    sizes = np.unique(np.round(np.geomspace(start, pool, points)).astype(int))
    return sizes.tolist()


def classification_curve(
    paths: list[Path],
    y: np.ndarray,
    test: np.ndarray,
    pool: np.ndarray,
    strategy: str,
    seed: int,
    root: Path,
    *,
    start_per_class: int = 5,
    per_round: int = 60,
    rounds: int = 6,
    epochs: int = 15,
) -> dict:
    """One strategy, one seed. Returns the curve (cumulative seconds → test accuracy), the
    labels a person gave or checked at each point, the wrong labels trained on at each
    point, the flag's (precision, recall, share) at the first round, and every image a
    person saw (so a caller can check none came from the test set)."""
    ds, names, ids, seen, rng = start_dataset(
        paths, y, pool, root / f"{strategy}_{seed}".translate(SAFE), seed, start_per_class
    )
    truth = dict(zip(ids, (names[c] for c in y[pool])))
    index_of = dict(zip(ids, pool.tolist()))
    bill = review_time.label_classes(len(seen))
    test_paths = [paths[i] for i in test]
    curve, people, noise = {}, {}, {}
    flag = (np.nan, np.nan, np.nan)
    plan = manual_sizes(len(seen), len(ids), rounds + 1) if strategy == "manual" else None
    for r in range(rounds + 1):
        run = hx.train(
            ds,
            epochs=epochs,
            batch_size=16,
            image_size=32,
            seed=seed,
            progress=False,
            val_fraction=0,
            mode="accurate" if strategy.endswith("accurate") else "fast",
        )
        labeled = ds.samples[ds.samples["status"] == "labeled"]
        curve[bill.seconds] = float((run.predict_proba(test_paths).argmax(1) == y[test]).mean())
        people[bill.seconds] = len(seen)
        noise[bill.seconds] = int(
            sum(truth[int(s)] != str(v) for s, v in zip(labeled.sample_id, labeled.label))
        )
        if r == rounds:
            break
        if strategy != "manual" and not len(ds.query(status="unlabeled")):
            break  # every image is labeled: nothing left to review
        if strategy == "manual":
            unl = ds.query(status="unlabeled").sample_id.to_numpy()
            pick = rng.choice(unl, min(plan[r + 1] - len(seen), len(unl)), replace=False)
            pick = [int(s) for s in pick]
            bill = bill + review_time.label_classes(len(pick))
        else:
            result = hx.auto_label(ds, run, progress=False)
            table = result.table.set_index("sample_id")
            if r == 0:
                wrong = np.array([truth[s] != table.at[s, "label"] for s in table.index])
                p, rec = flag_quality(table["hard"].to_numpy(bool), wrong)
                flag = (p, rec, float(table["hard"].mean()))
            pick = hx.next_batch(ds, per_round, seed=seed).sample_id.astype(int).tolist()
            bill = bill + review_time.review_classes(
                table.loc[pick, "label"].to_numpy(), [truth[s] for s in pick]
            )
            waiting = ds.query(status="to_confirm").sample_id.astype(int)
            rest = [s for s in waiting if s not in set(pick)]
            if strategy == "loop + accept sure":
                sure = {
                    s
                    for s in rest
                    if not table.at[s, "hard"] and table.at[s, "top"][0][1] >= ACCEPT
                }
                ds.confirm(sorted(sure))  # accepted unseen, as auto-labeled
                rest = [s for s in rest if s not in sure]
            ds.set_status(rest, "unlabeled")
        for s in pick:
            ds.set_label(s, truth[s])
        seen += pick
    return {
        "curve": pd.Series(curve),
        "people": pd.Series(people),
        "noise": pd.Series(noise),
        "flag": flag,
        "seen": [index_of[s] for s in seen],
        "bill": bill,
    }


def ratios(out: dict, manual: dict) -> dict:
    """The time and label ratios of one strategy's run against manual's, same seed."""
    target = float(manual["curve"].iloc[-1])
    seconds = efficiency(out["curve"], target)
    people = out["people"]
    if np.isnan(seconds):
        labels = float("nan")
    else:  # labels a person had touched by then, interpolated like the seconds
        labels = float(np.interp(seconds, people.index.to_numpy(float), people.to_numpy(float)))
    return {
        "time ratio": seconds / manual["curve"].index[-1],
        "label ratio": labels / manual["people"].iloc[-1],
    }


def classification(args, root: Path) -> pd.DataFrame:
    paths, y = digits_images(root / "digits")
    test, pool = split(len(paths), args.test)
    strategies = ["manual"] + [s for s in args.strategies if s != "manual"]
    runs: dict[str, list[dict]] = {s: [] for s in strategies}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for s in strategies:
            out = classification_curve(
                paths,
                y,
                test,
                pool,
                s,
                seed,
                root / "runs",
                per_round=args.per_round,
                rounds=args.rounds,
                epochs=args.epochs,
            )
            assert not set(out["seen"]) & set(test.tolist()), "a test image was shown"
            runs[s].append(out)
            print(
                f"  seed {seed} {s:>18}: "
                + " ".join(f"{k:.0f}s:{v:.3f}" for k, v in out["curve"].items()),
                flush=True,
            )
    return _summary(runs, f"test accuracy on {args.test} held-out digits", t0)


def _summary(runs: dict[str, list[dict]], what: str, t0: float) -> pd.DataFrame:
    """Print the curves (mean ± std over seeds) and the ratios to manual labeling."""
    seeds = len(runs["manual"])
    print(f"\n{what} against a person's seconds (mean ± std over {seeds} seeds)")
    for s, outs in runs.items():
        # a loop that ran out of images to review has fewer points: each point is the mean
        # over the seeds that reached it
        secs = pd.DataFrame([o["curve"].index.to_numpy() for o in outs])
        accs = pd.DataFrame([o["curve"].to_numpy() for o in outs])
        print(
            f"  {s:>18}: "
            + "  ".join(
                f"{sec:.0f}s {a:.3f}±{sd:.3f}"
                for sec, a, sd in zip(secs.mean(), accs.mean(), accs.std(ddof=0))
            )
        )
    rows = []
    for s, outs in runs.items():
        r = pd.DataFrame([ratios(o, m) for o, m in zip(outs, runs["manual"])])
        f = np.array([o["flag"] for o in outs if "flag" in o], dtype=float)
        rows.append(
            {
                "strategy": s,
                "time ratio": f"{r['time ratio'].mean():.2f} ± {r['time ratio'].std(ddof=0):.2f}",
                "label ratio": f"{r['label ratio'].mean():.2f} ± {r['label ratio'].std(ddof=0):.2f}",
                "never reached": int(r["time ratio"].isna().sum()),
                "final score": f"{np.mean([o['curve'].iloc[-1] for o in outs]):.3f}",
                "final seconds": f"{np.mean([o['curve'].index[-1] for o in outs]):.0f}",
                "wrong labels trained on": (
                    f"{np.mean([o['noise'].iloc[-1] for o in outs]):.0f}"
                    if "noise" in outs[0]
                    else ""
                ),
                "flag precision": f"{np.nanmean(f[:, 0]):.2f}" if len(f) and s != "manual" else "",
                "flag recall": f"{np.nanmean(f[:, 1]):.2f}" if len(f) and s != "manual" else "",
            }
        )
    table = pd.DataFrame(rows)
    print("\nratios to manual labeling's final accuracy (goal: time ≤ 0.30, labels ≤ 0.5)")
    print(table.to_string(index=False))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return table


# -- detection: an inspection line's surfaces and their defects -------------------------------
DEFECTS = ("scratch", "dent", "hole", "stain")


def surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """A machined surface, H×W float in 0..255: a base tone, a lighting gradient, brushed
    grain (streaks along one direction) and sensor noise."""
    from scipy.ndimage import gaussian_filter1d

    base = rng.uniform(90, 170)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(10, 45) * (np.cos(angle) * xx + np.sin(angle) * yy - 0.5)
    grain = gaussian_filter1d(rng.normal(0, 1, (size, size)), sigma=rng.uniform(3, 10), axis=1)
    grain *= rng.uniform(6, 16) / max(grain.std(), 1e-6)
    if rng.random() < 0.5:
        grain = grain.T
    return base + light + grain + rng.normal(0, rng.uniform(2, 6), (size, size))


def stamp(img: np.ndarray, kind: int, rng: np.random.Generator) -> tuple[float, ...]:
    """Draw one defect of ``kind`` on ``img`` (in place); returns its box (x0, y0, x1, y1)."""
    from scipy.ndimage import gaussian_filter

    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    sign = rng.choice([-1.0, 1.0])
    if DEFECTS[kind] == "scratch":  # a thin straight line, several lengths
        length, angle = rng.uniform(14, 0.5 * size), rng.uniform(0, np.pi)
        cx, cy = rng.uniform(length / 2 + 2, size - length / 2 - 2, 2)
        dx, dy = np.cos(angle), np.sin(angle)
        along = (xx - cx) * dx + (yy - cy) * dy
        across = np.abs(-(xx - cx) * dy + (yy - cy) * dx)
        mask = (np.abs(along) <= length / 2) & (across <= rng.uniform(0.6, 1.4))
        img[mask] += sign * rng.uniform(35, 70)
        ys, xs = np.nonzero(mask)
    elif DEFECTS[kind] == "dent":  # a round hollow: dark on one side, bright on the other
        r = rng.uniform(4, 11)
        cx, cy = rng.uniform(r + 2, size - r - 2, 2)
        d = np.hypot(xx - cx, yy - cy)
        inside = d <= r
        img[inside] += (((xx - cx) + (yy - cy)) / r * rng.uniform(18, 35))[inside]
        ys, xs = np.nonzero(inside)
    elif DEFECTS[kind] == "hole":  # a small dark round pit, from 2 px
        r = rng.uniform(1.5, 5)
        cx, cy = rng.uniform(r + 2, size - r - 2, 2)
        inside = np.hypot(xx - cx, yy - cy) <= r
        img[inside] = rng.uniform(10, 40)
        ys, xs = np.nonzero(inside)
    else:  # a stain: a soft irregular blotch of low contrast
        r = rng.uniform(7, 16)
        cx, cy = rng.uniform(r + 2, size - r - 2, 2)
        blob = gaussian_filter(rng.random((size, size)), 3) > 0.5
        inside = (np.hypot(xx - cx, yy - cy) <= r) & blob
        if inside.sum() < 8:
            inside = np.hypot(xx - cx, yy - cy) <= r / 2
        soft = gaussian_filter(inside.astype(float), 1.5)
        img += sign * rng.uniform(15, 30) * soft
        ys, xs = np.nonzero(inside)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def inspection_images(folder: Path, n: int, seed: int, size: int = 128):
    """``n`` surfaces with 0 to 3 defects each, and look-alikes that are not defects (dust
    specks, a faint tool mark): (paths, objects as (kind, x0, y0, x1, y1))."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, objects = [], []
    for i in range(n):
        img = surface(rng, size)
        for _ in range(int(rng.integers(0, 6))):  # dust: one or two px specks
            x, y = rng.integers(1, size - 2, 2)
            img[y : y + rng.integers(1, 3), x : x + rng.integers(1, 3)] += rng.uniform(-30, 30)
        if rng.random() < 0.3:  # a tool mark: a long faint line across the part
            row = int(rng.integers(0, size))
            img[row, :] += rng.uniform(-12, 12)
        objs = [(k, *stamp(img, k, rng)) for k in rng.integers(0, len(DEFECTS), rng.integers(0, 4))]
        path = folder / f"part_{i:04d}.png"
        gray = np.clip(img, 0, 255).astype(np.uint8)
        Image.fromarray(np.stack([gray] * 3, -1)).save(path)
        paths.append(path)
        objects.append([(int(k), *box) for k, *box in objs])
    return paths, objects


def _truth_frame(objects: list, image_ids) -> pd.DataFrame:
    rows = [
        {"image_id": i, "label": DEFECTS[k], "x0": x0, "y0": y0, "x1": x1, "y1": y1}
        for i, objs in zip(image_ids, objects)
        for k, x0, y0, x1, y1 in objs
    ]
    return pd.DataFrame(rows, columns=["image_id", "label", "x0", "y0", "x1", "y1"])


def detection_map(run, paths: list[Path], objects: list) -> float:
    """mAP@0.5 of ``run`` on held-out images (COCOeval's rule, hx.evaluate_detections)."""
    preds = run.predict_raw(paths)
    rows = [
        {
            "image_id": i,
            "label": run.labels[int(k)],
            "x0": b[0],
            "y0": b[1],
            "x1": b[2],
            "y1": b[3],
            "score": float(s),
        }
        for i, p in enumerate(preds)
        for b, k, s in zip(p["boxes"], p["labels"], p["scores"])
    ]
    pred = pd.DataFrame(rows, columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    report = hx.evaluate_detections(
        _truth_frame(objects, range(len(paths))),
        pred,
        image_ids=range(len(paths)),
        labels=list(DEFECTS),
    )
    return float(report.map50)


def detection_curve(
    train: tuple[list[Path], list],
    test: tuple[list[Path], list],
    strategy: str,
    seed: int,
    root: Path,
    *,
    start: int = 30,
    per_round: int = 30,
    rounds: int = 3,
    epochs: int = 12,
    image_size: int = 128,
) -> dict:
    """One detection strategy, one seed: cumulative seconds → held-out mAP@0.5. Labeling by
    hand draws every object (7 s a box); a review checks the image (1.6 s) and verifies,
    adjusts, relabels or deletes each proposed box and adds what the model missed."""
    paths, objects = train
    ds = hx.Dataset.create(root / f"det_{strategy}_{seed}", task="detection", labels=list(DEFECTS))
    ids = ds.add_images(paths).added
    truth = dict(zip(ids, objects))
    rng = np.random.default_rng(seed)

    def label_by_hand(sid: int) -> None:
        ds.delete_annotations(ds.annotations_of(sid).ann_id.tolist())
        for k, x0, y0, x1, y1 in truth[sid]:
            ds.add_box(sid, DEFECTS[k], x0, y0, x1, y1)
        ds.set_status(sid, "labeled")

    seen = [int(s) for s in rng.choice(ids, start, replace=False)]
    bill = review_time.draw_boxes(sum(len(truth[s]) for s in seen))
    for s in seen:
        label_by_hand(s)
    curve, people = {}, {}
    plan = manual_sizes(start, len(ids), rounds + 1) if strategy == "manual" else None
    for r in range(rounds + 1):
        run = hx.train(
            ds,
            epochs=epochs,
            batch_size=8,
            image_size=image_size,
            seed=seed,
            progress=False,
            val_fraction=0,
            weights=None,
            weights_backbone=None,
        )
        curve[bill.seconds] = detection_map(run, *test)
        people[bill.seconds] = len(seen)
        if r == rounds or not len(ds.query(status="unlabeled")):
            break
        if strategy == "manual":
            unl = ds.query(status="unlabeled").sample_id.to_numpy()
            pick = [
                int(s)
                for s in rng.choice(unl, min(plan[r + 1] - len(seen), len(unl)), replace=False)
            ]
            bill = bill + review_time.draw_boxes(sum(len(truth[s]) for s in pick))
        else:
            hx.auto_label(ds, run, progress=False)
            pick = hx.next_batch(ds, per_round, seed=seed).sample_id.astype(int).tolist()
            for s in pick:
                shown = ds.annotations_of(s)
                objs = np.array([o[1:] for o in truth[s]], float).reshape(-1, 4)
                bill = bill + review_time.review_boxes(
                    shown[["x0", "y0", "x1", "y1"]].to_numpy(float),
                    shown["label"].to_numpy(),
                    objs,
                    [DEFECTS[o[0]] for o in truth[s]],
                )
            waiting = ds.query(status="to_confirm").sample_id.astype(int)
            ds.set_status([s for s in waiting if s not in set(pick)], "unlabeled")
        for s in pick:
            label_by_hand(s)  # what the person leaves: the image's true objects
        seen += pick
    return {"curve": pd.Series(curve), "people": pd.Series(people), "seen": seen, "bill": bill}


def detection(args, root: Path) -> pd.DataFrame:
    runs: dict[str, list[dict]] = {"manual": [], "loop": []}
    t0 = time.perf_counter()
    test = inspection_images(root / "parts_test", args.det_test, seed=10_000)
    for seed in range(args.det_seeds):
        train = inspection_images(root / f"parts_{seed}", args.det_pool, seed=seed)
        for s in runs:
            out = detection_curve(
                train,
                test,
                s,
                seed,
                root / "runs",
                rounds=args.det_rounds,
                per_round=args.det_per_round,
                epochs=args.det_epochs,
            )
            runs[s].append(out)
            print(
                f"  seed {seed} {s:>18}: "
                + " ".join(f"{k:.0f}s:{v:.3f}" for k, v in out["curve"].items()),
                flush=True,
            )
    return _summary(runs, f"held-out mAP@0.5 on {args.det_test} inspection images", t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--det-seeds", type=int, default=3)
    ap.add_argument("--det-pool", type=int, default=240)
    ap.add_argument("--det-test", type=int, default=100)
    ap.add_argument("--det-rounds", type=int, default=3)
    ap.add_argument("--det-per-round", type=int, default=30)
    ap.add_argument("--det-epochs", type=int, default=12)
    ap.add_argument("--only", choices=("classification", "detection"))
    ap.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=list(STRATEGIES),
        help="classification strategies (manual always runs: the ratios are to it)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hardex-loop-") as tmp:
        if args.only in (None, "classification"):
            classification(args, Path(tmp))
        if args.only in (None, "detection"):
            detection(args, Path(tmp))


if __name__ == "__main__":
    main()
