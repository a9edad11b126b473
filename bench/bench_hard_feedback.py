"""Do confirmed hard examples improve the next model? hx.train's ``hard_weight`` rule, measured
on held-out images.

Bars images (a vertical or horizontal bar on noise, 40 px); a minority of them are faint
(low-contrast bars), the examples a reviewer would have confirmed as hard. The training set
has 80 labeled images, 12 of them faint and flagged hard; the held-out test set has 400
images (half faint) never trained on. Each setting trains the same recipe over several
seeds and prints test accuracy, overall and on faint images, mean ± std.

    python bench/bench_hard_feedback.py [--seeds 5] [--epochs 8]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import hardex_nb as hx


def bars(folder: Path, n: int, faint_share: float, seed: int) -> list[tuple[Path, str, bool]]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        c = "vh"[i % 2]
        faint = rng.random() < faint_share
        a = np.full((40, 40, 3), 30, np.int64)
        level = 62 if faint else 220
        if c == "v":
            a[5:35, 17:23] = level
        else:
            a[17:23, 5:35] = level
        a = np.clip(a + rng.integers(0, 40, a.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:04d}.png"
        Image.fromarray(a).save(path)
        out.append((path, c, faint))
    return out


def run(seed: int, epochs: int, hard_weight: float, root: Path) -> dict:
    train_set = bars(root / f"train{seed}", 80, 0.15, seed)
    test_set = bars(root / "test", 400, 0.5, 10_000)
    ds = hx.Dataset.create(
        root / f"ds{seed}_{hard_weight}", task="classification", labels=["v", "h"]
    )
    ids = ds.add_images([p for p, _, _ in train_set]).added
    for sid, (_, label, faint) in zip(ids, train_set):
        ds.set_label(sid, label)
    ds.mark_hard([sid for sid, (_, _, faint) in zip(ids, train_set) if faint], reasons=[1])
    model = hx.train(
        ds,
        epochs=epochs,
        batch_size=8,
        image_size=32,
        weights=None,
        seed=seed,
        val_fraction=0,
        hard_weight=hard_weight,
        progress=False,
    )
    pred = model.predict([p for p, _, _ in test_set])["label"].to_numpy()
    truth = np.array([c for _, c, _ in test_set])
    faint = np.array([f for _, _, f in test_set])
    return {
        "accuracy": float((pred == truth).mean()),
        "faint accuracy": float((pred[faint] == truth[faint]).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for weight in (1.0, 2.0, 3.0):
            for seed in range(args.seeds):
                rows.append(
                    {
                        "hard_weight": weight,
                        "seed": seed,
                        **run(seed, args.epochs, weight, Path(tmp)),
                    }
                )
    frame = pd.DataFrame(rows)
    table = frame.groupby("hard_weight")[["accuracy", "faint accuracy"]]
    summary = table.mean().round(3).astype(str) + " ± " + table.std().round(3).astype(str)
    print(
        f"80 labeled (12 faint, flagged hard), 400 held-out (200 faint), {args.seeds} seeds, "
        f"{args.epochs} epochs"
    )
    print(summary.to_string())
    print("\nfaint accuracy per seed")
    print(
        frame.pivot(index="seed", columns="hard_weight", values="faint accuracy")
        .round(3)
        .to_string()
    )


if __name__ == "__main__":
    main()
