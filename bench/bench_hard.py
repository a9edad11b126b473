"""Mislabel detection quality and speed: hardex_nb.hard.mislabel_scores vs cleanlab.

load_digits with 10% of the labels flipped (seeded), out-of-sample probabilities from
5-fold cross-validation; precision and recall at k = number of flipped labels for each
ranking, then seconds for 1,000,000 × 100 probabilities.

    python bench/bench_hard.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hardex_nb.hard import mislabel_scores


def flipped_digits(seed: int = 0, share: float = 0.1):
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(y), int(share * len(y)), replace=False)
    noisy = y.copy()
    noisy[flip] = (noisy[flip] + rng.integers(1, 10, len(flip))) % 10
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probs = cross_val_predict(model, X, noisy, cv=5, method="predict_proba")
    return noisy, probs, set(flip.tolist())


def precision_recall_at_k(order: np.ndarray, truth: set, k: int) -> tuple[float, float]:
    hits = len(set(order[:k].tolist()) & truth)
    return hits / k, hits / len(truth)


def random_probs(rows: int, k: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((rows, k), dtype=np.float32)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return rng.integers(0, k, rows), probs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    labels, probs, flipped = flipped_digits()
    k = len(flipped)
    rows = []
    t0 = time.perf_counter()
    ours = mislabel_scores(labels, probs)
    t_ours = time.perf_counter() - t0
    rows.append(
        (
            "hardex_nb mislabel_scores",
            *precision_recall_at_k(np.argsort(-ours, kind="stable"), flipped, k),
            t_ours,
        )
    )
    try:
        from cleanlab.rank import get_label_quality_scores

        for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            t0 = time.perf_counter()
            q = get_label_quality_scores(labels, probs, method=method)
            elapsed = time.perf_counter() - t0
            rows.append(
                (
                    f"cleanlab {method}",
                    *precision_recall_at_k(np.argsort(q, kind="stable"), flipped, k),
                    elapsed,
                )
            )
    except ImportError:
        print("(cleanlab not installed: pip install cleanlab)")
    print(f"load_digits: {len(labels)} images, {k} labels flipped; precision/recall at k={k}")
    table = pd.DataFrame(rows, columns=["ranking", "precision@k", "recall@k", "seconds"])
    print(table.to_string(index=False, float_format="{:.4f}".format))

    big_labels, big_probs = random_probs(args.rows)
    timing = []
    t0 = time.perf_counter()
    mislabel_scores(big_labels, big_probs)
    timing.append(("hardex_nb mislabel_scores", time.perf_counter() - t0))
    try:
        from cleanlab.rank import get_label_quality_scores

        for method in ("self_confidence", "normalized_margin"):
            t0 = time.perf_counter()
            get_label_quality_scores(big_labels, big_probs, method=method)
            timing.append((f"cleanlab {method}", time.perf_counter() - t0))
    except ImportError:
        pass
    print(f"\n{args.rows:,} × 100 probabilities")
    print(
        pd.DataFrame(timing, columns=["ranking", "seconds"]).to_string(
            index=False, float_format="{:.3f}".format
        )
    )


if __name__ == "__main__":
    main()
