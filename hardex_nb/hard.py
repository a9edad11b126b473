"""Hard-example scores and reasons: pure NumPy functions (no Dataset inside).

Reason codes (DESIGN.md): 0 no target found, 1 low confidence, 2 disagrees with
training-set clusters, 3 far from same-class training data, 4 inconsistent across augmented
views, 5 resolution unlike the training set; added here: 100 marked hard by hand, 101
suspected mislabel.

The public functions validate their input; the private ``_compute_*`` ones trust it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ValidationError
from .evaluation import box_iou
from .reasons import (
    Reason,
    encode_reasons,
    parse_reasons,
)

(
    NO_TARGET,
    LOW_CONFIDENCE,
    CLUSTER_DISAGREES,
    FAR_FROM_CLASS,
    INCONSISTENT,
    RESOLUTION,
    MARKED_BY_HAND,
    SUSPECTED_MISLABEL,
) = tuple(Reason)


def _probs(pred_probs, name: str = "pred_probs") -> np.ndarray:
    """(N, K) probabilities, float32 kept as is (no copy of a large array)."""
    p = np.asarray(pred_probs)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValidationError(f"{name}: expected shape (N, K) with K ≥ 2, got {p.shape}.")
    if not len(p):
        return p
    sums = p.sum(axis=1, dtype=np.float64)  # NaN or inf anywhere shows in its row's sum
    if not np.isfinite(sums).all() or p.min() < 0:
        raise ValidationError(f"{name}: probabilities must be finite and non-negative.")
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > 1e-3:
        raise ValidationError(
            f"{name}: each row must sum to 1 (row {worst} sums to "
            f"{sums[worst]:.4f}); apply softmax first."
        )
    return p


def _labels(labels, n: int, k: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValidationError(
            f"labels: expected {n} integer class indices, got shape {y.shape} dtype {y.dtype}."
        )
    if len(y) and (y.min() < 0 or y.max() >= k):
        raise ValidationError(f"labels: class indices must lie in [0, {k}).")
    return y.astype(np.int64)


# -- classification ---------------------------------------------------------------------------
def mislabel_scores(labels: Sequence[int] | np.ndarray, pred_probs) -> np.ndarray:
    """``(N,)`` scores in [0, 1]; higher = more likely mislabeled.

    Confident learning's per-class thresholds applied to self-confidence: each class j gets
    a threshold t_j, the mean out-of-sample probability of j over the samples labeled j.
    Probabilities are divided by their class threshold and renormalized (this removes each
    class's over- or under-confidence); the score is one minus the adjusted probability of
    the given label. Costs one gather and one matrix-vector product.

    Parameters
    ----------
    labels : (N,) int
        Given labels.
    pred_probs : (N, K) float
        Out-of-sample predicted probabilities (e.g. from cross-validation).
    """
    p = _probs(pred_probs)
    y = _labels(labels, len(p), p.shape[1])
    return _compute_mislabel_scores(y, p)


def _compute_mislabel_scores(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    k = p.shape[1]
    given = p[np.arange(len(y)), y].astype(np.float64)
    counts = np.bincount(y, minlength=k)
    thresholds = np.where(
        counts > 0, np.bincount(y, weights=given, minlength=k) / np.maximum(counts, 1), 1.0 / k
    )
    inverse = 1.0 / np.maximum(thresholds, 1e-12)
    adjusted_total = p @ inverse.astype(p.dtype)
    return 1.0 - given * inverse[y] / np.maximum(adjusted_total, 1e-12)


def classification_hardness(
    pred_probs,
    *,
    tta_probs=None,
    labels: Sequence[int] | None = None,
    low_confidence: float = 0.6,
    min_margin: float = 0.2,
    max_tta_shift: float = 0.25,
    mislabel_threshold: float = 0.5,
) -> pd.DataFrame:
    """Per-sample hard score in [0, 1] and reasons.

    Parameters
    ----------
    pred_probs : (N, K)
        Predicted probabilities.
    tta_probs : (V, N, K), optional
        Probabilities of V test-time-augmented views (flips, scales).
    labels : (N,) int, optional
        Given labels of labeled samples: adds the mislabel score and reason 101.

    Returns
    -------
    DataFrame with columns score, reasons (codes joined by "-"), hard, least_confidence,
    margin, entropy, tta_shift and, with labels, mislabel.
    """
    p = _probs(pred_probs)
    views = None
    if tta_probs is not None:
        views = np.asarray(tta_probs, dtype=np.float64)
        if views.ndim == 2:
            views = views[None]
        if views.shape[1:] != p.shape:
            raise ValidationError(
                f"tta_probs: expected shape (V, {p.shape[0]}, {p.shape[1]}), got {views.shape}."
            )
        for v in views:
            _probs(v, "tta_probs")
    y = _labels(labels, len(p), p.shape[1]) if labels is not None else None
    return _compute_classification_hardness(
        p, views, y, low_confidence, min_margin, max_tta_shift, mislabel_threshold
    )


def _compute_classification_hardness(
    p, views, y, low_confidence, min_margin, max_tta_shift, mislabel_threshold
) -> pd.DataFrame:
    n, k = p.shape
    top2 = np.sort(p, axis=1)[:, -2:]
    least = 1.0 - top2[:, 1]
    margin = top2[:, 1] - top2[:, 0]
    entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=1) / np.log(k)
    shift = np.zeros(n)
    flipped = np.zeros(n, dtype=bool)
    if views is not None:
        shift = 0.5 * np.abs(views - p[None]).sum(axis=2).max(axis=0)  # total variation
        flipped = (views.argmax(axis=2) != p.argmax(axis=1)[None]).any(axis=0)
    parts = [least * k / max(k - 1, 1), 1.0 - margin, entropy, shift]
    score = np.clip(
        np.max(np.stack(parts), axis=0) * 0.5 + np.mean(np.stack(parts), axis=0) * 0.5, 0, 1
    )
    out = pd.DataFrame(
        {"least_confidence": least, "margin": margin, "entropy": entropy, "tta_shift": shift}
    )
    codes: list[list[int]] = [[] for _ in range(n)]
    for i in np.flatnonzero((top2[:, 1] < low_confidence) | (margin < min_margin)):
        codes[i].append(LOW_CONFIDENCE)
    for i in np.flatnonzero(flipped | (shift > max_tta_shift)):
        codes[i].append(INCONSISTENT)
    if y is not None:
        mis = _compute_mislabel_scores(y, p)
        out["mislabel"] = mis
        score = np.maximum(score, mis)
        for i in np.flatnonzero(mis > mislabel_threshold):
            codes[i].append(SUSPECTED_MISLABEL)
    out.insert(0, "score", score)
    out.insert(1, "reasons", [encode_reasons(c) for c in codes])
    out.insert(2, "hard", [bool(c) for c in codes])
    return out


# -- detection --------------------------------------------------------------------------------


def _check_boxes(pred: dict, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        boxes = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(pred["labels"], dtype=np.int64).reshape(-1)
        scores = np.asarray(pred["scores"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"{where}: needs boxes (K, 4), labels (K,) and scores (K,) ({exc})."
        ) from None
    if not (len(boxes) == len(labels) == len(scores)):
        raise ValidationError(f"{where}: boxes, labels and scores differ in length.")
    if not np.isfinite(boxes).all() or not np.isfinite(scores).all():
        raise ValidationError(f"{where}: NaN or infinite box or score.")
    return boxes, labels, scores


def detection_hardness(
    preds: Sequence[dict],
    tta_preds: Sequence[Sequence[dict]] = (),
    *,
    threshold: float = 0.5,
    low_threshold: float = 0.1,
    band: float = 0.15,
    missed_floor: float = 0.25,
    iou: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-box hard types and per-image hard scores for detection.

    Parameters
    ----------
    preds : list of N dicts
        Per image ``boxes (K, 4)``, ``labels (K,)``, ``scores (K,)``: every box the model
        keeps down to ``low_threshold`` (not only those above ``threshold``).
    tta_preds : list of V lists of N dicts
        The same for V augmented views, with boxes mapped back to the original image.

    Rules
    -----
    - false_positive: a box scoring ≥ threshold that some view does not find (no box of the
      same label with IoU ≥ ``iou`` scoring ≥ low_threshold), or finds as another label.
    - missed: an object found only under augmentation (a view's box ≥ threshold with no
      original box ≥ threshold at IoU ≥ ``iou``), or only at a lower threshold (an original
      box in [missed_floor, threshold) confirmed by every view, overlapping no confident box
      of its label; of overlapping such boxes the highest-scoring one).
    - an image gets reason 0 when nothing scores ≥ threshold, 1 when a box scores within
      ``band`` of the threshold, 4 when any box is false_positive or missed.
    - image hard score = share of its boxes (confident + missed) that are hard; it is hard
      when it has any reason.

    Returns
    -------
    boxes : DataFrame
        image (position in ``preds``), label, x0, y0, x1, y1, score, hard_type
        (none | false_positive | missed): the boxes to write as auto-labels.
    images : DataFrame
        image, hard, score (the image hard-coefficient), reasons.
    """
    if not 0 <= low_threshold <= missed_floor <= threshold <= 1:
        raise ValidationError("need 0 ≤ low_threshold ≤ missed_floor ≤ threshold ≤ 1.")
    checked = [_check_boxes(p, f"preds[{i}]") for i, p in enumerate(preds)]
    views = []
    for v, view in enumerate(tta_preds):
        if len(view) != len(preds):
            raise ValidationError(f"tta_preds[{v}]: {len(view)} images, preds has {len(preds)}.")
        views.append([_check_boxes(p, f"tta_preds[{v}][{i}]") for i, p in enumerate(view)])
    return _compute_detection_hardness(
        checked, views, threshold, low_threshold, band, missed_floor, iou
    )


def _compute_detection_hardness(preds, views, threshold, low, band, floor, iou_min):
    box_rows, image_rows = [], []
    for i, (boxes, labels, scores) in enumerate(preds):
        confident = scores >= threshold
        low_band = (scores >= floor) & ~confident
        types = np.array(["none"] * len(boxes), dtype=object)
        # low-scoring boxes every view confirms are objects the threshold missed
        confirmed = low_band.copy() if views else np.zeros_like(low_band)
        for v_boxes, v_labels, v_scores in (view[i] for view in views):
            keep = v_scores >= low
            same = (
                (box_iou(boxes, v_boxes[keep]) >= iou_min)
                & (labels[:, None] == v_labels[keep][None])
            ).any(axis=1)
            types[confident & ~same] = "false_positive"  # lost, or found only as another label
            confirmed &= same
        # a low box on an object already found with confidence is that object, not a miss;
        # among overlapping low boxes of one label only the highest-scoring one counts
        same_found = (box_iou(boxes, boxes[confident]) >= iou_min) & (
            labels[:, None] == labels[confident][None]
        )
        confirmed &= ~same_found.any(axis=1)
        for j in np.flatnonzero(confirmed)[np.argsort(-scores[confirmed], kind="stable")]:
            if not confirmed[j]:
                continue
            twins = (box_iou(boxes[j][None], boxes)[0] >= iou_min) & (labels == labels[j])
            twins[j] = False
            confirmed &= ~twins
        types[confirmed] = "missed"
        out = confident | confirmed
        rows = [
            (i, int(lab), *b.tolist(), float(s), t)
            for b, lab, s, t in zip(boxes[out], labels[out], scores[out], types[out])
        ]
        # objects only a view finds with confidence
        kept_boxes = boxes[confident]
        for v_boxes, v_labels, v_scores in (view[i] for view in views):
            strong = v_scores >= threshold
            if not strong.any():
                continue
            ious = box_iou(v_boxes[strong], kept_boxes)
            seen = [r[2:6] for r in rows if r[-1] == "missed"]
            for b, lab, s, overlap in zip(
                v_boxes[strong], v_labels[strong], v_scores[strong], ious.max(axis=1, initial=0.0)
            ):
                if overlap >= iou_min:
                    continue
                if seen and box_iou(b[None], np.asarray(seen)).max() >= iou_min:
                    continue
                rows.append((i, int(lab), *b.tolist(), float(s), "missed"))
                seen.append(b.tolist())
        box_rows += rows
        n_hard = sum(r[-1] != "none" for r in rows)
        codes = []
        if not confident.any():
            codes.append(NO_TARGET)
        if (np.abs(scores[scores >= low] - threshold) < band).any():
            codes.append(LOW_CONFIDENCE)
        if n_hard:
            codes.append(INCONSISTENT)
        share = n_hard / len(rows) if rows else (1.0 if NO_TARGET in codes else 0.0)
        image_rows.append((i, bool(codes), float(share), encode_reasons(codes)))
    boxes_df = pd.DataFrame(
        box_rows, columns=["image", "label", "x0", "y0", "x1", "y1", "score", "hard_type"]
    )
    images_df = pd.DataFrame(image_rows, columns=["image", "hard", "score", "reasons"])
    return boxes_df, images_df


# -- distance to the training data ------------------------------------------------------------
def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _knn(
    query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool = False, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances and indices of the k nearest rows of ``base`` for each query row."""
    k = min(k, len(base) - (1 if exclude_self else 0))
    dists, idx = [], []
    for s in range(0, len(query), chunk):
        d = 1.0 - query[s : s + chunk] @ base.T
        if exclude_self:
            d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        pd_ = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd_, axis=1)
        idx.append(np.take_along_axis(part, order, axis=1))
        dists.append(np.take_along_axis(pd_, order, axis=1))
    return np.concatenate(dists), np.concatenate(idx)


def training_distance(
    train_embeddings,
    train_labels: Sequence[int] | np.ndarray,
    embeddings,
    predicted: Sequence[int] | np.ndarray,
    *,
    k: int = 10,
    quantile: float = 0.95,
) -> pd.DataFrame:
    """Flag images unlike the training data.

    Reason 2 when the majority label of the k nearest training images differs from the
    prediction; reason 3 when the mean distance to the k nearest training images *of the
    predicted class* is beyond the ``quantile`` of the same quantity among training images
    (leave-one-out). Cosine distance on the embeddings.

    Returns a DataFrame with columns class_distance, cluster_label, reasons.
    """
    tr = _normalized(np.asarray(train_embeddings, dtype=np.float64))
    q = _normalized(np.asarray(embeddings, dtype=np.float64))
    ty = np.asarray(train_labels, dtype=np.int64)
    py = np.asarray(predicted, dtype=np.int64)
    if tr.ndim != 2 or q.ndim != 2 or tr.shape[1] != q.shape[1]:
        raise ValidationError(
            f"embeddings: expected (M, D) and (N, D), got {tr.shape} and {q.shape}."
        )
    if len(ty) != len(tr) or len(py) != len(q):
        raise ValidationError("train_labels and predicted must match the embeddings' rows.")
    if len(tr) < 2:
        raise ValidationError("training_distance needs at least 2 training embeddings.")
    _, nn_idx = _knn(q, tr, k)
    votes = ty[nn_idx]
    cluster = np.array([np.bincount(v).argmax() for v in votes])
    class_dist = np.full(len(q), np.nan)
    limits = {}
    for c in np.unique(np.r_[ty, py]):
        members = tr[ty == c]
        if len(members) < 2:
            continue
        kk = min(k, len(members) - 1)
        own, _ = _knn(members, members, kk, exclude_self=True)
        limits[c] = np.quantile(own.mean(axis=1), quantile)
        sel = py == c
        if sel.any():
            d, _ = _knn(q[sel], members, kk)
            class_dist[sel] = d.mean(axis=1)
    codes = []
    for i in range(len(q)):
        c = []
        if cluster[i] != py[i]:
            c.append(CLUSTER_DISAGREES)
        if py[i] in limits and class_dist[i] > limits[py[i]]:
            c.append(FAR_FROM_CLASS)
        codes.append(encode_reasons(c))
    return pd.DataFrame({"class_distance": class_dist, "cluster_label": cluster, "reasons": codes})


def resolution_outliers(train_sizes, sizes, *, margin: float = 0.5) -> np.ndarray:
    """``(N,)`` bool: images whose log area or log aspect ratio lies outside the training
    set's 1st–99th percentile range widened by ``margin`` (in natural-log units): reason 5."""
    tr = np.asarray(train_sizes, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if (tr <= 0).any() or (s <= 0).any():
        raise ValidationError("sizes: widths and heights must be positive.")

    def feats(a):
        return np.c_[np.log(a[:, 0] * a[:, 1]), np.log(a[:, 0] / a[:, 1])]

    ft, fs = feats(tr), feats(s)
    lo = np.quantile(ft, 0.01, axis=0) - margin
    hi = np.quantile(ft, 0.99, axis=0) + margin
    return ((fs < lo) | (fs > hi)).any(axis=1)


def merge_reasons(*reason_columns: Sequence[str]) -> list[str]:
    """Join reason-code strings element-wise, without duplicates, in numeric order."""
    out = []
    for parts in zip(*reason_columns):
        out.append(encode_reasons(sorted({c for p in parts for c in parse_reasons(p)})))
    return out
