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


def multilabel_mislabel_scores(labels, pred_probs) -> np.ndarray:
    """``(N, K)`` scores in [0, 1], one per (image, label) decision; higher = more likely
    mislabeled. Each label is its own two-class question (carried or not), scored by
    confident learning as `mislabel_scores` scores a classifier (the one-task-per-label
    reduction cleanlab's ``multilabel_classification`` makes).

    Parameters
    ----------
    labels : (N, K) 0 / 1
        The labels each image is given.
    pred_probs : (N, K) float
        Out-of-sample probability of each label (e.g. from cross-validation).
    """
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(pred_probs, dtype=np.float64)
    if y.shape != p.shape or p.ndim != 2:
        raise ValidationError(f"labels {y.shape} and pred_probs {p.shape}: expected (N, K) each.")
    if len(p) and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValidationError("pred_probs: probabilities must be numbers from 0 to 1.")
    out = np.zeros(p.shape, dtype=np.float64)
    for k in range(p.shape[1]):
        two = np.stack([1.0 - p[:, k], p[:, k]], axis=1)
        out[:, k] = _compute_mislabel_scores(y[:, k], two)
    return out


def multilabel_label_issues(labels, pred_probs) -> np.ndarray:
    """``(N, K)`` booleans: the (image, label) decisions confident learning calls wrong.

    Per label, a two-class question (carried or not): each class's threshold is the mean
    out-of-sample probability of that class over the images given it; the confident joint
    counts the images given one class whose probability of the other reaches that class's
    threshold (and is the larger, when both do); pruning by noise rate then marks, in each
    of the two off-diagonal cells, as many of the images given that class as the cell
    counts, those whose other class leads by the widest margin (Northcutt et al., JAIR
    2021; cleanlab's ``filter_by="prune_by_noise_rate"``, per label as its
    ``multilabel_classification`` does).
    """
    y = np.asarray(labels).astype(bool)
    p = np.asarray(pred_probs, dtype=np.float64)
    if y.shape != p.shape or p.ndim != 2:
        raise ValidationError(f"labels {y.shape} and pred_probs {p.shape}: expected (N, K) each.")
    out = np.zeros(y.shape, dtype=bool)
    for k in range(p.shape[1]):
        given, p1 = y[:, k], p[:, k]
        p0 = 1.0 - p1
        t1 = p1[given].mean() if given.any() else 1.0
        t0 = p0[~given].mean() if (~given).any() else 1.0
        for mine, other, t_other, t_mine, rows in (
            (p1, p0, t0, t1, given),  # given the label, likely not carried
            (p0, p1, t1, t0, ~given),  # not given, likely carried
        ):
            counted = rows & (other >= t_other) & ((mine < t_mine) | (other > mine))
            n = int(counted.sum())
            if n:
                margin = np.where(rows, other - mine, -np.inf)
                out[np.argsort(-margin, kind="stable")[:n], k] = True
    return out


def classification_hardness(
    pred_probs,
    *,
    tta_probs=None,
    labels: Sequence[int] | None = None,
    low_confidence: float = 0.6,
    min_margin: float = 0.2,
    max_tta_shift: float = 0.25,
    mislabel_threshold: float = 0.5,
    flag: str = "expected",
) -> pd.DataFrame:
    """Per-sample hard score in [0, 1], reasons, and a selective ``hard`` flag.

    Parameters
    ----------
    pred_probs : (N, K)
        Predicted probabilities.
    tta_probs : (V, N, K), optional
        Probabilities of V test-time-augmented views (flips, scales).
    labels : (N,) int, optional
        Given labels of labeled samples: adds the mislabel score and reason 101.
    flag : {"expected", "any"}
        Which samples get ``hard=True``. ``"expected"`` (default): as many as the model
        expects to be wrong (the sum over samples of one minus the top probability),
        highest scores first, so a flag means "worth a human look" rather than "any doubt".
        ``"any"``: every sample with a reason. Reason 101 (suspected mislabel) always flags.
        Reasons are given for every sample either way; ``score`` ranks them all.

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
    if flag not in ("expected", "any"):
        raise ValidationError(f"flag={flag!r}: use 'expected' or 'any'.")
    return _compute_classification_hardness(
        p, views, y, low_confidence, min_margin, max_tta_shift, mislabel_threshold, flag
    )


def expected_errors(pred_probs) -> int:
    """How many of the predictions the model itself expects to be wrong: the sum over
    samples of one minus the top probability, rounded.
    """
    p = _probs(pred_probs)
    return round(float((1.0 - p.max(axis=1, initial=0.0)).sum())) if len(p) else 0


def fit_temperature(pred_probs, labels, *, bounds: tuple[float, float] = (1.0, 10.0)) -> float:
    """The temperature T that makes ``pred_probs`` best calibrated on held-out ``labels``
    (temperature scaling, Guo et al., ICML 2017): the T minimizing the negative
    log-likelihood of ``softmax(log p / T)``, searched on a log grid within ``bounds``.
    The default never sharpens (T ≥ 1): on a few validation images that are all right, the
    likelihood alone would push T toward 0 and make an overconfident model surer still.
    """
    p = _probs(pred_probs)
    y = _labels(labels, len(p), p.shape[1])
    if not len(p):
        return 1.0
    logp = np.log(np.clip(p, 1e-12, 1.0))
    grid = np.geomspace(bounds[0], bounds[1], 200)
    nll = [-_log_softmax(logp / t)[np.arange(len(y)), y].mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def tempered(pred_probs, temperature: float) -> np.ndarray:
    """``pred_probs`` at a temperature: ``softmax(log p / T)`` (the same as dividing the
    logits by T); T = 1 gives them back.
    """
    p = np.asarray(pred_probs, dtype=np.float64)
    if temperature == 1.0 or not len(p):
        return p
    return np.exp(_log_softmax(np.log(np.clip(p, 1e-12, 1.0)) / temperature))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _compute_classification_hardness(
    p, views, y, low_confidence, min_margin, max_tta_shift, mislabel_threshold, flag="expected"
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
    if flag == "any":
        flagged = np.array([bool(c) for c in codes], dtype=bool)
    else:
        flagged = np.zeros(n, dtype=bool)
        flagged[np.argsort(-score, kind="stable")[: expected_errors(p) if n else 0]] = True
        flagged |= np.array([SUSPECTED_MISLABEL in c for c in codes], dtype=bool)
        for i in np.flatnonzero(flagged):  # among the least sure: the flag names why
            if not codes[i]:
                codes[i].append(LOW_CONFIDENCE)
    out.insert(0, "score", score)
    out.insert(1, "reasons", [encode_reasons(c) for c in codes])
    out.insert(2, "hard", flagged)
    return out


# -- detection --------------------------------------------------------------------------------


def multilabel_hardness(
    pred_probs,
    thresholds,
    *,
    tta_probs=None,
    unsure: float = 0.3,
    flag: str = "expected",
) -> pd.DataFrame:
    """Per image of a multi-label model: how likely one of its label decisions is wrong,
    which labels are uncertain, its reasons, and a selective ``hard`` flag.

    Each label is decided on its own (given when its probability ``p`` is at least its
    threshold ``t``). ``p`` is first put on the threshold's scale (``t`` maps to 0.5, 0 and
    1 stay), ``q``; the decision is wrong with probability ``1 - q`` when given, ``q``
    when not.
    An image's ``score`` is the chance at least one of its decisions is wrong,
    ``1 - Π(1 - wrong)``. A label whose decision is wrong with probability ``unsure`` or
    more is *uncertain* (reason 1, low confidence); a label a mirrored view decides the
    other way gives reason 4 (inconsistent). ``flag="expected"`` flags as many images as the
    scores add up to (the images the model expects to hold an error), highest first;
    ``"any"`` flags every image with a reason.

    Returns a DataFrame with columns score, reasons, hard, uncertain (label indices),
    expected_wrong (the sum of the decisions' error chances).
    """
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim != 2 or (len(p) and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1)):
        raise ValidationError(
            f"pred_probs: expected (N, K) probabilities from 0 to 1, got shape {p.shape}."
        )
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (p.shape[1],))
    if flag not in ("expected", "any"):
        raise ValidationError(f"flag={flag!r}: use 'expected' or 'any'.")
    given = p >= t[None, :]
    # the probability put on the threshold's scale: the threshold is the even point 0.5
    # (a label at twice its threshold is not yet sure when the threshold is low)
    q = np.where(
        given,
        0.5 + (p - t) / np.maximum(2 * (1 - t), 1e-12),
        p / np.maximum(2 * t, 1e-12),
    )
    wrong = np.clip(np.where(given, 1.0 - q, q), 0.0, 1.0)
    score = 1.0 - np.prod(1.0 - wrong, axis=1)
    uncertain = wrong >= unsure
    flips = np.zeros_like(given)
    if tta_probs is not None:
        views = np.asarray(tta_probs, dtype=np.float64)
        views = views[None] if views.ndim == 2 else views
        if views.shape[1:] != p.shape:
            raise ValidationError(
                f"tta_probs: expected shape (V, {p.shape[0]}, {p.shape[1]}), got {views.shape}."
            )
        flips = ((views >= t[None, None, :]) != given[None]).any(axis=0)
    reasons = [
        encode_reasons(
            ([Reason.LOW_CONFIDENCE] if u.any() else [])
            + ([Reason.INCONSISTENT] if f.any() else [])
        )
        for u, f in zip(uncertain, flips)
    ]
    if flag == "any":
        hard_flag = np.array([r != "" for r in reasons], dtype=bool)
    else:
        hard_flag = np.zeros(len(p), dtype=bool)
        hard_flag[np.argsort(-score, kind="stable")[: round(float(score.sum()))]] = True
        # a flag never stands without a reason: an image flagged for several doubtful
        # decisions, none doubtful enough alone, is low confidence in its least sure label
        for i in np.flatnonzero(hard_flag & ~(uncertain | flips).any(axis=1)):
            uncertain[i, int(np.argmax(wrong[i]))] = True
            reasons[i] = encode_reasons([Reason.LOW_CONFIDENCE])
    return pd.DataFrame(
        {
            "score": score,
            "reasons": reasons,
            "hard": hard_flag,
            "uncertain": [np.flatnonzero(u | f).tolist() for u, f in zip(uncertain, flips)],
            "expected_wrong": wrong.sum(axis=1),
        }
    )


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
    - image hard score = the share of its boxes (confident + missed) that are hard, or how
      near its most doubtful box scores to the threshold (1 at it, 0 at ``band`` away) when
      that is higher; 1 with no target. It is hard when it has any reason, so a hard image
      never scores 0.

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
        # a box at the threshold is as doubtful as a box can be: 1 there, 0 at the band's edge
        near = np.abs(scores[scores >= low] - threshold)
        closeness = float((1 - near[near < band] / band).max(initial=0.0))
        image_rows.append((i, bool(codes), max(float(share), closeness), encode_reasons(codes)))
    boxes_df = pd.DataFrame(
        box_rows, columns=["image", "label", "x0", "y0", "x1", "y1", "score", "hard_type"]
    )
    images_df = pd.DataFrame(image_rows, columns=["image", "hard", "score", "reasons"])
    return boxes_df, images_df


def detection_label_issues(
    given: Sequence[dict],
    preds: Sequence[dict],
    *,
    iou: float = 0.5,
    low_threshold: float = 0.3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Where labeled boxes and out-of-sample predictions disagree: likely label errors.

    Parameters
    ----------
    given : list of N dicts
        Per image the labeled ``boxes (G, 4)`` and ``labels (G,)``.
    preds : list of N dicts
        Per image ``boxes``, ``labels``, ``scores`` of a model that did not train on the image
        (another fold, or a run trained on other images), down to ``low_threshold``.

    Rules
    -----
    - a given box is ``false_positive`` with issue ``1 − s``, where s is the best score of a
      same-label prediction times its overlap (full at IoU ≥ ``iou``, none below 0.1): a
      spurious box, a shifted one, or one whose label was swapped;
    - a prediction scoring ≥ ``low_threshold`` with no same-label given box at IoU ≥ ``iou``
      is ``missed`` with issue = its score: an object left unlabeled (or labeled as another
      class, or with a box far off);
    - a box is flagged (``hard_type``) when no same-label prediction scoring ≥ 0.5 overlaps
      it at IoU ≥ ``iou`` (given), or when it scores ≥ 0.5 and matches no given box
      (predicted);
    - the image's score is its largest box issue (1 = surely wrong, 0 = all boxes agree);
      it is ``hard`` when it has a flagged box.

    Returns
    -------
    boxes : DataFrame
        image, source (given | predicted), label, x0, y0, x1, y1, issue, hard_type
        (``false_positive``, ``missed`` or ``none``).
    images : DataFrame
        image, score, hard, n_issues (flagged boxes).
    """
    if len(given) != len(preds):
        raise ValidationError(f"given has {len(given)} images, preds has {len(preds)}.")
    box_rows, image_rows = [], []
    for i, (g, p) in enumerate(zip(given, preds)):
        gb, gl, _ = _check_boxes({**g, "scores": np.ones(len(g.get("labels", [])))}, f"given[{i}]")
        pb, pl, ps = _check_boxes(p, f"preds[{i}]")
        keep = ps >= low_threshold
        pb, pl, ps = pb[keep], pl[keep], ps[keep]
        overlap = box_iou(gb, pb)
        same = (overlap >= iou) & (gl[:, None] == pl[None])
        # support grows with the overlap up to IoU = iou: a ranking without ties
        fit = np.clip((overlap - 0.1) / max(iou - 0.1, 1e-6), 0, 1)
        support = np.where(gl[:, None] == pl[None], ps[None] * fit, 0.0).max(axis=1, initial=0.0)
        strict = np.where(same, ps[None], 0.0).max(axis=1, initial=0.0)
        found = same.any(axis=0)
        issues = [
            (1.0 - support, strict < 0.5, gb, gl, "given", "false_positive"),
            (np.where(found, 0.0, ps), ~found & (ps >= 0.5), pb, pl, "predicted", "missed"),
        ]
        worst, count = 0.0, 0
        for issue, flags, boxes, labels, source, kind in issues:
            for b, lab, v, flagged in zip(boxes, labels, issue, flags):
                if source == "predicted" and v == 0.0:
                    continue  # a prediction that matches a given box is no issue
                box_rows.append(
                    (i, source, int(lab), *b.tolist(), float(v), kind if flagged else "none")
                )
                worst, count = max(worst, float(v)), count + int(flagged)
        image_rows.append((i, worst, count > 0, count))
    boxes_df = pd.DataFrame(
        box_rows, columns=["image", "source", "label", "x0", "y0", "x1", "y1", "issue", "hard_type"]
    )
    images_df = pd.DataFrame(image_rows, columns=["image", "score", "hard", "n_issues"])
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
    set's 1st–99th percentile range widened by ``margin`` (in natural-log units): reason 5.
    """
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


# -- choosing what to label next --------------------------------------------------------------
SELECTIONS = ("diverse", "kcenter", "margin", "score")


def _kmeans(x: np.ndarray, k: int, weights: np.ndarray, rng, iters: int = 20) -> np.ndarray:
    """Weighted k-means (k-means++ seeding, Lloyd steps) on rows of ``x``: cluster of each row."""
    centers = [x[rng.choice(len(x), p=weights / weights.sum())]]
    d2 = ((x - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = weights * d2
        centers.append(x[rng.choice(len(x), p=p / p.sum())] if p.sum() > 0 else x[0])
        d2 = np.minimum(d2, ((x - centers[-1]) ** 2).sum(axis=1))
    c = np.asarray(centers)
    assign = np.zeros(len(x), dtype=np.int64)
    for step in range(iters):
        dist = (x**2).sum(1)[:, None] - 2 * x @ c.T + (c**2).sum(1)[None]
        new = dist.argmin(axis=1)
        if step and (new == assign).all():
            break
        assign = new
        for j in range(k):
            members = assign == j
            if members.any():
                c[j] = np.average(x[members], axis=0, weights=weights[members])
    return assign


def _k_center(x: np.ndarray, covered: np.ndarray, n: int, weights: np.ndarray) -> list[int]:
    """Greedy k-center: repeatedly the row farthest (weighted) from everything chosen."""
    dist = np.min(1.0 - x @ covered.T, axis=1) if len(covered) else np.full(len(x), 1.0)
    chosen: list[int] = []
    for _ in range(n):
        i = int(np.argmax(dist * weights))
        chosen.append(i)
        dist = np.minimum(dist, 1.0 - x @ x[i])
        dist[chosen] = -np.inf
    return chosen


def select_batch(
    scores,
    embeddings,
    n: int,
    *,
    covered=None,
    predicted=None,
    strategy: str = "diverse",
    seed: int = 0,
) -> np.ndarray:
    """Row indices of the ``n`` candidates to label next, in the order to review them.

    Parameters
    ----------
    scores : (N,) float
        How unsure the model is of each candidate (``hard_score`` or 1 − margin).
    embeddings : (N, D) float
        The candidates' image features (``ds.embeddings``).
    covered : (M, D) float, optional
        Features of the images already labeled: the batch avoids what they cover.
    predicted : (N,) int, optional
        Predicted class per candidate: the batch spreads over classes.
    strategy : str
        ``"score"``: the n highest scores. ``"margin"``: the same on the scores given.
        ``"kcenter"``: greedy k-center (coreset) weighted by score. ``"diverse"``: the
        ``10 n`` most uncertain candidates clustered into n groups, the most uncertain of
        each group, at most ``ceil(2 n / K)`` per predicted class.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    x = _normalized(np.asarray(embeddings, dtype=np.float64))
    if strategy not in SELECTIONS:
        raise ValidationError(f"strategy={strategy!r}: use one of {', '.join(SELECTIONS)}.")
    if x.shape[0] != len(s):
        raise ValidationError(f"embeddings: {x.shape[0]} rows for {len(s)} scores.")
    n = min(int(n), len(s))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if strategy in ("score", "margin") or not x.shape[1]:
        return np.argsort(-s, kind="stable")[:n]
    cov = (
        _normalized(np.asarray(covered, dtype=np.float64))
        if covered is not None and len(covered)
        else np.zeros((0, x.shape[1]))
    )
    if strategy == "kcenter":
        return np.asarray(_k_center(x, cov, n, 0.1 + s), dtype=np.int64)
    rng = np.random.default_rng(seed)
    pool = np.argsort(-s, kind="stable")[: min(len(s), 10 * n)]
    groups = _kmeans(x[pool], n, 0.05 + s[pool], rng)
    classes = np.asarray(predicted, dtype=np.int64) if predicted is not None else None
    cap = int(np.ceil(2 * n / max(len(np.unique(classes)), 1))) if classes is not None else n
    taken: dict[int, int] = {}
    chosen: list[int] = []
    for g in np.unique(groups):
        members = pool[groups == g]
        for i in members[np.argsort(-s[members], kind="stable")]:
            c = int(classes[i]) if classes is not None else 0
            if taken.get(c, 0) < cap:
                taken[c] = taken.get(c, 0) + 1
                chosen.append(int(i))
                break
    for capped in (True, False):  # fill up: within the class cap first
        for i in pool:
            c = int(classes[i]) if classes is not None else 0
            if len(chosen) < n and i not in chosen and (not capped or taken.get(c, 0) < cap):
                taken[c] = taken.get(c, 0) + 1
                chosen.append(int(i))
    return np.asarray(sorted(chosen, key=lambda i: -s[i])[:n], dtype=np.int64)
