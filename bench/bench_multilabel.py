"""Multi-label: does find_mislabels find the wrong labels, next to cleanlab, and does
auto-label's hard flag point at the images whose proposed labels are wrong?

Data: generated images of any of a red, a green and a blue square (none to all three) on
grey noise, 48 px. Per seed: 240 labeled images, of which 10% of the (image, label)
decisions were flipped (a label taken away or one added), and 160 unlabeled pool images
never trained on. ``hx.find_mislabels`` trains a resnet18 from scratch on 3 folds; its
out-of-fold probabilities (the table's ``p_<label>`` columns) also go to cleanlab's
``multilabel_classification.filter.find_label_issues`` and ``rank.get_label_quality_scores``,
so both judge the same probabilities. Printed: precision and recall of the flagged images
against the images with a flipped decision, and the ranking's AUROC. Then ``hx.train`` on
the noisy labels and ``hx.auto_label`` on the pool: held-out mAP, exact match, Hamming loss,
and the ``hard`` flag's precision (flagged images whose proposed label set is wrong) and
recall (wrong ones flagged).

    python bench/bench_multilabel.py [--seeds 3] [--epochs 10]
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
from hardex_nb.evaluation import evaluate_multilabel

NAMES = ["red", "green", "blue"]


def squares(folder: Path, n: int, rng) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    truth = {}
    for i in range(n):
        a = np.full((48, 48, 3), 30, np.uint8)
        has = rng.random(3) < 0.45
        for k in np.flatnonzero(has):
            x, y = rng.integers(0, 32, 2)
            a[y : y + 16, x : x + 16] = 0
            a[y : y + 16, x : x + 16, k] = 230
        a = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"{i:04d}.png")
        truth[f"{i:04d}.png"] = has
    return truth


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    n1, n0 = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1))


def one_seed(seed: int, epochs: int) -> dict:
    from cleanlab.multilabel_classification import filter as cl_filter
    from cleanlab.multilabel_classification import rank as cl_rank

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        truth = squares(Path(tmp) / "img", 400, rng)
        ds = hx.Dataset.create(Path(tmp) / "ds", task="multilabel", labels=NAMES)
        ids = ds.add_images(Path(tmp) / "img").added
        names = ds.samples["name"].tolist()
        given = np.array([truth[n] for n in names[:240]])
        flip = rng.random(given.shape) < 0.10
        noisy = given ^ flip
        for sid, row in zip(ids[:240], noisy):
            ds.set_labels(sid, [NAMES[k] for k in np.flatnonzero(row)])
        wrong = flip.any(axis=1)
        t = time.perf_counter()
        found = hx.find_mislabels(ds, folds=3, epochs=epochs, image_size=32, progress=False)
        ours_s = time.perf_counter() - t
        table = found.table.set_index("sample_id").loc[ids[:240]]
        probs = table[[f"p_{n}" for n in NAMES]].to_numpy()
        flagged = table["flagged"].to_numpy()
        labels = [list(np.flatnonzero(row)) for row in noisy]
        t = time.perf_counter()
        cl_mask = cl_filter.find_label_issues(labels, probs)
        cl_score = 1 - cl_rank.get_label_quality_scores(labels, probs)
        cl_s = time.perf_counter() - t
        out = {
            "seed": seed,
            "ours_P": (flagged & wrong).sum() / max(flagged.sum(), 1),
            "ours_R": (flagged & wrong).sum() / max(wrong.sum(), 1),
            "ours_AUROC": auroc(table["score"].to_numpy(), wrong),
            "cleanlab_P": (cl_mask & wrong).sum() / max(cl_mask.sum(), 1),
            "cleanlab_R": (cl_mask & wrong).sum() / max(wrong.sum(), 1),
            "cleanlab_AUROC": auroc(cl_score, wrong),
            "ours_flagged": int(flagged.sum()),
            "cleanlab_flagged": int(cl_mask.sum()),
            "wrong": int(wrong.sum()),
            "scoring_s_cleanlab": cl_s,
            "folds_s": ours_s,
        }
        # train on the noisy labels (the images find_mislabels flagged went to review:
        # put them back as labeled for this part), then auto-label the held-out pool
        ds.set_status(ids[:240], "labeled")
        ds.set_split(ids[200:240], "val")
        run = hx.train(ds, epochs=epochs, image_size=32, progress=False)
        pool = ids[240:]
        y = np.array([truth[n] for n in names[240:]])
        report = evaluate_multilabel(
            y, run.predict_proba(pool), label_names=NAMES, thresholds=run.thresholds
        )
        hx.auto_label(ds, run, progress=False)
        shown = ds.samples.set_index("sample_id").loc[pool]
        proposed = np.array([[n in labels for n in NAMES] for labels in shown["labels"]])
        bad = (proposed != y).any(axis=1)
        hard = shown["hard"].to_numpy()
        out |= {
            "pool_mAP": report.map,
            "pool_exact": report.exact_match,
            "pool_hamming": report.hamming_loss,
            "flag_P": (hard & bad).sum() / max(hard.sum(), 1),
            "flag_R": (hard & bad).sum() / max(bad.sum(), 1),
            "pool_wrong_share": bad.mean(),
        }
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    rows = pd.DataFrame([one_seed(s, args.epochs) for s in range(args.seeds)])
    pd.set_option("display.width", 200)
    print(rows.round(3).to_string(index=False))
    mean, std = rows.mean(numeric_only=True), rows.std(numeric_only=True)
    print("\nmean ± std over seeds:")
    for col in rows.columns.drop("seed"):
        print(f"  {col:>20}: {mean[col]:.3f} ± {std[col]:.3f}")


if __name__ == "__main__":
    main()
