"""Evaluation: per-label detection rate, precision, AP, confusion and error details.

Pure array/DataFrame functions (no Dataset). COCO AP follows pycocotools' COCOeval for
boxes exactly (all areas, 100 detections per image and label, 101 recall points, greedy
matching by score with its tie rules), vectorized over images, labels and IoU thresholds;
``report.map``/``map50`` equal ``COCOeval.stats[0]``/``stats[1]``. Crowd annotations are not
modeled: every ground-truth box counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import ValidationError

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETS = 100
BACKGROUND = "background"
MIN_COUNT = 20          # fewer annotations than this: "too few"
MIN_SHARE = 0.05        # fewer than 5% of all objects: "low share"
MIN_AP = 0.3            # COCO AP below this: "low AP"

BOX = ["x0", "y0", "x1", "y1"]


# -- input checks -----------------------------------------------------------------------------
def _check_frame(frame: pd.DataFrame, name: str, score: bool) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"{name}: expected a DataFrame with columns image_id, label, x0, y0, "
                              "x1, y1" + (", score" if score else ""))
    need = ["image_id", "label", *BOX] + (["score"] if score else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValidationError(f"{name}: missing column(s) {missing}.")
    out = frame[need].reset_index(drop=True)
    coords = out[BOX + (["score"] if score else [])].to_numpy(dtype="float64")
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        raise ValidationError(f"{name}: row {int(np.flatnonzero(bad)[0])} has a NaN or infinite "
                              "coordinate or score.")
    flipped = (out["x1"].to_numpy() < out["x0"].to_numpy()) | (out["y1"].to_numpy() < out["y0"].to_numpy())
    if flipped.any():
        raise ValidationError(f"{name}: row {int(np.flatnonzero(flipped)[0])} has x1 < x0 or y1 < y0.")
    out["label"] = out["label"].astype(str)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` (x0, y0, x1, y1), computed as
    pycocotools does from (x, y, w, h)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return _pairwise_iou(a[None], b[None])[0]


# -- greedy matching, vectorized over groups and thresholds ----------------------------------
@dataclass
class _Matches:
    """COCO greedy matching results per row. ``order``: kept detection rows sorted by
    (group key, score descending, input order), as COCOeval accumulates them."""

    order: np.ndarray        # (Nk,) detection rows within max_dets, accumulation order
    dt_gt: np.ndarray        # (T, Nd) matched gt row of each detection row, or -1
    gt_dt: np.ndarray        # (T, Ng) matched detection row of each gt row, or -1
    dt_iou: np.ndarray       # (Nd,) IoU with the partner at the first threshold, else best IoU
    gt_iou: np.ndarray       # (Ng,) the same for ground truth


def _rank_within(sorted_groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal values (input sorted by group)."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    lengths = np.diff(np.r_[starts, len(sorted_groups)])
    return np.arange(len(sorted_groups)) - np.repeat(starts, lengths)


def _pairwise_iou(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``(G, D, M)`` IoU between the boxes ``d (G, D, 4)`` and ``g (G, M, 4)``, computed as
    pycocotools does from (x, y, w, h)."""
    dw, dh = d[..., 2] - d[..., 0], d[..., 3] - d[..., 1]
    gw, gh = g[..., 2] - g[..., 0], g[..., 3] - g[..., 1]
    w = (np.minimum((d[..., 0] + dw)[:, :, None], (g[..., 0] + gw)[:, None, :])
         - np.maximum(d[..., 0][:, :, None], g[..., 0][:, None, :]))
    h = (np.minimum((d[..., 1] + dh)[:, :, None], (g[..., 1] + gh)[:, None, :])
         - np.maximum(d[..., 1][:, :, None], g[..., 1][:, None, :]))
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (dw * dh)[:, :, None] + (gw * gh)[:, None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _match_rows(gt_boxes: np.ndarray, key_gt: np.ndarray, dt_boxes: np.ndarray,
                dt_scores: np.ndarray, key_dt: np.ndarray, thresholds: np.ndarray,
                max_dets: int | None) -> _Matches:
    """Match detections to ground truth within groups (same key), highest score first.

    Only groups holding both detections and ground truth are padded into rectangles
    (G, D, M); matching then runs over the detections' ranks, vectorized over groups and
    thresholds.
    """
    T, Nd, Ng = len(thresholds), len(dt_scores), len(key_gt)
    order = np.argsort(-dt_scores, kind="stable")
    order = order[np.argsort(key_dt[order], kind="stable")]
    rank = _rank_within(key_dt[order])
    if max_dets is not None:
        keep = rank < max_dets
        order, rank = order[keep], rank[keep]
    dt_gt = np.full((T, Nd), -1, dtype=np.int64)
    gt_dt = np.full((T, Ng), -1, dtype=np.int64)
    dt_iou, gt_iou = np.zeros(Nd), np.zeros(Ng)
    active = np.intersect1d(key_gt, key_dt[order])
    if len(active) == 0:
        return _Matches(order, dt_gt, gt_dt, dt_iou, gt_iou)
    in_dt = np.isin(key_dt[order], active)
    d_rows, d_rank = order[in_dt], rank[in_dt]
    d_group = np.searchsorted(active, key_dt[d_rows])
    g_rows = np.flatnonzero(np.isin(key_gt, active))
    g_rows = g_rows[np.argsort(key_gt[g_rows], kind="stable")]
    g_group = np.searchsorted(active, key_gt[g_rows])
    g_rank = _rank_within(g_group)
    G, D, M = len(active), int(d_rank.max()) + 1, int(g_rank.max()) + 1
    dt_index = np.full((G, D), -1, dtype=np.int64)
    dt_index[d_group, d_rank] = d_rows
    gt_index = np.full((G, M), -1, dtype=np.int64)
    gt_index[g_group, g_rank] = g_rows
    ious = _pairwise_iou(dt_boxes[np.maximum(dt_index, 0)], gt_boxes[np.maximum(gt_index, 0)])
    ious[dt_index < 0] = -1.0
    ious[np.broadcast_to((gt_index < 0)[:, None, :], ious.shape)] = -1.0
    col_dt = np.full((T, G, D), -1, dtype=np.int64)
    col_gt = np.full((T, G, M), -1, dtype=np.int64)
    limits = np.minimum(thresholds, 1 - 1e-10)[:, None, None]
    for r in range(D):
        iou = ious[:, r, :][None]                                   # (1, G, M)
        ok = (iou >= limits) & (col_gt < 0)                         # (T, G, M)
        scored = np.where(ok, iou, -np.inf)
        best = M - 1 - scored[:, :, ::-1].argmax(axis=2)            # ties: the last gt wins
        found = np.take_along_axis(ok, best[:, :, None], axis=2)[:, :, 0]
        t_idx, grp = np.nonzero(found)
        col_dt[t_idx, grp, r] = best[t_idx, grp]
        col_gt[t_idx, grp, best[t_idx, grp]] = r
    gi, di = np.nonzero(dt_index >= 0)
    rows = dt_index[gi, di]
    partner = col_dt[:, gi, di]                                      # (T, n)
    dt_gt[:, rows] = np.where(partner >= 0, gt_index[gi[None], np.maximum(partner, 0)], -1)
    best_iou = ious.max(axis=2)[gi, di]
    first = partner[0]
    dt_iou[rows] = np.where(first >= 0, ious[gi, di, np.maximum(first, 0)], np.maximum(best_iou, 0))
    gi, mi = np.nonzero(gt_index >= 0)
    rows = gt_index[gi, mi]
    partner = col_gt[:, gi, mi]
    gt_dt[:, rows] = np.where(partner >= 0, dt_index[gi[None], np.maximum(partner, 0)], -1)
    best_iou = ious.max(axis=1)[gi, mi]
    first = partner[0]
    gt_iou[rows] = np.where(first >= 0, ious[gi, np.maximum(first, 0), mi], np.maximum(best_iou, 0))
    return _Matches(order, dt_gt, gt_dt, dt_iou, gt_iou)


# -- COCO AP ----------------------------------------------------------------------------------
def _average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> np.ndarray:
    """``(T,)`` AP over 101 recall points for detections of one label.

    ``scores (N,)`` in the accumulation order, ``tp (T, N)`` bool.
    """
    T = tp.shape[0]
    if n_gt == 0:
        return np.full(T, np.nan)
    if len(scores) == 0:
        return np.zeros(T)
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tps = np.cumsum(tp, axis=1, dtype=np.float64)
    fps = np.cumsum(~tp, axis=1, dtype=np.float64)
    rc = tps / n_gt
    pr = tps / (fps + tps + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros(T)
    for t in range(T):
        idx = np.searchsorted(rc[t], RECALL_POINTS, side="left")
        q = np.where(idx < len(scores), pr[t][np.minimum(idx, len(scores) - 1)], 0.0)
        out[t] = q.mean()
    return out


@dataclass
class DetectionReport:
    """Per-label detection metrics; see :func:`evaluate_detections`."""

    per_label: pd.DataFrame
    map: float
    map50: float
    iou_threshold: float
    score_threshold: float
    _details: pd.DataFrame = field(repr=False)
    _pairs: pd.DataFrame = field(repr=False)
    labels: list[str] = field(default_factory=list)

    def errors(self, label: str | None = None) -> pd.DataFrame:
        """Per image and box: ``kind`` is ``tp`` (found), ``missed`` (ground truth not
        found) or ``false`` (a prediction matching no ground truth of its label), with
        coordinates, score and best IoU."""
        d = self._details
        return (d if label is None else d[d["label"] == label]).reset_index(drop=True)

    def confusion(self) -> pd.DataFrame:
        """Counts of true label (rows) × predicted label (columns), with ``background``:
        a missed object is (label, background), a false box (background, label)."""
        names = [*self.labels, BACKGROUND]
        table = pd.crosstab(pd.Categorical(self._pairs["true"], categories=names),
                            pd.Categorical(self._pairs["predicted"], categories=names),
                            dropna=False)
        table.index.name, table.columns.name = "true", "predicted"
        return table

    def samples_in_cell(self, true: str, predicted: str) -> list:
        """Image ids behind one confusion-matrix cell."""
        p = self._pairs
        return sorted(p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].unique())

    def _repr_html_(self) -> str:
        return (f"<b>mAP</b> {self.map:.4f} &nbsp; <b>mAP50</b> {self.map50:.4f}<br>"
                + self.per_label.to_html(index=False, float_format="{:.3f}".format))


def evaluate_detections(gt: pd.DataFrame, pred: pd.DataFrame, *, iou_threshold: float = 0.5,
                        score_threshold: float = 0.5, image_ids: Sequence | None = None,
                        labels: Sequence[str] | None = None) -> DetectionReport:
    """Evaluate box predictions against ground truth.

    Parameters
    ----------
    gt : DataFrame
        Columns image_id, label, x0, y0, x1, y1 (pixels).
    pred : DataFrame
        The same plus score.
    iou_threshold, score_threshold : float
        For detection rate (recall), precision, errors and confusion.
    image_ids : sequence, optional
        Every evaluated image (images without ground truth still count for false boxes);
        default: those in gt or pred.
    labels : sequence of str, optional
        Label order of the report; default: sorted labels of gt and pred.

    Returns
    -------
    DetectionReport
        ``per_label`` columns: label, detection_rate, precision, ap, ap50, share, count,
        warning. ``map``/``map50``: means of ap/ap50 over labels with ground truth.
    """
    gt = _check_frame(gt, "gt", score=False)
    pred = _check_frame(pred, "pred", score=True)
    if image_ids is not None:
        allowed = set(image_ids)
        pred = pred[pred["image_id"].isin(allowed)].reset_index(drop=True)
        gt = gt[gt["image_id"].isin(allowed)].reset_index(drop=True)
    names = list(labels) if labels is not None else sorted(set(gt["label"]) | set(pred["label"]))
    lab_id = {n: i for i, n in enumerate(names)}
    for frame, what in ((gt, "gt"), (pred, "pred")):
        unknown = set(frame["label"]) - set(lab_id)
        if unknown:
            raise ValidationError(f"{what}: label(s) {sorted(unknown)} are not in labels={names}.")
    img_codes = pd.Index(sorted(set(gt["image_id"]) | set(pred["image_id"])))
    gi = img_codes.get_indexer(gt["image_id"])
    di = img_codes.get_indexer(pred["image_id"])
    gl = gt["label"].map(lab_id).to_numpy(dtype=np.int64)
    dl = pred["label"].map(lab_id).to_numpy(dtype=np.int64)
    L = max(len(names), 1)
    gboxes = gt[BOX].to_numpy(dtype="float64")
    dboxes = pred[BOX].to_numpy(dtype="float64")
    dscores = pred["score"].to_numpy(dtype="float64")
    # groups keyed by (label, image): accumulation order = image order within a label
    n_img = max(len(img_codes), 1)
    m = _match_rows(gboxes, gl * n_img + gi, dboxes, dscores, dl * n_img + di, IOU_THRESHOLDS,
                    MAX_DETS)
    det_label = dl[m.order]
    tp_all = m.dt_gt[:, m.order] >= 0                                # (T, Nk)
    scores = dscores[m.order]
    n_gt = np.bincount(gl, minlength=L)
    ap = np.full((len(names), len(IOU_THRESHOLDS)), np.nan)
    starts = np.searchsorted(det_label, np.arange(len(names) + 1))
    for k in range(len(names)):
        s_, e_ = starts[k], starts[k + 1]
        ap[k] = _average_precision(scores[s_:e_], tp_all[:, s_:e_], int(n_gt[k]))
    valid_ap = ~np.isnan(ap[:, 0])
    mean_ap = float(ap[valid_ap].mean()) if valid_ap.any() else float("nan")
    mean_ap50 = float(ap[valid_ap, 0].mean()) if valid_ap.any() else float("nan")
    details, pairs = _thresholded(gt, pred, gi, di, gl, dl, names, img_codes, iou_threshold,
                                  score_threshold)
    per_label = _per_label_table(names, n_gt, ap, details)
    return DetectionReport(per_label=per_label, map=mean_ap, map50=mean_ap50,
                           iou_threshold=iou_threshold, score_threshold=score_threshold,
                           _details=details, _pairs=pairs, labels=names)


def _thresholded(gt, pred, gi, di, gl, dl, names, img_codes, iou_threshold, score_threshold):
    """Errors at one IoU and score threshold, and the label-agnostic confusion pairs."""
    keep = pred["score"].to_numpy() >= score_threshold
    p = pred[keep].reset_index(drop=True)
    pdi, pdl = di[keep], dl[keep]
    n_img = max(len(img_codes), 1)
    names_arr = np.asarray(names, dtype=object)
    gboxes = gt[BOX].to_numpy(dtype="float64")
    pboxes = p[BOX].to_numpy(dtype="float64")
    pscores = p["score"].to_numpy(dtype="float64")
    thr = np.array([iou_threshold])
    m = _match_rows(gboxes, gl * n_img + gi, pboxes, pscores, pdl * n_img + pdi, thr, None)
    found = m.gt_dt[0] >= 0
    part_gt = pd.DataFrame({"image_id": gt["image_id"].to_numpy(),
                            "label": names_arr[gl], "kind": np.where(found, "tp", "missed")})
    for j, c in enumerate(BOX):
        part_gt[c] = gboxes[:, j]
    part_gt["score"] = np.where(found, pscores[np.maximum(m.gt_dt[0], 0)] if len(pscores)
                                else np.nan, np.nan)
    part_gt["iou"] = m.gt_iou
    false = m.dt_gt[0] < 0
    part_dt = pd.DataFrame({"image_id": p["image_id"].to_numpy()[false],
                            "label": names_arr[pdl[false]], "kind": "false"})
    for j, c in enumerate(BOX):
        part_dt[c] = pboxes[false, j]
    part_dt["score"], part_dt["iou"] = pscores[false], m.dt_iou[false]
    details = pd.concat([part_gt, part_dt], ignore_index=True)
    # confusion: match ignoring labels, one image at a time, highest scores first
    a = _match_rows(gboxes, gi, pboxes, pscores, pdi, thr, None)
    partner = a.gt_dt[0]
    predicted = np.where(partner >= 0, names_arr[pdl[np.maximum(partner, 0)]] if len(pdl)
                         else BACKGROUND, BACKGROUND)
    pairs_gt = pd.DataFrame({"image_id": gt["image_id"].to_numpy(), "true": names_arr[gl],
                             "predicted": predicted})
    lone = a.dt_gt[0] < 0
    pairs_dt = pd.DataFrame({"image_id": p["image_id"].to_numpy()[lone], "true": BACKGROUND,
                             "predicted": names_arr[pdl[lone]]})
    return details, pd.concat([pairs_gt, pairs_dt], ignore_index=True)


def _per_label_table(names, n_gt, ap, details) -> pd.DataFrame:
    counts = details.groupby(["label", "kind"]).size().unstack(fill_value=0) if len(details) \
        else pd.DataFrame()
    total = max(int(n_gt.sum()), 1)
    rows = []
    for k, name in enumerate(names):
        c = counts.loc[name] if name in counts.index else {}
        tp, missed, false = (int(c.get(x, 0)) for x in ("tp", "missed", "false"))
        rate = tp / (tp + missed) if tp + missed else np.nan
        precision = tp / (tp + false) if tp + false else np.nan
        row = dict(label=name, detection_rate=rate, precision=precision, ap=float(np.nanmean(ap[k]))
                   if not np.isnan(ap[k]).all() else np.nan, ap50=ap[k, 0], share=n_gt[k] / total,
                   count=int(n_gt[k]))
        row["warning"] = label_warning(row["count"], row["share"], row["ap"])
        rows.append(row)
    return pd.DataFrame(rows, columns=["label", "detection_rate", "precision", "ap", "ap50",
                                       "share", "count", "warning"])


def label_warning(count: int, share: float, ap: float | None) -> str:
    """What is wrong with a label's data and what to do; empty when nothing is."""
    notes = []
    if count < MIN_COUNT:
        notes.append(f"too few annotations ({count} < {MIN_COUNT}): label more images with it")
    if share < MIN_SHARE:
        notes.append(f"low share ({share:.1%} of objects < {MIN_SHARE:.0%}): balance the labels")
    if ap is not None and not np.isnan(ap) and ap < MIN_AP:
        notes.append(f"low AP ({ap:.2f} < {MIN_AP}): review its errors and hard examples")
    return "; ".join(notes)


# -- classification -----------------------------------------------------------------------------
@dataclass
class ClassificationReport:
    per_label: pd.DataFrame
    accuracy: float
    confusion_matrix: pd.DataFrame
    _pairs: pd.DataFrame = field(repr=False)
    labels: list[str] = field(default_factory=list)

    def confusion(self) -> pd.DataFrame:
        return self.confusion_matrix

    def samples_in_cell(self, true: str, predicted: str) -> list:
        p = self._pairs
        return p.loc[(p["true"] == true) & (p["predicted"] == predicted), "image_id"].tolist()

    def errors(self, label: str | None = None) -> pd.DataFrame:
        p = self._pairs[self._pairs["true"] != self._pairs["predicted"]]
        return (p if label is None else p[p["true"] == label]).reset_index(drop=True)

    def _repr_html_(self) -> str:
        return (f"<b>accuracy</b> {self.accuracy:.4f}<br>"
                + self.per_label.to_html(index=False, float_format="{:.3f}".format))


def evaluate_classification(labels: Sequence, preds: Sequence, *,
                            label_names: Sequence[str] | None = None,
                            image_ids: Sequence | None = None) -> ClassificationReport:
    """Per-label detection rate (recall), precision, count and share, and the confusion
    matrix (true label rows × predicted label columns)."""
    y = np.asarray([str(v) for v in labels], dtype=object)
    p = np.asarray([str(v) for v in preds], dtype=object)
    if len(y) != len(p):
        raise ValidationError(f"labels ({len(y)}) and preds ({len(p)}) differ in length.")
    names = list(label_names) if label_names is not None else sorted(set(y) | set(p))
    index = {n: i for i, n in enumerate(names)}
    unknown = (set(y) | set(p)) - set(index)
    if unknown:
        raise ValidationError(f"label(s) {sorted(unknown)} are not in label_names={names}.")
    yi = np.array([index[v] for v in y], dtype=np.int64)
    pi = np.array([index[v] for v in p], dtype=np.int64)
    K = len(names)
    cm = np.bincount(yi * K + pi, minlength=K * K).reshape(K, K)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
    share = support / max(len(y), 1)
    per_label = pd.DataFrame({"label": names, "detection_rate": recall, "precision": precision,
                              "count": support, "share": share})
    per_label["warning"] = [label_warning(int(c), float(s), None) for c, s in zip(support, share)]
    matrix = pd.DataFrame(cm, index=pd.Index(names, name="true"),
                          columns=pd.Index(names, name="predicted"))
    ids = list(image_ids) if image_ids is not None else list(range(len(y)))
    pairs = pd.DataFrame({"image_id": ids, "true": y, "predicted": p})
    acc = float((yi == pi).mean()) if len(y) else float("nan")
    return ClassificationReport(per_label=per_label, accuracy=acc, confusion_matrix=matrix,
                                _pairs=pairs, labels=names)
