"""Do hard examples earn the reviewer's time? Selection strategies measured on held-out data.

Digits (scikit-learn's 8×8 handwritten digits, upscaled to 32×32 images): a fixed test set of
500 images that is never selected and never trained on; the other 1,297 images are the pool.
Each seed starts from 5 labels per class (the same start for every strategy), trains a
resnet18 from scratch with ``hx.train``, measures test accuracy, and adds 30 labels per round
chosen by the strategy:

- ``random``: 30 unlabeled images at random;
- ``hard score`` (the old way): the 30 highest ``hard_score`` after ``hx.auto_label``;
- ``margin``: the 30 smallest top-2 margins;
- ``next_batch`` (the new way): ``hx.next_batch`` — uncertainty plus diversity on the stored
  embeddings plus class balance (see ``hardex_nb.hard.select_batch``).

Printed: mean ± std test accuracy per label count, and the label-efficiency ratio: the labels
a strategy needs to reach random selection's final accuracy (linear interpolation along its
curve), divided by random's final label count. Then the ``hard`` flag at the first round:
its precision (flagged auto-labels that are really wrong) and recall (wrong auto-labels
flagged) on the pool, which the model has not trained on.

    python bench/bench_triage.py [--seeds 5] [--rounds 8] [--epochs 15]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import hardex_nb as hx
from hardex_nb import hard

STRATEGIES = ("random", "hard score", "margin", "next_batch")


def digits_images(folder: Path) -> tuple[list[Path], np.ndarray]:
    """scikit-learn's digits as 32×32 PNG files: (paths, classes)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, pixels in enumerate(digits.images):
        path = folder / f"digit_{i:04d}.png"
        if not path.exists():
            img = Image.fromarray((pixels / 16 * 255).astype(np.uint8))
            img.resize((32, 32), Image.NEAREST).convert("RGB").save(path)
        paths.append(path)
    return paths, digits.target.astype(np.int64)


def split(n: int, n_test: int, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """A fixed held-out test set and the pool: (test indices, pool indices)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_test]), np.sort(order[n_test:])


def efficiency(curve: pd.Series, target: float) -> float:
    """Labels a curve (label count → accuracy) needs to reach ``target``, interpolating
    linearly between its points; NaN when it never does."""
    xs, ys = curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float)
    if ys[0] >= target:
        return xs[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y1 >= target:
            return x0 + (x1 - x0) * (target - y0) / max(y1 - y0, 1e-12)
    return float("nan")


def flag_quality(flagged: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    """Precision and recall of a flag against the really wrong auto-labels."""
    hits = int((flagged & wrong).sum())
    return hits / max(int(flagged.sum()), 1), hits / max(int(wrong.sum()), 1)


def start_dataset(
    paths: list[Path], y: np.ndarray, pool: np.ndarray, folder: Path, seed: int, per_class: int
):
    """A classification dataset of the pool's images with ``per_class`` random hand labels
    per class (the same start for every strategy of a seed): (dataset, class names, sample
    ids in pool order, the started sample ids, the seed's generator, drawn on from here)."""
    names = [str(c) for c in range(int(y.max()) + 1)]
    ds = hx.Dataset.create(folder, task="classification", labels=names)
    ids = ds.add_images([paths[i] for i in pool]).added
    rng = np.random.default_rng(seed)
    start = np.concatenate(
        [
            rng.choice(np.flatnonzero(y[pool] == c), per_class, replace=False)
            for c in range(len(names))
        ]
    )
    started = [ids[j] for j in start]
    for j, sid in zip(start, started):
        ds.set_label(sid, names[y[pool[j]]])
    return ds, names, ids, started, rng


def learning_curve(
    paths: list[Path],
    y: np.ndarray,
    test: np.ndarray,
    pool: np.ndarray,
    strategy: str,
    seed: int,
    root: Path,
    *,
    start_per_class: int = 5,
    per_round: int = 30,
    rounds: int = 4,
    epochs: int = 15,
) -> dict:
    """One strategy, one seed: test accuracy per label count, the flag's quality at the
    start, and every image chosen (so a caller can check none came from the test set)."""
    ds, names, ids, _, rng = start_dataset(
        paths, y, pool, root / f"{strategy}_{seed}".replace(" ", "_"), seed, start_per_class
    )
    index_of = dict(zip(ids, pool.tolist()))
    test_paths = [paths[i] for i in test]
    curve, chosen, flag = {}, [], (np.nan, np.nan, np.nan)
    for r in range(rounds + 1):
        run = hx.train(
            ds,
            epochs=epochs,
            batch_size=16,
            image_size=32,
            seed=seed,
            progress=False,
            val_fraction=0,
        )
        labeled = int((ds.samples["status"] == "labeled").sum())
        curve[labeled] = float((run.predict_proba(test_paths).argmax(1) == y[test]).mean())
        if r == rounds:
            break
        if strategy == "random":
            unl = ds.query(status="unlabeled").sample_id.to_numpy()
            pick = rng.choice(unl, per_round, replace=False).tolist()
        else:
            result = hx.auto_label(ds, run, progress=False)
            table = result.table.set_index("sample_id")
            if r == 0:
                truth = np.array([y[index_of[s]] for s in table.index])
                wrong = table["label"].astype(int).to_numpy() != truth
                p, rec = flag_quality(table["hard"].to_numpy(bool), wrong)
                flag = (p, rec, float(table["hard"].mean()))
            if strategy == "hard score":
                pick = (
                    table["score"]
                    .sort_values(ascending=False, kind="stable")
                    .index[:per_round]
                    .tolist()
                )
            elif strategy == "margin":
                pick = table["margin"].sort_values(kind="stable").index[:per_round].tolist()
            else:
                rule = "kcenter" if strategy == "kcenter" else "diverse"
                pick = hx.next_batch(ds, per_round, strategy=rule, seed=seed).sample_id.tolist()
            ds.set_status(ds.query(status="to_confirm").sample_id, "unlabeled")
        for s in pick:
            ds.set_label(int(s), names[y[index_of[int(s)]]])
        chosen += [index_of[int(s)] for s in pick]
    return {"curve": pd.Series(curve), "chosen": chosen, "flag": flag}


def classification(args, root: Path) -> None:
    paths, y = digits_images(root / "digits")
    test, pool = split(len(paths), args.test)
    curves: dict[str, list[pd.Series]] = {s: [] for s in args.strategies}
    flags: dict[str, list] = {s: [] for s in args.strategies}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        for s in args.strategies:
            out = learning_curve(
                paths, y, test, pool, s, seed, root / "runs", rounds=args.rounds, epochs=args.epochs
            )
            assert not set(out["chosen"]) & set(test.tolist()), "a test image was selected"
            curves[s].append(out["curve"])
            flags[s].append(out["flag"])
            print(
                f"  seed {seed} {s:>10}: "
                + " ".join(f"{k}:{v:.3f}" for k, v in out["curve"].items()),
                flush=True,
            )
    table = pd.DataFrame(
        {
            s: [
                f"{np.mean(v):.3f} ± {np.std(v):.3f}"
                for v in np.array([c.to_numpy() for c in cs]).T
            ]
            for s, cs in curves.items()
        },
        index=pd.Index(curves[args.strategies[0]][0].index, name="labels"),
    )
    print(f"\ntest accuracy on {args.test} held-out digits, mean ± std over {args.seeds} seeds")
    print(table.to_string())
    rows = []
    for s, cs in curves.items():
        ratios = []
        for seed, c in enumerate(cs):
            rnd = curves["random"][seed]
            ratios.append(efficiency(c, float(rnd.iloc[-1])) / rnd.index[-1])
        f = np.array(flags[s], dtype=float)
        rows.append(
            {
                "strategy": s,
                "labels to random's final": f"{np.nanmean(ratios) * curves['random'][0].index[-1]:.0f}",
                "ratio": f"{np.nanmean(ratios):.2f} ± {np.nanstd(ratios):.2f}",
                "never reached": int(np.isnan(ratios).sum()),
                "flag precision": f"{np.nanmean(f[:, 0]):.2f}" if s != "random" else "",
                "flag recall": f"{np.nanmean(f[:, 1]):.2f}" if s != "random" else "",
                "flagged share": f"{np.nanmean(f[:, 2]):.2f}" if s != "random" else "",
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"({time.perf_counter() - t0:.0f} s)")


# -- detection: planted label errors --------------------------------------------------------
SHAPES = ("square", "disc")
ERRORS = ("missing box", "swapped label", "shifted box", "spurious box")


def scenes(folder: Path, n: int, seed: int, size: int = 96) -> tuple[list[Path], list[list]]:
    """Squares and discs on texture (notebook 02's generated set): (paths, objects)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths, objects = [], []
    for i in range(n):
        img = Image.fromarray(rng.integers(20, 90, (size, size, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        objs = []
        for _ in range(int(rng.integers(1, 4))):
            w, h = (int(v) for v in rng.integers(18, 34, 2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            k = int(rng.integers(0, 2))
            (draw.rectangle if k == 0 else draw.ellipse)(
                [x, y, x + w, y + h], fill=(235, 200, 40) if k == 0 else (60, 200, 235)
            )
            objs.append((k, x, y, x + w, y + h))
        path = folder / f"scene_{i:03d}.png"
        img.save(path)
        paths.append(path)
        objects.append(objs)
    return paths, objects


def plant(objects: list[list], share: float, seed: int, size: int = 96):
    """One planted error in ``share`` of the images: (given boxes per image, {image: (kind,
    box where the error is)})."""
    rng = np.random.default_rng(seed)
    given, planted = [], {}
    for i, objs in enumerate(objects):
        objs = [list(o) for o in objs]
        if rng.random() < share:
            kind = ERRORS[int(rng.integers(0, len(ERRORS)))]
            j = int(rng.integers(0, len(objs)))
            if kind == "missing box":
                planted[i] = (kind, objs.pop(j)[1:])
            elif kind == "swapped label":
                objs[j][0] = 1 - objs[j][0]
                planted[i] = (kind, objs[j][1:])
            elif kind == "shifted box":
                w = objs[j][3] - objs[j][1]
                dx = int(np.ceil(0.6 * w))  # IoU with the object about 0.25
                dx = dx if objs[j][3] + dx <= size else -dx
                objs[j][1] += dx
                objs[j][3] += dx
                planted[i] = (kind, objs[j][1:])
            else:
                w, h = (int(v) for v in rng.integers(18, 34, 2))
                x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                objs.append([int(rng.integers(0, 2)), x, y, x + w, y + h])
                planted[i] = (kind, objs[-1][1:])
        given.append(objs)
    return given, planted


def precision_at(scores: np.ndarray, truth: set, k: int) -> float:
    """Share of the k highest scores that are in ``truth``."""
    return len(set(np.argsort(-scores, kind="stable")[:k].tolist()) & truth) / max(k, 1)


def detection(args, root: Path) -> None:
    from cleanlab.object_detection.rank import get_label_quality_scores

    from hardex_nb.evaluation import box_iou

    rows, found_rows = [], []
    for seed in range(args.det_seeds):
        t0 = time.perf_counter()
        train_paths, train_objs = scenes(root / f"det{seed}" / "train", args.det_train, seed)
        held_paths, held_objs = scenes(root / f"det{seed}" / "held", args.det_held, 1000 + seed)
        ds = hx.Dataset.create(root / f"det{seed}" / "ds", task="detection", labels=list(SHAPES))
        for sid, objs in zip(ds.add_images(train_paths).added, train_objs):
            for k, *box in objs:
                ds.add_box(sid, SHAPES[k], *box)
        run = hx.train(
            ds,
            epochs=args.det_epochs,
            batch_size=8,
            image_size=96,
            lr=1e-3,
            seed=seed,
            progress=False,
            val_fraction=0,
        )
        given, planted = plant(held_objs, 0.3, seed)
        # the model never saw these images: its predictions are out of sample
        preds = run.predict_raw(held_paths)
        flipped = run.predict_raw(held_paths, flip=True)
        wanted = [
            {
                "boxes": np.array([o[1:] for o in g], float).reshape(-1, 4),
                "labels": np.array([o[0] for o in g]),
            }
            for g in given
        ]
        boxes, images = hard.detection_label_issues(wanted, preds)
        _, old = hard.detection_hardness(preds, [flipped])
        to_cleanlab = [
            np.array(
                [
                    np.c_[p["boxes"][p["labels"] == k], p["scores"][p["labels"] == k]].reshape(
                        -1, 5
                    )
                    for k in range(len(SHAPES))
                ],
                dtype=object,
            )
            for p in preds
        ]
        quality = get_label_quality_scores(
            [{"bboxes": w["boxes"], "labels": w["labels"]} for w in wanted],
            to_cleanlab,
            verbose=False,
        )
        truth, k = set(planted), len(planted)
        rows.append(
            {
                "seed": seed,
                "planted": k,
                "hardex label issues P@k": precision_at(images["score"].to_numpy(), truth, k),
                "cleanlab P@k": precision_at(1 - quality, truth, k),
                "hard score (predictions only) P@k": precision_at(
                    old["score"].to_numpy(), truth, k
                ),
                "flagged": int(images["hard"].sum()),
                "flag precision": float(
                    images["hard"][list(truth)].sum() / max(images["hard"].sum(), 1)
                ),
                "flag recall": float(images["hard"][list(truth)].mean()),
                "s": time.perf_counter() - t0,
            }
        )
        # per kind: is a box flagged where the error was planted?
        for i, (kind, where) in planted.items():
            flagged = boxes[(boxes["image"] == i) & (boxes["hard_type"] != "none")]
            hit = (
                len(flagged)
                and box_iou(
                    np.array([where], float), flagged[["x0", "y0", "x1", "y1"]].to_numpy()
                ).max()
                >= 0.3
            )
            found_rows.append(
                {
                    "kind": kind,
                    "found": bool(hit),
                    "types": "+".join(sorted(set(flagged["hard_type"]))),
                }
            )
    table = pd.DataFrame(rows)
    print(
        f"\ndetection: {args.det_held} held-out images per seed, one planted error in ~30% of them;"
    )
    print(
        "P@k = precision among the k images ranked worst, k = number of images with a planted error"
    )
    print(table.round(2).to_string(index=False))
    print(table.drop(columns=["seed"]).mean().round(2).to_string())
    found = pd.DataFrame(found_rows)
    print("\nplanted errors with a flagged box at their place (false_positive / missed):")
    print(found.groupby("kind")["found"].agg(["mean", "count"]).round(2).to_string())


# -- mislabels: out-of-sample probabilities from hx.find_mislabels's folds --------------------
def mislabels(args, root: Path) -> None:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores as class_quality

    paths, y = digits_images(root / "digits")
    _, pool = split(len(paths), args.test)
    rows = []
    for seed in range(args.det_seeds):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(pool, args.mislabel_images, replace=False)
        noisy = y[chosen].copy()
        flip = rng.choice(len(chosen), int(0.1 * len(chosen)), replace=False)
        noisy[flip] = (noisy[flip] + rng.integers(1, 10, len(flip))) % 10
        names = [str(c) for c in range(10)]
        ds = hx.Dataset.create(root / f"mis{seed}", task="classification", labels=names)
        ids = ds.add_images([paths[i] for i in chosen]).added
        for c in range(10):
            ds.set_label([s for s, v in zip(ids, noisy) if v == c], names[c])
        t0 = time.perf_counter()
        result = hx.find_mislabels(
            ds, folds=5, epochs=args.epochs, image_size=32, seed=seed, progress=False
        )
        seconds = time.perf_counter() - t0
        table = result.table.set_index("sample_id").loc[ids]
        probs = table[[f"p_{n}" for n in names]].to_numpy()
        given = table["label"].astype(int).to_numpy()
        truth, k = set(flip.tolist()), len(flip)
        ours = table["flagged"].to_numpy()
        t1 = time.perf_counter()
        theirs = find_label_issues(given, probs)
        theirs_s = time.perf_counter() - t1
        for method, mask, ranking in (
            ("hardex mislabel_scores", ours, table["score"].to_numpy()),
            ("cleanlab find_label_issues", theirs, 1 - class_quality(given, probs)),
        ):
            hits = int(mask[list(truth)].sum())
            rows.append(
                {
                    "seed": seed,
                    "method": method,
                    "flagged": int(mask.sum()),
                    "precision": hits / max(int(mask.sum()), 1),
                    "recall": hits / k,
                    "P@k": precision_at(ranking, truth, k),
                    "s": seconds if method.startswith("hardex") else theirs_s,
                }
            )
    table = pd.DataFrame(rows)
    print(
        f"\nmislabels: {args.mislabel_images} labeled digits, 10% of labels flipped, the same "
        "5-fold out-of-sample probabilities (hx.find_mislabels) for both methods"
    )
    print(
        table.groupby("method")[["flagged", "precision", "recall", "P@k", "s"]]
        .mean()
        .round(3)
        .to_string()
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--det-seeds", type=int, default=3)
    ap.add_argument("--det-train", type=int, default=120)
    ap.add_argument("--det-held", type=int, default=100)
    ap.add_argument("--det-epochs", type=int, default=12)
    ap.add_argument("--mislabel-images", type=int, default=600)
    ap.add_argument("--only", choices=("classification", "detection", "mislabels"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hardex-triage-") as tmp:
        if args.only in (None, "classification"):
            classification(args, Path(tmp))
        if args.only in (None, "detection"):
            detection(args, Path(tmp))
        if args.only in (None, "mislabels"):
            mislabels(args, Path(tmp))


if __name__ == "__main__":
    main()
